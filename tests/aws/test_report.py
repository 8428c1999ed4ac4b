"""`sagebert report`: offline on a folder of capture files, and from an endpoint's capture in S3
(moto) with its CloudWatch metrics and the baseline.json inside the production model's archive."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY, Stubber
from capture_files import (
    LABELS,
    held_out_split,
    hour_key,
    model_archive_with_baseline,
    record,
    training_baseline,
    write,
)

from sagebert.aws.traffic import variant_metrics

pytestmark = pytest.mark.aws

NO, YES = LABELS
ENDPOINT = "disaster-tweets"


@pytest.fixture(scope="module")
def baseline() -> dict:
    return training_baseline()


@pytest.fixture(scope="module", name="test_split")
def split() -> tuple[list[str], list[str]]:
    return held_out_split()


def traffic_lines(texts, labels, batch: int = 8, **kwargs) -> list[str]:
    """Requests of ``batch`` texts each, alternating JSON, CSV and base64 JSON Lines bodies."""
    formats = [("application/json", "JSON"), ("text/csv", "CSV"), ("application/jsonlines", "BASE64")]
    lines = []
    for i, start in enumerate(range(0, len(texts), batch)):
        request_type, encoding = formats[i % len(formats)]
        lines.append(
            record(
                texts[start : start + batch],
                labels[start : start + batch],
                request_type=request_type,
                encoding=encoding,
                **kwargs,
            )
        )
    return lines


def last_json(result) -> dict:
    return json.loads(result.lines[-1])


def test_offline_report_on_the_test_split_does_not_drift_and_sends_nothing(
    cli, offline, tmp_path, baseline, test_split
):
    texts, labels = test_split
    write(tmp_path / "capture", hour_key(ENDPOINT, "AllTraffic"), traffic_lines(texts, labels) + ["{broken"])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "baseline.json").write_text(json.dumps(baseline))

    result = cli(
        "report",
        "--capture",
        str(tmp_path / "capture"),
        "--baseline",
        str(tmp_path / "model"),
        "--json",
        "--fail-on-drift",
        clients=offline,
    )

    assert result.code == 0, result.err
    assert offline.attempts == []
    body = last_json(result)
    assert body["drifted"] is False and body["agreement"] is None
    assert body["variants"]["AllTraffic"]["texts"] == len(texts)
    assert body["variants"]["AllTraffic"]["labels"] == {NO: labels.count(NO), YES: labels.count(YES)}
    assert set(body["drift"]) == {"text_length", "vocabulary_coverage", "label_mix"}
    assert all(m["statistic"] < m["threshold"] for m in body["drift"].values())
    assert body["malformed"]["lines"] == 1 and body["malformed"]["examples"][0].endswith(
        ":239: not JSON (Expecting property name enclosed in double quotes)"
    )


@pytest.mark.parametrize(
    ("change", "measure"),
    [
        (lambda texts, labels: ([" ".join([t] * 10) for t in texts], labels), "text_length"),
        (lambda texts, labels: (texts, [YES] * len(texts)), "label_mix"),
    ],
    ids=["ten-times-longer", "one-label-only"],
)
def test_a_drifted_capture_fails_the_report_with_fail_on_drift(
    cli, offline, tmp_path, baseline, test_split, change, measure
):
    texts, labels = change(*test_split)
    write(tmp_path / "capture", hour_key(ENDPOINT, "AllTraffic"), traffic_lines(texts, labels))
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))

    result = cli(
        "report",
        "--capture",
        str(tmp_path / "capture"),
        "--baseline",
        str(tmp_path / "baseline.json"),
        "--fail-on-drift",
        clients=offline,
    )

    assert result.code == 5
    assert f"error: drift beyond the thresholds: {measure}." in result.err
    row = next(line for line in result.lines if line.strip().startswith(measure))
    assert "DRIFTED" in row
    assert "Drifted: yes" in result.lines


def test_the_table_lists_agreement_and_the_disagreeing_texts_and_plot_writes_a_png(
    cli, offline, tmp_path, baseline, test_split
):
    texts, labels = test_split
    texts, labels = texts[:40], labels[:40]
    flipped = list(labels)
    flipped[3] = NO if labels[3] == YES else YES
    folder = tmp_path / "capture"
    write(folder, hour_key(ENDPOINT, "AllTraffic"), traffic_lines(texts, labels, batch=4))
    write(folder, hour_key(ENDPOINT, "Shadow"), traffic_lines(texts[:20], flipped[:20], batch=4))
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))

    result = cli(
        "report",
        "--capture",
        str(folder),
        "--baseline",
        str(tmp_path / "baseline.json"),
        "--plot",
        str(tmp_path / "report.png"),
        clients=offline,
    )

    assert result.code == 0, result.err
    assert "Agreement: production and shadow gave the same label to 19 of 20 texts (95.0%)." in result.lines
    assert f"  production={labels[3]} shadow={flipped[3]}: {texts[3][:100]}" in result.lines
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_capture_files_is_one_line_with_the_fix(cli, offline, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("report", "--capture", str(tmp_path / "empty"), clients=offline)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.startswith(f"error: No captured requests under {tmp_path / 'empty'}")
    assert "Fix: Send traffic" in result.err


def test_a_bad_since_is_a_usage_error(cli, offline):
    result = cli("report", "--capture", "x", "--since", "yesterday", clients=offline)
    assert result.code == 2 and "--since: 'yesterday' is not a duration" in result.err


# ---- from an endpoint: capture in S3, CloudWatch, the production model's archive ----------------------
def test_report_on_an_endpoint_reads_its_capture_cloudwatch_and_the_models_baseline(
    cli, clients, fake, bucket, baseline, test_split, sent
):
    model_key = "sagebert/output/job-1/output/model.tar.gz"
    clients.s3.put_object(Bucket=bucket, Key=model_key, Body=model_archive_with_baseline(baseline))
    clients.sagemaker.create_model(
        ModelName="m-1",
        ExecutionRoleArn=fake.role_arn,
        PrimaryContainer={"Image": fake.image, "ModelDataUrl": f"s3://{bucket}/{model_key}"},
    )
    clients.sagemaker.create_endpoint_config(
        EndpointConfigName="c-1",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m-1", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    clients.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c-1")
    texts, labels = test_split
    now = datetime.now(UTC)
    lines = traffic_lines(texts[:100], labels[:100])
    clients.s3.put_object(
        Bucket=bucket, Key="capture/" + hour_key(ENDPOINT, "AllTraffic", now), Body="\n".join(lines).encode()
    )
    old = now - timedelta(days=3)
    clients.s3.put_object(
        Bucket=bucket, Key="capture/" + hour_key(ENDPOINT, "AllTraffic", old), Body=record(["old"], [NO]).encode()
    )
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    clients.cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Value": len(lines), "Timestamp": now},
            {"MetricName": "Invocation4XXErrors", "Dimensions": dimensions, "Value": 2, "Timestamp": now},
        ],
    )

    result = cli("report", "--endpoint", ENDPOINT, "--since", "24h", "--json", clients=clients)

    assert result.code == 0, result.err
    body = last_json(result)
    assert body["source"] == f"s3://{bucket}/capture/{ENDPOINT}/"
    assert body["baseline"] == f"s3://{bucket}/{model_key}"
    variant = body["variants"]["AllTraffic"]
    assert variant["requests"] == len(lines) and variant["texts"] == 100  # the 3-day-old file is outside --since
    assert variant["cloudwatch"]["Invocations"] == len(lines) and variant["cloudwatch"]["Invocation4XXErrors"] == 2
    assert body["drifted"] is False and set(body["drift"]) == {"text_length", "vocabulary_coverage", "label_mix"}
    statistics = sent("GetMetricStatistics")
    assert {s["MetricName"] for s in statistics} == {
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
    }
    assert next(s for s in statistics if s["MetricName"] == "ModelLatency")["ExtendedStatistics"] == ["p50", "p99"]


def test_report_on_an_endpoint_without_data_capture_says_how_to_turn_it_on(cli, clients, fake):
    clients.sagemaker.create_model(
        ModelName="m-1",
        ExecutionRoleArn=fake.role_arn,
        PrimaryContainer={"Image": fake.image, "ModelDataUrl": "s3://b/m.tar.gz"},
    )
    clients.sagemaker.create_endpoint_config(
        EndpointConfigName="c-1",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m-1", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
        ],
    )
    clients.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c-1")

    result = cli("report", "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 1
    assert f"error: Endpoint {ENDPOINT} does not capture data" in result.err
    assert f"sagebert update --endpoint {ENDPOINT} --data-capture" in result.err


def test_latency_percentiles_come_from_extended_statistics_in_milliseconds(clients):
    now = datetime(2026, 12, 7, 19, 30, 20, tzinfo=UTC)
    with Stubber(clients.cloudwatch) as stub:
        for metric, points in (
            ("Invocations", [{"Sum": 40.0}, {"Sum": 2.0}]),
            ("Invocation4XXErrors", []),
            ("Invocation5XXErrors", [{"Sum": 1.0}]),
            ("ModelLatency", [{"ExtendedStatistics": {"p50": 12500.0, "p99": 81000.0}}]),
        ):
            expected = {
                "Namespace": "AWS/SageMaker",
                "MetricName": metric,
                "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "Shadow"}],
                "StartTime": now - timedelta(hours=24),
                "EndTime": datetime(2026, 12, 7, 19, 31, tzinfo=UTC),  # the current minute included
                "Period": 86400,
                ("ExtendedStatistics" if metric == "ModelLatency" else "Statistics"): ANY,
            }
            stub.add_response("get_metric_statistics", {"Datapoints": points}, expected)
        found = variant_metrics(clients, ENDPOINT, "Shadow", now - timedelta(hours=24), now)
        stub.assert_no_pending_responses()

    assert found == {
        "Invocations": 42.0,
        "Invocation4XXErrors": None,
        "Invocation5XXErrors": 1.0,
        "latency_p50_ms": 12.5,
        "latency_p99_ms": 81.0,
    }


def test_plot_without_matplotlib_is_one_line_saying_how_to_get_it(cli, offline, tmp_path, monkeypatch):
    write(tmp_path, hour_key(ENDPOINT, "AllTraffic"), [record(["fire"], [YES])])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed

    result = cli("report", "--capture", str(tmp_path), "--plot", str(tmp_path / "p.png"), clients=offline)

    assert result.code == 1 and "Traceback" not in result.err
    assert "error: --plot needs matplotlib, which is not installed here. Fix: pip install matplotlib" in result.err
    assert not (tmp_path / "p.png").exists()


def test_a_production_variant_with_no_capture_names_the_variants_there(cli, offline, tmp_path):
    write(tmp_path, hour_key(ENDPOINT, "AllTraffic"), [record(["fire"], [YES])])

    result = cli("report", "--capture", str(tmp_path), "--production-variant", "Blue", clients=offline)

    assert result.code == 1
    assert "error: No requests of production variant Blue were captured" in result.err
    assert "(the capture has: AllTraffic)" in result.err
