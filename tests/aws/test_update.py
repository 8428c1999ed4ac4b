"""`sagebert update` and `rollback`: what they keep, the metric gate, cleanup on failure, autoscaling.

moto has no UpdateEndpoint, so the SageMaker side is botocore's Stubber with the exact requests
expected, call after call: a queued response that is not consumed, or a call that was not
queued, fails the test. Application Auto Scaling and CloudWatch are moto (it implements them),
so autoscaling registrations and alarms are real state the tests read back.
"""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"
OLD = "disaster-tweets-old"
NEW_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:fedcba987654"
LATER = "2026-11-26T12:30:00Z"
ALL_AT_ONCE = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0,
    }
}
TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}
POLICY = {
    "TargetValue": 100.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "ScaleInCooldown": 300,
    "ScaleOutCooldown": 60,
}


def update(cli, clients, *extra: str):
    return cli("update", "--endpoint", ENDPOINT, "--poll-interval", "0", *extra, clients=clients)


def stub_running(
    stub, described, *, count=2, initial=1, instance_type="ml.m5.xlarge", environment=None, status="InService"
):
    stub.add_response(
        "describe_endpoint", described.endpoint(ENDPOINT, status, OLD, count=count), {"EndpointName": ENDPOINT}
    )
    stub.add_response(
        "describe_endpoint_config",
        described.endpoint_config(OLD, OLD, instance_type, initial),
        {"EndpointConfigName": OLD},
    )
    stub.add_response(
        "describe_model",
        described.model(OLD, "s3://bucket/old/model.tar.gz", environment=environment),
        {"ModelName": OLD},
    )


def stub_job(stub, described, job: str, f1: float | None = None, image: str | None = None) -> None:
    extra = (
        {"FinalMetricDataList": [{"MetricName": "eval:f1", "Value": f1, "Timestamp": described.created}]} if f1 else {}
    )
    if image:
        extra["AlgorithmSpecification"] = {"TrainingImage": image, "TrainingInputMode": "File"}
    stub.add_response("describe_training_job", described.training_job(job, **extra), {"TrainingJobName": job})


def stub_serving_tags(stub, described, f1: float | None, job: str = "job-1") -> None:
    tags = [{"Key": "sagebert:endpoint", "Value": ENDPOINT}, {"Key": "sagebert:training-job", "Value": job}]
    if f1 is not None:
        tags.append({"Key": "sagebert:metric:eval:f1", "Value": repr(f1)})
    stub.add_response("list_tags", {"Tags": tags}, {"ResourceArn": described.arn("model", OLD)})


def model_request(fake, name: str, job: str, f1: float | None, image: str | None = None, environment=None) -> dict:
    container = {
        "Image": image or fake.image,
        "Mode": "SingleModel",
        "ModelDataUrl": f"s3://{fake.bucket}/sagebert/output/{job}/output/model.tar.gz",
    }
    if environment:
        container["Environment"] = environment
    tags = [{"Key": "sagebert:endpoint", "Value": ENDPOINT}]
    if f1 is not None:
        tags.append({"Key": "sagebert:metric:eval:f1", "Value": repr(f1)})
    tags.append({"Key": "sagebert:training-job", "Value": job})
    return {"ModelName": name, "ExecutionRoleArn": fake.role_arn, "PrimaryContainer": container, "Tags": tags}


def config_request(name: str, count: int, instance_type: str = "ml.m5.xlarge") -> dict:
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": name,
        "InstanceType": instance_type,
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1.0,
    }
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [variant],
        "Tags": [{"Key": "sagebert:endpoint", "Value": ENDPOINT}],
    }


def stub_running_tags(stub, described, model_tags=(), config_tags=(), running: str = OLD) -> None:
    """ListTags of the running model, then of its config: their own tags go on what replaces them."""
    for kind, tags in (("model", model_tags), ("endpoint-config", config_tags)):
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": k, "Value": v} for k, v in tags]},
            {"ResourceArn": described.arn(kind, running)},
        )


def stub_create(stub, described, name: str, model: dict, config: dict) -> None:
    stub_running_tags(stub, described)
    stub.add_response("create_model", {"ModelArn": described.arn("model", name)}, model)
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", name)}, config)
    stub.add_response("describe_endpoint_config", described.endpoint_config(name, name), {"EndpointConfigName": name})


def update_request(name: str, deployment=ALL_AT_ONCE, **extra) -> dict:
    return {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": name,
        "DeploymentConfig": deployment,
        "RetainAllVariantProperties": True,
        **extra,
    }


def stub_update(stub, described, request: dict) -> None:
    arn = described.arn("endpoint", ENDPOINT)
    stub.add_response("update_endpoint", {"EndpointArn": arn}, request)
    stub.add_response(
        "add_tags",
        {"Tags": []},
        {"ResourceArn": arn, "Tags": [{"Key": "sagebert:previous-endpoint-config", "Value": OLD}]},
    )


