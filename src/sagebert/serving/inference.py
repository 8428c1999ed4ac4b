"""The model at inference: ``model_fn`` loads a model directory into an InferenceModel, which
tokenizes texts and runs forward passes; ``predict_fn`` is one prediction per text with the label
names. Both servers load with ``model_fn``. Requests are decoded and answers encoded by
sagebert.codecs, through serving.answer.answer, which both servers call: the Flask server
(serving.app) predicts through its micro-batcher (InferenceModel.tokenize, then .forward), the
multi-model-server handler (serving.mms_handler_service) through ``predict_fn``.

A prediction is a function of its text alone: the same text gets the same label, and the same
probabilities to 1e-4, whatever else shares its request or forward pass (the Flask server merges
requests of several clients into one forward pass). How each precision keeps that:

- fp32 runs length-sorted sub-batches padded to their longest text: padding is masked out, and
  what other rows change is only the order of float32 sums (about 1e-6).
- int8, onnx-int8 (ONNX Runtime, see sagebert.onnx_runtime), bf16 and fp16 run every text on its
  own, unpadded. Batched, they are not batch-invariant:
  int8 dynamic quantization scales activations per batch, and any rounding to 8 bits (int8 with
  per-row scales too) or to bf16 turns the 1e-7 differences of a batched float32 sum into jumps of
  1e-3 to 1e-2 (BENCHMARKS.md measures each).

Tokenising is bounded: a text is tokenised piece by piece, cut at whitespace, only until it is
known to exceed ``max_length`` tokens, so a 6 MB text costs no more than a long tweet. Texts
longer than the model's limit are truncated (keeping the closing special token) and flagged.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from .. import contract, onnx_runtime
from ..codecs import Prediction, Predictions
from ..errors import SagebertError
from ..modeling import load_model_dir
from ..onnx_runtime import OnnxClassifier

log = logging.getLogger(__name__)

PRECISIONS = contract.PRECISIONS
CPU_ONLY_PRECISIONS = ("int8", "onnx-int8")
BATCHED_PRECISIONS = ("fp32",)  # the others run each text alone (see the module docstring)
DEFAULT_BATCH_SIZE = 32
# Below this many tokens in a forward pass, one intra-op thread is faster than several: an OpenMP
# team started from a server's request thread costs ~5 ms on the machines measured
# (BENCHMARKS.md), more than a small batch gains from a second core.
SMALL_BATCH_TOKENS = 128
# A text longer than this many characters per max_length token is tokenised in pieces of this
# size: a WordPiece token spans at least one character, so a piece holds at most that many tokens.
PIECE_CHARS_PER_TOKEN = 8
_CUT_AT = (" ", "\n", "\t", "\r")


@dataclass(frozen=True)
class TokenIds:
    """One text as the model takes it: token ids with the special tokens, at most max_length."""

    ids: tuple[int, ...]
    truncated: bool

    def __len__(self) -> int:
        return len(self.ids)


class Backend(Protocol):
    """What InferenceModel asks of the thing that runs forward passes (torch or ONNX Runtime).

    ``intra_op_threads`` is the process's intra-op thread count on CPU, given when the model is
    loaded and changed only through ``set_intra_op_threads`` (a forked server worker takes its own
    share). (``threads`` is the server's request threads, ServingSettings.threads.)
    """

    model: Any  # what runs the forward passes: the torch module or the OnnxClassifier
    intra_op_threads: int

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The logits (float32, on the CPU, one row per text) for CPU int64 ids and attention mask."""
        ...

    def set_intra_op_threads(self, threads: int) -> None:
        """Run this process's later forward passes on ``threads`` intra-op threads."""
        ...


class TorchBackend:
    """A torch module (fp32, bf16, fp16 or torch's int8) on ``device``."""

    def __init__(self, model: torch.nn.Module, device: torch.device, threads: int):
        self.model, self.device, self.intra_op_threads = model, device, threads

    def set_intra_op_threads(self, threads: int) -> None:
        self.intra_op_threads = threads

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # torch's thread count is per pass: a small one runs faster on one thread (SMALL_BATCH_TOKENS).
        if self.device.type == "cpu" and self.intra_op_threads > 1:
            torch.set_num_threads(1 if input_ids.numel() < SMALL_BATCH_TOKENS else self.intra_op_threads)
        out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device))
        return out.logits.float().cpu()


