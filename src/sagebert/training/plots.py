"""The per-epoch training curves as a PNG (loss, accuracy, F1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in a training container
import matplotlib.pyplot as plt


def plot_history(history: Sequence[dict], path: Path) -> Path:
    """Plot train/eval loss, eval accuracy and eval F1 per epoch into ``path``."""
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    axes[0].plot(epochs, [row["eval_loss"] for row in history], marker="o", label="eval")
    axes[0].set_title("loss")
    axes[0].legend()
    axes[1].plot(epochs, [row["eval_accuracy"] for row in history], marker="o", color="tab:green")
    axes[1].set_title("eval accuracy")
    axes[2].plot(epochs, [row["eval_f1"] for row in history], marker="o", color="tab:purple")
    axes[2].set_title("eval F1")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.set_xticks(epochs)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
