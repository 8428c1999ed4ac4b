"""Server settings from the environment, read and checked once per process and passed down:
the only reader of the serving variables (the multi-model server is handed what this module
decided).

Each variable is one field of ServingSettings, declared once with ``setting(name, default, parse,
help)``: the dataclass default, what ``from_env`` falls back to, and the README's table row all
come from that declaration (tests/unit/test_readme.py holds the table to ``describe()``). A default
that depends on the machine (workers, transforms, the model directory) is decided in ``from_env``;
its declaration says in words what it is.

The names are the sagemaker-inference toolkit's where it has one, so a model's Environment works
the same on both server paths.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import codecs, contract, logs
from ..environment import MAX_PAYLOAD_IN_MB_ENV, SageMakerPaths, base_dir
from ..errors import SagebertError
from .resources import gpu_count, granted_cpus, granted_memory_mb

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


# ---- parsers: a variable's text to its value, or ValueError(what is allowed) ---------------------


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer from ``minimum`` to ``maximum`` (no upper bound if None)."""
    return _bounded(int, "an integer", minimum, maximum)


def number(minimum: float, maximum: float) -> Callable[[str], float]:
    """A number from ``minimum`` to ``maximum``."""
    return _bounded(float, "a number", minimum, maximum)


def _bounded(kind: Callable[[str], Any], what: str, minimum: float, maximum: float | None) -> Callable[[str], Any]:
    allowed = f"{what} from {minimum:g} to {maximum:g}" if maximum is not None else f"{what} of at least {minimum:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(allowed) from None
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            raise ValueError(allowed)
        return value

    return parse


def one_of(choices: tuple[str, ...], case: Callable[[str], str] = str.lower) -> Callable[[str], str]:
    """One of ``choices``, after ``case`` (lower case by default)."""

    def parse(text: str) -> str:
        value = case(text.strip())
        if value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return value

    return parse


def flag(text: str) -> bool:
    """``true`` (any case) is True; anything else False, as SageMaker and the toolkit read it."""
    return text.strip().lower() == "true"


def port_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH``, two ports with LOW <= HIGH."""
    low, _, high = text.strip().partition("-")
    try:
        ports = int(low), int(high)
    except ValueError:
        raise ValueError("a port range LOW-HIGH, such as 21000-21999") from None
    if not 1 <= ports[0] <= ports[1] <= 65535:
        raise ValueError("a port range LOW-HIGH of ports from 1 to 65535, LOW <= HIGH")
    return ports


def text(limit: int) -> Callable[[str], str]:
    """Any text, stripped and cut to ``limit`` characters."""
    return lambda value: value.strip()[:limit]


@dataclass(frozen=True)
class Variable:
    """One environment variable of the server: its name, parser and meaning; ``default`` is its
    default as the README's table shows it."""

    name: str
    parse: Callable[[str], Any]
    help: str
    default: str


def setting(name: str, default: Any, parse: Callable[[str], Any], help: str, *, shown: str | None = None) -> Any:
    """A ServingSettings field read from the variable ``name``: ``default`` when unset or empty,
    else ``parse(value)``. ``shown`` is the default in words where the machine decides it."""
    return field(default=default, metadata={"variable": Variable(name, parse, help, shown or _shown(default))})


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return "`true`" if default else "unset"
    if isinstance(default, (int, float)):
        return f"{default:g}"
    return f"`{default}`"


