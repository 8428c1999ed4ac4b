"""Request decoding and response encoding for /invocations: content types, Accept negotiation,
custom attributes. Pure functions over bytes and strings (no torch), so both server paths and the
tests share them. It sits at the package root, not in serving/, because aws/capture.py reads
captured requests and answers with it, and the CLI side must not import the serving package.

A request body holds N records; the answer holds exactly N predictions, in input order. What a
record is depends on the Content-Type:

  application/json       one or more JSON documents, each "a text", ["text", ...] or
                         {"inputs": "a text" | ["text", ...]}; every text is a record (batch
                         transform's Line splitting sends several documents, one per line)
  application/jsonlines  each line (ended by a line feed) is a record: a JSON string, or an object
                         with an "inputs" or "text" string
  text/csv               each CSV record (RFC 4180: a quoted field may hold commas, quotes and
                         line breaks) is a record; its fields joined by commas are the text. The
                         first record is a header only when the type says so
                         (``text/csv; header=present``); then the column named ``text`` is used
  text/plain             the whole body is one text; in batch transform (SAGEMAKER_BATCH=true)
                         each line is a record, as SageMaker's Line splitting makes them

A text body is UTF-8 unless its Content-Type names another charset of CHARSETS (UTF-16/32,
ISO-8859-1, US-ASCII); any other is a 415. Records are counted as they are read and JSON documents
sized before they are parsed, so no body costs more than a small multiple of its size.

A record that holds no text cannot be scored and is never skipped: the request fails with a 400
that names the record (its number and line) and the fix, so no prediction can shift onto another
record. A blank record of CSV or text lines IS a text (the empty or blank text) and is scored.

Responses (Accept):
  application/json       {"predictions": [{"label", "label_id", "probabilities", "truncated"}, ...]}
  application/jsonlines  one such object per line, in input order
  text/csv               label,label_id,<probability of each label in id order>,truncated per line
The "logits" format answers the reference handler's way (a JSON list of logit lists) for clients
that take argmax over it; pick it per request with the custom attribute ``output=logits`` or per
endpoint with SAGEBERT_OUTPUT_FORMAT=logits.
"""

from __future__ import annotations

import contextlib
import csv
import encodings
import io
import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from encodings.aliases import aliases as encoding_aliases
from json.decoder import scanstring

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

# The content types and the header this module reads and writes (re-exported for the servers).
from .contract import CSV, JSON, JSONLINES, REQUEST_TYPES, RESPONSE_TYPES
from .contract import CUSTOM_ATTRIBUTES as CUSTOM_ATTRIBUTES
from .contract import JSONLINES_ALIASES as _JSONLINES_ALIASES
from .contract import TEXT as TEXT
from .errors import RequestError
from .jsonlines import numbered_lines

OUTPUT_FORMATS = ("predictions", "logits")
_SHOWN_CHARS = 80  # how much of a client's own value an error message quotes back


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one text."""

    label: str
    label_id: int
    probabilities: tuple[float, ...]
    logits: tuple[float, ...]
    truncated: bool


@dataclass(frozen=True)
class Predictions:
    """The answers for one request, and the label names their probabilities refer to."""

    items: tuple[Prediction, ...]
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.items)


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``"Text/CSV; Header=present"`` → ``("text/csv", {"header": "present"})`` (werkzeug's parser)."""
    kind, params = parse_options_header(header or "")
    return kind.lower(), {key.lower(): value for key, value in params.items()}


def canonical_request_type(content_type: str | None) -> str:
    """The request type we decode, or a 415 naming the supported ones."""
    kind, _ = media_type(content_type)
    if kind in _JSONLINES_ALIASES:
        return JSONLINES
    if kind in REQUEST_TYPES:
        return kind
    shown = kind[:_SHOWN_CHARS] or "none"
    raise RequestError(
        f"Unsupported Content-Type '{shown}'.", f"Send one of: {', '.join(REQUEST_TYPES)}.", http_status=415
    )


