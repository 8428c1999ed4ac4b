"""Reading data-capture files: the shapes SageMaker writes (JSON, CSV and base64 bodies), the
variant and hour from the path, and malformed lines counted, never fatal."""

from __future__ import annotations

import json

import pytest
from capture_files import LABELS, hour_key, record, write

from sagebert.aws.capture import CaptureSet, parse_line, read_lines, variant_and_hour
from sagebert.aws.traffic import read_local

NO, YES = LABELS


@pytest.mark.parametrize(
    ("request_type", "encoding"),
    [
        ("application/json", "JSON"),
        ("application/jsonlines", "JSON"),
        ("text/csv", "CSV"),
        ("application/json", "BASE64"),
        ("text/csv", "BASE64"),
    ],
)
def test_each_request_format_and_encoding_gives_the_texts_and_their_answers(request_type, encoding):
    texts = ["Forest fire near La Ronge", 'He said "run", then left', "ça brûle à Montréal"]
    line = record(texts, [YES, NO, YES], request_type=request_type, encoding=encoding, inference_id="req-7")

    captured = parse_line(line, "AllTraffic")

    assert captured.texts == tuple(texts)
    assert [p.label for p in captured.predictions] == [YES, NO, YES]
    assert [p.confidence for p in captured.predictions] == [0.9, 0.9, 0.9]
    assert captured.inference_id == "req-7" and captured.event_id and captured.inference_time


def test_the_inference_id_is_absent_when_the_caller_sent_none():
    assert parse_line(record(["a text"], [NO]), "AllTraffic").inference_id is None


def test_a_csv_answer_gives_the_label_and_its_probability():
    line = json.loads(record(["x", "y"], [NO, YES]))
    line["captureData"]["endpointOutput"] = {
        "observedContentType": "text/csv; charset=utf-8",
        "mode": "OUTPUT",
        "data": f"{NO},0,0.8,0.2,false\n{YES},1,0.3,0.7,false\n",
        "encoding": "CSV",
    }
    captured = parse_line(json.dumps(line), "AllTraffic")
    assert [(p.label, p.confidence) for p in captured.predictions] == [(NO, 0.8), (YES, 0.7)]


def test_the_variant_and_hour_come_from_the_path_sagemaker_writes():
    assert variant_and_hour("capture/ep/Shadow/2026/12/07/19/12-34-567-uuid.jsonl") == ("Shadow", "2026/12/07/19")
    assert variant_and_hour("capture/ep/Shadow/2026/12/07/notes.jsonl") is None
    assert variant_and_hour("capture/ep/Shadow/2026/12/07/19/file.json") is None


def test_malformed_lines_are_counted_with_their_reason_and_the_rest_is_read():
    good = record(["Forest fire"], [YES])
    wrong_count = json.loads(record(["one", "two"], [YES, NO]))
    wrong_count["captureData"]["endpointOutput"]["data"] = json.dumps({"predictions": []})
    bad_base64 = json.loads(record(["x"], [NO], encoding="BASE64"))
    bad_base64["captureData"]["endpointInput"]["data"] = "%%% not base64 %%%"
    lines = [
        good,
        "{not json",
        json.dumps({"eventVersion": "0"}),
        json.dumps(wrong_count),
        json.dumps(bad_base64),
        "",
        good,
    ]
    captures = CaptureSet()

    read_lines(captures, "f.jsonl", "AllTraffic", lines)

    assert len(captures.requests) == 2 and captures.malformed == 4
    assert captures.examples[0].startswith("f.jsonl:2: not JSON")
    assert captures.examples[1] == "f.jsonl:3: no captureData object"
    assert captures.examples[2] == "f.jsonl:4: 2 texts but 0 predictions"
    assert captures.examples[3].startswith("f.jsonl:5: captureData.endpointInput.data is not base64")


def test_a_local_folder_is_read_per_variant_and_files_outside_the_hour_layout_are_ignored(tmp_path):
    write(tmp_path, hour_key("ep", "AllTraffic"), [record(["a"], [NO]), record(["b"], [YES])])
    write(tmp_path, hour_key("ep", "Shadow"), [record(["a"], [YES])])
    write(tmp_path, "ep/README.jsonl", [record(["ignored"], [NO])])

    captures = read_local(tmp_path, None)

    assert captures.files == 2 and captures.malformed == 0
    assert sorted(r.variant for r in captures.requests) == ["AllTraffic", "AllTraffic", "Shadow"]


def test_hours_before_since_are_skipped(tmp_path):
    write(tmp_path, "ep/AllTraffic/2020/01/01/00/old.jsonl", [record(["old"], [NO])])
    write(tmp_path, hour_key("ep", "AllTraffic"), [record(["new"], [NO])])

    captures = read_local(tmp_path, "2026/01/01/00")

    assert [r.texts for r in captures.requests] == [("new",)]