def stub_states(stub, described, *states: tuple) -> None:
    """DescribeEndpoint answers while waiting: (status, config[, modified[, reason]])."""
    for status, config, *rest in states:
        modified = rest[0] if rest else LATER
        extra = {"FailureReason": rest[1]} if len(rest) > 1 else {}
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, status, config, modified=modified, **extra))


# ---- what an update keeps --------------------------------------------------------------------------
def test_update_keeps_the_running_count_image_role_and_environment(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3, initial=1, environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
        stub_job(stub, described, "job-2", f1=0.81)
        environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEBERT_INFERENCE_PRECISION": "int8"}
        stub_create(
            stub,
            described,
            name,
            model_request(fake, name, "job-2", 0.81, environment=environment),
            config_request(name, 3),
        )
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("Updating", OLD), ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--env", "SAGEBERT_INFERENCE_PRECISION=int8")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert (
        f"Updating {ENDPOINT} to {name} (blue/green ALL_AT_ONCE, 3 x ml.m5.xlarge); {OLD} and its model are kept "
        f"for `sagebert rollback --endpoint {ENDPOINT}`."
    ) in result.lines
    assert [line for line in result.lines if line.startswith("==> ")] == [
        f"==> {ENDPOINT}: Updating (0s)",
        f"==> {ENDPOINT}: InService (0s)",
    ]
    assert f"Endpoint {ENDPOINT} is InService on {name}." in result.lines
    assert not any(line.startswith("image:") for line in result.lines)


def test_a_new_instance_count_is_sent_and_excluded_from_what_is_retained(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 5))
        request = update_request(
            name, ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredInstanceCount"}]
        )
        stub_update(stub, described, request)
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--instance-count", "5")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err


def test_data_capture_is_carried_by_the_new_config_not_excluded_from_what_is_retained(
    cli, clients, fake, described, fixed_names, sent
):
    # VariantProperty's VariantPropertyType: "DataCaptureConfig: (Not currently supported.)"
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=2)
        stub_serving_tags(stub, described, f1=0.8)  # carried over to the new model
        stub_running_tags(stub, described)
        stub.add_response("create_model", {"ModelArn": described.arn("model", name)})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", name)})
        stub.add_response("describe_endpoint_config", described.endpoint_config(name, name))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--data-capture", f"s3://{fake.bucket}/capture", "--sampling-percent", "20")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "ExcludeRetainedVariantProperties" not in sent.one("UpdateEndpoint")
    capture = sent.one("CreateEndpointConfig")["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{fake.bucket}/capture/" and capture["InitialSamplingPercentage"] == 20


@pytest.mark.parametrize(
    "capture", [None, {"EnableCapture": False, "InitialSamplingPercentage": 100}], ids=["none", "disabled"]
)
def test_a_serverless_endpoint_whose_config_reports_capture_off_can_be_updated(
    cli, clients, fake, sent, update_endpoint_stand_in, capture
):
    # Made with raw boto3 in moto, whose DescribeEndpointConfig then answers DataCaptureConfig {}
    # (or the disabled one given): neither is capture, which a serverless endpoint cannot have.
    sagemaker = clients.sagemaker
    container = {"Image": fake.image, "ModelDataUrl": f"s3://{fake.bucket}/old/model.tar.gz"}
    sagemaker.create_model(ModelName=OLD, ExecutionRoleArn=fake.role_arn, PrimaryContainer=container)
    serverless = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    variant = {"VariantName": "AllTraffic", "ModelName": OLD, "ServerlessConfig": serverless}
    extra = (
        {
            "DataCaptureConfig": {
                **capture,
                "DestinationS3Uri": f"s3://{fake.bucket}/c",
                "CaptureOptions": [{"CaptureMode": "Input"}],
            }
        }
        if capture
        else {}
    )
    sagemaker.create_endpoint_config(EndpointConfigName=OLD, ProductionVariants=[variant], **extra)
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=OLD)
    assert capture or sagemaker.describe_endpoint_config(EndpointConfigName=OLD)["DataCaptureConfig"] == {}

    result = update(cli, clients, "--env", "SAGEBERT_INFERENCE_PRECISION=int8")

    assert result.code == 0, result.err
    created = sent("CreateEndpointConfig")[-1]
    assert created["ProductionVariants"][0]["ServerlessConfig"] == serverless
    assert update_endpoint_stand_in[-1]["EndpointConfigName"] == created["EndpointConfigName"]


def test_a_model_trained_by_another_image_waits_for_image_or_keep_image_and_creates_nothing(
    cli, clients, fake, described
):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", image=NEW_IMAGE)

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert f"image: {fake.image} -> {NEW_IMAGE}" in result.err
    assert f"Pass --image {NEW_IMAGE}" in result.err and f"--keep-image to keep {fake.image}" in result.err


