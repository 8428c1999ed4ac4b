"""Training hyperparameters: one typed dataclass, parsed from SageMaker's strings.

A training job's hyperparameters have one source: /opt/ml/input/config/hyperparameters.json,
where SageMaker writes every value as a string (some clients JSON-encode it a second time:
``"\\"bert-base-uncased\\""``; a hand-written local file may hold numbers, booleans and lists).
``load`` parses those values once into the frozen ``Hyperparameters``, which is passed down from
there. The launcher gives the program no command-line copy of them (the sagemaker-training
toolkit's default would be ``--name str(value)``, a second, differently encoded source). Unknown
names and bad values fail fast, naming the hyperparameter and what it allows. Nothing here
imports torch: the CLI validates a job's hyperparameters before it sends CreateTrainingJob.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .errors import HyperparameterError

# Keys SageMaker and the toolkit add for themselves; never ours to validate.
_RESERVED_PREFIXES = ("sagemaker_", "_tuning_objective_metric")
TRUE_STRINGS = {"true", "1", "yes", "y", "on"}
FALSE_STRINGS = {"false", "0", "no", "n", "off"}


class _Invalid(ValueError):
    """A value a parser rejects; the message says what is allowed."""


def _unquote(value: Any) -> Any:
    """Undo one level of JSON encoding of a string (``'"abc"'`` → ``'abc'``)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def _integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        value = _unquote(value)
        if isinstance(value, bool):
            raise _Invalid("an integer")
        try:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            result = int(number)
        except (TypeError, ValueError, OverflowError):
            raise _Invalid(_range_text("an integer", minimum, maximum)) from None
        if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
            raise _Invalid(_range_text("an integer", minimum, maximum))
        return result

    return parse


def _number(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> Callable[[Any], float]:
    low = "greater than" if exclusive_minimum else "at least"
    high = "less than" if exclusive_maximum else "at most"
    parts = [f"{low} {minimum:g}" if minimum is not None else "", f"{high} {maximum:g}" if maximum is not None else ""]
    allowed = "a number " + " and ".join(p for p in parts if p)

    def parse(value: Any) -> float:
        value = _unquote(value)
        if isinstance(value, bool):
            raise _Invalid(allowed.strip())
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise _Invalid(allowed.strip()) from None
        if not math.isfinite(result):
            raise _Invalid(allowed.strip())
        if minimum is not None and (result <= minimum if exclusive_minimum else result < minimum):
            raise _Invalid(allowed.strip())
        if maximum is not None and (result >= maximum if exclusive_maximum else result > maximum):
            raise _Invalid(allowed.strip())
        return result

    return parse


def _range_text(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} of at least {minimum}"
    return kind


def parse_bool(value: Any) -> bool:
    """``True``/``False`` in any case, ``1``/``0``, ``yes``/``no``."""
    value = _unquote(value)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_STRINGS:
        return True
    if text in FALSE_STRINGS:
        return False
    raise _Invalid("true or false")


def _text(value: Any) -> str:
    value = _unquote(value)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)):
        raise _Invalid("a string")
    return str(value).strip()


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise _Invalid("one of " + ", ".join(choices))
        return text

    return parse


def parse_name_list(value: Any) -> tuple[str, ...]:
    """Label names: comma-separated text, or a JSON list (for names that contain commas)."""
    value = _unquote(value)
    allowed = "at least two distinct, non-empty names separated by commas (e.g. 'Not a disaster,Real disaster')"
    items: Iterable[Any]
    if isinstance(value, (list, tuple)):
        items = value
    else:
        text = str(value).strip()
        if text.startswith("["):
            # A bracket means a list was meant; splitting it at commas would keep the brackets in the names.
            try:
                items = json.loads(text)
            except ValueError:
                items = None  # type: ignore[assignment]
            if not isinstance(items, list):
                raise _Invalid(allowed + ', or a JSON list of strings (e.g. \'["No", "Yes"]\')')
        else:
            items = text.split(",")
    names = tuple(str(item).strip() for item in items)
    if len(names) < 2 or any(not n for n in names) or len(set(n.lower() for n in names)) != len(names):
        raise _Invalid(allowed)
    return names


