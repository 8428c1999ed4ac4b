"""`sagebert shadow` (add, promote, stop) and `report` on the shadow test, end to end.

moto accepts ShadowProductionVariants in CreateEndpointConfig but drops them (DescribeEndpointConfig
and DescribeEndpoint answer without), and has no UpdateEndpoint, so the SageMaker side is
botocore's Stubber with the exact requests expected, each also checked by botocore against the
service model; S3 (the capture files, the model archive) and CloudWatch are moto.
"""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber
from capture_files import LABELS, held_out_split, hour_key, model_archive_with_baseline, record, training_baseline

pytestmark = pytest.mark.aws

NO, YES = LABELS
ENDPOINT = "disaster-tweets"
OLD = "disaster-tweets-old"
SHADOW = "disaster-tweets-20261207-190000-0001"
PROMOTED = "disaster-tweets-20261207-190000-0002"
CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://sagebert-test/capture/",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {
        "JsonContentTypes": ["application/json", "application/jsonlines"],
        "CsvContentTypes": ["text/csv"],
    },
}
ALL_AT_ONCE = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0,
    }
}
OWNED = [{"Key": "sagebert:endpoint", "Value": ENDPOINT}]
OLD_DATA = "s3://sagebert-test/sagebert/output/job-1/output/model.tar.gz"


@pytest.fixture
def names(monkeypatch):
    """The names generated, in order: SHADOW, then PROMOTED (a test that deploys first puts OLD first)."""
    import sagebert.aws.build.hosting as hosting

    queue = [SHADOW, PROMOTED]
    monkeypatch.setattr(hosting, "unique_name", lambda stem, *a, **k: queue.pop(0))
    return queue


def production_variant(model: str = OLD, count: int = 1) -> dict:
    return {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InstanceType": "ml.m5.xlarge",
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1.0,
    }


def shadow_variant(weight: float = 0.5) -> dict:
    return {
        "VariantName": "Shadow",
        "ModelName": SHADOW,
        "InstanceType": "ml.m5.xlarge",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": weight,
    }


def config(described, name: str, production: dict, shadow: dict | None = None) -> dict:
    described_config = {**described.endpoint_config(name, OLD), "ProductionVariants": [production]}
    described_config["DataCaptureConfig"] = {**CAPTURE, "CaptureOptions": CAPTURE["CaptureOptions"]}
    if shadow:
        described_config["ShadowProductionVariants"] = [shadow]
    return described_config


def stub_running(stub, described, config_name: str, described_config: dict) -> None:
    stub.add_response(
        "describe_endpoint",
        described.endpoint(ENDPOINT, "InService", config_name, count=1),
        {"EndpointName": ENDPOINT},
    )
    stub.add_response("describe_endpoint_config", described_config, {"EndpointConfigName": config_name})
    stub.add_response("describe_model", described.model(OLD, OLD_DATA), {"ModelName": OLD})


def stub_update(stub, described, name: str, previous: str | None) -> None:
    arn = described.arn("endpoint", ENDPOINT)
    request = {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": name,
        "DeploymentConfig": ALL_AT_ONCE,
        "RetainAllVariantProperties": True,
    }
    stub.add_response("update_endpoint", {"EndpointArn": arn}, request)
    if previous:
        stub.add_response(
            "add_tags",
            {"Tags": []},
            {"ResourceArn": arn, "Tags": [{"Key": "sagebert:previous-endpoint-config", "Value": previous}]},
        )
    stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "Updating", previous or SHADOW))
    stub.add_response(
        "describe_endpoint", described.endpoint(ENDPOINT, "InService", name, modified="2026-12-07T19:30:00Z")
    )


def shadow_model(described) -> dict:
    return described.model(SHADOW, "s3://sagebert-test/sagebert/output/job-2/output/model.tar.gz")


def capture_lines(texts, labels, ids: str, variant_offset: int = 0) -> list[str]:
    """Requests of 4 texts, sent with inference ids; JSON, CSV and base64 JSON Lines bodies in turn."""
    formats = [("application/json", "JSON"), ("text/csv", "CSV"), ("application/jsonlines", "BASE64")]
    lines = []
    for i, start in enumerate(range(0, len(texts), 4)):
        request_type, encoding = formats[(i + variant_offset) % len(formats)]
        lines.append(
            record(
                texts[start : start + 4],
                labels[start : start + 4],
                request_type=request_type,
                encoding=encoding,
                inference_id=f"{ids}-{i}",
            )
        )
    return lines