@pytest.mark.parametrize("choice", ["--keep-image", "--image"])
def test_keep_image_or_image_decides_which_image_serves_the_new_model(
    cli, clients, fake, described, fixed_names, choice
):
    name = fixed_names(ENDPOINT)
    served = fake.image if choice == "--keep-image" else NEW_IMAGE
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2", image=NEW_IMAGE)
        stub_create(
            stub, described, name, model_request(fake, name, "job-2", None, image=served), config_request(name, 1)
        )
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        flags = ["--keep-image"] if choice == "--keep-image" else ["--image", NEW_IMAGE]
        result = update(cli, clients, "--training-job", "job-2", *flags)
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert (f"image: {fake.image} -> {NEW_IMAGE}" in result.lines) == (choice == "--image")


# ---- the metric gate -----------------------------------------------------------------------------------
def test_the_gate_refuses_a_worse_model_with_exit_3_a_table_and_nothing_created(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", f1=0.7512)
        stub_serving_tags(stub, described, f1=0.7993)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")
        stub.assert_no_pending_responses()  # and no CreateModel: it was never queued

    assert result.code == 3
    table = [line for line in result.lines if line.startswith(("metric", "eval:f1"))]
    assert table[0].split() == ["metric", "serving", "(job-1)", "candidate", "(job-2)", "change"]
    assert table[1].split()[:9] == ["eval:f1", "0.7993", "0.7512", "-0.0481", "<-", "gate:", "must", "be", "higher"]
    assert [line for line in result.err.splitlines() if line.startswith("error:")] == [result.err.splitlines()[-1]]
    assert (
        "error: Not promoted: eval:f1 0.7512 is not higher than 0.7993 by at least 0.01 (change -0.0481)." in result.err
    )
    assert f"Nothing was created; {ENDPOINT} keeps serving job-1." in result.err and "--force" in result.err


def test_the_gate_wants_at_least_min_delta(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", f1=0.8093)
        stub_serving_tags(stub, described, f1=0.7993)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--min-delta", "0.02")

    assert result.code == 3
    assert "eval:f1 0.8093 is not higher than 0.7993 by at least 0.02 (change +0.0100)" in result.err


def test_the_gate_passes_a_better_model_and_the_update_goes_on(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=2)
        stub_job(stub, described, "job-2", f1=0.8311)
        stub_serving_tags(stub, described, f1=0.7993)
        stub_create(stub, described, name, model_request(fake, name, "job-2", 0.8311), config_request(name, 2))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--min-delta", "0.01")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "Gate passed: eval:f1 0.8311 is higher than 0.7993 by at least 0.01 (change +0.0318)." in result.lines


def test_force_rolls_a_worse_model_out_and_says_so(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2", f1=0.5)
        stub_serving_tags(stub, described, f1=0.7993)
        stub_create(stub, described, name, model_request(fake, name, "job-2", 0.5), config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--force")

    assert result.code == 0, result.err
    assert (
        "warning: --force: ROLLING OUT ANYWAY although the gate refused it (not better): eval:f1 0.5000" in result.err
    )


def test_a_serving_model_without_metric_tags_is_judged_by_its_training_job(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", f1=0.70)
        stub_serving_tags(stub, described, f1=None, job="job-1")
        stub_job(stub, described, "job-1", f1=0.75)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")
        stub.assert_no_pending_responses()

    assert result.code == 3
    assert "Metrics: serving from FinalMetricDataList; candidate from FinalMetricDataList." in result.lines


@pytest.mark.parametrize("metric", ["eval:f2", "train:learning_rate", "train:epoch", "train:loss"])
def test_the_gate_compares_only_quality_metrics_a_usage_error_lists_them(cli, clients, metric):
    result = update(cli, clients, "--training-job", "job-2", "--require-better", metric)

    assert result.code == 2
    assert f"argument --require-better: {metric!r} is " in result.err
    for quality in ("eval:f1 (higher", "eval:accuracy (higher", "eval:loss (lower"):
        assert quality in result.err


# ---- the gate compares like with like: metric present, same test data, beyond noise ----------------------
SAME_TEST_DATA = "a" * 64
OTHER_TEST_DATA = "b" * 64


def put_artifact(clients, uri: str, digest: str | None, predictions: list[int] | None = None, labels=None) -> None:
    """A model.tar.gz as training writes it (weights first), with metrics.json and, when given,
    test_predictions.json, in moto's S3 at ``uri``."""
    import io
    import json
    import tarfile

    metrics = {"f1": 0.8, "accuracy": 0.83, **({"eval_data_sha256": digest} if digest else {})}
    files = [("model.safetensors", bytes(32 * 1024)), ("metrics.json", json.dumps(metrics).encode())]
    if predictions is not None:
        document = {"eval_data_sha256": digest, "labels": labels, "predictions": predictions}
        files.append(("test_predictions.json", json.dumps(document).encode()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    bucket, key = uri[len("s3://") :].split("/", 1)
    clients.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def stub_serving_model_in(stub, described, data: str) -> None:
    stub.add_response(
        "describe_endpoint", described.endpoint(ENDPOINT, "InService", OLD, count=1), {"EndpointName": ENDPOINT}
    )
    stub.add_response(
        "describe_endpoint_config", described.endpoint_config(OLD, OLD, "ml.m5.xlarge", 1), {"EndpointConfigName": OLD}
    )
    stub.add_response("describe_model", described.model(OLD, data), {"ModelName": OLD})


def artifact_of(fake, job: str) -> str:
    return f"s3://{fake.bucket}/sagebert/output/{job}/output/model.tar.gz"


def test_a_candidate_without_the_metric_cannot_be_compared_exit_4_not_3(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2")  # a job that stopped emitting metrics
        stub_serving_tags(stub, described, f1=0.7993)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")
        stub.assert_no_pending_responses()

    assert result.code == 4
    assert "error: Cannot compare: the candidate has no eval:f1 recorded" in result.err
    assert f"Nothing was created; {ENDPOINT} keeps serving job-1." in result.err


def test_a_serving_model_without_the_metric_cannot_be_compared_exit_4(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", f1=0.83)
        stub_serving_tags(stub, described, f1=None, job="job-1")
        stub_job(stub, described, "job-1")

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")
        stub.assert_no_pending_responses()

    assert result.code == 4
    assert "Cannot compare: the model serving now has no eval:f1 recorded" in result.err


def test_models_scored_on_different_test_data_cannot_be_compared_exit_4(cli, clients, fake, described, bucket):
    put_artifact(clients, artifact_of(fake, "job-2"), OTHER_TEST_DATA)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", f1=0.95)
        tags = [
            {"Key": "sagebert:training-job", "Value": "job-1"},
            {"Key": "sagebert:metric:eval:f1", "Value": "0.7993"},
            {"Key": "sagebert:eval-data-sha256", "Value": SAME_TEST_DATA},
        ]
        stub.add_response("list_tags", {"Tags": tags}, {"ResourceArn": described.arn("model", OLD)})

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")
        stub.assert_no_pending_responses()

    assert result.code == 4
    assert "Test data (sha256): serving aaaaaaaaaaaa..., candidate bbbbbbbbbbbb...." in result.lines
    assert (
        "Cannot compare: the two models were scored on different test data (sha256 aaaaaaaaaaaa... serving, "
        "bbbbbbbbbbbb... candidate)"
    ) in result.err


def test_a_model_that_predates_the_digest_is_compared_and_said_so_and_the_new_model_carries_it(
    cli, clients, fake, described, fixed_names, bucket
):
    put_artifact(clients, artifact_of(fake, "job-2"), SAME_TEST_DATA)
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2", f1=0.8311)
        stub_serving_tags(stub, described, f1=0.7993)  # no digest tag, and its artifact is not in S3
        model = model_request(fake, name, "job-2", 0.8311)
        model["Tags"].append({"Key": "sagebert:eval-data-sha256", "Value": SAME_TEST_DATA})
        stub_create(stub, described, name, model, config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "warning: the serving model predates the test-data digest (no eval_data_sha256)" in result.err


def test_the_default_min_delta_does_not_promote_a_ten_thousandth(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub_job(stub, described, "job-2", f1=0.8)
        stub_serving_tags(stub, described, f1=0.7999)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1")

    assert result.code == 3
    assert "is not higher than 0.7999 by at least 0.01 (change +0.0001)" in result.err


def significance_case(clients, fake, described, stub, candidate_right: int, serving_right: int, both: int = 50):
    """Both models' predictions of one 100-example test set: each right alone on so many examples."""
    labels = [1] * 100
    serving = [1] * both + [1] * serving_right + [0] * (100 - both - serving_right)
    candidate = [1] * both + [0] * serving_right + [1] * candidate_right
    candidate += [0] * (100 - len(candidate))
    served = f"s3://{fake.bucket}/serving/model.tar.gz"
    put_artifact(clients, served, SAME_TEST_DATA, serving, labels)
    put_artifact(clients, artifact_of(fake, "job-2"), SAME_TEST_DATA, candidate, labels)
    stub_serving_model_in(stub, described, served)
    stub_job(stub, described, "job-2", f1=0.85)
    stub_serving_tags(stub, described, f1=0.80)


def test_an_improvement_within_noise_is_refused_with_exit_3_and_the_p_value(cli, clients, fake, described, bucket):
    with Stubber(clients.sagemaker) as stub:
        significance_case(clients, fake, described, stub, candidate_right=9, serving_right=4)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--require-significant")
        stub.assert_no_pending_responses()

    assert result.code == 3, result.err
    # 9 against 4 discordant examples: p = 2 * P(Binomial(13, 1/2) <= 4) = 2 * 1093 / 8192 = 0.2668
    assert (
        "but within noise: exact McNemar test over 100 test examples: the candidate alone is right on 9, " in result.err
    )
    assert "the serving model alone on 4, p = 0.2668 (>= 0.05)" in result.err


def test_a_significant_improvement_is_promoted(cli, clients, fake, described, fixed_names, bucket):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        significance_case(clients, fake, described, stub, candidate_right=20, serving_right=2)
        model = model_request(fake, name, "job-2", 0.85)
        model["Tags"].append({"Key": "sagebert:eval-data-sha256", "Value": SAME_TEST_DATA})
        stub_create(stub, described, name, model, config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--require-significant")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert (
        "Gate passed: " in result.out
        and "right on 20, the serving model alone on 2, p = 0.0001211 (< 0.05)" in result.out
    )


def test_significance_needs_both_models_predictions_exit_4(cli, clients, fake, described, bucket):
    put_artifact(clients, artifact_of(fake, "job-2"), SAME_TEST_DATA, [1, 0], [1, 1])
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)  # its artifact holds no test_predictions.json
        stub_job(stub, described, "job-2", f1=0.9)
        stub_serving_tags(stub, described, f1=0.8)

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--require-significant")

    assert result.code == 4
    assert "Cannot compare: the serving model has no per-example test predictions (test_predictions.json" in result.err


@pytest.mark.parametrize(
    "flags",
    [["--significance-level", "0"], ["--significance-level", "1.5"], ["--min-delta", "nan"]],
)
def test_gate_numbers_out_of_range_are_usage_errors(cli, clients, flags):
    result = update(
        cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--require-significant", *flags
    )

    assert result.code == 2


def test_force_rolls_out_a_model_the_gate_cannot_compare_and_says_so(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2")
        stub_serving_tags(stub, described, f1=0.7993)
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--require-better", "eval:f1", "--force")

    assert result.code == 0, result.err
    assert "warning: --force: ROLLING OUT ANYWAY although the gate refused it (cannot compare)" in result.err


# ---- validated before anything is created; cleaned up after a failure ---------------------------------
def test_a_canary_of_one_instance_on_a_one_instance_fleet_is_refused_before_anything_is_created(
    cli, clients, described
):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2")
        stub_running_tags(stub, described)

        result = update(cli, clients, "--training-job", "job-2", "--traffic", "canary", "--canary-size", "1")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert "--canary-size 1 is 100% of the new fleet of 1 instance(s); SageMaker allows 1-50%" in result.err


def test_a_missing_alarm_is_refused_before_anything_is_created(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=2)
        stub_job(stub, described, "job-2")
        stub_running_tags(stub, described)

        result = update(cli, clients, "--training-job", "job-2", "--alarm", "sagebert-5xx")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert "CloudWatch alarm(s) sagebert-5xx do not exist in eu-west-1" in result.err


QUOTA = (
    "The account-level service limit 'ml.m5.xlarge for endpoint usage' is 2 Instances, with current utilization of "
    "2 Instances and a request delta of 2 Instances. Please use AWS Service Quotas to request an increase for this "
    "quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this quota."
)


def test_a_failure_after_create_model_deletes_the_model_it_created(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=2)
        stub_job(stub, described, "job-2")
        stub_running_tags(stub, described)
        stub.add_response(
            "create_model", {"ModelArn": described.arn("model", name)}, model_request(fake, name, "job-2", None)
        )
        stub.add_client_error(
            "create_endpoint_config", "ResourceLimitExceeded", QUOTA, 400, expected_params=config_request(name, 2)
        )
        stub.add_response("delete_model", {}, {"ModelName": name})

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert f"created model {name}" in result.lines
    assert f"deleted model {name} (the update could not start)" in result.lines
    assert "error: Quota reached: CreateEndpointConfig failed:" in result.err
    assert "Request a higher 'ml.m5.xlarge for endpoint usage' quota (now 2 Instances, 2 in use" in result.err


def test_an_update_endpoint_refused_deletes_the_config_and_model_it_created(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    message = 'Cannot update in-progress endpoint "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/disaster-tweets".'
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=2)
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 2))
        stub.add_client_error(
            "update_endpoint", "ValidationException", message, 400, expected_params=update_request(name)
        )
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": name})
        stub.add_response("delete_model", {}, {"ModelName": name})

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert [line for line in result.lines if line.startswith("deleted")] == [
        f"deleted endpoint config {name} (the update could not start)",
        f"deleted model {name} (the update could not start)",
    ]
    assert "error: The endpoint is busy: UpdateEndpoint failed: Cannot update in-progress endpoint" in result.err


def test_what_cannot_be_deleted_is_reported_with_how_delete_finds_it(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    denied = f"User: arn:aws:sts::123456789012:assumed-role/ci/run is not authorized to perform: sagemaker:DeleteModel on resource: {described.arn('model', name)}"
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=2)
        stub_job(stub, described, "job-2")
        stub_running_tags(stub, described)
        stub.add_response(
            "create_model", {"ModelArn": described.arn("model", name)}, model_request(fake, name, "job-2", None)
        )
        stub.add_client_error("create_endpoint_config", "ResourceLimitExceeded", QUOTA, 400)
        stub.add_client_error("delete_model", "AccessDeniedException", denied, 400)

        result = update(cli, clients, "--training-job", "job-2")

    assert result.code == 1
    assert (
        f"warning: kept model {name}: could not be deleted (AccessDeniedException); it is tagged sagebert:endpoint, "
        "so sagebert delete --endpoint ENDPOINT --orphans removes it"
    ) in result.err


# ---- waiting: an update that has not shown up yet is not a rollback -----------------------------------
def test_the_old_config_still_in_service_right_after_update_endpoint_is_not_a_rollback(
    cli, clients, fake, described, fixed_names
):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 1))
        stub_update(stub, described, update_request(name))
        # SageMaker has not shown the update yet: old config, InService, the old LastModifiedTime.
        stub_states(
            stub,
            described,
            ("InService", OLD, described.created),
            ("InService", OLD, described.created),
            ("Updating", OLD),
            ("InService", name),
        )

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "rolled back" not in result.err
    assert f"Endpoint {ENDPOINT} is InService on {name}." in result.lines


def test_a_rolled_back_update_exits_1_and_deletes_its_unused_config_and_model(
    cli, clients, fake, described, fixed_names
):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(
            stub, described, ("Updating", OLD), ("InService", OLD, LATER, "Alarm sagebert-5xx went into ALARM.")
        )
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": name})
        stub.add_response("delete_model", {}, {"ModelName": name})

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert (
        f"error: The update of {ENDPOINT} was rolled back; it still runs {OLD}: Alarm sagebert-5xx went into ALARM."
        in result.err
    )
    assert f"deleted endpoint config {name} (SageMaker rolled the update back; nothing uses it)" in result.lines
    # The new instances' log is read for the container's reason (here there is none in moto's CloudWatch Logs).
    assert f"no log lines in /aws/sagemaker/Endpoints/{ENDPOINT}" in result.err


@pytest.mark.parametrize(
    "status, advice",
    [
        ("Updating", "Wait for it (sagebert status --endpoint disaster-tweets) and retry."),
        (
            "Failed",
            "delete it (sagebert delete --endpoint disaster-tweets --with-configs --with-models --yes) and deploy again",
        ),
    ],
)
def test_an_endpoint_not_in_service_is_not_updated(cli, clients, described, status, advice):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, status=status)
        result = update(cli, clients, "--training-job", "job-2")

    assert result.code == 1
    assert f"Endpoint {ENDPOINT} is {status}; it can only be updated when InService." in result.err
    assert advice in result.err


def test_an_update_rollback_failed_endpoint_is_updated_which_is_its_way_out(cli, clients, fake, described, fixed_names):
    # DescribeEndpoint's UpdateRollbackFailed: "Both the rolling deployment and auto-rollback
    # failed. Your endpoint is in service with a mix of the old and new endpoint configurations."
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1, status="UpdateRollbackFailed")
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert (
        f"warning: {ENDPOINT} is UpdateRollbackFailed: this update is what brings it back to one config." in result.err
    )


def test_an_update_that_ends_update_rollback_failed_says_a_new_update_is_needed_not_waiting(
    cli, clients, fake, described, fixed_names
):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=1)
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("UpdateRollbackFailed", name, LATER, "Rollback failed: instance health."))

        result = update(cli, clients, "--training-job", "job-2")

    assert result.code == 1
    assert "Endpoint disaster-tweets is UpdateRollbackFailed: Rollback failed: instance health." in result.err
    assert "waiting will not change it" in result.err
    assert f"sagebert rollback --endpoint {ENDPOINT}" in result.err
    assert "Wait for it" not in result.err


def test_autoscale_refuses_an_update_rollback_failed_endpoint_with_the_update_it_needs():
    from sagebert.aws.endpoints import require_in_service
    from sagebert.aws.validation import InvalidRequestError

    with pytest.raises(InvalidRequestError) as refused:
        require_in_service({"EndpointName": ENDPOINT, "EndpointStatus": "UpdateRollbackFailed"})

    assert "until a new UpdateEndpoint: waiting will not change it" in str(refused.value)
    assert f"sagebert rollback --endpoint {ENDPOINT}" in str(refused.value) and "Wait for it" not in str(refused.value)


# ---- autoscaling ----------------------------------------------------------------------------------
@pytest.fixture
def autoscaled(clients):
    """The endpoint's variant registered with Application Auto Scaling (moto): 2-6, target tracking."""
    clients.autoscaling.register_scalable_target(**TARGET, MinCapacity=2, MaxCapacity=6)
    clients.autoscaling.put_scaling_policy(
        **TARGET,
        PolicyName="sagebert-invocations-per-instance",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=POLICY,
    )
    return clients.autoscaling


def registration(autoscaling) -> tuple:
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return (
        [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets],
        [(p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]) for p in policies],
    )


def test_an_autoscaled_endpoint_keeps_its_count_and_policy_across_an_update(
    cli, clients, fake, described, fixed_names, autoscaled
):
    name = fixed_names(ENDPOINT)
    before = registration(autoscaled)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=4, initial=1)  # autoscaling scaled it from 1 to 4
        stub_job(stub, described, "job-2")
        stub_create(stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 4))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("Updating", OLD), ("InService", name))

        result = update(cli, clients, "--training-job", "job-2")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "autoscaling kept: 2-6 instances (sagebert-invocations-per-instance)" in result.lines
    assert registration(autoscaled) == before