class OnnxBackend:
    """The int8 ONNX export run by onnxruntime (sagebert.onnx_runtime)."""

    def __init__(self, model: OnnxClassifier, threads: int):
        self.model = model
        model.set_intra_op_threads(threads)

    @property
    def intra_op_threads(self) -> int:
        return self.model.intra_op_threads or torch.get_num_threads()

    def set_intra_op_threads(self, threads: int) -> None:
        self.model.set_intra_op_threads(threads)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.model.logits(input_ids.numpy(), attention_mask.numpy()))


@dataclass
class InferenceModel:
    """A trained classifier ready to predict, and how it runs."""

    tokenizer: Any
    backend: Backend
    label_names: list[str]
    max_length: int
    precision: str
    device: torch.device
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def model(self) -> torch.nn.Module | OnnxClassifier:
        """What runs the forward passes (the backend's)."""
        return self.backend.model

    @property
    def intra_op_threads(self) -> int:
        """Intra-op threads for large forward passes on CPU (the backend's)."""
        return self.backend.intra_op_threads

    @intra_op_threads.setter
    def intra_op_threads(self, threads: int) -> None:
        self.backend.set_intra_op_threads(threads)

    @property
    def batched(self) -> bool:
        """Whether texts share forward passes (only where that cannot change their results)."""
        return self.precision in BATCHED_PRECISIONS

    @property
    def _piece_chars(self) -> int:
        return PIECE_CHARS_PER_TOKEN * self.max_length

    @functools.cached_property
    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text's own ([CLS] and [SEP] for BERT)."""
        plain = self._token_ids(["a"])[0]
        framed = self.tokenizer(["a"], return_attention_mask=False, return_token_type_ids=False)["input_ids"][0]
        start = next(i for i in range(len(framed)) if framed[i : i + len(plain)] == plain)
        return framed[:start], framed[start + len(plain) :]

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        """Each text's token ids, truncated to max_length; cheap whatever the texts' length."""
        before, after = self._special_tokens
        keep = self.max_length - len(before) - len(after)
        short = [i for i, text in enumerate(texts) if len(text) <= self._piece_chars]
        content: list[list[int]] = [[] for _ in texts]
        if short:
            ids = self._token_ids([texts[i] for i in short])
            for i, text_ids in zip(short, ids, strict=True):
                content[i] = text_ids
        for i, text in enumerate(texts):
            if len(text) > self._piece_chars:
                content[i] = self._leading_token_ids(text, keep)
        return [TokenIds(tuple(before + ids[:keep] + after), len(ids) > keep) for ids in content]

    @functools.cached_property
    def _fast_tokenizer(self) -> Any:
        """The fast tokenizer's own ``tokenizers.Tokenizer`` without truncation or padding (what
        the transformers wrapper sets up on every call), or None for a slow tokenizer."""
        fast = getattr(self.tokenizer, "backend_tokenizer", None)
        if fast is None:
            return None
        fast = type(fast).from_str(fast.to_str())  # a copy: the wrapper keeps its own settings
        fast.no_truncation()
        fast.no_padding()
        return fast

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        # The fast tokenizer directly: the same ids for a fraction of the wrapper's cost per call, which
        # is most of the tokenising time of a one-tweet request.
        fast = self._fast_tokenizer
        if fast is not None:
            if len(texts) == 1:
                return [fast.encode(texts[0], add_special_tokens=False).ids]
            return [encoding.ids for encoding in fast.encode_batch(texts, add_special_tokens=False)]
        return self.tokenizer(
            texts,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]

    def _leading_token_ids(self, text: str, keep: int) -> list[int]:
        """At least the first ``keep + 1`` token ids of ``text`` (all of them if it has fewer).

        Pieces end at whitespace, which is a token boundary, so the ids are those of the whole
        text; only a run of more than a piece's length without whitespace is cut inside a word.
        """
        ids: list[int] = []
        start, piece = 0, self._piece_chars
        while start < len(text) and len(ids) <= keep:
            end = min(len(text), start + piece)
            if end < len(text):
                cut = max(text.rfind(char, start + piece // 2, end) for char in _CUT_AT)
                end = cut + 1 if cut >= 0 else end
            ids += self._token_ids([text[start:end]])[0]
            start = end
        return ids

    def forward(self, items: Sequence[TokenIds]) -> list[Prediction]:
        """One Prediction per encoded text, in order."""
        if not items:
            return []
        with torch.inference_mode():
            if self.batched:
                logits = self._batched_logits(items)
            else:
                logits = torch.stack([self._logits_alone(item) for item in items])
        probabilities = torch.softmax(logits, dim=-1)
        best = probabilities.argmax(dim=-1).tolist()
        return [
            Prediction(self.label_names[b], b, tuple(p), tuple(lg), item.truncated)
            for b, p, lg, item in zip(best, probabilities.tolist(), logits.tolist(), items, strict=True)
        ]

    def _logits_alone(self, item: TokenIds) -> torch.Tensor:
        """One text's logits (float32, on the CPU) from a forward pass of its own, unpadded."""
        ids = torch.tensor([item.ids], dtype=torch.long)
        return self.backend.logits(ids, torch.ones_like(ids))[0]

    def _batched_logits(self, items: Sequence[TokenIds]) -> torch.Tensor:
        """Logits of length-sorted sub-batches, each padded to its longest text (float32, CPU)."""
        logits: list[torch.Tensor | None] = [None] * len(items)
        pad = self.tokenizer.pad_token_id or 0
        for group in self._groups(items):
            width = max(len(items[i]) for i in group)
            input_ids = torch.full((len(group), width), pad, dtype=torch.long)
            attention = torch.zeros((len(group), width), dtype=torch.long)
            for row, i in enumerate(group):
                input_ids[row, : len(items[i])] = torch.tensor(items[i].ids)
                attention[row, : len(items[i])] = 1
            for i, values in zip(group, self.backend.logits(input_ids, attention), strict=True):
                logits[i] = values
        return torch.stack(logits)  # type: ignore[arg-type]

    def _groups(self, items: Sequence[TokenIds]) -> list[list[int]]:
        """The batched forward passes: length-sorted sub-batches of at most batch_size texts."""
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in input order."""
        return self.forward(self.tokenize(texts))


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision to run in; ``auto`` = onnx-int8 on CPU (ONNX Runtime: faster than torch's int8 at
    the same accuracy, BENCHMARKS.md), fp32 on a GPU."""
    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise SagebertError(f"SAGEBERT_INFERENCE_PRECISION is {requested!r}.", f"Use one of {', '.join(PRECISIONS)}.")
    if requested == "auto":
        return "fp32" if device.type == "cuda" else "onnx-int8"
    if requested in CPU_ONLY_PRECISIONS and device.type != "cpu":
        raise SagebertError(f"{requested} inference runs on CPU only.", "Use fp32, fp16 or bf16 on GPU instances.")
    if requested == "fp16" and device.type == "cpu":
        raise SagebertError("fp16 inference needs a GPU.", "Use onnx-int8, int8, bf16 or fp32 on CPU instances.")
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
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = resolve_precision(precision, device)
    # The onnx-int8 export that training made (or an earlier start), verified by its fingerprint:
    # then the torch weights are never loaded, the largest part of a cold start (BENCHMARKS.md).
    onnx = onnx_runtime.load_verified(Path(model_dir)) if chosen == "onnx-int8" else None
    trained = load_model_dir(Path(model_dir), weights=onnx is None)
    threads = torch.get_num_threads()
    backend: Backend
    if chosen == "onnx-int8":
        if onnx is None:  # a model.tar.gz from an older sagebert, or other library versions
            log.info("%s holds no ONNX export for these weights and libraries: exporting it now", model_dir)
            onnx = OnnxClassifier(onnx_runtime.export_at_start(Path(model_dir), trained.model))
        backend = OnnxBackend(onnx, threads)
    else:
        model = _apply_precision(trained.model.to(device), chosen)
        model.eval()
        backend = TorchBackend(model, device, threads)
    log.info(
        "model loaded from %s: labels %s, max_length %d, precision %s (%s), device %s",
        model_dir,
        trained.label_names,
        trained.max_length,
        chosen,
        "length-sorted batches" if chosen in BATCHED_PRECISIONS else "each text on its own",
        device,
    )
    return InferenceModel(
        trained.tokenizer, backend, trained.label_names, trained.max_length, chosen, device, batch_size
    )


def predict_fn(texts: Sequence[str], model: InferenceModel) -> Predictions:
    """One Prediction per text, with the label names they refer to."""
    return Predictions(tuple(model.predict(texts)), tuple(model.label_names))