def test_deploy_shadow_report_promote_end_to_end(cli, clients, fake, described, names, bucket, sent, trained):
    names.insert(0, OLD)
    production_config = config(described, OLD, production_variant())
    shadow_config = config(described, SHADOW, production_variant(), shadow_variant())
    new_model = {
        "ModelName": SHADOW,
        "ExecutionRoleArn": fake.role_arn,
        "PrimaryContainer": {
            "Image": fake.image,
            "Mode": "SingleModel",
            "ModelDataUrl": "s3://sagebert-test/sagebert/output/job-2/output/model.tar.gz",
        },
        "Tags": [
            *OWNED,
            {"Key": "sagebert:metric:eval:f1", "Value": "0.83"},
            {"Key": "sagebert:training-job", "Value": "job-2"},
        ],
    }
    new_config = {
        "EndpointConfigName": SHADOW,
        "ProductionVariants": [production_variant()],
        "DataCaptureConfig": CAPTURE,
        "Tags": OWNED,
        "ShadowProductionVariants": [shadow_variant()],
    }
    # The production model's archive holds the baseline training wrote; the capture files are the
    # hour's traffic as SageMaker writes it: production answers the test split's labels, the shadow
    # (half the requests copied) disagrees on one text.
    trained("job-1", f1=0.79)  # a Completed job in moto; its archive then replaced by one with a baseline
    clients.s3.put_object(
        Bucket=bucket,
        Key="sagebert/output/job-1/output/model.tar.gz",
        Body=model_archive_with_baseline(training_baseline()),
    )

    # ---- deploy (moto): production with data capture on
    deployed = cli(
        "deploy",
        "--endpoint",
        ENDPOINT,
        "--training-job",
        "job-1",
        "--data-capture",
        "s3://sagebert-test/capture/",
        "--poll-interval",
        "0",
        clients=clients,
    )
    assert deployed.code == 0, deployed.err
    assert sent.one("CreateEndpointConfig")["DataCaptureConfig"] == CAPTURE
    assert clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == OLD
    texts, labels = held_out_split()
    texts, labels = texts[:400], labels[:400]
    shadow_labels = list(labels[:200])
    shadow_labels[5] = NO if labels[5] == YES else YES

    with Stubber(clients.sagemaker) as stub:
        # ---- shadow: the candidate gets half the traffic, production is kept as it runs
        stub_running(stub, described, OLD, production_config)
        stub.add_response(
            "describe_training_job",
            described.training_job(
                "job-2", FinalMetricDataList=[{"MetricName": "eval:f1", "Value": 0.83, "Timestamp": described.created}]
            ),
            {"TrainingJobName": "job-2"},
        )
        stub.add_response("create_model", {"ModelArn": described.arn("model", SHADOW)}, new_model)
        stub.add_response(
            "create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", SHADOW)}, new_config
        )
        stub.add_response("describe_endpoint_config", shadow_config, {"EndpointConfigName": SHADOW})
        stub_update(stub, described, SHADOW, OLD)

        shadowed = cli(
            "shadow",
            "--endpoint",
            ENDPOINT,
            "--training-job",
            "job-2",
            "--sampling-percent",
            "50",
            "--poll-interval",
            "0",
            clients=clients,
        )
        assert shadowed.code == 0, shadowed.err
        assert (
            f"Shadowing job-2 on {ENDPOINT}: 50% of requests copied to variant Shadow (1 x ml.m5.xlarge); "
            "captured under s3://sagebert-test/capture/."
        ) in shadowed.lines

        # ---- traffic arrives, SageMaker captures both variants
        for variant, lines in (
            ("AllTraffic", capture_lines(texts, labels, "req")),
            ("Shadow", capture_lines(texts[:200], shadow_labels, "req", variant_offset=1) + ["{cut off"]),
        ):
            clients.s3.put_object(
                Bucket=bucket, Key="capture/" + hour_key(ENDPOINT, variant), Body="\n".join(lines).encode()
            )

        # ---- report: agreement on the same requests, no drift against the training data
        stub.add_response(
            "describe_endpoint", described.endpoint(ENDPOINT, "InService", SHADOW, count=1), {"EndpointName": ENDPOINT}
        )
        stub.add_response("describe_endpoint_config", shadow_config, {"EndpointConfigName": SHADOW})
        stub.add_response("describe_model", described.model(OLD, OLD_DATA), {"ModelName": OLD})
        reported = cli("report", "--endpoint", ENDPOINT, "--json", "--fail-on-drift", clients=clients)
        assert reported.code == 0, reported.err
        body = json.loads(reported.lines[-1])
        assert body["production_variant"] == "AllTraffic" and body["shadow_variant"] == "Shadow"
        assert body["variants"]["AllTraffic"]["texts"] == 400 and body["variants"]["Shadow"]["texts"] == 200
        assert body["agreement"] == pytest.approx(199 / 200)
        assert body["agreement_detail"]["disagreements"] == [
            {"text": texts[5], "production": labels[5], "shadow": shadow_labels[5]}
        ]
        assert body["malformed"]["lines"] == 1
        assert body["drifted"] is False and body["baseline"] == OLD_DATA

        # ---- promote through the gate: the shadow's model becomes production's, no shadow left
        stub_running(stub, described, SHADOW, shadow_config)
        stub.add_response("describe_model", shadow_model(described), {"ModelName": SHADOW})
        old_tags = [*OWNED, {"Key": "sagebert:metric:eval:f1", "Value": "0.79"}]
        stub.add_response("list_tags", {"Tags": old_tags}, {"ResourceArn": described.arn("model", OLD)})
        stub.add_response("list_tags", {"Tags": new_model["Tags"]}, {"ResourceArn": described.arn("model", SHADOW)})
        promoted_config = {
            "EndpointConfigName": PROMOTED,
            "ProductionVariants": [production_variant(SHADOW)],
            "DataCaptureConfig": CAPTURE,
            "Tags": OWNED,
        }
        stub.add_response(
            "create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", PROMOTED)}, promoted_config
        )
        stub.add_response(
            "describe_endpoint_config",
            config(described, PROMOTED, production_variant(SHADOW)),
            {"EndpointConfigName": PROMOTED},
        )
        stub_update(stub, described, PROMOTED, SHADOW)

        promoted = cli(
            "shadow",
            "--endpoint",
            ENDPOINT,
            "--promote",
            "--require-better",
            "eval:f1",
            "--poll-interval",
            "0",
            clients=clients,
        )
        stub.assert_no_pending_responses()

    assert promoted.code == 0, promoted.err
    assert "Gate passed: eval:f1 0.8300 is higher than 0.7900 by at least 0.01 (change +0.0400)." in promoted.lines
    assert f"Endpoint {ENDPOINT} is InService on {PROMOTED}." in promoted.lines
    assert names == []  # one new config per step, nothing else made


