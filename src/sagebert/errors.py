"""Errors a user can cause and fix.

Each carries what went wrong and how to fix it. Training turns them into the SageMaker failure
file (/opt/ml/output/failure, first 1024 characters become FailureReason); serving turns them
into an HTTP 4xx answer with a JSON reason; the CLI prints them as one line.
"""

from __future__ import annotations

import os
from pathlib import Path

FAILURE_REASON_LIMIT = 1024  # SageMaker keeps the first 1024 characters as FailureReason


class SagebertError(Exception):
    """A problem the user can fix. ``str()`` gives the problem, then the fix."""

    http_status = 400

    def __init__(self, message: str, fix: str | None = None, *, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        if http_status is not None:
            self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


class HyperparameterError(SagebertError):
    """A hyperparameter is unknown or has a value outside what it allows."""


class DataError(SagebertError):
    """A training or test channel cannot be read as labelled texts."""


class ModelSourceError(SagebertError):
    """The base model (or a trained model directory) cannot be found or loaded."""


class RequestError(SagebertError):
    """A client's request to the inference server cannot be served (always a 4xx)."""


class ModelNotReadyError(SagebertError):
    """The server has no usable model yet, or loading it failed."""

    http_status = 503


def write_failure_file(path: Path | str, reason: str) -> str:
    """Write ``reason`` (trimmed to SageMaker's 1024 characters) atomically; return what was written.

    Atomic so that several processes of one host, which may fail at once, never interleave.
    """
    reason = " ".join(reason.split())  # one paragraph: no tracebacks, no stray newlines
    if len(reason) > FAILURE_REASON_LIMIT:
        reason = reason[: FAILURE_REASON_LIMIT - 3] + "..."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(reason + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return reason