def negotiate_accept(accept: str | None, default: str = JSON) -> str:
    """The response type for an Accept header (q-values and wildcards by werkzeug); 406 if none fits.

    ``*/*`` (or no Accept) gives ``default``; the JSON Lines aliases answer as application/jsonlines.
    """
    if not accept or not accept.strip():
        return default
    offered = [default, *(kind for kind in RESPONSE_TYPES if kind != default), *_JSONLINES_ALIASES[1:]]
    best = parse_accept_header(accept, MIMEAccept).best_match(offered)
    if best is None:
        raise RequestError(
            f"Cannot answer in any type the Accept header asks for ('{accept[:_SHOWN_CHARS]}').",
            f"Accept one of: {', '.join(RESPONSE_TYPES)}.",
            http_status=406,
        )
    return JSONLINES if best in _JSONLINES_ALIASES else best


def parse_custom_attributes(header: str | None) -> dict[str, str]:
    """X-Amzn-SageMaker-Custom-Attributes as ``key=value`` pairs separated by ``;`` or ``,``."""
    attributes = {}
    for part in (header or "").replace(",", ";").split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            attributes[key.strip().lower()] = value.strip()
    return attributes


def output_format(custom_attributes: str | None, default: str = "predictions") -> str:
    """``predictions`` or ``logits``: the request's ``output=`` attribute, else the endpoint default."""
    requested = parse_custom_attributes(custom_attributes).get("output", default).lower()
    if requested not in OUTPUT_FORMATS:
        raise RequestError(
            f"Custom attribute output={requested[:_SHOWN_CHARS]!r} is not supported.",
            f"Use output={' or output='.join(OUTPUT_FORMATS)}.",
        )
    return requested


# ---- decoding -------------------------------------------------------------------------------------

_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_PLAIN_RUN = re.compile(r'[^"\[\]{}]*+')  # JSON text up to the next string or bracket
_LINE = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)?")
_SURROGATE = re.compile("[\ud800-\udfff]")
_csv_limit_lock = threading.Lock()
JSON_FIX = 'Send "a text", ["text", ...] or {"inputs": ["text", ...]}.'
JSONLINES_FIX = 'Send one JSON string or {"inputs": "text"} per line, each line ended by a line feed.'
CSV_FIX = (
    'Quote a text that holds commas, quotes or line breaks ("like ""this"", with a comma"), '
    "or send application/jsonlines."
)
SPLIT_FIX = "Split the texts over several requests (batch transform does this for you)."
# The charsets a text body may declare, keyed by Python's codec name (aliases fold onto it through
# the encodings package's own table, without codecs.lookup, whose cache keeps every unknown name a
# client sends), with the name an error shows. Python's other codecs are refused: some cost time
# quadratic in the body (punycode), some fail with errors that are not decoding errors (idna), some
# are not text encodings at all (rot13, uu, zlib).
CHARSETS = {
    "utf_8": "utf-8",
    "utf_8_sig": "utf-8",
    "utf_16": "utf-16",
    "utf_16_le": "utf-16le",
    "utf_16_be": "utf-16be",
    "utf_32": "utf-32",
    "utf_32_le": "utf-32le",
    "utf_32_be": "utf-32be",
    "latin_1": "iso-8859-1",
    "ascii": "us-ascii",
}
_CHARSET_NAME_CHARS = 40  # longer than any alias of the accepted charsets
# Values (strings, brackets, commas) a JSON document may hold beyond two per text (a text and its
# comma): room for keys such as "parameters" that are read but not used. Counted before parsing,
# so that what json builds (up to 20 times the body for "[[],[],...]") stays bounded.
JSON_EXTRA_VALUES = 10_000
JSON_MAX_DEPTH = 64  # texts sit at depth 3 at most ({"inputs": [...]})
# Commas in a CSV body: the csv module builds all of a record's fields at once, 8 bytes a field, so
# this caps that list at 8 MB whatever the body holds. 10,000 texts with commas hold far fewer.
CSV_MAX_COMMAS = 1_000_000


