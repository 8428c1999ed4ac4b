"""Evaluation after every epoch: loss and metrics over the WHOLE evaluation set, whatever the
number of processes (each scores a share, the shares are gathered)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .batches import Collator, TokenizedDataset
from .metrics import classification_metrics


def evaluate(
    model: Any,
    accelerator: Any,
    evaluation: TokenizedDataset,
    collate: Collator,
    batch_size: int,
    label_names: Sequence[str],
) -> dict:
    """Loss, accuracy, precision, recall, F1 and the confusion matrix over every example of
    ``evaluation``, and ``predictions``: the predicted label id of each example, in its order."""
    rank, world_size = accelerator.process_index, accelerator.num_processes
    model.eval()
    lengths = evaluation.lengths
    order = sorted(range(len(evaluation)), key=lambda i: lengths[i])  # similar lengths pad little
    mine = order[rank::world_size]
    results: list[tuple[int, list[float]]] = []
    with torch.inference_mode():
        for start in range(0, len(mine), batch_size):
            indices = mine[start : start + batch_size]
            batch = collate(evaluation, indices)
            batch.pop("labels")
            with accelerator.autocast():
                logits = model(**batch).logits.float().cpu().tolist()
            results.extend(zip(indices, logits, strict=True))
    if world_size > 1:
        from accelerate.utils import gather_object

        results = gather_object(results)
    results.sort()
    logits = torch.tensor([r[1] for r in results], dtype=torch.float32)
    labels = torch.tensor(evaluation.labels)
    predictions = logits.argmax(-1).tolist()
    metrics = classification_metrics(labels.tolist(), predictions, label_names)
    metrics["loss"] = torch.nn.functional.cross_entropy(logits, labels).item()
    metrics["predictions"] = predictions
    model.train()
    return metrics