def test_an_instance_type_change_on_an_autoscaled_endpoint_removes_and_reregisters_it(
    cli, clients, fake, described, fixed_names, autoscaled
):
    name = fixed_names(ENDPOINT)
    before = registration(autoscaled)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        stub_create(
            stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 3, "ml.c5.xlarge")
        )
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("Updating", OLD), ("InService", name))

        result = update(cli, clients, "--training-job", "job-2", "--instance-type", "ml.c5.xlarge")
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert (
        "autoscaling (2-6 instances (sagebert-invocations-per-instance)) removed for the instance type change; "
        "it is registered again once the update ends"
    ) in result.lines
    assert "autoscaling registered again: 2-6 instances (sagebert-invocations-per-instance)" in result.lines
    assert registration(autoscaled) == before


def test_an_instance_type_change_on_an_autoscaled_endpoint_needs_waiting(cli, clients, described, autoscaled):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        result = update(cli, clients, "--training-job", "job-2", "--instance-type", "ml.c5.xlarge", "--no-wait")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert "needs waiting" in result.err and "--off" in result.err


def test_an_instance_count_outside_the_autoscaling_range_is_refused(cli, clients, described, autoscaled):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        result = update(cli, clients, "--training-job", "job-2", "--instance-count", "8")

    assert result.code == 1
    assert "--instance-count 8 is outside the autoscaling range 2-6" in result.err


