"""Data-capture files made by hand in the shape SageMaker writes them (the AWS developer guide,
"Capture data"): one JSON object per line, per request and variant, with endpointInput and
endpointOutput (observedContentType, mode, data, encoding JSON/CSV/BASE64), eventMetadata
(eventId, inferenceId when the caller sent one, inferenceTime) and eventVersion "0", in files under
``{endpoint}/{variant}/yyyy/mm/dd/hh/``.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import tarfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

LABELS = ("Not a disaster", "Real disaster")


def answer(labels: Sequence[str], confidence: float = 0.9) -> dict:
    """The sagebert server's JSON answer for these labels."""
    predictions = []
    for label in labels:
        other = [name for name in LABELS if name != label][0] if label in LABELS else "other"
        predictions.append(
            {
                "label": label,
                "label_id": LABELS.index(label) if label in LABELS else 0,
                "probabilities": {label: confidence, other: round(1 - confidence, 6)},
                "truncated": False,
            }
        )
    return {"predictions": predictions}


def _part(content_type: str, body: str, mode: str, encoding: str) -> dict:
    data = base64.b64encode(body.encode("utf-8")).decode("ascii") if encoding == "BASE64" else body
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def record(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    request_type: str = "application/json",
    encoding: str = "JSON",
    inference_id: str | None = None,
    confidence: float = 0.9,
    when: datetime | None = None,
) -> str:
    """One capture line: ``texts`` sent as JSON, JSON Lines or CSV, answered with ``labels`` (JSON)."""
    if request_type == "application/json":
        request = json.dumps({"inputs": list(texts)}, ensure_ascii=False)
    elif request_type == "application/jsonlines":
        request = "".join(json.dumps({"inputs": t}, ensure_ascii=False) + "\n" for t in texts)
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for text in texts:
            writer.writerow([text])
        request = out.getvalue()
    output_encoding = "BASE64" if encoding == "BASE64" else "JSON"
    metadata = {
        "eventId": str(uuid.uuid4()),
        "inferenceTime": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if inference_id:
        metadata["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": _part(request_type, request, "INPUT", encoding),
                "endpointOutput": _part(
                    "application/json", json.dumps(answer(labels, confidence)), "OUTPUT", output_encoding
                ),
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        },
        ensure_ascii=False,
    )


def hour_key(endpoint: str, variant: str, when: datetime | None = None, name: str = "capture") -> str:
    """``{endpoint}/{variant}/yyyy/mm/dd/hh/<name>.jsonl`` for the hour of ``when`` (now, UTC)."""
    return f"{endpoint}/{variant}/{(when or datetime.now(UTC)).strftime('%Y/%m/%d/%H')}/{name}.jsonl"


def write(folder: Path, key: str, lines: Sequence[str]) -> Path:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_split(path: Path) -> tuple[list[str], list[str]]:
    """(sentences, label names) of a bundled split file (label 0/1, sentence)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["sentence"] for row in rows], [LABELS[int(row["label"])] for row in rows]


REPO = Path(__file__).resolve().parents[1]


@functools.cache
def training_baseline() -> dict:
    """The baseline.json training writes for the bundled training split."""
    from sagebert.report import compute_baseline

    texts, labels = read_split(REPO / "local_test/data/training/train.csv")
    return compute_baseline(texts, [LABELS.index(label) for label in labels], LABELS)


@functools.cache
def held_out_split() -> tuple[list[str], list[str]]:
    """(texts, label names) of the bundled test split: live traffic that has not drifted."""
    return read_split(REPO / "local_test/data/testing/test.csv")


def model_archive_with_baseline(baseline: dict) -> bytes:
    """A model.tar.gz holding weights and the baseline.json training wrote."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("model.safetensors", b"\0" * 1024), ("baseline.json", json.dumps(baseline).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