def test_promote_refused_by_the_gate_exits_3_and_changes_nothing(cli, clients, described, names):
    shadow_config = config(described, SHADOW, production_variant(), shadow_variant())
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, SHADOW, shadow_config)
        stub.add_response("describe_model", shadow_model(described), {"ModelName": SHADOW})
        stub.add_response(
            "list_tags",
            {"Tags": [*OWNED, {"Key": "sagebert:metric:eval:f1", "Value": "0.79"}]},
            {"ResourceArn": described.arn("model", OLD)},
        )
        stub.add_response(
            "list_tags",
            {"Tags": [*OWNED, {"Key": "sagebert:metric:eval:f1", "Value": "0.7"}]},
            {"ResourceArn": described.arn("model", SHADOW)},
        )
        result = cli("shadow", "--endpoint", ENDPOINT, "--promote", "--require-better", "eval:f1", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 3
    assert "error: Not promoted: eval:f1 0.7000 is not higher than 0.7900" in result.err


@pytest.mark.parametrize(
    ("production_tags", "shadow_tags", "reason"),
    [
        ([("sagebert:metric:eval:f1", "0.79")], [], "no eval:f1"),
        (
            [("sagebert:metric:eval:f1", "0.79"), ("sagebert:eval-data-sha256", "a" * 64)],
            [("sagebert:metric:eval:f1", "0.9"), ("sagebert:eval-data-sha256", "b" * 64)],
            "scored on different test data",
        ),
    ],
    ids=["shadow-without-the-metric", "different-test-data"],
)
def test_promote_that_the_gate_cannot_compare_exits_4_and_changes_nothing(
    cli, clients, described, names, production_tags, shadow_tags, reason
):
    # The same gate as `update`: a missing metric or another test set is not "not better" (3).
    shadow_config = config(described, SHADOW, production_variant(), shadow_variant())
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, SHADOW, shadow_config)
        stub.add_response("describe_model", shadow_model(described), {"ModelName": SHADOW})
        for model, tags in ((OLD, production_tags), (SHADOW, shadow_tags)):
            stub.add_response(
                "list_tags",
                {"Tags": [*OWNED, *({"Key": k, "Value": v} for k, v in tags)]},
                {"ResourceArn": described.arn("model", model)},
            )
        result = cli("shadow", "--endpoint", ENDPOINT, "--promote", "--require-better", "eval:f1", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 4, result.err
    assert "error: Cannot compare:" in result.err and reason in result.err


def test_promote_gates_only_on_quality_metrics(cli, offline):
    result = cli("shadow", "--endpoint", ENDPOINT, "--promote", "--require-better", "train:epoch", clients=offline)
    assert result.code == 2 and offline.attempts == []


def test_stop_removes_the_shadow_then_deletes_its_config_and_model(cli, clients, described, names):
    shadow_config = config(described, SHADOW, production_variant(), shadow_variant())
    names[:] = ["disaster-tweets-20261207-200000-0003"]
    stopped = {
        "EndpointConfigName": names[0],
        "ProductionVariants": [production_variant()],
        "DataCaptureConfig": CAPTURE,
        "Tags": OWNED,
    }
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, SHADOW, shadow_config)
        stub.add_response("describe_model", shadow_model(described), {"ModelName": SHADOW})
        stub.add_response(
            "create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", names[0])}, stopped
        )
        stub.add_response(
            "describe_endpoint_config",
            config(described, names[0], production_variant()),
            {"EndpointConfigName": names[0]},
        )
        stub_update(stub, described, names[0], None)
        stub.add_response("list_tags", {"Tags": OWNED}, {"ResourceArn": described.arn("model", SHADOW)})
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": SHADOW})
        stub.add_response("delete_model", {}, {"ModelName": SHADOW})

        result = cli("shadow", "--endpoint", ENDPOINT, "--stop", "--poll-interval", "0", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert f"deleted endpoint config {SHADOW} (the shadow was stopped)" in result.lines
    assert f"deleted model {SHADOW} (the shadow was stopped)" in result.lines


def test_a_second_shadow_is_refused_before_anything_is_created(cli, clients, described):
    shadow_config = config(described, SHADOW, production_variant(), shadow_variant())
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, SHADOW, shadow_config)
        stub.add_response("describe_model", shadow_model(described), {"ModelName": SHADOW})
        result = cli("shadow", "--endpoint", ENDPOINT, "--training-job", "job-3", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert (
        f"error: Endpoint {ENDPOINT} already has shadow variant Shadow (model {SHADOW}); SageMaker allows one."
        in result.err
    )


def test_an_endpoint_without_data_capture_needs_data_capture_before_anything_is_created(cli, clients, described):
    plain = described.endpoint_config(OLD, OLD)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, OLD, plain)
        stub.add_response("describe_training_job", described.training_job("job-2"), {"TrainingJobName": "job-2"})
        result = cli("shadow", "--endpoint", ENDPOINT, "--training-job", "job-2", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert "Fix: Add --data-capture s3://BUCKET/capture/" in result.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--promote", "--training-job", "j"], "describe a new shadow; --promote and --stop act on the running one"),
        ([], "No candidate to shadow."),
        (["--training-job", "j", "--require-better", "eval:f1"], "--require-better and --min-delta go with --promote"),
    ],
)
def test_contradictory_options_are_refused_before_any_request(cli, offline, argv, message):
    result = cli("shadow", "--endpoint", ENDPOINT, *argv, clients=offline)
    assert result.code == 1 and message in result.err
    assert offline.attempts == []


def test_promote_and_stop_together_is_a_usage_error(cli, offline):
    result = cli("shadow", "--endpoint", ENDPOINT, "--promote", "--stop", clients=offline)
    assert result.code == 2 and "not allowed with argument" in result.err
