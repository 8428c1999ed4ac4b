"""What an operator reads: the EMF metric lines (checked against the embedded metric format
specification's shape, with an injected clock), the rate-limited 503 warnings, the JSON log
format, and the log settings."""

import json
import logging
import math
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from serving_fakes import EchoModel

from sagebert import logs
from sagebert.errors import SagebertError
from sagebert.serving.app import ModelHolder, create_app
from sagebert.serving.batching import MicroBatcher
from sagebert.serving.emf import ServingMetrics
from sagebert.serving.settings import ServingSettings

SETTINGS = ServingSettings(model_dir=Path("/unused"))
# CloudWatch's units (MetricDatum.Unit), the only values an EMF MetricDefinition's Unit may take.
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def assert_emf(line: str) -> dict:
    """``line`` is one embedded-metric-format document (the specification's structure: a root
    object whose _aws member holds Timestamp and CloudWatchMetrics; each MetricDirective holds
    Namespace, Dimensions and Metrics and nothing else; every referenced dimension and metric is
    a member of the root, dimensions as strings, metrics as numbers)."""
    assert "\n" not in line
    document = json.loads(line)
    aws = document["_aws"]
    assert set(aws) == {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_500_000_000_000  # epoch milliseconds
    assert isinstance(aws["CloudWatchMetrics"], list) and aws["CloudWatchMetrics"]
    for directive in aws["CloudWatchMetrics"]:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(document[key], str) and 1 <= len(document[key]) <= 1024
        assert 1 <= len(directive["Metrics"]) <= 100
        names = [metric["Name"] for metric in directive["Metrics"]]
        assert len(names) == len(set(names))
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert 1 <= len(metric["Name"]) <= 255 and metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return document


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def metrics_with(clock, lines, **kwargs):
    return ServingMetrics("bert-e3", write=lines.append, clock=clock, **kwargs)


# ---- the EMF line -----------------------------------------------------------------------------------


def test_the_line_has_the_emf_shape_and_the_interval_s_figures():
    clock, lines = Clock(), []
    metrics = metrics_with(clock, lines, queue_waits=lambda: (4, 0.2, 0.11))
    metrics.record_predictions(3, 1, {"Real disaster": 2, "Not a disaster": 1})
    metrics.record_predictions(1, 0, {"Real disaster": 0, "Not a disaster": 1})
    for status in (200, 200, 400, 413, 503, 503):
        metrics.record_status(status)
    clock.now += 60
    document = assert_emf(metrics.maybe_flush())
    assert lines == [json.dumps(document)]
    assert document["_aws"]["Timestamp"] == int(clock.now * 1000)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sagebert"
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Model"]] and document["Model"] == "bert-e3"
    expected = {
        "Requests": 6, "Texts": 4, "TextsPerRequest": 2.0, "TruncatedShare": 25.0,
        "QueueWaitMean": 50.0, "QueueWaitMax": 110.0,
        "Http400": 1, "Http406": 0, "Http408": 0, "Http413": 1, "Http415": 0, "Http500": 0, "Http503": 2,
        "Label:Not a disaster": 2, "Label:Real disaster": 2,
    }  # fmt: skip
    assert {name: document[name] for name in expected} == expected


def test_at_most_one_line_per_minute_however_many_requests():
    clock, lines = Clock(), []
    start = clock.now
    metrics = metrics_with(clock, lines)
    for tick in range(1, 300):  # 80 requests a second for 75 s, each flushing if it may
        clock.now = start + tick * 0.25
        for _ in range(20):
            metrics.record_status(200)
            metrics.maybe_flush()
    assert len(lines) == 1  # written by the first request at 60 s, with what had been counted
    assert assert_emf(lines[0])["Requests"] == 239 * 20 + 1
    assert json.loads(lines[0])["_aws"]["Timestamp"] == int((start + 60) * 1000)
    clock.now = start + 119.9
    metrics.record_status(503)
    assert metrics.maybe_flush() is None and len(lines) == 1
    clock.now = start + 120
    assert metrics.maybe_flush() is not None and len(lines) == 2
    assert assert_emf(lines[1])["Requests"] == 19 + 59 * 20 + 1  # counts start again after each line


def test_a_quiet_worker_writes_nothing():
    clock, lines = Clock(), []
    metrics = metrics_with(clock, lines)
    clock.now += 30
    assert metrics.maybe_flush() is None and lines == []


def test_label_names_become_printable_metric_names_and_their_number_is_bounded():
    clock, lines = Clock(), []
    metrics = metrics_with(clock, lines)
    metrics.record_predictions(80, 0, {f"class {i} é": 1 for i in range(80)})
    clock.now += 60
    document = assert_emf(metrics.maybe_flush())
    labels = [name for name in document if name.startswith("Label:")]
    assert len(labels) == 50 and "Label:class 0 ?" in labels


def model_holder(settings=SETTINGS):
    holder = ModelHolder(model=EchoModel(), settings=settings)
    assert holder.warm_up()
    return holder


def test_the_app_counts_its_invocations_by_status_texts_and_label():
    clock, lines = Clock(), []
    holder = model_holder()
    client = create_app(holder, SETTINGS, metrics_with(clock, lines)).test_client()
    assert client.post("/invocations", json=["fire", "flood", "calm"]).status_code == 200
    assert client.post("/invocations", data="{", content_type="application/json").status_code == 400
    assert client.post("/invocations", data="x", content_type="image/png").status_code == 415
    assert client.get("/ping").status_code == 200  # not an invocation: not counted
    assert lines == []
    clock.now += 60
    answer = client.post("/invocations", json="one more")
    document = assert_emf(lines[0])
    labels = [p["label"] for p in answer.json["predictions"]]
    assert (document["Requests"], document["Texts"], document["Http400"], document["Http415"]) == (4, 4, 1, 1)
    assert document["TextsPerRequest"] == 2.0 and document["TruncatedShare"] == 0
    assert document["QueueWaitMean"] >= 0 and document["QueueWaitMax"] >= 0
    assert sum(document[f"Label:{name}"] for name in EchoModel.label_names) == 4
    assert document[f"Label:{labels[0]}"] >= 1


def test_metrics_off_writes_no_line(capsys):
    settings = replace(SETTINGS, metrics=False)
    client = create_app(model_holder(settings), settings).test_client()
    assert client.post("/invocations", json="fire").status_code == 200
    assert "_aws" not in capsys.readouterr().out


def test_the_batcher_reports_how_long_requests_waited_for_their_first_forward_pass():
    started, release = threading.Event(), threading.Event()

    def forward(items):
        if "hold" in items:
            started.set()
            release.wait(30)
        return items

    batcher = MicroBatcher(forward)
    first = threading.Thread(target=batcher.submit, args=(["hold"],))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=batcher.submit, args=(["next"],))
    second.start()
    while batcher.pending() < 2:  # the second request is queued behind the held forward pass
        second.join(0.001)
    first.join(0.05)  # the first pass stays held for 50 ms more: the second request waits at least that
    release.set()
    first.join(30)
    second.join(30)
    count, total, longest = batcher.take_queue_waits()
    assert count == 2 and 0.05 <= longest <= total
    assert batcher.take_queue_waits() == (0, 0.0, 0.0)