def test_a_failed_update_puts_removed_autoscaling_back(cli, clients, fake, described, fixed_names, autoscaled):
    name = fixed_names(ENDPOINT)
    before = registration(autoscaled)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        stub_create(
            stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 3, "ml.c5.xlarge")
        )
        stub.add_client_error("update_endpoint", "ResourceLimitExceeded", QUOTA, 400)
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": name})
        stub.add_response("delete_model", {}, {"ModelName": name})

        result = update(cli, clients, "--training-job", "job-2", "--instance-type", "ml.c5.xlarge")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert f"autoscaling of endpoint/{ENDPOINT}/variant/AllTraffic registered again" in result.lines
    assert registration(autoscaled) == before


def interrupt_update_endpoint(clients) -> None:
    """Ctrl-C as the UpdateEndpoint call starts: a KeyboardInterrupt raised by an event handler
    (it runs before the Stubber answers, so nothing is sent)."""

    def interrupt(**_):
        raise KeyboardInterrupt

    clients.sagemaker.meta.events.register("provide-client-params.sagemaker.UpdateEndpoint", interrupt)


def test_ctrl_c_before_update_endpoint_puts_removed_autoscaling_back_and_deletes_what_it_made(
    cli, clients, fake, described, fixed_names, autoscaled
):
    name = fixed_names(ENDPOINT)
    before = registration(autoscaled)
    interrupt_update_endpoint(clients)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        stub_create(
            stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 3, "ml.c5.xlarge")
        )
        # Was it accepted after all? The endpoint still runs the old config, with nothing pending.
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "InService", OLD, count=3))
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": name})
        stub.add_response("delete_model", {}, {"ModelName": name})

        result = update(cli, clients, "--training-job", "job-2", "--instance-type", "ml.c5.xlarge")
        stub.assert_no_pending_responses()

    assert result.code == 130
    assert f"autoscaling of endpoint/{ENDPOINT}/variant/AllTraffic registered again" in result.lines
    assert f"deleted model {name} (interrupted before the update started)" in result.lines
    assert registration(autoscaled) == before


