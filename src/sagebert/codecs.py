"""Request decoding and response encoding for /invocations: content types, Accept negotiation,
custom attributes. Pure functions over bytes and strings (no torch), so both server paths and the
tests share them.

Requests (Content-Type):
  application/json       "a text" | ["text", ...] | {"inputs": "a text" | ["text", ...]}
  application/jsonlines  one record per line: a JSON string, or an object with "inputs" or "text"
  text/csv               one text per line, or a header row with a `text` column
  text/plain             the whole body is one text
Responses (Accept):
  application/json       {"predictions": [{"label", "label_id", "probabilities", "truncated"}, ...]}
  application/jsonlines  one such object per line, in input order
  text/csv               label,label_id,<probability of each label in id order>,truncated per line
The "logits" format answers the reference handler's way (a JSON list of logit lists) for clients
that take argmax over it; pick it per request with the custom attribute ``output=logits`` or per
endpoint with SAGEBERT_OUTPUT_FORMAT=logits.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import RequestError

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
TEXT = "text/plain"
_JSONLINES_ALIASES = {
    JSONLINES,
    "application/x-jsonlines",
    "application/jsonl",
    "application/json-lines",
    "application/x-ndjson",
}
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
REQUEST_TYPES = (JSON, JSONLINES, CSV, TEXT)
RESPONSE_TYPES = (JSON, JSONLINES, CSV)
OUTPUT_FORMATS = ("predictions", "logits")


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
    """``"Text/CSV; charset=utf-8"`` → ``("text/csv", {"charset": "utf-8"})``."""
    if not header:
        return "", {}
    main, *params = header.split(";")
    parsed = {}
    for param in params:
        if "=" in param:
            key, value = param.split("=", 1)
            parsed[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), parsed


def canonical_request_type(content_type: str | None) -> str:
    """The request type we decode, or a 415 naming the supported ones."""
    kind, _ = media_type(content_type)
    if kind in _JSONLINES_ALIASES:
        return JSONLINES
    if kind in REQUEST_TYPES:
        return kind
    shown = kind or "none"
    raise RequestError(
        f"Unsupported Content-Type '{shown}'.", f"Send one of: {', '.join(REQUEST_TYPES)}.", http_status=415
    )


def negotiate_accept(accept: str | None, default: str = JSON) -> str:
    """The response type for an Accept header (q-values honoured); a 406 if none is supported."""
    if not accept or not accept.strip():
        return default
    candidates = []
    for position, part in enumerate(accept.split(",")):
        kind, params = media_type(part)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality > 0:
            candidates.append((-quality, position, kind))
    for _, _, kind in sorted(candidates):
        if kind in ("*/*", ""):
            return default
        if kind == "application/*":
            return default if default.startswith("application/") else JSON
        if kind == "text/*":
            return CSV
        if kind in _JSONLINES_ALIASES:
            return JSONLINES
        if kind in RESPONSE_TYPES:
            return kind
    raise RequestError(
        f"Cannot answer in any type the Accept header asks for ('{accept}').",
        f"Accept one of: {', '.join(RESPONSE_TYPES)}.",
        http_status=406,
    )


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
            f"Custom attribute output={requested!r} is not supported.",
            f"Use output={' or output='.join(OUTPUT_FORMATS)}.",
        )
    return requested


# ---- decoding -------------------------------------------------------------------------------------


def _text_body(body: bytes | str, content_type: str | None) -> str:
    if isinstance(body, str):
        return body
    charset = media_type(content_type)[1].get("charset", "utf-8")
    try:
        return body.decode(charset)
    except LookupError:
        raise RequestError(f"Unknown charset '{charset}' in the Content-Type.", "Send UTF-8 (charset=utf-8).") from None
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"The body is not valid {charset} (byte {exc.start}).", "Encode the texts as UTF-8."
        ) from None


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
    raise RequestError(
        f"{where} is {type(value).__name__}; expected a string or a list of strings.",
        'Send "a text", ["text", ...] or {"inputs": ["text", ...]}.',
    )


def _decode_json(text: str) -> list[str]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RequestError(
            f"The body is not valid JSON ({exc}).", 'Send "a text", ["text", ...] or {"inputs": ["text", ...]}.'
        ) from None
    if isinstance(document, dict):
        if "inputs" not in document:
            raise RequestError(
                f"The JSON object has no 'inputs' key (keys: {', '.join(document) or 'none'}).",
                'Send {"inputs": ["text", ...]}.',
            )
        return _as_texts(document["inputs"], "inputs")
    return _as_texts(document, "the body")


def _decode_jsonlines(text: str) -> list[str]:
    texts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise RequestError(
                f"Line {number} is not valid JSON ({exc}).", 'Send one JSON string or {"inputs": "text"} per line.'
            ) from None
        if isinstance(record, dict):
            key = "inputs" if "inputs" in record else "text" if "text" in record else None
            if key is None:
                raise RequestError(
                    f"Line {number} has neither an 'inputs' nor a 'text' key.",
                    'Send one JSON string or {"inputs": "text"} per line.',
                )
            record = record[key]
        if not isinstance(record, str):
            raise RequestError(
                f"Line {number} holds {type(record).__name__}, not a text.",
                'Send one JSON string or {"inputs": "text"} per line.',
            )
        texts.append(record)
    return texts


def _decode_csv(text: str) -> list[str]:
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row and any(field.strip() for field in row)]
    if not rows:
        return []
    header = [field.strip().lower() for field in rows[0]]
    if "text" in header:
        column = header.index("text")
        texts = []
        for number, row in enumerate(rows[1:], start=2):
            if column >= len(row):
                raise RequestError(
                    f"CSV row {number} has no value in the 'text' column.",
                    "Give every row a value for each header column.",
                )
            texts.append(row[column])
        return texts
    # No header: each line is one text; unquoted commas are part of it.
    return [",".join(row) for row in rows]


_DECODERS = {
    JSON: _decode_json,
    JSONLINES: _decode_jsonlines,
    CSV: _decode_csv,
    TEXT: lambda text: [text.strip("\r\n")],
}


def decode(body: bytes | str, content_type: str | None, max_texts: int | None = None) -> list[str]:
    """The texts of a request, in order; RequestError (400/413/415) for anything else."""
    kind = canonical_request_type(content_type)
    text = _text_body(body, content_type)
    if not text.strip():
        raise RequestError("The request body is empty.", "Send at least one text.")
    texts = _DECODERS[kind](text)
    if not texts:
        raise RequestError("The request holds no texts.", "Send at least one text.")
    if max_texts and len(texts) > max_texts:
        raise RequestError(
            f"The request holds {len(texts)} texts; this endpoint takes at most {max_texts} per request.",
            "Split the texts over several requests (batch transform does this for you).",
            http_status=413,
        )
    return texts


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