def _charset(content_type: str | None) -> str:
    """The Python codec of the body's declared charset (UTF-8 if none); a 415 for any other."""
    declared = media_type(content_type)[1].get("charset", "utf-8")
    key = encodings.normalize_encoding(declared.lower()) if len(declared) <= _CHARSET_NAME_CHARS else ""
    name = encoding_aliases.get(key, key)
    if name not in CHARSETS:
        raise RequestError(
            f"Unsupported charset '{declared[:_SHOWN_CHARS]}' in the Content-Type.",
            f"Send the body in one of: {', '.join(dict.fromkeys(CHARSETS.values()))} (UTF-8 when no charset is given).",
            http_status=415,
        )
    return name


def _text_body(body: bytes | str, content_type: str | None) -> str:
    if isinstance(body, str):
        return body
    charset = _charset(content_type)
    try:
        # A UTF-8 byte order mark is not text: json and csv would read it as part of the first record.
        return body.decode("utf_8_sig" if charset == "utf_8" else charset)
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"The body is not valid {CHARSETS[charset]} (byte {exc.start}).", "Encode the texts as UTF-8."
        ) from None


class _Texts(list):
    """The texts read so far; a 413 as soon as one more than the cap is added, so that reading a body
    stops there, however many records it holds."""

    def __init__(self, cap: int | None) -> None:
        super().__init__()
        self.cap = cap

    def add(self, texts: list[str]) -> None:
        if self.cap and len(self) + len(texts) > self.cap:
            raise RequestError(
                f"The request holds more than {self.cap} texts; this endpoint takes at most {self.cap} per request.",
                SPLIT_FIX,
                http_status=413,
            )
        self.extend(texts)

    def json_budget(self) -> int | None:
        """How many JSON values the next document may hold (None: no cap)."""
        return 2 * (self.cap - len(self)) + JSON_EXTRA_VALUES if self.cap else None