def test_ctrl_c_after_sagemaker_accepted_the_update_keeps_what_it_is_moving_to(
    cli, clients, fake, described, fixed_names, autoscaled
):
    name = fixed_names(ENDPOINT)
    interrupt_update_endpoint(clients)
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described, count=3)
        stub_job(stub, described, "job-2")
        stub_create(
            stub, described, name, model_request(fake, name, "job-2", None), config_request(name, 3, "ml.c5.xlarge")
        )
        updating = described.endpoint(ENDPOINT, "Updating", OLD, count=3)
        updating["PendingDeploymentSummary"] = {"EndpointConfigName": name, "StartTime": updating["CreationTime"]}
        stub.add_response("describe_endpoint", updating)

        result = update(cli, clients, "--training-job", "job-2", "--instance-type", "ml.c5.xlarge")
        stub.assert_no_pending_responses()  # no DeleteEndpointConfig/DeleteModel queued, none sent

    assert result.code == 130
    assert (
        f"interrupted, but SageMaker had accepted the update to {name}: it goes on; autoscaling (2-6 instances "
        f"(sagebert-invocations-per-instance)) was removed for it: register it again once {ENDPOINT} is InService"
    ) in result.out


# ---- rollback ----------------------------------------------------------------------------------------
def test_rollback_points_back_at_the_recorded_config_keeping_the_running_count(cli, clients, described):
    current, previous = "disaster-tweets-new", OLD
    endpoint = described.endpoint(ENDPOINT, "InService", current, count=4)
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_endpoint", endpoint, {"EndpointName": ENDPOINT})
        stub.add_response(
            "describe_endpoint_config", described.endpoint_config(current, current), {"EndpointConfigName": current}
        )
        stub.add_response(
            "describe_model", described.model(current, "s3://bucket/new/model.tar.gz"), {"ModelName": current}
        )
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": "sagebert:previous-endpoint-config", "Value": previous}]},
            {"ResourceArn": endpoint["EndpointArn"]},
        )
        stub.add_response(
            "describe_endpoint_config", described.endpoint_config(previous, "m-old"), {"EndpointConfigName": previous}
        )
        arn = described.arn("endpoint", ENDPOINT)
        stub.add_response("update_endpoint", {"EndpointArn": arn}, update_request(previous))
        stub.add_response(
            "add_tags",
            {"Tags": []},
            {"ResourceArn": arn, "Tags": [{"Key": "sagebert:previous-endpoint-config", "Value": current}]},
        )
        stub_states(stub, described, ("Updating", current), ("InService", previous))

        result = cli("rollback", "--endpoint", ENDPOINT, "--poll-interval", "0", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert f"Rolling {ENDPOINT} back from {current} to {previous} (blue/green ALL_AT_ONCE)." in result.lines
    assert f"Endpoint {ENDPOINT} is InService on {previous}." in result.lines


def test_rollback_without_a_recorded_config_asks_for_one(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub_running(stub, described)
        stub.add_response("list_tags", {"Tags": []})
        result = cli("rollback", "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 1
    assert "No previous endpoint config is recorded" in result.err and "--endpoint-config NAME" in result.err


def test_a_multi_model_endpoint_is_updated_to_another_prefix_and_stays_multi_model(
    cli, clients, fake, described, fixed_names
):
    name = fixed_names(ENDPOINT)
    multi = described.model(OLD, "s3://bucket/models-v1/")
    multi["PrimaryContainer"]["Mode"] = "MultiModel"
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "InService", OLD, count=1))
        stub.add_response("describe_endpoint_config", described.endpoint_config(OLD, OLD))
        stub.add_response("describe_model", multi)
        model = {
            "ModelName": name,
            "ExecutionRoleArn": fake.role_arn,
            "PrimaryContainer": {"Image": fake.image, "Mode": "MultiModel", "ModelDataUrl": "s3://bucket/models-v2/"},
            "Tags": [{"Key": "sagebert:endpoint", "Value": ENDPOINT}],
        }
        stub_create(stub, described, name, model, config_request(name, 1))
        stub_update(stub, described, update_request(name))
        stub_states(stub, described, ("InService", name))

        result = update(cli, clients, "--model-data", "s3://bucket/models-v2")
        assert result.code == 0, result.err
        stub.assert_no_pending_responses()


def test_an_image_alone_cannot_change_an_endpoint_serving_a_model_package(cli, clients, described):
    package = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/disaster-tweets/1"
    packaged = described.model(OLD, "unused")
    packaged["PrimaryContainer"] = {"ModelPackageName": package}
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "InService", OLD, count=1))
        stub.add_response("describe_endpoint_config", described.endpoint_config(OLD, OLD))
        stub.add_response("describe_model", packaged)
        result = update(cli, clients, "--image", NEW_IMAGE)
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert f"serves model package {package}, whose image is fixed" in result.err
