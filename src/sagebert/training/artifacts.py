"""What a finished job leaves: the model directory (/opt/ml/model, which becomes model.tar.gz) and
the per-epoch outputs (/opt/ml/output/data).

The model directory is complete or empty: its files are written into a hidden folder inside it
and moved into place only once every one of them is written, as the job's very last step, so a
failure at any point before leaves nothing half-written for SageMaker to package.

It includes the ONNX int8 export that serving runs by default (sagebert.onnx_runtime), so that
no endpoint instance has to load the torch weights and export them at start. An export that
fails is logged and left out: serving then exports at start, as for older model directories.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import modeling
from ..environment import SageMakerPaths
from ..hyperparameters import Hyperparameters
from ..metric_lines import EVAL_DATA_KEY, PREDICTIONS_FILE
from ..report import BASELINE_FILE, compute_baseline
from .batches import Datasets
from .data import LabelledTexts
from .fingerprint import data_digest
from .loop import TrainingResult

log = logging.getLogger("sagebert.training")

HISTORY_JSON = "metrics_history.json"
HISTORY_CSV = "metrics_history.csv"
CURVES_PNG = "training_curves.png"
STAGING = ".sagebert-incomplete"
HISTORY_COLUMNS = [
    "epoch",
    "step",
    "train_loss",
    "eval_loss",
    "eval_accuracy",
    "eval_precision",
    "eval_recall",
    "eval_f1",
]


def write_history(directory: Path, history: list[dict]) -> None:
    """Per-epoch metrics as JSON and CSV, and the PNG of the curves."""
    from .plots import plot_history

    directory.mkdir(parents=True, exist_ok=True)
    (directory / HISTORY_JSON).write_text(json.dumps(history, indent=2))
    with open(directory / HISTORY_CSV, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_COLUMNS)
        for row in history:
            writer.writerow([row[c] for c in HISTORY_COLUMNS])
    if history:
        plot_history(history, directory / CURVES_PNG)


def write_baseline(directory: Path, train: LabelledTexts, label_names: Sequence[str]) -> None:
    """baseline.json: what `sagebert report` compares live traffic with (lengths, label mix,
    hashed top words of the training channel; no raw text)."""
    (directory / BASELINE_FILE).write_text(json.dumps(compute_baseline(train.texts, train.labels, label_names)))


def write_predictions(directory: Path, eval_data: str, labels: list[int], predictions: list[int]) -> None:
    """test_predictions.json: the true and the predicted label id of every test example, in the
    test set's order, with the digest of that test set (the gate's paired significance test)."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} test examples")
    document = {EVAL_DATA_KEY: eval_data, "labels": list(labels), "predictions": list(predictions)}
    (directory / PREDICTIONS_FILE).write_text(json.dumps(document, separators=(",", ":")))


def write_all_or_nothing(directory: Path, write: Callable[[Path], object]) -> None:
    """Run ``write(folder)`` on a hidden folder inside ``directory``, then move what it wrote into
    ``directory``: every file, or none if anything fails on the way."""
    staging = directory / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    moved: list[Path] = []
    try:
        write(staging)
        for path in sorted(staging.iterdir()):
            os.replace(path, directory / path.name)  # same file system: a rename, no copy
            moved.append(directory / path.name)
    except BaseException:
        for path in moved:
            path.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write(
    paths: SageMakerPaths,
    hp: Hyperparameters,
    model: Any,
    tokenizer: Any,
    base: modeling.BaseModelChoice,
    datasets: Datasets,
    result: TrainingResult,
) -> None:
    """The per-epoch outputs, then the model directory (last: it is complete or absent). Main process only."""
    write_history(paths.output_data_dir, result.history)
    metrics = dict(result.metrics)
    predictions = metrics.pop("predictions", None)
    # Which test examples (texts and labels, in order) the metrics were measured on: the gate
    # compares two models only when they match.
    eval_data = data_digest(datasets.evaluation)
    metrics.update(
        {
            "epochs": len(result.history),
            "optimizer_steps": result.global_step,
            "training_seconds": round(result.seconds, 1),
            "train_examples": len(datasets.train),
            "eval_source": datasets.evaluation.source,
            EVAL_DATA_KEY: eval_data,
        }
    )

    def model_files(folder: Path) -> None:
        modeling.save_model_dir(
            folder,
            model,
            tokenizer,
            hp.label_names,
            max_length=hp.max_length,
            base_model=base.display_name,
            hyperparameters=hp.to_dict(),
            metrics=metrics,
        )
        write_baseline(folder, datasets.train, hp.label_names)
        if predictions is not None:
            write_predictions(folder, eval_data, datasets.evaluation.labels, predictions)
        export_onnx(folder)

    write_all_or_nothing(paths.model_dir, model_files)
    log.info("model written to %s; metrics and curves to %s", paths.model_dir, paths.output_data_dir)


def export_onnx(folder: Path) -> Path | None:
    """The onnx-int8 export of the model saved in ``folder``, into ``folder``; None, with the
    reason logged, when it cannot be made (serving then exports at start)."""
    from .. import onnx_runtime

    started = time.monotonic()
    try:
        # From the saved files, as serving would load them: the in-memory model may still carry
        # accelerate's mixed-precision forward, which the tracer cannot follow.
        path = onnx_runtime.export_into(folder, modeling.load_model_dir(folder).model)
    except Exception as exc:  # onnxruntime missing, the tracer or the quantizer failing: the model itself is fine
        log.warning("no ONNX export in the model (%s: %s); serving will export it at start", type(exc).__name__, exc)
        return None
    log.info("ONNX int8 export for serving: %s (%.1f s)", path.name, time.monotonic() - started)
    return path