# ---- rate-limited warnings --------------------------------------------------------------------------


def test_a_repeated_warning_is_logged_once_per_interval_with_the_count_left_out(caplog):
    clock = Clock()
    warning = logs.RateLimitedWarning(logging.getLogger("test.overload"), 60, clock)
    caplog.set_level("WARNING", "test.overload")
    for _ in range(10_000):  # a minute of c32 overload
        clock.now += 0.005
        warning.warn("busy", "worker %s is busy", 7)
    warning.warn("stuck", "a forward pass is stuck")  # another kind is not held back
    clock.now += 60
    warning.warn("busy", "worker %s is busy", 7)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "worker 7 is busy",
        "a forward pass is stuck",
        "worker 7 is busy (and 9999 more like it since the last such line, not logged)",
    ]


def test_the_servers_503s_log_one_warning_not_one_each(caplog):
    holder = ModelHolder(model=EchoModel(), settings=SETTINGS)  # never warmed up: every request is a 503
    client = create_app(holder, SETTINGS).test_client()
    caplog.set_level("WARNING", "sagebert.serving.responses")
    for _ in range(50):
        assert client.post("/invocations", json="fire").status_code == 503
    warnings = [r for r in caplog.records if r.name == "sagebert.serving.responses"]
    assert len(warnings) == 1 and "not ready" in warnings[0].getMessage()


# ---- the log format and level -------------------------------------------------------------------------


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_the_json_log_format_writes_one_json_object_per_record(restore_logging, capsys):
    logs.configure("INFO", "json")
    log = logging.getLogger("sagebert.test")
    log.info("ready in %.1f s", 1.25)
    log.debug("not at INFO")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed")
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("INFO", "sagebert.test", "ready in 1.2 s"),
        ("ERROR", "sagebert.test", "failed"),
    ]
    assert "ValueError: boom" in records[1]["exception"] and records[0]["time"].endswith("+00:00")


def test_log_settings_are_read_and_checked():
    settings = ServingSettings.from_env(
        {"SAGEBERT_LOG_LEVEL": "warning", "SAGEBERT_LOG_FORMAT": "JSON", "SAGEBERT_METRICS": "off"}
    )
    assert (settings.log_level, settings.log_format, settings.metrics) == ("WARNING", "json", False)
    defaults = ServingSettings.from_env({})
    assert (defaults.log_level, defaults.log_format, defaults.metrics, defaults.metrics_model) == (
        "INFO",
        "text",
        True,
        "sagebert",
    )
    with pytest.raises(SagebertError, match="SAGEBERT_LOG_FORMAT is 'yaml'.*Use one of text, json"):
        ServingSettings.from_env({"SAGEBERT_LOG_FORMAT": "yaml"})
    with pytest.raises(SagebertError, match="SAGEBERT_METRICS"):
        ServingSettings.from_env({"SAGEBERT_METRICS": "cloudwatch"})


def test_the_real_server_logs_json_lines_only_and_no_line_per_ping():
    from support import LocalServer

    with LocalServer("echo", {"SAGEBERT_LOG_FORMAT": "json"}) as server:
        server.wait_healthy()
        for _ in range(20):
            assert requests.get(server.url + "/ping", timeout=10).status_code == 200
        assert requests.post(server.url + "/invocations", json="fire", timeout=10).status_code == 200
        before_stop = server.logs()
    records = [json.loads(line) for line in before_stop.splitlines() if line.strip()]
    assert {"sagebert.serve", "gunicorn.error", "sagebert.driver"} <= {r["logger"] for r in records}
    assert any("Booting worker" in r["message"] for r in records)  # gunicorn's own lines, as JSON too
    assert any("torch is a CPU build" in r["message"] for r in records)
    assert not any("/ping" in r["message"] or "/invocations" in r["message"] for r in records)