def _as_texts(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise RequestError(
                    f"{where}[{index}] is {type(item).__name__}, not a string.",
                    'Send texts as JSON strings, e.g. {"inputs": ["first text", "second text"]}.',
                )
        return list(value)
    raise RequestError(f"{where} is {type(value).__name__}; expected a string or a list of strings.", JSON_FIX)


def _check_json_size(text: str, position: int, where: str, budget: int) -> None:
    """Refuse the JSON array or object at ``position`` before it is parsed if it holds more than
    ``budget`` values or is nested deeper than JSON_MAX_DEPTH. Strings are skipped by json's own
    (C) scanner and the text between them counted by str.count, so this costs little next to parsing;
    a syntax error is left for the parser to report."""
    depth = values = 0
    while position < len(text):
        char = text[position]
        if char == '"':
            try:
                position = scanstring(text, position + 1)[1]
            except ValueError:
                return
        else:
            depth += 1 if char in "[{" else -1
            position += 1
            if depth == 0:
                return
            if depth > JSON_MAX_DEPTH:
                raise RequestError(f"{where} is nested too deeply to read.", "Send texts as flat JSON strings.")
        run_end = _JSON_PLAIN_RUN.match(text, position).end()
        values += 1 + text.count(",", position, run_end)
        position = run_end
        if values > budget:
            raise RequestError(
                f"{where} holds more than {budget} JSON values: more than this endpoint takes in one request.",
                SPLIT_FIX,
                http_status=413,
            )


def _json_value(text: str, where: str, start: int = 0, budget: int | None = None) -> tuple[object, int]:
    """One JSON value of ``text`` from ``start``, and where it ends; a 400 naming ``where`` if invalid,
    a 413 if it holds more than ``budget`` values."""
    if budget is not None and text[start : start + 1] in ("[", "{"):
        _check_json_size(text, start, where, budget)
    try:
        return json.JSONDecoder().raw_decode(text, start)
    except RecursionError:
        raise RequestError(f"{where} is nested too deeply to read.", "Send texts as flat JSON strings.") from None
    except ValueError as exc:
        raise RequestError(f"{where} is not valid JSON ({exc}).", JSON_FIX) from None


def _decode_json(text: str, texts: _Texts) -> None:
    position, number = _JSON_SPACE.match(text).end(), 0
    while position < len(text):
        number += 1
        where = "The body" if number == 1 else f"JSON document {number} of the body"
        document, position = _json_value(text, where, position, texts.json_budget())
        if isinstance(document, dict):
            if "inputs" not in document:
                keys = ", ".join(list(document)[:8]) or "none"
                raise RequestError(
                    f"{where} is a JSON object without an 'inputs' key (keys: {keys[:_SHOWN_CHARS]}).",
                    'Send {"inputs": ["text", ...]}.',
                )
            texts.add(_as_texts(document["inputs"], "inputs" if number == 1 else f"{where}: inputs"))
        else:
            texts.add(_as_texts(document, where))
        del document
        position = _JSON_SPACE.match(text, position).end()


def _decode_jsonlines(text: str, texts: _Texts) -> None:
    for number, line in numbered_lines(text):
        where = f"Record {number} (line {number})"
        if not line.strip(" \t\r"):
            raise RequestError(f"{where} is blank: it holds no text.", JSONLINES_FIX)
        record, end = _json_value(line, where, budget=JSON_EXTRA_VALUES)
        if line[end:].strip(" \t\r"):
            raise RequestError(f"{where} holds more than one JSON value.", JSONLINES_FIX)
        if isinstance(record, dict):
            key = "inputs" if "inputs" in record else "text" if "text" in record else None
            if key is None:
                raise RequestError(f"{where} has neither an 'inputs' nor a 'text' key.", JSONLINES_FIX)
            record = record[key]
        if not isinstance(record, str):
            raise RequestError(f"{where} holds {type(record).__name__}, not a text.", JSONLINES_FIX)
        texts.add([record])


@contextlib.contextmanager
def _csv_fields_up_to(size: int) -> Iterator[None]:
    """Let the csv module read fields of up to ``size`` characters, for this parse only.

    Its limit (131,072 by default) is process-wide, and other readers (training data) keep theirs;
    a text may be as long as the body, which the payload limit already bounds.
    """
    if size <= csv.field_size_limit():
        yield
        return
    with _csv_limit_lock:
        previous = csv.field_size_limit(size)
        try:
            yield
        finally:
            csv.field_size_limit(previous)


def _lines_with_ends(text: str) -> Iterator[str]:
    """The lines of ``text`` with their ends, as io.StringIO(text, newline="") gives them, one at a
    time: a StringIO holds a copy of the text at 4 bytes a character."""
    for match in _LINE.finditer(text):
        if match.end() == match.start():
            return
        yield match.group()


def _csv_records(text: str) -> Iterator[tuple[int, list[str], int]]:
    """Each record's number, fields and the line it starts on, read one at a time; a 400 naming the
    first broken record."""
    commas = text.count(",")
    if commas > CSV_MAX_COMMAS:
        raise RequestError(
            f"The CSV body holds {commas} commas (fields); this endpoint reads at most {CSV_MAX_COMMAS}.",
            SPLIT_FIX,
            http_status=413,
        )
    reader = csv.reader(_lines_with_ends(text), strict=True)
    number, line = 0, 1
    try:
        with _csv_fields_up_to(len(text) + 1):
            for row in reader:
                number += 1
                yield number, row, line
                line = reader.line_num + 1
    except csv.Error as exc:
        raise RequestError(f"Record {number + 1} (from line {line}) is not valid CSV ({exc}).", CSV_FIX) from None


def _decode_csv(text: str, header: bool, texts: _Texts) -> None:
    records = _csv_records(text)
    if not header:
        for _, row, _ in records:
            texts.add([",".join(row)])
        return
    first = next(records, None)
    if first is None:
        raise RequestError("The CSV body declares a header (header=present) but is empty.", "Send the header row.")
    names = first[1]
    columns = [name.strip().lower() for name in names]
    if "text" in columns:
        column = columns.index("text")
    elif len(columns) == 1:
        column = 0
    else:
        raise RequestError(
            f"The CSV header has no 'text' column (columns: {', '.join(names)[:_SHOWN_CHARS]}).",
            "Name the column that holds the texts 'text', or send one column only.",
        )
    for number, row, line in records:
        if column >= len(row):
            raise RequestError(
                f"Record {number - 1} (line {line}) has no value in the '{names[column][:_SHOWN_CHARS]}' column.",
                "Give every record a value for each header column.",
            )
        texts.add([row[column]])


def _decode_plain(text: str, lines: bool, texts: _Texts) -> None:
    if lines:
        for _, line in numbered_lines(text):
            texts.add([line])
        return
    texts.add([text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text])


def _check_texts(texts: list[str]) -> None:
    for number, text in enumerate(texts, start=1):
        if _SURROGATE.search(text):
            raise RequestError(
                f"Record {number} holds a lone UTF-16 surrogate (such as \\ud800), which is not a character.",
                "Send valid Unicode: encode each emoji or other character as a whole (UTF-8, or a JSON "
                "\\ud83d\\ude00 pair), never half of a pair.",
            )


def decode(
    body: bytes | str, content_type: str | None, max_texts: int | None = None, *, plain_text_lines: bool = False
) -> list[str]:
    """The texts of a request, one per record, in order; RequestError (400/413/415) for anything else.

    ``plain_text_lines``: text/plain bodies hold one text per line (batch transform) instead of one.
    Reading stops at the first record past ``max_texts`` (413), and JSON documents are sized before
    they are parsed, so what a body costs in memory is bounded by a small multiple of its size
    whatever it holds (tests/unit/test_codecs.py measures it).
    """
    kind = canonical_request_type(content_type)
    text = _text_body(body, content_type)
    if not text:
        raise RequestError("The request body is empty.", "Send at least one text.")
    texts = _Texts(max_texts)
    if kind == JSON:
        _decode_json(text, texts)
    elif kind == JSONLINES:
        _decode_jsonlines(text, texts)
    elif kind == CSV:
        _decode_csv(text, media_type(content_type)[1].get("header", "absent").lower() == "present", texts)
    else:
        _decode_plain(text, plain_text_lines, texts)
    if not texts:
        raise RequestError("The request holds no texts.", "Send at least one text.")
    _check_texts(texts)
    return list(texts)


# ---- encoding -------------------------------------------------------------------------------------


def _record(prediction: Prediction, label_names: Sequence[str]) -> dict:
    return {
        "label": prediction.label,
        "label_id": prediction.label_id,
        "probabilities": {name: round(p, 6) for name, p in zip(label_names, prediction.probabilities, strict=True)},
        "truncated": prediction.truncated,
    }


def encode(predictions: Predictions, accept: str, fmt: str = "predictions") -> tuple[bytes, str]:
    """The response body and its content type."""
    label_names = predictions.label_names
    if fmt == "logits":
        rows = [[round(x, 6) for x in p.logits] for p in predictions.items]
        if accept == JSON:
            return json.dumps(rows).encode(), JSON
        if accept == JSONLINES:
            return "".join(json.dumps(r) + "\n" for r in rows).encode(), JSONLINES
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode(), CSV
    if accept == JSON:
        return json.dumps({"predictions": [_record(p, label_names) for p in predictions.items]}).encode(), JSON
    if accept == JSONLINES:
        return "".join(json.dumps(_record(p, label_names)) + "\n" for p in predictions.items).encode(), JSONLINES
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for p in predictions.items:
        writer.writerow([p.label, p.label_id, *(round(x, 6) for x in p.probabilities), str(p.truncated).lower()])
    return out.getvalue().encode(), CSV
