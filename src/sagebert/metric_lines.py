"""The training log's metric lines and the SageMaker MetricDefinitions that read them.

A metric line is ``key=value`` pairs separated by single spaces, e.g.

    epoch=2 step=358 train_loss=0.3412 eval_loss=0.4102 eval_accuracy=0.8351 eval_f1=0.7975

Training prints one per ``log_interval`` optimizer steps (progress) and one per epoch (after
evaluating on the whole test set). The format is a contract: SageMaker extracts metrics from the
CloudWatch log with the regexes below, and `sagebert train` sends them as MetricDefinitions.

Beside the log, the model artifact carries what the promotion gate needs to compare two models:
metrics.json's ``eval_data_sha256`` (which test examples the eval metrics were measured on) and
``test_predictions.json`` (each model's predicted label per test example, for a paired test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Names (SageMaker metric names) → the key printed in the log line.
_METRICS = {
    "train:loss": "train_loss",
    "train:learning_rate": "learning_rate",
    "train:samples_per_second": "samples_per_second",
    "train:epoch": "epoch",
    "eval:loss": "eval_loss",
    "eval:accuracy": "eval_accuracy",
    "eval:precision": "eval_precision",
    "eval:recall": "eval_recall",
    "eval:f1": "eval_f1",
}
EVAL_DATA_KEY = "eval_data_sha256"
PREDICTIONS_FILE = "test_predictions.json"
_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": rf"(?:^|\s){key}={_NUMBER}(?:\s|$)"} for name, key in _METRICS.items()
]


def _format_value(value: object) -> str:
    if isinstance(value, (bool, int)):
        return str(int(value))
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


def format_metric_line(values: Mapping[str, object]) -> str:
    """``key=value`` pairs in the given order; floats with 4 decimals (small ones in e-notation)."""
    for key in values:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            raise ValueError(f"metric key {key!r} must be lower-case letters, digits and underscores")
    return " ".join(f"{key}={_format_value(value)}" for key, value in values.items())


def parse_metric_line(line: str) -> dict[str, float]:
    """The inverse, for tests and log readers: every ``key=number`` pair in a line."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(rf"(?:^|\s)([a-z][a-z0-9_]*)={_NUMBER}(?=\s|$)", line)}
