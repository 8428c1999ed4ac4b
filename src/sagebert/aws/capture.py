"""Data-capture files as SageMaker writes them, read back into texts and predictions.

With DataCaptureConfig on, SageMaker writes JSON Lines objects under
``{DestinationS3Uri}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``, one file per variant and
hour (a shadow variant under its own name). Each line is one request and its answer::

    {"captureData": {"endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                                        "data": "...", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "BASE64"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-12-07T10:00:00Z"},
     "eventVersion": "0"}

``encoding`` is ``JSON`` or ``CSV`` for the content types the config names as text
(CaptureContentTypeHeader) and ``BASE64`` for everything else; ``inferenceId`` is there only when
the caller sent one (InvokeEndpoint's InferenceId). The bodies are sagebert's own request and
answer formats (see ``codecs``); they are decoded here with the standard library only, since the
CLI never imports the serving stack. A line that cannot be read is counted with its reason, never
fatal. Pure functions: text in, records out.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .. import codecs, contract
from ..errors import SagebertError

ENCODINGS = ("JSON", "CSV", "BASE64")
# {variant}/yyyy/mm/dd/hh/file.jsonl at the end of a capture file's path.
_HOURLY_PATH = re.compile(r"(?:^|/)(?P<variant>[^/]+)/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/[^/]+\.jsonl$")
MALFORMED_EXAMPLES = 5  # reasons quoted in a report; the rest are only counted


@dataclass(frozen=True)
class Prediction:
    """One text's answer: the label and the probability given to it (None when the answer has none)."""

    label: str
    confidence: float | None = None


@dataclass(frozen=True)
class CapturedRequest:
    """One captured request of one variant: its texts, the answer for each, and its ids."""

    variant: str
    texts: tuple[str, ...]
    predictions: tuple[Prediction, ...]
    event_id: str | None = None
    inference_id: str | None = None
    inference_time: str | None = None
    body: str = ""  # the request as sent: what matches a production request with its shadow copy


@dataclass
class CaptureSet:
    """Everything read from some capture files: the requests, and the lines that could not be read."""

    requests: list[CapturedRequest] = field(default_factory=list)
    malformed: int = 0
    examples: list[str] = field(default_factory=list)
    files: int = 0

    def reject(self, where: str, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < MALFORMED_EXAMPLES:
            self.examples.append(f"{where}: {reason}")


class CaptureLineError(ValueError):
    """One capture line that is not a readable request and answer (the message says why)."""


def variant_and_hour(path: str) -> tuple[str, str] | None:
    """(variant, ``yyyy/mm/dd/hh``) of a capture file's path, or None when the path is not one."""
    match = _HOURLY_PATH.search(path.replace("\\", "/"))
    return (match["variant"], match["hour"]) if match else None


def _payload(capture: dict, key: str) -> tuple[str, str]:
    """(content type, body text) of endpointInput or endpointOutput."""
    part = capture.get(key)
    if not isinstance(part, dict):
        raise CaptureLineError(f"no captureData.{key}")
    data, encoding = part.get("data"), part.get("encoding")
    if not isinstance(data, str):
        raise CaptureLineError(f"captureData.{key}.data is not a string")
    if encoding not in ENCODINGS:
        raise CaptureLineError(f"captureData.{key}.encoding is {encoding!r}, not one of {', '.join(ENCODINGS)}")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise CaptureLineError(f"captureData.{key}.data is not base64 of UTF-8 text ({exc})") from None
    content_type = str(part.get("observedContentType") or "").split(";")[0].strip().lower()
    return content_type, data


def _csv_rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row]


def decode_texts(content_type: str, body: str) -> list[str]:
    """The texts of a sagebert request body, read exactly as the server read them (sagebert.codecs:
    the same content types, record splitting and limits), so a captured request yields the texts
    its answer holds one prediction for each."""
    try:
        values = codecs.decode(body, content_type)
    except SagebertError as exc:
        raise CaptureLineError(f"the request is not one sagebert reads: {exc.message}") from None
    if not values:
        raise CaptureLineError("the request holds no texts")
    return values


def _prediction(item: object) -> Prediction:
    if not isinstance(item, dict) or "label" not in item:
        raise CaptureLineError(f"an answer without a label: {str(item)[:60]!r}")
    label = str(item["label"])
    probabilities = item.get("probabilities")
    value = probabilities.get(label) if isinstance(probabilities, dict) else item.get("score")
    return Prediction(label, float(value) if isinstance(value, (int, float)) else None)


def decode_predictions(content_type: str, body: str) -> list[Prediction]:
    """The predictions of a sagebert answer: JSON, JSON Lines, or CSV (label,label_id,probabilities...,truncated)."""
    if content_type == contract.JSON:
        value = json.loads(body)
        if not isinstance(value, dict) or not isinstance(value.get("predictions"), list):
            raise CaptureLineError("the answer has no 'predictions' list")
        return [_prediction(item) for item in value["predictions"]]
    if content_type in contract.JSONLINES_ALIASES:
        return [_prediction(json.loads(line)) for line in body.split("\n") if line.strip()]
    if content_type == contract.CSV:
        predictions = []
        for row in _csv_rows(body):
            try:
                probabilities = [float(v) for v in row[2:-1]]
            except ValueError:
                raise CaptureLineError(f"a CSV answer row that is not label,label_id,p...,truncated: {row}") from None
            predictions.append(Prediction(row[0], max(probabilities) if probabilities else None))
        return predictions
    raise CaptureLineError(f"answer content type {content_type or '(none)'!r} is not one sagebert writes")


def parse_line(line: str, variant: str) -> CapturedRequest:
    """One capture line → CapturedRequest; CaptureLineError says why a line is not one."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise CaptureLineError(f"not JSON ({exc.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
        raise CaptureLineError("no captureData object")
    capture = record["captureData"]
    input_type, request = _payload(capture, "endpointInput")
    output_type, answer = _payload(capture, "endpointOutput")
    try:
        texts = decode_texts(input_type, request)
        predictions = decode_predictions(output_type, answer)
    except (ValueError, TypeError, AttributeError) as exc:
        if isinstance(exc, CaptureLineError):
            raise
        raise CaptureLineError(f"a body that is not sagebert's format ({exc})") from None
    if len(texts) != len(predictions):
        raise CaptureLineError(f"{len(texts)} texts but {len(predictions)} predictions")
    metadata = record.get("eventMetadata") if isinstance(record.get("eventMetadata"), dict) else {}
    return CapturedRequest(
        variant=variant,
        texts=tuple(texts),
        predictions=tuple(predictions),
        event_id=metadata.get("eventId"),
        inference_id=metadata.get("inferenceId"),
        inference_time=metadata.get("inferenceTime"),
        body=request,
    )


def read_lines(captures: CaptureSet, name: str, variant: str, lines: Iterable[str]) -> None:
    """Add the requests of one capture file's lines to ``captures``; bad lines are counted."""
    captures.files += 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            captures.requests.append(parse_line(line, variant))
        except CaptureLineError as exc:
            captures.reject(f"{name}:{number}", str(exc))


def hours_since(paths: Iterable[str], earliest: str | None) -> Iterator[tuple[str, str]]:
    """(path, variant) of the capture files among ``paths`` whose hour is ``earliest`` (yyyy/mm/dd/hh) or later."""
    for path in sorted(paths):
        found = variant_and_hour(path)
        if found and (earliest is None or found[1] >= earliest):
            yield path, found[0]
