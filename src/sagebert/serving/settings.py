"""Server settings from the environment, read and checked once at start.

The names are the sagemaker-inference toolkit's where it has one, so a model's Environment works
the same on both server paths:

| variable | meaning | default |
|---|---|---|
| SAGEMAKER_BIND_TO_PORT | port to listen on (inference pipelines) | 8080 |
| SAGEMAKER_MODEL_SERVER_WORKERS | worker processes (one model copy shared by all on CPU) | one per CPU; one per GPU |
| SAGEMAKER_MODEL_SERVER_TIMEOUT | seconds a request may take before the worker is restarted | 60 |
| SAGEMAKER_MAX_PAYLOAD_IN_MB | request body limit (413 above it) | 6 |
| SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT | response type when Accept is absent or */* | application/json |
| SAGEMAKER_MAX_CONCURRENT_TRANSFORMS | advertised to batch transform | workers x threads, capped by 100 MB / payload |
| SAGEBERT_SERVER_THREADS | request threads per worker (requests queue for the model) | 8 |
| SAGEBERT_INFERENCE_PRECISION | auto, fp32, bf16, fp16 (GPU), int8 (CPU) | auto: int8 on CPU, fp16 on GPU |
| SAGEBERT_INFERENCE_BATCH_SIZE | texts per forward pass | 32 |
| SAGEBERT_MAX_TEXTS_PER_REQUEST | texts per request (413 above it) | 10000 |
| SAGEBERT_MICRO_BATCH_TEXTS | texts of queued requests merged into one forward pass; 1 = every request alone | 64 |
| SAGEBERT_OUTPUT_FORMAT | predictions, or logits (the reference handler's answer) | predictions |
| SAGEBERT_MODEL_DIR | the model directory | /opt/ml/model |
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import codecs
from ..environment import (
    BIND_TO_PORT_ENV,
    DEFAULT_INVOCATIONS_ACCEPT_ENV,
    INFERENCE_BATCH_SIZE_ENV,
    INFERENCE_PRECISION_ENV,
    MAX_CONCURRENT_TRANSFORMS_ENV,
    MAX_PAYLOAD_IN_MB_ENV,
    MODEL_DIR_ENV,
    MODEL_SERVER_TIMEOUT_ENV,
    MODEL_SERVER_WORKERS_ENV,
    MULTI_MODEL_ENV,
    OUTPUT_FORMAT_ENV,
    SERVER_THREADS_ENV,
    base_dir,
)
from ..errors import SagebertError

MAX_TEXTS_ENV = "SAGEBERT_MAX_TEXTS_PER_REQUEST"
MICRO_BATCH_ENV = "SAGEBERT_MICRO_BATCH_TEXTS"
BATCH_TRANSFORM_BUDGET_MB = 100  # SageMaker: MaxConcurrentTransforms x MaxPayloadInMB <= 100


def cpu_count() -> int:
    """CPUs this process may use (the container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """One worker per CPU on CPU instances (they share the preloaded weights); one per GPU otherwise.

    With one torch thread each, N workers serve N requests at once without the OpenMP team cost
    a multi-threaded forward pass pays in a request thread (inference.SMALL_BATCH_TOKENS).
    """
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:
        pass
    return cpu_count()


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float, kind=int):
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise SagebertError(f"{name} is {raw!r}.", f"Set it to a {kind.__name__} of at least {minimum}, or unset it.")
    return value


@dataclass(frozen=True)
class ServingSettings:
    """How the server runs; see the module docstring for the variables."""

    model_dir: Path
    port: int = 8080
    workers: int = 1
    threads: int = 8
    timeout: int = 60
    max_payload_mb: float = 6.0
    default_accept: str = codecs.JSON
    precision: str = "auto"
    batch_size: int = 32
    max_texts: int = 10_000
    micro_batch_texts: int = 64
    output_format: str = "predictions"
    multi_model: bool = False
    max_concurrent_transforms: int = 8

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    @property
    def torch_threads_per_worker(self) -> int:
        return max(1, cpu_count() // self.workers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Read and check every variable; a SagebertError names a bad one and its fix."""
        environ = os.environ if environ is None else environ
        workers = _number(environ, MODEL_SERVER_WORKERS_ENV, default_workers(), 1)
        threads = _number(environ, SERVER_THREADS_ENV, 8, 1)
        payload = _number(environ, MAX_PAYLOAD_IN_MB_ENV, 6.0, 0.001, float)
        default_accept = environ.get(DEFAULT_INVOCATIONS_ACCEPT_ENV) or codecs.JSON
        if default_accept not in codecs.RESPONSE_TYPES:
            raise SagebertError(
                f"{DEFAULT_INVOCATIONS_ACCEPT_ENV} is {default_accept!r}.",
                f"Use one of {', '.join(codecs.RESPONSE_TYPES)}.",
            )
        output_format = (environ.get(OUTPUT_FORMAT_ENV) or "predictions").lower()
        if output_format not in codecs.OUTPUT_FORMATS:
            raise SagebertError(
                f"{OUTPUT_FORMAT_ENV} is {output_format!r}.", f"Use one of {', '.join(codecs.OUTPUT_FORMATS)}."
            )
        transforms_cap = max(1, math.floor(BATCH_TRANSFORM_BUDGET_MB / payload))
        return cls(
            model_dir=Path(environ.get(MODEL_DIR_ENV) or base_dir(environ) / "model"),
            port=_number(environ, BIND_TO_PORT_ENV, 8080, 1),
            workers=workers,
            threads=threads,
            timeout=_number(environ, MODEL_SERVER_TIMEOUT_ENV, 60, 1),
            max_payload_mb=payload,
            default_accept=default_accept,
            precision=(environ.get(INFERENCE_PRECISION_ENV) or "auto").lower(),
            batch_size=_number(environ, INFERENCE_BATCH_SIZE_ENV, 32, 1),
            max_texts=_number(environ, MAX_TEXTS_ENV, 10_000, 1),
            micro_batch_texts=_number(environ, MICRO_BATCH_ENV, 64, 1),
            output_format=output_format,
            multi_model=(environ.get(MULTI_MODEL_ENV) or "false").lower() == "true",
            max_concurrent_transforms=_number(
                environ, MAX_CONCURRENT_TRANSFORMS_ENV, min(workers * threads, transforms_cap), 1
            ),
        )