def _hp(default: Any, parse: Callable[[Any], Any], help: str) -> Any:
    factory = (lambda: default) if isinstance(default, (list, dict)) else None
    metadata = {"parse": parse, "help": help}
    if factory:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Hyperparameters:
    """Every hyperparameter a sagebert training job accepts, with its default."""

    epochs: int = _hp(2, _integer(1, 1000), "passes over the training data")
    train_batch_size: int = _hp(32, _integer(1, 4096), "examples per optimizer micro-batch, per process")
    eval_batch_size: int = _hp(64, _integer(1, 4096), "examples per evaluation batch")
    learning_rate: float = _hp(5e-5, _number(0.0, 1.0, exclusive_minimum=True), "peak AdamW learning rate")
    warmup_ratio: float = _hp(
        0.1, _number(0.0, 1.0, exclusive_maximum=True), "share of optimizer steps spent warming up linearly"
    )
    weight_decay: float = _hp(0.01, _number(0.0, 1.0), "AdamW weight decay (not applied to biases and LayerNorm)")
    max_grad_norm: float = _hp(1.0, _number(0.0), "gradient clipping norm; 0 turns clipping off")
    max_length: int = _hp(128, _integer(8, 8192), "tokens per text; longer texts are truncated")
    seed: int = _hp(
        42, _integer(0, 2**32 - 1), "seed for the head's initialisation, dropout, data order and hold-out split"
    )
    gradient_accumulation_steps: int = _hp(1, _integer(1, 1024), "micro-batches per optimizer step")
    model_name_or_path: str = _hp(
        "",
        _text,
        "base model: a Hugging Face model id or a path; empty = the baked-in all-MiniLM-L6-v2 (a `pretrained` channel overrides it)",
    )
    pooling: str = _hp(
        "auto",
        _choice("auto", "cls", "mean"),
        "what the classification head reads: cls = the first token (the base's own head), mean = the mean of "
        "the token states; auto = mean for a sentence-transformers base (such as the baked-in one), else cls",
    )
    label_names: tuple[str, ...] = _hp(
        ("Not a disaster", "Real disaster"), parse_name_list, "class names, in label-id order"
    )
    text_column: str = _hp(
        "",
        _text,
        "column (CSV) or key (JSON Lines) holding the text; empty = the first of text, sentence, tweet, content",
    )
    label_column: str = _hp(
        "", _text, "column or key holding the label; empty = the first of label, target, labels, class"
    )
    clean_text: bool = _hp(
        False, parse_bool, "remove URLs, HTML entities, @mentions, emoji and repair mojibake before training"
    )
    validation_fraction: float = _hp(
        0.2,
        _number(0.0, 0.5, exclusive_minimum=True),
        "stratified share of the training data held out when there is no `testing` channel",
    )
    max_train_samples: int = _hp(0, _integer(0), "use only the first N training examples (after shuffling); 0 = all")
    max_eval_samples: int = _hp(0, _integer(0), "evaluate on only the first N test examples; 0 = all")
    log_interval: int = _hp(50, _integer(1), "optimizer steps between progress lines")
    checkpoint_steps: int = _hp(
        0, _integer(0), "also checkpoint every N optimizer steps; 0 = only by time and at each epoch end"
    )
    checkpoint_minutes: float = _hp(
        10.0, _number(0.0), "also checkpoint when this many minutes passed since the last one; 0 = off"
    )
    keep_checkpoints: int = _hp(
        2, _integer(0, 100), "checkpoints kept in /opt/ml/checkpoints; 0 turns checkpointing (and resuming) off"
    )
    processes_per_host: int = _hp(
        0, _integer(0, 64), "training processes per instance (data parallel); 0 = one per GPU, or one on CPU"
    )
    mixed_precision: str = _hp(
        "auto",
        _choice("auto", "no", "fp16", "bf16"),
        "auto = bf16 (or fp16) on a GPU, bf16 on CPUs with native bf16 (AVX512-BF16, AMX), else none",
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), as written to the model's sagebert.json."""
        values = asdict(self)
        values["label_names"] = list(self.label_names)
        return values

    def to_sagemaker(self) -> dict[str, str]:
        """The HyperParameters map for CreateTrainingJob: every value a string."""
        out = {}
        for name, value in self.to_dict().items():
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, list):
                # Comma-separated reads best; a JSON list keeps names that contain commas intact.
                out[name] = json.dumps(value) if any("," in v for v in value) else ",".join(value)
            else:
                out[name] = str(value)
        return out


HYPERPARAMETER_NAMES = tuple(f.name for f in fields(Hyperparameters))


def describe() -> list[tuple[str, str, str]]:
    """(name, default, help) for every hyperparameter, for help texts and the README."""
    rows = []
    for f in fields(Hyperparameters):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if isinstance(default, tuple):
            default = ",".join(default)
        if isinstance(default, bool):
            default = str(default).lower()
        rows.append((f.name, str(default), f.metadata["help"]))
    return rows


def from_mapping(values: Mapping[str, Any]) -> Hyperparameters:
    """Build Hyperparameters from name → value (strings or already-typed values).

    Raises HyperparameterError naming every unknown or invalid hyperparameter.
    """
    known = {f.name: f for f in fields(Hyperparameters)}
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith(_RESERVED_PREFIXES):
            continue
        key = name.replace("-", "_")
        spec = known.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown hyperparameter '{name}'{hint}")
            continue
        try:
            parsed[key] = spec.metadata["parse"](value)
        except _Invalid as exc:
            problems.append(f"hyperparameter '{name}' is {value!r}; allowed: {exc}")
    if problems:
        fix = "Correct the training job's HyperParameters (the README lists each one)."
        if any(p.startswith("unknown") for p in problems):
            fix += " Known names: " + ", ".join(HYPERPARAMETER_NAMES) + "."
        raise HyperparameterError("Invalid hyperparameters: " + "; ".join(problems) + ".", fix)
    return Hyperparameters(**parsed)


def load(file_values: Mapping[str, Any]) -> Hyperparameters:
    """The job's Hyperparameters from the values of hyperparameters.json (the one parse of them)."""
    return from_mapping(file_values)
