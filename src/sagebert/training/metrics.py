"""Classification metrics over a whole evaluation set."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_labels: int) -> np.ndarray:
    """Rows: true label; columns: predicted label."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    flat = labels * num_labels + predictions
    return np.bincount(flat, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def classification_metrics(labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str]) -> dict:
    """Accuracy, precision, recall, F1 and the confusion matrix.

    With two labels, precision/recall/F1 are those of label id 1 (the positive class, "Real
    disaster" by default), as the competition scores them; with more, their macro averages.
    Per-class figures are always included.
    """
    num_labels = len(label_names)
    matrix = confusion_matrix(labels, predictions, num_labels)
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    per_class = {}
    for i, name in enumerate(label_names):
        precision = _ratio(true_positive[i], predicted[i])
        recall = _ratio(true_positive[i], actual[i])
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": int(actual[i]),
        }
    if num_labels == 2:
        headline = per_class[label_names[1]]
        precision, recall, f1 = headline["precision"], headline["recall"], headline["f1"]
    else:
        precision = float(np.mean([c["precision"] for c in per_class.values()]))
        recall = float(np.mean([c["recall"] for c in per_class.values()]))
        f1 = float(np.mean([c["f1"] for c in per_class.values()]))
    return {
        "accuracy": _ratio(true_positive.sum(), matrix.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "examples": int(matrix.sum()),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
    }
