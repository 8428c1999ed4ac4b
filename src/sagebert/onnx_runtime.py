"""The ONNX Runtime int8 backend (precision ``onnx-int8``): the trained classifier exported to ONNX
(input_ids, attention_mask → logits), its matrix products quantized dynamically to int8, and run by
onnxruntime. It sits at the package root, not in serving/, because both rooms use it: training
exports with it as its last step, serving verifies and runs the export.

The export is generic: it traces whatever ``AutoModelForSequenceClassification`` loaded (a custom
head registered with the Auto classes included) through a wrapper that returns the logits. A
training job makes it as its last step, into the model directory, so it travels in model.tar.gz
and a serving start only verifies it (``load_verified``) without loading the torch weights. A model
directory without a valid one (trained by an older sagebert, or with other library versions) gets
it at serve start (BENCHMARKS.md measures the cost), kept in the model directory, or in a cache
folder when the model directory is read-only, so that the next worker or start reuses it. The
file name carries a key of the weights, the config and the library versions that made it
(``export_key``; "fingerprint" is the training job's identity), and the file itself carries the
same key in its metadata: a new model, new versions of
torch or onnxruntime, or a file renamed from another model's export, get a new export instead of a
stale one.

Like torch's int8, onnxruntime's dynamic quantization scales activations per forward pass, so a
text's answer would depend on its batch-mates: the caller runs every text on its own.

onnxruntime is never imported in a process that forks afterwards (gunicorn's master loads the
model, then forks the workers): a worker forked from a process that had imported it aborts or hangs
when it exits. So the master checks the file with onnx alone, quantizes in a child process, and
each process opens its own session on its first prediction (a worker: after the fork, with the
thread count the worker was given).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import SagebertError

log = logging.getLogger(__name__)

ONNX_PREFIX = "model.int8-"
ONNX_SUFFIX = ".onnx"
CACHE_DIR_ENV = "SAGEBERT_ONNX_CACHE_DIR"
OPSET = 17
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")
FINGERPRINT_KEY = "sagebert_fingerprint"  # the ONNX file's metadata entry that names the weights it was made from


class OnnxRuntimeMissingError(SagebertError):
    """onnxruntime (or onnx) cannot be imported: the onnx-int8 precision cannot run."""


def _missing(exc: BaseException | None) -> OnnxRuntimeMissingError:
    reason = f" ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})" if exc else ""
    return OnnxRuntimeMissingError(
        f"The onnx-int8 precision needs onnxruntime and onnx, which cannot be imported{reason}.",
        "Use the sagebert image (it has both), install requirements/image.in's pins, "
        "or set SAGEBERT_INFERENCE_PRECISION to int8 or fp32.",
    )


def _runtime_version() -> str:
    """onnxruntime's version, read from its metadata: importing it here would break forked workers."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise _missing(None)
    return importlib.metadata.version("onnxruntime")


def _import_runtime() -> Any:
    """onnxruntime, or an error that says how to get it (only in the process that predicts)."""
    try:
        import onnxruntime
    except Exception as exc:  # ImportError, or a broken install failing in its own import
        raise _missing(exc) from exc
    return onnxruntime


def export_key(model_dir: Path) -> str:
    """A short hash of the model's weights and config and of the libraries an export depends on."""
    digest = hashlib.sha256(f"torch {torch.__version__} onnxruntime {_runtime_version()} opset {OPSET}".encode())
    for name in WEIGHT_FILES:
        path = model_dir / name
        if path.exists():
            stat = path.stat()
            digest.update(f"{name} {stat.st_size}".encode())
            with open(path, "rb") as handle:  # the first and last MiB: cheap, and any retraining changes them
                digest.update(handle.read(1 << 20))
                handle.seek(max(0, stat.st_size - (1 << 20)))
                digest.update(handle.read())
    return digest.hexdigest()[:16]


class _Logits(torch.nn.Module):
    """The classifier with tensors in and logits out, whatever output class its head returns."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export_name(model_dir: Path) -> str:
    """The file name of the int8 export of the model in ``model_dir`` (its export key in it)."""
    return _file_name(export_key(model_dir))


def _file_name(made_from: str) -> str:
    return f"{ONNX_PREFIX}{made_from}{ONNX_SUFFIX}"


def export_int8(model: torch.nn.Module, destination: Path, made_from: str | None = None) -> Path:
    """Export ``model`` to ONNX, quantize its MatMuls dynamically to int8, and write the result to
    ``destination`` (atomically: a reader never sees half a file). ``made_from``, the export key of
    the model directory the weights came from, is written into the file's metadata."""
    _runtime_version()
    destination.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".onnx-export-") as scratch:
        fp32 = Path(scratch) / "model.fp32.onnx"
        # A padded batch of two, so that the traced graph keeps the attention mask's path.
        input_ids = torch.ones((2, 8), dtype=torch.long)
        attention_mask = torch.ones((2, 8), dtype=torch.long)
        attention_mask[1, 5:] = 0
        axes = {0: "batch", 1: "tokens"}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python conditions on shapes
            torch.onnx.export(
                # In eval mode: the exporter puts the module back in the mode it found it in, and a
                # new module is in training mode, which would leave the caller's model with dropout on.
                _Logits(model).eval(),
                (input_ids, attention_mask),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        int8 = Path(scratch) / "model.int8.onnx"
        _quantize_in_a_child(fp32, int8)
        if made_from:
            import onnx

            graph = onnx.load(str(int8))
            graph.metadata_props.add(key=FINGERPRINT_KEY, value=made_from)
            onnx.save(graph, str(int8))
        os.replace(int8, destination)
    return destination


def _cache_dir(model_dir: Path) -> Path:
    """Where an export goes when the model directory is read-only."""
    root = os.environ.get(CACHE_DIR_ENV) or Path(tempfile.gettempdir()) / "sagebert-onnx"
    return Path(root) / hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:12]


