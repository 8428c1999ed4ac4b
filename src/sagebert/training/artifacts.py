"""What a finished job leaves: the model directory (/opt/ml/model, which becomes model.tar.gz) and
the per-epoch outputs (/opt/ml/output/data).

The model directory is complete or empty: its files are written into a hidden folder inside it
and moved into place only once every one of them is written, as the job's very last step, so a
failure at any point before leaves nothing half-written for SageMaker to package.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import modeling

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
    from ..plots import plot_history

    directory.mkdir(parents=True, exist_ok=True)
    (directory / HISTORY_JSON).write_text(json.dumps(history, indent=2))
    with open(directory / HISTORY_CSV, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_COLUMNS)
        for row in history:
            writer.writerow([row[c] for c in HISTORY_COLUMNS])
    if history:
        plot_history(history, directory / CURVES_PNG)


def write_model_dir(
    model_dir: Path,
    model: Any,
    tokenizer: Any,
    label_names: Sequence[str],
    *,
    max_length: int,
    base_model: str,
    hyperparameters: dict,
    metrics: dict,
) -> None:
    """``modeling.save_model_dir`` into ``model_dir``, all files or none."""
    staging = model_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    moved: list[Path] = []
    try:
        modeling.save_model_dir(
            staging,
            model,
            tokenizer,
            label_names,
            max_length=max_length,
            base_model=base_model,
            hyperparameters=hyperparameters,
            metrics=metrics,
        )
        for path in sorted(staging.iterdir()):
            os.replace(path, model_dir / path.name)  # same file system: a rename, no copy
            moved.append(model_dir / path.name)
    except BaseException:
        for path in moved:
            path.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
