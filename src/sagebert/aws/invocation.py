"""What ``sagebert invoke`` sends to an endpoint and how it reads the answer.

Request bodies: ``application/json`` → ``{"inputs": ["text", ...]}``; ``text/csv`` → one text
per line (a CSV record of one field, quoted only where a comma or quote needs it). The sagebert
server answers ``application/json``:
``{"predictions": [{"label": ..., "label_id": ..., "probabilities": {label: p}, "truncated": bool}]}``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..contract import CSV, JSON, JSONLINES, TEXT
from ..errors import SagebertError

CONTENT_TYPES = {"json": JSON, "jsonlines": JSONLINES, "csv": CSV, "text": TEXT}
MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit, both ways (serverless endpoints: 4 MB)
# What an async input object's name says it holds.
_SUFFIX_TYPES = {".jsonl": JSONLINES, ".jsonlines": JSONLINES, ".ndjson": JSONLINES, ".json": JSON, ".csv": CSV}


class InvocationError(SagebertError):
    """The texts cannot be sent, or the endpoint's answer cannot be read as predictions."""


@dataclass(frozen=True)
class Prediction:
    """One text's predicted label, its probability (None if the server sent none) and truncation."""

    label: str
    probability: float | None = None
    truncated: bool = False


def invocation_body(texts: Sequence[str], content_type: str) -> bytes:
    """The request body for ``texts`` in ``content_type`` (JSON or CSV)."""
    if not texts:
        raise InvocationError("No text to classify.", "Pass texts as arguments, or --file FILE (one text per line).")
    if content_type == JSON:
        body = json.dumps({"inputs": list(texts)}, ensure_ascii=False).encode("utf-8")
    elif content_type == CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for text in texts:
            writer.writerow([" ".join(text.splitlines())])  # a line is a record: no line breaks inside
        body = out.getvalue().encode("utf-8")
    else:
        raise InvocationError(
            f"Texts are sent as JSON or CSV, not {content_type!r}.", "Use --content-type json or csv (or --async)."
        )
    if len(body) > MAX_BODY_BYTES:
        raise InvocationError(
            f"The request is {len(body)} bytes; InvokeEndpoint accepts at most {MAX_BODY_BYTES}.",
            "Send the texts in smaller batches.",
        )
    return body


def _prediction(item: object) -> Prediction:
    if not isinstance(item, dict) or "label" not in item:
        raise ValueError(f"a prediction without a label: {item!r}")
    label = str(item["label"])
    probabilities = item.get("probabilities")
    probability = probabilities.get(label) if isinstance(probabilities, dict) else item.get("score")
    return Prediction(label, float(probability) if probability is not None else None, bool(item.get("truncated")))


def parse_predictions(body: bytes, count: int) -> list[Prediction]:
    """The ``count`` predictions in a sagebert JSON answer; InvocationError if it is not one."""
    try:
        predictions = [_prediction(item) for item in json.loads(body)["predictions"]]
    except (ValueError, KeyError, TypeError) as exc:
        shown = body[:200].decode("utf-8", "replace")
        raise InvocationError(
            f"The endpoint's answer is not sagebert predictions ({exc}): {shown!r}",
            "Check that the endpoint runs the sagebert image (sagebert status --endpoint NAME), "
            "or print the raw answer with --raw.",
        ) from None
    if len(predictions) != count:
        raise InvocationError(
            f"Sent {count} texts but the endpoint answered {len(predictions)} predictions.",
            "Print the raw answer with --raw and check the endpoint's logs.",
        )
    return predictions


def async_content_type(key: str) -> str:
    """The Content-Type of an async input object, from its name (``.jsonl`` → JSON Lines, ...)."""
    lowered = key.lower()
    for suffix, content_type in _SUFFIX_TYPES.items():
        if lowered.endswith(suffix):
            return content_type
    return TEXT
