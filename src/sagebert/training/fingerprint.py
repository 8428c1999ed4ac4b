"""What identifies a training job's result, so that only a checkpoint of the same job is resumed.

A checkpoint may continue a job only if continuing gives what an uninterrupted run of that job
gives: the same code, the same base model (its content, wherever it was unpacked), the same data
and the same hyperparameters. Anything that changes the result is in the fingerprint; settings
that only change logging or checkpointing are not.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import sagebert

from ..hyperparameters import Hyperparameters
from .data import LabelledTexts

# Hyperparameters that do not change the trained model: logging, checkpoint policy, and the
# number of processes (the fingerprint has the world size itself). eval_batch_size and
# max_eval_samples change only evaluation, which the evaluation data's digest covers.
NOT_IN_FINGERPRINT = (
    "log_interval",
    "eval_batch_size",
    "max_eval_samples",
    "checkpoint_steps",
    "checkpoint_minutes",
    "keep_checkpoints",
    "processes_per_host",
)


def source_digest(package: Path) -> str:
    """The sha256 of a package's source: every .py file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@cache
def code_digest() -> str:
    """The sha256 of the running sagebert package's source."""
    return source_digest(Path(sagebert.__file__).parent)


def code_version() -> dict:
    """The versions of what trains: sagebert (and its source), torch, transformers, accelerate."""
    import accelerate
    import torch
    import transformers

    return {
        "sagebert": sagebert.__version__,
        "source": code_digest(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }


def data_digest(*datasets: LabelledTexts) -> str:
    """The sha256 of labelled texts, in order."""
    digest = hashlib.sha256()
    for data in datasets:
        for text, label in zip(data.texts, data.labels, strict=True):
            digest.update(f"{label}\t{len(text)}\t{text}\n".encode())
        digest.update(b"\0")
    return digest.hexdigest()


def process_part(train: LabelledTexts, evaluation: LabelledTexts, base_model_digest: str) -> dict:
    """What one process contributes: its data (hosts may read different shards) and its base model."""
    return {"data": data_digest(train, evaluation), "base_model": base_model_digest}


def fingerprint(hp: Hyperparameters, precision: str, process_parts: list[dict]) -> str:
    """A short hash of everything that must not change for a checkpoint to be resumed exactly;
    ``process_parts`` holds every process's ``process_part``, in rank order."""
    hyperparameters = {k: v for k, v in hp.to_dict().items() if k not in NOT_IN_FINGERPRINT}
    values = {
        "code": code_version(),
        "hyperparameters": hyperparameters,
        "precision": precision,
        "world_size": len(process_parts),
        "processes": process_parts,
    }
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
