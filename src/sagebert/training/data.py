"""Reading a channel's labelled texts: CSV (the bundled ``label,sentence`` split, the raw Kaggle
file in any column order) and JSON Lines, with errors that say which file, which line, and how
to fix it. No torch here; the training loop turns these into tensors.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import contract, files
from ..errors import DataError
from ..jsonlines import numbered_lines
from .cleaning import clean_text

log = logging.getLogger(__name__)

TEXT_COLUMN_CANDIDATES = ("text", "sentence", "tweet", "content")
LABEL_COLUMN_CANDIDATES = ("label", "target", "labels", "class")
CSV_SUFFIXES = {".csv"}
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
# A channel's ContentType: CSV, or JSON Lines by any of its names (application/json too: a file of
# JSON objects, one per line, is what most tools mean by it for a channel).
_CONTENT_TYPE_FORMAT = {
    contract.CSV: "csv",
    contract.JSON: "jsonl",
    **dict.fromkeys(contract.JSONLINES_ALIASES, "jsonl"),
}
_MAX_LISTED = 5  # bad rows quoted in one message


@dataclass
class LabelledTexts:
    """Texts with label ids (indexes into the label names), and where they came from."""

    texts: list[str]
    labels: list[int]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int], source: str | None = None) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices], source or self.source)

    def class_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(self.labels).items()))


@dataclass(frozen=True)
class ColumnChoice:
    """Which fields hold the text and the label (configured, or found among the candidates)."""

    text_column: str = ""
    label_column: str = ""


def _file_format(path: Path, content_type: str | None) -> str | None:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if content_type:
        return _CONTENT_TYPE_FORMAT.get(content_type.split(";")[0].strip().lower())
    return None


def channel_files(directory: Path, channel: str, content_type: str | None = None) -> list[tuple[Path, str]]:
    """Every data file of a channel (recursively, sorted) with its format; hidden files skipped.

    Links out of the channel and special files fail (``files.regular_files``): nothing outside the
    channel is read, nor quoted in an error.
    """
    found, skipped = [], []
    for path in files.regular_files(directory, f"channel '{channel}'"):
        if any(part.startswith((".", "_")) for part in path.relative_to(directory).parts):
            continue
        fmt = _file_format(path, content_type)
        (found if fmt else skipped).append((path, fmt))
    if skipped:
        log.warning(
            "channel %s: ignoring %d file(s) that are neither CSV nor JSON Lines: %s",
            channel,
            len(skipped),
            ", ".join(str(p.relative_to(directory)) for p, _ in skipped[:_MAX_LISTED]),
        )
    if not found:
        seen = ", ".join(p.name for p, _ in skipped[:_MAX_LISTED]) or "no files at all"
        raise DataError(
            f"Channel '{channel}' ({directory}) has no .csv or .jsonl file ({seen}).",
            "Upload the data as CSV with a header row (e.g. label,sentence) or as JSON Lines "
            '({"text": ..., "label": ...} per line), or set the channel ContentType to text/csv '
            "or application/jsonlines for files without a suffix.",
        )
    return found  # type: ignore[return-value]


def _decode(raw: bytes, path: Path) -> str:
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{path.name}: line {line} holds a NUL byte (byte offset {nul}): this is not a text file, "
            "or it is saved as UTF-16.",
            f"Save {path.name} as UTF-8 text (a NUL never appears in UTF-8 text), or remove it from the channel.",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path.name}: the bytes at line {line} (byte offset {exc.start}: {raw[exc.start : exc.start + 4]!r}) are not valid UTF-8.",
            f"Save the file as UTF-8 (for example: iconv -f WINDOWS-1252 -t UTF-8 {path.name} > fixed.csv).",
        ) from None


def _pick_column(
    available: Sequence[str], configured: str, candidates: Sequence[str], what: str, hyperparameter: str, path: Path
) -> str:
    by_lower = {name.strip().lower(): name for name in available}
    if configured:
        if configured in available:
            return configured
        if configured.lower() in by_lower:
            return by_lower[configured.lower()]
        raise DataError(
            f"{path.name}: there is no {what} column '{configured}' (columns: {', '.join(available) or 'none'}).",
            f"Set the {hyperparameter} hyperparameter to one of those columns.",
        )
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    raise DataError(
        f"{path.name}: no {what} column found (looked for {', '.join(candidates)}; columns: {', '.join(available) or 'none'}).",
        f"Set the {hyperparameter} hyperparameter to the column that holds the {what}.",
    )


_LABEL_ID = re.compile(r"0|[1-9][0-9]{0,8}")  # ASCII only: re's [0-9], unlike str.isdigit


class _LabelReader:
    """Turns label cells into ids, collecting the bad ones for one message.

    A label is spelled as its id (ASCII digits, no sign, decimal point or exponent; a JSON integer)
    or as its name (any case, spaces around it ignored). Nothing else is read as a number: float()
    took "1e0", "１" (fullwidth) and "-0" for 1, 1 and 0, so a column of something else could train.
    """

    def __init__(self, label_names: Sequence[str]):
        self.label_names = list(label_names)
        self._by_name = {name.lower(): i for i, name in enumerate(label_names)}
        self.bad: list[tuple[str, int]] = []

    def __call__(self, value: object, line: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            text = json.dumps(value) if not isinstance(value, str) else value
        else:
            text = str(value).strip()
            if _LABEL_ID.fullmatch(text) and int(text) < len(self.label_names):
                return int(text)
        if text.lower() in self._by_name:
            return self._by_name[text.lower()]
        self.bad.append((text, line))
        return -1

    def raise_if_bad(self, path: Path) -> None:
        if not self.bad:
            return
        listed = ", ".join(f"{value!r} (line {line})" for value, line in self.bad[:_MAX_LISTED])
        more = f" and {len(self.bad) - _MAX_LISTED} more" if len(self.bad) > _MAX_LISTED else ""
        allowed = ", ".join(f"{i} or '{name}'" for i, name in enumerate(self.label_names))
        raise DataError(
            f"{path.name}: {len(self.bad)} row(s) have a label outside the label set: {listed}{more}. Allowed: {allowed}.",
            "Correct or drop those rows, or set label_names to list every class in label-id order.",
        )


def _csv_error(path: Path, line: int, exc: csv.Error) -> DataError:
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return DataError(
            f"{path.name}, line {line}: a field is longer than {limit:,} characters, the limit of Python's csv "
            "module (csv.field_size_limit). Most often a quote that opens a field is never closed, so the rest "
            "of the file reads as one field.",
            'Close that quote, or write a quote inside a field as two (""); a text really that long must be '
            "shortened (training reads only its first max_length tokens anyway).",
        )
    return DataError(
        f"{path.name}, line {line}: not readable as CSV ({exc}).",
        "Quote fields that contain commas, quotes or newlines.",
    )


def _read_csv(path: Path, text: str, columns: ColumnChoice, labels: _LabelReader) -> tuple[list[str], list[int]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise _csv_error(path, reader.line_num, exc) from None
    header = [h.strip() for h in header]
    if not any(header):
        raise DataError(f"{path.name} is empty.", "Upload a CSV file with a header row and at least one labelled row.")
    text_column = _pick_column(header, columns.text_column, TEXT_COLUMN_CANDIDATES, "text", "text_column", path)
    label_column = _pick_column(header, columns.label_column, LABEL_COLUMN_CANDIDATES, "label", "label_column", path)
    t_index, l_index = header.index(text_column), header.index(label_column)
    texts, ids, short_rows = [], [], []
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) <= max(t_index, l_index):
                short_rows.append(line)
                continue
            texts.append(row[t_index])
            ids.append(labels(row[l_index], line))
    except csv.Error as exc:
        raise _csv_error(path, reader.line_num, exc) from None
    if short_rows:
        raise DataError(
            f"{path.name}: {len(short_rows)} row(s) have fewer columns than the header (lines {', '.join(map(str, short_rows[:_MAX_LISTED]))}).",
            "Quote fields that contain commas, and give every row a value for each column.",
        )
    return texts, ids


def _read_jsonl(path: Path, text: str, columns: ColumnChoice, labels: _LabelReader) -> tuple[list[str], list[int]]:
    texts, ids = [], []
    text_key = label_key = ""
    for line_number, line in numbered_lines(text):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(
                f"{path.name}, line {line_number}: not valid JSON ({exc.args[0]}).",
                'Write one JSON object per line, e.g. {"text": "...", "label": 1}.',
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path.name}, line {line_number}: expected a JSON object, found {type(record).__name__}.",
                'Write one JSON object per line, e.g. {"text": "...", "label": 1}.',
            )
        if not text_key:
            keys = list(record)
            text_key = _pick_column(keys, columns.text_column, TEXT_COLUMN_CANDIDATES, "text", "text_column", path)
            label_key = _pick_column(keys, columns.label_column, LABEL_COLUMN_CANDIDATES, "label", "label_column", path)
        if text_key not in record or label_key not in record:
            missing = text_key if text_key not in record else label_key
            raise DataError(
                f"{path.name}, line {line_number}: the record has no '{missing}' key.",
                "Give every record the same text and label keys.",
            )
        value = record[text_key]
        if not isinstance(value, str):
            raise DataError(
                f"{path.name}, line {line_number}: '{text_key}' must be a string, found {type(value).__name__}.",
                "Store each text as a JSON string.",
            )
        texts.append(value)
        ids.append(labels(record[label_key], line_number))
    if not texts:
        raise DataError(f"{path.name} is empty.", "Upload a JSON Lines file with at least one labelled record.")
    return texts, ids


def read_channel(
    directory: Path,
    *,
    channel: str,
    label_names: Sequence[str],
    columns: ColumnChoice = ColumnChoice(),
    content_type: str | None = None,
    clean: bool = False,
) -> LabelledTexts:
    """Every labelled text of a channel directory, in file order."""
    all_texts: list[str] = []
    all_labels: list[int] = []
    for path, fmt in channel_files(directory, channel, content_type):
        raw = path.read_bytes()
        if not raw.strip():
            raise DataError(
                f"{path.name} in channel '{channel}' is empty (0 rows).",
                "Upload the file with its rows, or remove it from the channel's S3 prefix.",
            )
        text = _decode(raw, path)
        labels = _LabelReader(label_names)
        texts, ids = (_read_csv if fmt == "csv" else _read_jsonl)(path, text, columns, labels)
        labels.raise_if_bad(path)
        if not texts:
            raise DataError(
                f"{path.name} in channel '{channel}' has a header but no rows.",
                "Upload the file with its labelled rows.",
            )
        all_texts.extend(texts)
        all_labels.extend(ids)
    if clean:
        all_texts = [clean_text(t) for t in all_texts]
    return LabelledTexts(all_texts, all_labels, f"channel '{channel}'")


def require_classes(data: LabelledTexts, label_names: Sequence[str]) -> None:
    """Training needs at least two classes present."""
    present = data.class_counts()
    if len(present) < 2:
        only = label_names[next(iter(present))] if present else "none"
        raise DataError(
            f"The training data of {data.source} has a single class ('{only}', {len(data)} rows): a classifier needs at least two.",
            "Include examples of every class in label_names in the training channel.",
        )


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices, holding out ``fraction`` of each class (at least one where a class has two)."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    train, held_out = [], []
    for label in sorted(by_class):
        indices = by_class[label]
        rng.shuffle(indices)
        n_out = round(len(indices) * fraction)
        if len(indices) >= 2:
            n_out = min(max(n_out, 1), len(indices) - 1)
        held_out.extend(indices[:n_out])
        train.extend(indices[n_out:])
    return sorted(train), sorted(held_out)


def shuffled_head(data: LabelledTexts, limit: int, seed: int) -> LabelledTexts:
    """The first ``limit`` examples after a seeded shuffle (``max_train_samples``); all when 0."""
    if not limit or limit >= len(data):
        return data
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    return data.subset(sorted(order[:limit]))


def report_conflicts(data: LabelledTexts, label_names: Sequence[str]) -> None:
    """Log identical texts that carry different labels (the raw Kaggle file has some)."""
    seen: dict[str, set[int]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        seen.setdefault(text, set()).add(label)
    conflicts = [t for t, labels in seen.items() if len(labels) > 1]
    if conflicts:
        log.warning(
            "%s: %d distinct texts appear with conflicting labels (e.g. %r)",
            data.source,
            len(conflicts),
            conflicts[0][:80],
        )


def overlap(a: Iterable[str], b: Iterable[str]) -> int:
    """How many distinct texts two sets share (a leak between training and test data)."""
    return len(set(a) & set(b))