def load_verified(model_dir: Path, intra_op_threads: int | None = None) -> OnnxClassifier | None:
    """The int8 export of the model in ``model_dir`` (from training, or from an earlier start), if
    one whose name and metadata both carry the export key of these weights is there and reads as a
    valid ONNX model; None otherwise (the caller exports). Needs neither torch's weights nor
    onnxruntime in this process."""
    made_from = export_key(model_dir)
    for directory in (model_dir, _cache_dir(model_dir)):
        path = directory / _file_name(made_from)
        if path.exists():
            try:
                return OnnxClassifier(path, intra_op_threads, made_from=made_from)
            except SagebertError as exc:
                log.warning("not using %s: %s Exporting the model again.", path, exc.message)
    return None


def export_at_start(model_dir: Path, model: torch.nn.Module) -> Path:
    """Export ``model``, whose weights ``model_dir`` holds, when ``load_verified`` found no export:
    into ``model_dir`` if it is writable, else into the cache folder."""
    made_from = export_key(model_dir)
    name = _file_name(made_from)
    target = model_dir / name if os.access(model_dir, os.W_OK) else _cache_dir(model_dir) / name
    started = time.monotonic()
    export_int8(model, target, made_from)
    log.info("exported the model to ONNX int8 in %.1f s: %s", time.monotonic() - started, target)
    return target


def export_into(model_dir: Path, model: torch.nn.Module) -> Path:
    """Export ``model``, whose weights ``model_dir`` holds, into ``model_dir`` itself (what a
    training job does last, so that serving starts without exporting)."""
    made_from = export_key(model_dir)
    return export_int8(model, model_dir / _file_name(made_from), made_from)


# onnxruntime's dynamic quantization of the MatMuls' weights to signed int8, in a process of its own.
_QUANTIZE = (
    "import sys; from onnxruntime.quantization import QuantType, quantize_dynamic; "
    "quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8)"
)


def _quantize_in_a_child(fp32: Path, int8: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _QUANTIZE, str(fp32), str(int8)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SagebertError(
            f"onnxruntime could not quantize the exported model: {done.stderr.strip()[-600:]}",
            "Set SAGEBERT_INFERENCE_PRECISION=int8 or fp32, and report this with the model's config.json.",
        )


class OnnxClassifier:
    """An exported classifier, called like the model on numpy arrays. The file is checked when this
    is made; the onnxruntime session is opened in each process on its first prediction."""

    def __init__(self, path: Path, intra_op_threads: int | None = None, made_from: str | None = None):
        self.path = path
        self.intra_op_threads = intra_op_threads  # None: torch's thread count when the session opens
        self._session: Any = None
        self._session_pid: int | None = None
        try:
            import onnx

            graph = onnx.load(str(path))
            onnx.checker.check_model(graph)
        except Exception as exc:  # a truncated or foreign file: protobuf's or onnx's own exception types
            raise self._unreadable(exc) from exc
        if made_from is not None:
            found = {entry.key: entry.value for entry in graph.metadata_props}.get(FINGERPRINT_KEY)
            if found != made_from:
                raise SagebertError(
                    f"{path} was made from other weights or library versions "
                    f"(export key {found or 'absent'}, these weights: {made_from}).",
                    "Delete that file: the next start exports the model again.",
                )

    def _unreadable(self, exc: BaseException) -> SagebertError:
        return SagebertError(
            f"cannot load {self.path} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}).",
            "Delete that file: the next start exports the model again.",
        )

    def set_intra_op_threads(self, threads: int | None) -> None:
        """Open this process's session with ``threads`` intra-op threads (an open one is reopened)."""
        if threads != self.intra_op_threads:
            self.intra_op_threads = threads
            self._session_pid = None

    @property
    def session(self) -> Any:
        """This process's onnxruntime session (a forked worker opens its own)."""
        if self._session_pid != os.getpid():
            onnxruntime = _import_runtime()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = max(1, self.intra_op_threads or torch.get_num_threads())
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3  # warnings about unused initializers are noise
            try:
                self._session = onnxruntime.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
                raise self._unreadable(exc) from exc
            self._session_pid = os.getpid()
        return self._session

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The logits (float32, one row per text) for int64 token ids and attention mask."""
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
