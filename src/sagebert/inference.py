"""Inference with the sagemaker-inference handler contract: model_fn, input_fn, predict_fn,
output_fn. The Flask server (serving.app) and the multi-model-server handler (serving.mms_*)
both call these, so the two paths answer alike.

Texts go through the model in length-sorted sub-batches padded only to the longest text of each
sub-batch; texts longer than the model's limit are truncated and flagged ``truncated``.
On CPU the model can run in float32, bfloat16, or with int8 dynamically quantized linear layers
(SAGEBERT_INFERENCE_PRECISION); BENCHMARKS.md gives the speed and accuracy of each.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import codecs
from .codecs import Prediction, Predictions
from .errors import SagebertError
from .modeling import load_model_dir

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
DEFAULT_BATCH_SIZE = 32
# Below this many tokens in a forward pass, one intra-op thread is faster than several: an OpenMP
# team started from a server's request thread costs ~5 ms on the machines measured
# (BENCHMARKS.md), more than a small batch gains from a second core.
SMALL_BATCH_TOKENS = 128


@dataclass
class InferenceModel:
    """A trained classifier ready to predict, and how it runs."""

    tokenizer: Any
    model: torch.nn.Module
    label_names: list[str]
    max_length: int
    precision: str
    device: torch.device
    batch_size: int = DEFAULT_BATCH_SIZE
    threads: int = 0  # intra-op threads for large batches on CPU; 0 = torch's current setting

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in input order."""
        ids = self.tokenizer(
            list(texts), truncation=False, return_attention_mask=False, return_token_type_ids=False, verbose=False
        )["input_ids"]
        truncated = [len(x) > self.max_length for x in ids]
        # Keep the sequence's closing special token ([SEP] / </s>) when cutting to max_length.
        ids = [x[: self.max_length - 1] + x[-1:] if cut else x for x, cut in zip(ids, truncated, strict=True)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        logits = [None] * len(ids)
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                width = max(len(ids[i]) for i in chunk)
                if self.device.type == "cpu" and self.threads > 1:
                    torch.set_num_threads(1 if width * len(chunk) < SMALL_BATCH_TOKENS else self.threads)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    attention[row, : len(ids[i])] = 1
                out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)).logits
                for row, values in zip(chunk, out.float().cpu(), strict=True):
                    logits[row] = values
        stacked = torch.stack(logits)  # type: ignore[arg-type]
        probabilities = torch.softmax(stacked, dim=-1)
        best = probabilities.argmax(dim=-1).tolist()
        return [
            Prediction(self.label_names[b], b, tuple(p), tuple(lg), cut)
            for b, p, lg, cut in zip(best, probabilities.tolist(), stacked.tolist(), truncated, strict=True)
        ]


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision to run in; ``auto`` = fp16 on a GPU, int8 on CPU."""
    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise SagebertError(f"SAGEBERT_INFERENCE_PRECISION is {requested!r}.", f"Use one of {', '.join(PRECISIONS)}.")
    if requested == "auto":
        return "fp16" if device.type == "cuda" else "int8"
    if requested == "int8" and device.type != "cpu":
        raise SagebertError("int8 inference runs on CPU only.", "Use fp16 or bf16 on GPU instances.")
    if requested == "fp16" and device.type == "cpu":
        raise SagebertError("fp16 inference needs a GPU.", "Use int8, bf16 or fp32 on CPU instances.")
    return requested


def _apply_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "fp16":
        return model.half()
    if precision == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao announces its move to torchao
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def model_fn(model_dir: str | Path, precision: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE) -> InferenceModel:
    """Load a trained model directory (the root of model.tar.gz) for inference."""
    trained = load_model_dir(Path(model_dir))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = resolve_precision(precision, device)
    model = _apply_precision(trained.model.to(device), chosen)
    model.eval()
    log.info(
        "model loaded from %s: labels %s, max_length %d, precision %s, device %s",
        model_dir,
        trained.label_names,
        trained.max_length,
        chosen,
        device,
    )
    return InferenceModel(
        trained.tokenizer,
        model,
        trained.label_names,
        trained.max_length,
        chosen,
        device,
        batch_size,
        threads=torch.get_num_threads(),
    )


def input_fn(input_data: bytes | str, content_type: str, max_texts: int | None = None) -> list[str]:
    """The texts of a request body (see sagebert.codecs for the formats)."""
    return codecs.decode(input_data, content_type, max_texts)


def predict_fn(texts: Sequence[str], model: InferenceModel) -> Predictions:
    """One Prediction per text, with the label names they refer to."""
    return Predictions(tuple(model.predict(texts)), tuple(model.label_names))


def output_fn(predictions: Predictions, accept: str, fmt: str = "predictions") -> tuple[bytes, str]:
    """The response body and content type for an (already negotiated) Accept type."""
    return codecs.encode(predictions, accept, fmt)