def default_workers(cpus: int, memory_mb: float | None, gpus: int = 0) -> int:
    """One worker per GPU; else one per granted CPU (they share the preloaded weights), as many as
    the granted memory holds (a 1 GB serverless endpoint gets 2, whatever the host's CPUs)."""
    if gpus:
        return gpus
    if memory_mb is None:
        return cpus
    return max(1, min(cpus, int((memory_mb - SERVER_BASE_MB) // WORKER_MB)))


def _metrics(text: str) -> bool:
    return one_of(("emf", "off"))(text) == "emf"


@dataclass(frozen=True)
class ServingSettings:
    """How the server runs: one field per variable, declared with its default, parser and help
    (``describe()`` lists them); ``models_dir`` and ``cpus`` come from the machine."""

    model_dir: Path = setting("SAGEBERT_MODEL_DIR", Path("/opt/ml/model"), Path, "the model directory")
    port: int = setting("SAGEMAKER_BIND_TO_PORT", 8080, integer(1, 65535), "port to listen on")
    safe_port_range: tuple[int, int] | None = setting(
        "SAGEMAKER_SAFE_PORT_RANGE",
        None,
        port_range,
        "set by SageMaker: ports the container may use besides its own; multi-model-server listens on the first",
        shown="unset: 8081",
    )
    multi_model: bool = setting(
        "SAGEMAKER_MULTI_MODEL",
        False,
        flag,
        "set by SageMaker for a multi-model endpoint: `true` runs multi-model-server",
    )
    workers: int = setting(
        "SAGEMAKER_MODEL_SERVER_WORKERS",
        1,
        integer(1),
        "worker processes (multi-model: per model)",
        shown="one per CPU the container is granted (cgroup quota, not the host's count), fewer when its memory "
        "limit is small (a 1 GB serverless endpoint gets 2); one per GPU; multi-model: 1",
    )
    threads: int = setting(
        "SAGEBERT_SERVER_THREADS",
        16,
        integer(PING_RESERVED_THREADS + 1),
        f"request threads per worker ({PING_RESERVED_THREADS} of them never wait on the model)",
    )
    timeout: int = setting(
        "SAGEMAKER_MODEL_SERVER_TIMEOUT",
        60,
        integer(1, MAX_TIMEOUT_S),
        f"seconds one forward pass may run before its worker counts as stuck and is restarted; up to {MAX_TIMEOUT_S}",
    )
    max_payload_mb: float = setting(
        MAX_PAYLOAD_IN_MB_ENV,
        6.0,
        number(0.001, MAX_PAYLOAD_MB),
        f"request body limit; up to {MAX_PAYLOAD_MB} (asynchronous inference)",
    )
    default_accept: str = setting(
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
        codecs.JSON,
        one_of(codecs.RESPONSE_TYPES, str),
        "response type when Accept is absent or `*/*`",
    )
    max_concurrent_transforms: int = setting(
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
        4,
        integer(1),
        "advertised to batch transform",
        shown=f"2 per worker, at most {BATCH_TRANSFORM_BUDGET_MB} MB / payload",
    )
    batch_transform: bool = setting(
        "SAGEMAKER_BATCH", False, flag, "set by batch transform: `text/plain` bodies hold one text per line"
    )
    precision: str = setting(
        "SAGEBERT_INFERENCE_PRECISION",
        "auto",
        one_of(contract.PRECISIONS),
        "`auto`, `fp32`, `bf16`, `fp16` (GPU), `int8` (CPU, torch), `onnx-int8` (CPU, ONNX Runtime)",
        shown="`auto`: onnx-int8 on CPU, fp32 on GPU",
    )
    batch_size: int = setting("SAGEBERT_INFERENCE_BATCH_SIZE", 32, integer(1), "texts per padded forward pass (fp32)")
    max_texts: int = setting("SAGEBERT_MAX_TEXTS_PER_REQUEST", 10_000, integer(1), "texts per request")
    micro_batch_texts: int = setting(
        "SAGEBERT_MICRO_BATCH_TEXTS", 64, integer(1), "texts merged into one forward pass; 1 = every text alone"
    )
    micro_batch_tokens: int = setting(
        "SAGEBERT_MICRO_BATCH_TOKENS", 4096, integer(1), "tokens merged into one forward pass"
    )
    client_timeout: int = setting(
        "SAGEBERT_CLIENT_TIMEOUT",
        30,
        integer(1, MAX_TIMEOUT_S),
        "seconds a client may stay silent while sending a request or reading the answer",
    )
    request_read_timeout: int = setting(
        "SAGEBERT_REQUEST_READ_TIMEOUT",
        60,
        integer(1, MAX_TIMEOUT_S),
        "seconds a client has to send a whole request, headers and body, from its first byte, however steadily "
        "it sends (408 after)",
    )
    stop_grace: int = setting(
        "SAGEBERT_STOP_GRACE",
        STOP_GRACE_S,
        integer(1, MAX_STOP_GRACE_S),
        f"seconds a stopping server gives requests in flight before it answers them 503; from 1 to {MAX_STOP_GRACE_S}",
    )
    output_format: str = setting(
        "SAGEBERT_OUTPUT_FORMAT",
        "predictions",
        one_of(codecs.OUTPUT_FORMATS),
        "`predictions`, or `logits` for the reference's clients",
    )
    log_level: str = setting(
        "SAGEBERT_LOG_LEVEL",
        "INFO",
        one_of(logs.LOG_LEVELS, str.upper),
        "`DEBUG`, `INFO`, `WARNING` or `ERROR`: sagebert's and gunicorn's lines",
    )
    log_format: str = setting(
        "SAGEBERT_LOG_FORMAT",
        "text",
        one_of(logs.LOG_FORMATS),
        "`text`, or `json`: one JSON object per line (`time`, `level`, `logger`, `message`, `exception`)",
    )
    metrics: bool = setting(
        "SAGEBERT_METRICS",
        True,
        _metrics,
        "`emf`: one CloudWatch embedded-metric-format line per worker at most once a minute; `off`",
        shown="`emf`",
    )
    metrics_model: str = setting(
        "SAGEBERT_METRICS_MODEL",
        "sagebert",
        text(1024),
        "the value of the metrics' `Model` dimension: give each endpoint its own so their figures stay apart",
    )
    models_dir: Path = Path("/opt/ml/models")  # where SageMaker extracts a multi-model endpoint's models
    cpus: int = 1  # the CPUs the container is granted (its cgroup quota)

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
    def variable(cls, name: str) -> Variable:
        """The declared variable of the field ``name``."""
        return next(f.metadata["variable"] for f in fields(cls) if f.name == name)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cgroup: Path | None = None) -> ServingSettings:
        """Read and check every variable once; a SagebertError names a bad one and its fix."""
        environ = os.environ if environ is None else environ
        cpus = granted_cpus() if cgroup is None else granted_cpus(cgroup)
        memory = granted_memory_mb() if cgroup is None else granted_memory_mb(cgroup)
        paths = SageMakerPaths(base_dir(environ))
        # Defaults the machine decides, from the values read before them (fields are read in order).
        decided: dict[str, Callable[[dict[str, Any]], Any]] = {
            "model_dir": lambda _: paths.model_dir,
            "workers": lambda v: 1 if v["multi_model"] else default_workers(cpus, memory, gpu_count()),
            "max_concurrent_transforms": lambda v: min(
                2 * v["workers"], max(1, math.floor(BATCH_TRANSFORM_BUDGET_MB / v["max_payload_mb"]))
            ),
        }
        values: dict[str, Any] = {"models_dir": paths.models_dir, "cpus": cpus}
        for name, variable, default in _declared(cls):
            raw = environ.get(variable.name)
            if raw is None or not raw.strip():
                values[name] = decided[name](values) if name in decided else default
                continue
            try:
                values[name] = variable.parse(raw)
            except ValueError as exc:
                raise SagebertError(f"{variable.name} is {raw!r}.", f"Use {exc}, or unset it.") from None
        return cls(**values)


def _declared(cls: type[ServingSettings]) -> Iterator[tuple[str, Variable, Any]]:
    for f in fields(cls):
        if "variable" in f.metadata:
            yield f.name, f.metadata["variable"], f.default


def describe() -> list[Variable]:
    """Every variable the server reads, in declaration order (the README's table lists them)."""
    return [variable for _, variable, _ in _declared(ServingSettings)]
