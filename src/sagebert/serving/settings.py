"""Server settings from the environment, read and checked once per process: the only reader of
the serving variables (the multi-model server is handed what this module decided).

The names are the sagemaker-inference toolkit's where it has one, so a model's Environment works
the same on both server paths:

| variable | meaning | default |
|---|---|---|
| SAGEMAKER_BIND_TO_PORT | port to listen on (inference pipelines) | 8080 |
| SAGEMAKER_MODEL_SERVER_WORKERS | worker processes (multi-model: per model) | one per granted CPU, fewer if the granted memory is small; one per GPU; multi-model: 1 |
| SAGEMAKER_MODEL_SERVER_TIMEOUT | seconds one forward pass may run before the worker counts as stuck (its requests and /ping answer 503, the worker is restarted); at most 3600 | 60 |
| SAGEMAKER_MAX_PAYLOAD_IN_MB | request body limit (413 above it); at most 1024 (asynchronous inference) | 6 |
| SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT | response type when Accept is absent or */* | application/json |
| SAGEMAKER_MAX_CONCURRENT_TRANSFORMS | advertised to batch transform | 2 per worker, capped by 100 MB / payload |
| SAGEMAKER_BATCH | set by batch transform: text/plain bodies hold one text per line | false |
| SAGEBERT_SERVER_THREADS | request threads per worker; 2 are kept for /ping (503 when the rest wait on the model) | 16 |
| SAGEBERT_INFERENCE_PRECISION | auto, fp32, bf16, fp16 (GPU), int8 (CPU, torch), onnx-int8 (CPU, ONNX Runtime) | auto: onnx-int8 on CPU, fp32 on GPU |
| SAGEBERT_INFERENCE_BATCH_SIZE | texts per padded forward pass (fp32) | 32 |
| SAGEBERT_MAX_TEXTS_PER_REQUEST | texts per request (413 above it) | 10000 |
| SAGEBERT_MICRO_BATCH_TEXTS | texts of queued requests merged into one forward pass; 1 = every text alone | 64 |
| SAGEBERT_MICRO_BATCH_TOKENS | tokens merged into one forward pass; longer requests are served in slices of it | 4096 |
| SAGEBERT_CLIENT_TIMEOUT | seconds a client may stay silent while sending a request or reading the answer | 30 |
| SAGEBERT_REQUEST_READ_TIMEOUT | seconds a client has to send a whole request (headers and body) from its first byte, however steadily it sends (408 after) | 60 |
| SAGEBERT_STOP_GRACE | seconds a stopping server gives requests in flight (SIGTERM: `docker stop`, scale-in); they get a 503 if they cannot finish. Under Docker's default stop timeout (10 s): keep it under the stop timeout the container gets | 8 |
| SAGEBERT_OUTPUT_FORMAT | predictions, or logits (the reference handler's answer) | predictions |
| SAGEBERT_MODEL_DIR | the model directory | /opt/ml/model |
| SAGEBERT_LOG_LEVEL | DEBUG, INFO, WARNING or ERROR (the server's and gunicorn's lines) | INFO |
| SAGEBERT_LOG_FORMAT | text, or json (one JSON object per line: time, level, logger, message) | text |
| SAGEBERT_METRICS | emf (one CloudWatch embedded-metric-format line per worker at most once a minute), or off | emf |
| SAGEBERT_METRICS_MODEL | the value of the metrics' Model dimension: one per endpoint keeps their figures apart | sagebert |
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import codecs, logs
from ..environment import MAX_PAYLOAD_IN_MB_ENV, base_dir
from ..errors import SagebertError
from .resources import granted_cpus, granted_memory_mb

BIND_TO_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
SAFE_PORT_RANGE_ENV = "SAGEMAKER_SAFE_PORT_RANGE"
MODEL_SERVER_WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
MODEL_SERVER_TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
DEFAULT_INVOCATIONS_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
MAX_CONCURRENT_TRANSFORMS_ENV = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"
BATCH_ENV = "SAGEMAKER_BATCH"
MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
SERVER_THREADS_ENV = "SAGEBERT_SERVER_THREADS"
INFERENCE_PRECISION_ENV = "SAGEBERT_INFERENCE_PRECISION"
INFERENCE_BATCH_SIZE_ENV = "SAGEBERT_INFERENCE_BATCH_SIZE"
MAX_TEXTS_ENV = "SAGEBERT_MAX_TEXTS_PER_REQUEST"
MICRO_BATCH_ENV = "SAGEBERT_MICRO_BATCH_TEXTS"
MICRO_BATCH_TOKENS_ENV = "SAGEBERT_MICRO_BATCH_TOKENS"
CLIENT_TIMEOUT_ENV = "SAGEBERT_CLIENT_TIMEOUT"
REQUEST_READ_TIMEOUT_ENV = "SAGEBERT_REQUEST_READ_TIMEOUT"
STOP_GRACE_ENV = "SAGEBERT_STOP_GRACE"
OUTPUT_FORMAT_ENV = "SAGEBERT_OUTPUT_FORMAT"
MODEL_DIR_ENV = "SAGEBERT_MODEL_DIR"
LOG_LEVEL_ENV = "SAGEBERT_LOG_LEVEL"
LOG_FORMAT_ENV = "SAGEBERT_LOG_FORMAT"
METRICS_ENV = "SAGEBERT_METRICS"
METRICS_MODEL_ENV = "SAGEBERT_METRICS_MODEL"
METRICS_CHOICES = ("emf", "off")

BATCH_TRANSFORM_BUDGET_MB = 100  # SageMaker: MaxConcurrentTransforms x MaxPayloadInMB <= 100
MAX_TIMEOUT_S = 3600  # the longest SageMaker lets an invocation run (asynchronous inference)
MAX_PAYLOAD_MB = 1024  # the largest request SageMaker sends (asynchronous inference: 1 GB)
PING_RESERVED_THREADS = 2  # request threads per worker that never wait on the model
# Seconds a stopping server gives requests in flight. Docker's default stop timeout is 10 s, and
# SageMaker allows 30 s between SIGTERM and SIGKILL; 8 s fits both, with 2 s to exit.
STOP_GRACE_S = 8
MAX_STOP_GRACE_S = 25  # SageMaker's 30 s, less the time to exit
# What serving costs in memory (measured, BENCHMARKS.md): the master with the model loaded, and
# what each worker adds under load (its activation buffers; the weights are shared).
SERVER_BASE_MB = 500
WORKER_MB = 200


def default_workers(cpus: int, memory_mb: float | None, gpus: int = 0) -> int:
    """One worker per GPU; else one per granted CPU (they share the preloaded weights), as many as
    the granted memory holds (a 1 GB serverless endpoint gets 2, whatever the host's CPUs)."""
    if gpus:
        return gpus
    if memory_mb is None:
        return cpus
    return max(1, min(cpus, int((memory_mb - SERVER_BASE_MB) // WORKER_MB)))


def _gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...], case=str.lower) -> str:
    value = case((environ.get(name) or default).strip())
    if value not in choices:
        raise SagebertError(f"{name} is {environ.get(name)!r}.", f"Use one of {', '.join(choices)}, or unset it.")
    return value


def _number(environ: Mapping[str, str], name: str, default, minimum, maximum=None, kind=int):
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise SagebertError(f"{name} is {raw!r}.", f"Set it to a {kind.__name__} {bounds}, or unset it.")
    return value


@dataclass(frozen=True)
class ServingSettings:
    """How the server runs; see the module docstring for the variables."""

    model_dir: Path
    models_dir: Path = Path("/opt/ml/models")
    port: int = 8080
    workers: int = 1
    threads: int = 16
    timeout: int = 60
    max_payload_mb: float = 6.0
    default_accept: str = codecs.JSON
    precision: str = "auto"
    batch_size: int = 32
    max_texts: int = 10_000
    micro_batch_texts: int = 64
    micro_batch_tokens: int = 4096
    client_timeout: int = 30
    request_read_timeout: int = 60
    stop_grace: int = STOP_GRACE_S
    output_format: str = "predictions"
    multi_model: bool = False
    batch_transform: bool = False
    max_concurrent_transforms: int = 4
    cpus: int = 1
    log_level: str = "INFO"
    log_format: str = "text"
    metrics: bool = True
    metrics_model: str = "sagebert"

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    @property
    def torch_threads_per_worker(self) -> int:
        """Intra-op threads for each worker: the granted CPUs shared, never oversubscribed."""
        return max(1, self.cpus // self.workers)

    @property
    def inference_slots(self) -> int:
        """Requests per worker that may be read or wait on the model at once; the other threads stay
        free for /ping."""
        return max(1, self.threads - PING_RESERVED_THREADS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cgroup: Path | None = None) -> ServingSettings:
        """Read and check every variable; a SagebertError names a bad one and its fix."""
        environ = os.environ if environ is None else environ
        cpus = granted_cpus() if cgroup is None else granted_cpus(cgroup)
        memory = granted_memory_mb() if cgroup is None else granted_memory_mb(cgroup)
        multi_model = (environ.get(MULTI_MODEL_ENV) or "false").lower() == "true"
        workers = _number(
            environ, MODEL_SERVER_WORKERS_ENV, 1 if multi_model else default_workers(cpus, memory, _gpus()), 1
        )
        threads = _number(environ, SERVER_THREADS_ENV, 16, PING_RESERVED_THREADS + 1)
        payload = _number(environ, MAX_PAYLOAD_IN_MB_ENV, 6.0, 0.001, MAX_PAYLOAD_MB, float)
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
        base = base_dir(environ)
        return cls(
            model_dir=Path(environ.get(MODEL_DIR_ENV) or base / "model"),
            models_dir=base / "models",
            port=_number(environ, BIND_TO_PORT_ENV, 8080, 1, 65535),
            workers=workers,
            threads=threads,
            timeout=_number(environ, MODEL_SERVER_TIMEOUT_ENV, 60, 1, MAX_TIMEOUT_S),
            max_payload_mb=payload,
            default_accept=default_accept,
            precision=(environ.get(INFERENCE_PRECISION_ENV) or "auto").lower(),
            batch_size=_number(environ, INFERENCE_BATCH_SIZE_ENV, 32, 1),
            max_texts=_number(environ, MAX_TEXTS_ENV, 10_000, 1),
            micro_batch_texts=_number(environ, MICRO_BATCH_ENV, 64, 1),
            micro_batch_tokens=_number(environ, MICRO_BATCH_TOKENS_ENV, 4096, 1),
            client_timeout=_number(environ, CLIENT_TIMEOUT_ENV, 30, 1, MAX_TIMEOUT_S),
            request_read_timeout=_number(environ, REQUEST_READ_TIMEOUT_ENV, 60, 1, MAX_TIMEOUT_S),
            stop_grace=_number(environ, STOP_GRACE_ENV, STOP_GRACE_S, 1, MAX_STOP_GRACE_S),
            output_format=output_format,
            multi_model=multi_model,
            batch_transform=(environ.get(BATCH_ENV) or "false").lower() == "true",
            max_concurrent_transforms=_number(
                environ, MAX_CONCURRENT_TRANSFORMS_ENV, min(2 * workers, transforms_cap), 1
            ),
            cpus=cpus,
            log_level=_choice(environ, LOG_LEVEL_ENV, "INFO", logs.LOG_LEVELS, str.upper),
            log_format=_choice(environ, LOG_FORMAT_ENV, "text", logs.LOG_FORMATS),
            metrics=_choice(environ, METRICS_ENV, "emf", METRICS_CHOICES) == "emf",
            metrics_model=(environ.get(METRICS_MODEL_ENV) or "sagebert").strip()[:1024] or "sagebert",
        )


_current: ServingSettings | None = None


def current() -> ServingSettings:
    """This process's settings, read from the environment on first use (for code that MMS starts)."""
    global _current
    if _current is None:
        _current = ServingSettings.from_env()
    return _current
