"""`sagebert deploy` (the three endpoint kinds), `invoke`, `status` and `delete`.

moto covers model/config/endpoint creation (ServerlessConfig, AsyncInferenceConfig and
DataCaptureConfig included), invocation, Application Auto Scaling and deletion; endpoint failures,
which moto never produces, use botocore's Stubber with the exact requests expected. Updates and
rollbacks are in test_update.py.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from botocore.stub import Stubber

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"
PREDICTIONS = {
    "predictions": [
        {
            "label": "Real disaster",
            "label_id": 1,
            "probabilities": {"Not a disaster": 0.03, "Real disaster": 0.97},
            "truncated": False,
        },
        {
            "label": "Not a disaster",
            "label_id": 0,
            "probabilities": {"Not a disaster": 0.88, "Real disaster": 0.12},
            "truncated": True,
        },
    ]
}


@pytest.fixture
def completed_job(clients, fake) -> dict:
    """A Completed training job in moto (moto completes jobs at once)."""
    clients.sagemaker.create_training_job(
        TrainingJobName="job-1",
        RoleArn=fake.role_arn,
        AlgorithmSpecification={"TrainingImage": fake.image, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{fake.bucket}/sagebert/output/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    return clients.sagemaker.describe_training_job(TrainingJobName="job-1")


def deploy(cli, clients, *extra: str):
    return cli("deploy", "--endpoint", ENDPOINT, "--poll-interval", "0", *extra, clients=clients)


# ---- deploy -----------------------------------------------------------------------------------------
def test_deploy_creates_model_config_and_endpoint_from_the_training_job(
    cli, clients, sent, fake, completed_job, fixed_names
):
    result = deploy(
        cli,
        clients,
        "--training-job",
        "job-1",
        "--instance-type",
        "ml.c5.xlarge",
        "--env",
        "SAGEBERT_INFERENCE_PRECISION=int8",
        "--env",
        "SAGEMAKER_MODEL_SERVER_WORKERS=2",
    )

    assert result.code == 0, result.err
    name = fixed_names(ENDPOINT)
    assert sent.one("CreateModel") == {
        "ModelName": name,
        "ExecutionRoleArn": fake.role_arn,
        "PrimaryContainer": {
            "Image": fake.image,
            "Mode": "SingleModel",
            "ModelDataUrl": completed_job["ModelArtifacts"]["S3ModelArtifacts"],
            "Environment": {"SAGEBERT_INFERENCE_PRECISION": "int8", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
        },
        "Tags": [
            {"Key": "sagebert:endpoint", "Value": ENDPOINT},
            {"Key": "sagebert:training-job", "Value": "job-1"},
            {"Key": "sagebert:metric:train:progress", "Value": "100.0"},  # moto's canned FinalMetricDataList
        ],
    }
    assert sent.one("CreateEndpointConfig") == {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.c5.xlarge",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": [{"Key": "sagebert:endpoint", "Value": ENDPOINT}],
    }
    assert sent.one("CreateEndpoint") == {"EndpointName": ENDPOINT, "EndpointConfigName": name}
    assert f"==> {ENDPOINT}: InService (0s)" in result.lines
    assert f"Endpoint {ENDPOINT} is InService on {name}." in result.lines


def test_deploy_multi_model_sends_mode_multimodel_and_the_prefix(cli, clients, sent, fake):
    result = deploy(
        cli, clients, "--multi-model", f"s3://{fake.bucket}/models", "--image", fake.image, "--role", fake.role_arn
    )

    assert result.code == 0, result.err
    container = sent.one("CreateModel")["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == f"s3://{fake.bucket}/models/"


MODEL_FILES = {
    "config.json": b'{"model_type": "bert"}',
    "model.safetensors": bytes(range(256)) * 64,
    "model.int8-0123456789abcdef.onnx": b"onnx bytes",
    "1_Pooling/config.json": b"{}",
}


def put_model_archive(clients, bucket: str, key: str, model_files: dict[str, bytes]) -> str:
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for name, content in model_files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    clients.s3.put_object(Bucket=bucket, Key=key, Body=data.getvalue())
    return f"s3://{bucket}/{key}"


def objects_under(clients, bucket: str, prefix: str) -> dict[str, bytes]:
    listing = clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix) :]: clients.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_deploy_uncompressed_unpacks_the_archive_beside_it_once_and_sends_model_data_source(
    cli, clients, sent, fake, bucket
):
    archive = put_model_archive(clients, bucket, "sagebert/output/job-1/output/model.tar.gz", MODEL_FILES)
    prefix = "sagebert/output/job-1/output/model/"
    common = ("--model-data", archive, "--image", fake.image, "--role", fake.role_arn, "--uncompressed")

    first = deploy(cli, clients, *common)

    assert first.code == 0, first.err
    assert objects_under(clients, bucket, prefix) == MODEL_FILES  # every file, byte for byte, nothing else
    container = sent.one("CreateModel")["PrimaryContainer"]
    assert "ModelDataUrl" not in container
    assert container["ModelDataSource"] == {
        "S3DataSource": {"S3Uri": f"s3://{bucket}/{prefix}", "S3DataType": "S3Prefix", "CompressionType": "None"}
    }
    assert f"model data unpacked: 4 files, 0.0 MB under s3://{bucket}/{prefix}" in first.lines
    uploads = len(sent("PutObject"))

    second = cli("deploy", "--endpoint", "second", "--poll-interval", "0", *common, clients=clients)

    assert second.code == 0, second.err
    assert len(sent("PutObject")) == uploads and sent("GetObject")[-1]["Key"].endswith(".unpacked.json")
    assert f"model data already unpacked: 4 files, 0.0 MB under s3://{bucket}/{prefix}" in second.lines


def test_a_new_archive_at_the_same_place_is_unpacked_again_without_the_old_files(cli, clients, sent, fake, bucket):
    key = "sagebert/output/job-1/output/model.tar.gz"
    archive = put_model_archive(clients, bucket, key, MODEL_FILES)
    common = ("--model-data", archive, "--image", fake.image, "--role", fake.role_arn, "--uncompressed")
    assert deploy(cli, clients, *common).code == 0
    retrained = {"config.json": b'{"model_type": "bert", "retrained": true}', "model.safetensors": b"new weights"}
    put_model_archive(clients, bucket, key, retrained)

    result = cli("deploy", "--endpoint", "second", "--poll-interval", "0", *common, clients=clients)

    assert result.code == 0, result.err
    assert objects_under(clients, bucket, "sagebert/output/job-1/output/model/") == retrained


def test_update_uncompressed_serves_the_running_models_files_unpacked(cli, clients, sent, fake, bucket):
    archive = put_model_archive(clients, bucket, "sagebert/output/job-1/output/model.tar.gz", MODEL_FILES)
    assert deploy(cli, clients, "--model-data", archive, "--image", fake.image, "--role", fake.role_arn).code == 0

    def accepted(params, **_):  # moto answers UpdateEndpoint with a 500: SageMaker's answer, after validation
        from types import SimpleNamespace

        return SimpleNamespace(status_code=200, headers={}), {
            "EndpointArn": f"arn:aws:sagemaker:x:1:endpoint/{ENDPOINT}"
        }

    clients.sagemaker.meta.events.register("before-call.sagemaker.UpdateEndpoint", accepted)
    result = cli("update", "--endpoint", ENDPOINT, "--uncompressed", "--no-wait", clients=clients)

    assert result.code == 0, result.err
    first, second = (request["PrimaryContainer"] for request in sent("CreateModel"))
    assert first["ModelDataUrl"] == archive and "ModelDataSource" not in first
    assert second["ModelDataSource"]["S3DataSource"]["S3Uri"] == f"s3://{bucket}/sagebert/output/job-1/output/model/"
    assert "ModelDataUrl" not in second and second["Image"] == fake.image
    assert objects_under(clients, bucket, "sagebert/output/job-1/output/model/") == MODEL_FILES


def test_deploy_uncompressed_is_refused_for_a_multi_model_endpoint_before_anything_is_sent(cli, clients, sent, fake):
    result = deploy(
        cli,
        clients,
        "--multi-model",
        f"s3://{fake.bucket}/models",
        "--image",
        fake.image,
        "--role",
        fake.role_arn,
        "--uncompressed",
    )

    assert result.code == 1
    assert "--uncompressed does not apply to a multi-model endpoint" in result.err
    assert "loads each model's model.tar.gz from its prefix on demand" in result.err
    assert sent.calls == []


def test_deploy_from_model_data_needs_the_image_and_role(cli, clients, sent, fake):
    result = deploy(cli, clients, "--model-data", f"s3://{fake.bucket}/m/model.tar.gz")

    assert result.code == 1
    assert "--image and --role needed: without --training-job there is no job to take them from." in result.err
    assert sent("CreateModel") == []


def test_deploy_refuses_model_data_that_is_not_a_tar_gz(cli, clients, fake):
    result = deploy(
        cli, clients, "--model-data", f"s3://{fake.bucket}/m/", "--image", fake.image, "--role", fake.role_arn
    )

    assert result.code == 1
    assert "is not a .tar.gz file" in result.err and "--multi-model" in result.err


def test_deploy_onto_an_existing_endpoint_suggests_update(cli, clients, sent, completed_job):
    assert deploy(cli, clients, "--training-job", "job-1").code == 0

    result = deploy(cli, clients, "--training-job", "job-1")

    assert result.code == 1
    assert (
        f"Endpoint {ENDPOINT} already exists (InService). Fix: Roll out a new model with `sagebert update" in result.err
    )
    assert len(sent("CreateModel")) == 1


def test_deploy_of_an_unknown_training_job_is_one_not_found_line(cli, clients):
    result = deploy(cli, clients, "--training-job", "no-such-job")

    assert result.code == 1
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: There is no training job no-such-job in eu-west-1 (SageMaker: ")
    assert "Fix: Check the name (sagebert status lists recent training jobs) and the region" in result.err


def test_deploy_shows_progress_and_reports_the_failure_reason(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    job = described.training_job("job-1")
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_training_job", job, {"TrainingJobName": "job-1"})
        described.not_found(stub, "describe_endpoint", described.arn("endpoint", ENDPOINT))
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:x:1:model/m"})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"})
        stub.add_response("describe_endpoint_config", described.endpoint_config(name, name))
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:x:1:endpoint/e"},
            {"EndpointName": ENDPOINT, "EndpointConfigName": name},
        )
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "Creating", name))
        stub.add_response(
            "describe_endpoint",
            described.endpoint(
                ENDPOINT, "Failed", name, FailureReason="The primary container did not pass the ping health check."
            ),
        )

        result = deploy(cli, clients, "--training-job", "job-1")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert [line for line in result.lines if line.startswith("==> ")] == [
        f"==> {ENDPOINT}: Creating (0s)",
        f"==> {ENDPOINT}: Failed (0s)",
    ]
    assert (
        f"error: Endpoint {ENDPOINT} is Failed: The primary container did not pass the ping health check." in result.err
    )


PING_FAILED = "The primary container for production variant AllTraffic did not pass the ping health check."
MODEL_FAILED = (
    "2026-12-07 19:17:40,567 ERROR sagebert.serving.app: loading the model failed: /opt/ml/model holds no model: "
    "config.json is missing (model.int8-0.onnx)."
)


def seed_endpoint_log(clients, endpoint: str, streams: dict[str, list[str]]) -> None:
    """What SageMaker writes for an endpoint: group /aws/sagemaker/Endpoints/NAME, one stream per
    VARIANT/INSTANCE (moto writes none)."""
    import time

    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    clients.logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for offset, (stream, messages) in enumerate(streams.items()):
        clients.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": now + 10 * i + offset, "message": m} for i, m in enumerate(messages)]
        clients.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def stub_failed_deploy(stub, described, name: str, *descriptions: dict) -> None:
    job = described.training_job("job-1")
    stub.add_response("describe_training_job", job, {"TrainingJobName": "job-1"})
    described.not_found(stub, "describe_endpoint", described.arn("endpoint", ENDPOINT))
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:x:1:model/m"})
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"})
    stub.add_response("describe_endpoint_config", described.endpoint_config(name, name))
    stub.add_response(
        "create_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:x:1:endpoint/e"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": name},
    )
    for description in descriptions:
        stub.add_response("describe_endpoint", description)


def test_a_failed_deploy_names_the_usual_cause_and_the_containers_own_reason_from_its_log(
    cli, clients, described, fixed_names
):
    name = fixed_names(ENDPOINT)
    seed_endpoint_log(
        clients,
        ENDPOINT,
        {
            "AllTraffic/i-0aaa": ["2026-12-07 19:10:00,000 INFO sagebert.serve: serving /opt/ml/model", "older"],
            "AllTraffic/i-0bbb": ["2026-12-07 19:17:39,000 INFO sagebert.serve: serving /opt/ml/model", MODEL_FAILED],
        },
    )
    with Stubber(clients.sagemaker) as stub:
        stub_failed_deploy(
            stub, described, name, described.endpoint(ENDPOINT, "Failed", name, FailureReason=PING_FAILED)
        )
        result = deploy(cli, clients, "--training-job", "job-1")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert f"error: Endpoint {ENDPOINT} is Failed: {PING_FAILED}" in result.err
    assert "usual cause        the container did not answer GET /ping with 200 in time" in result.err
    assert "container says     loading the model failed: /opt/ml/model holds no model: config.json is missing" in (
        result.err
    )
    assert f"last 4 log lines of /aws/sagemaker/Endpoints/{ENDPOINT}:" in result.err
    assert f"    [AllTraffic/i-0bbb] {MODEL_FAILED}" in result.err.splitlines()


def test_a_deploy_that_times_out_shows_the_log_so_far(cli, clients, described, fixed_names):
    name = fixed_names(ENDPOINT)
    json_line = json.dumps({"level": "ERROR", "logger": "sagebert.serve", "message": "cannot start the server: x"})
    seed_endpoint_log(clients, ENDPOINT, {"AllTraffic/i-0ccc": [json_line]})
    with Stubber(clients.sagemaker) as stub:
        stub_failed_deploy(stub, described, name, described.endpoint(ENDPOINT, "Creating", name))
        result = deploy(cli, clients, "--training-job", "job-1", "--timeout", "0")

    assert result.code == 1
    assert "Stopped waiting: endpoint disaster-tweets is still Creating" in result.err
    assert "container says     cannot start the server: x" in result.err


def test_a_failed_endpoint_without_a_log_says_no_instance_started_the_container(cli, clients, described, fixed_names):
    name = fixed_names(ENDPOINT)
    reason = 'Failed to download model data for container "container_1" from URL: "s3://b/model.tar.gz".'
    with Stubber(clients.sagemaker) as stub:
        stub_failed_deploy(stub, described, name, described.endpoint(ENDPOINT, "Failed", name, FailureReason=reason))
        result = deploy(cli, clients, "--training-job", "job-1")

    assert result.code == 1
    assert "usual cause        SageMaker could not fetch or unpack the model data" in result.err
    assert f"no log lines in /aws/sagemaker/Endpoints/{ENDPOINT}" in result.err and "container says" not in result.err


QUOTA = (
    "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances, with current utilization of "
    "0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase for this "
    "quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this quota."
)


def test_a_deploy_refused_after_create_model_deletes_what_it_created(cli, clients, described, fixed_names):
    name = fixed_names(ENDPOINT)
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_training_job", described.training_job("job-1"), {"TrainingJobName": "job-1"})
        described.not_found(stub, "describe_endpoint", described.arn("endpoint", ENDPOINT))
        stub.add_response("create_model", {"ModelArn": described.arn("model", name)})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", name)})
        stub.add_response("describe_endpoint_config", described.endpoint_config(name, name))
        stub.add_client_error("create_endpoint", "ResourceLimitExceeded", QUOTA, 400)
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": name})
        stub.add_response("delete_model", {}, {"ModelName": name})

        result = deploy(cli, clients, "--training-job", "job-1", "--instance-type", "ml.g5.xlarge")
        stub.assert_no_pending_responses()

    assert result.code == 1
    assert f"deleted endpoint config {name} (a later step failed)" in result.lines
    assert f"deleted model {name} (a later step failed)" in result.lines
    assert "Request a higher 'ml.g5.xlarge for endpoint usage' quota (now 0 Instances, 0 in use" in result.err


@pytest.mark.parametrize("timeout", ["10", "3601"])
def test_a_startup_timeout_sagemaker_refuses_is_refused_before_anything_is_created(
    cli, clients, sent, completed_job, timeout
):
    result = deploy(cli, clients, "--training-job", "job-1", "--startup-timeout", timeout)

    assert result.code == 1
    assert f"--startup-timeout is {timeout}; SageMaker allows 60 to 3600" in result.err
    assert sent("CreateModel") == [] and sent("CreateEndpointConfig") == []


def test_deploy_serverless_sends_a_serverless_config_and_no_instances(cli, clients, sent, completed_job, fixed_names):
    result = deploy(cli, clients, "--training-job", "job-1", "--serverless", "2048:5:1")

    assert result.code == 0, result.err
    assert sent.one("CreateEndpointConfig")["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": fixed_names(ENDPOINT),
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5, "ProvisionedConcurrency": 1},
        }
    ]
    described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=fixed_names(ENDPOINT))
    assert described["ProductionVariants"][0]["ServerlessConfig"]["MemorySizeInMB"] == 2048


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--serverless", "1536:5"), "Serverless memory 1536 MB is not one SageMaker offers"),
        (("--serverless", "2048:201"), "Serverless MaxConcurrency is 201; SageMaker allows 1 to 200"),
        (("--serverless", "2048:5:6"), "Serverless ProvisionedConcurrency is 6; SageMaker allows 1 to 5"),
        (("--serverless", "2048:5", "--instance-count", "2"), "--instance-count do not apply to a serverless endpoint"),
        (("--serverless", "2048:5", "--data-capture", "s3://sagebert-test/capture"), "cannot have data capture"),
        (("--serverless", "2048:5", "--async", "s3://sagebert-test/async"), "cannot have asynchronous inference"),
        (("--sns-success", "arn:aws:sns:eu-west-1:123456789012:ok"), "only apply with --async S3_URI"),
        (("--sampling-percent", "10"), "--sampling-percent only applies with --data-capture"),
    ],
)
def test_endpoint_kinds_sagemaker_refuses_are_refused_before_anything_is_created(
    cli, clients, sent, completed_job, extra, message
):
    made_by_fixtures = len(sent.calls)

    result = deploy(cli, clients, "--training-job", "job-1", *extra)

    assert result.code == 1
    assert message in result.err
    assert sent.calls[made_by_fixtures:] == []  # refused before the first call to AWS


def test_deploy_async_sends_the_output_failure_and_sns_topics(cli, clients, sent, fake, completed_job):
    result = deploy(
        cli,
        clients,
        "--training-job",
        "job-1",
        "--async",
        f"s3://{fake.bucket}/async/out",
        "--async-failure",
        f"s3://{fake.bucket}/async/failed",
        "--sns-success",
        f"arn:aws:sns:{fake.region}:{fake.account}:sagebert-ok",
        "--sns-error",
        f"arn:aws:sns:{fake.region}:{fake.account}:sagebert-error",
        "--async-concurrency",
        "4",
    )

    assert result.code == 0, result.err
    assert sent.one("CreateEndpointConfig")["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": f"s3://{fake.bucket}/async/out/",
            "S3FailurePath": f"s3://{fake.bucket}/async/failed/",
            "NotificationConfig": {
                "SuccessTopic": f"arn:aws:sns:{fake.region}:{fake.account}:sagebert-ok",
                "ErrorTopic": f"arn:aws:sns:{fake.region}:{fake.account}:sagebert-error",
            },
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }


def test_deploy_with_data_capture_records_input_and_output_of_every_content_type(
    cli, clients, sent, fake, completed_job
):
    result = deploy(
        cli,
        clients,
        "--training-job",
        "job-1",
        "--data-capture",
        f"s3://{fake.bucket}/capture",
        "--sampling-percent",
        "20",
    )

    assert result.code == 0, result.err
    assert sent.one("CreateEndpointConfig")["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": f"s3://{fake.bucket}/capture/",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": ["application/json", "application/jsonlines"],
            "CsvContentTypes": ["text/csv"],
        },
    }


# ---- invoke -----------------------------------------------------------------------------------------
def test_invoke_sends_json_inputs_and_prints_label_probability_and_text(cli, clients, sent, endpoint_answers):
    endpoint_answers([json.dumps(PREDICTIONS)])

    result = cli(
        "invoke", "--endpoint", ENDPOINT, "Just happened a terrible car crash", "I love fruits", clients=clients
    )

    assert result.code == 0, result.err
    request = sent.one("InvokeEndpoint")
    assert json.loads(request["Body"]) == {"inputs": ["Just happened a terrible car crash", "I love fruits"]}
    assert (request["ContentType"], request["Accept"]) == ("application/json", "application/json")
    assert result.lines == [
        "Real disaster   0.970  Just happened a terrible car crash",
        "Not a disaster  0.880  I love fruits  [truncated]",
    ]


def test_invoke_csv_sends_one_text_per_line(cli, clients, sent, endpoint_answers, tmp_path):
    endpoint_answers([json.dumps(PREDICTIONS)])
    texts = tmp_path / "texts.txt"
    texts.write_text("Forest fire, near La Ronge\n\nI love fruits\n")

    result = cli("invoke", "--endpoint", ENDPOINT, "--content-type", "csv", "--file", str(texts), clients=clients)

    assert result.code == 0, result.err
    request = sent.one("InvokeEndpoint")
    assert request["ContentType"] == "text/csv"
    assert request["Body"] == b'"Forest fire, near La Ronge"\nI love fruits\n'


def test_invoke_target_model_sends_it_for_a_multi_model_endpoint(cli, clients, sent, endpoint_answers):
    endpoint_answers([json.dumps({"predictions": PREDICTIONS["predictions"][:1]})])

    result = cli("invoke", "--endpoint", ENDPOINT, "--target-model", "bert-v3.tar.gz", "fire!", clients=clients)

    assert result.code == 0, result.err
    assert sent.one("InvokeEndpoint")["TargetModel"] == "bert-v3.tar.gz"


def test_invoke_says_so_when_the_answer_is_not_sagebert_predictions(cli, clients, endpoint_answers):
    endpoint_answers(["<html>oops</html>"])

    result = cli("invoke", "--endpoint", ENDPOINT, "hello", clients=clients)

    assert result.code == 1
    assert "The endpoint's answer is not sagebert predictions" in result.err and "--raw" in result.err


def test_invoke_raw_prints_the_answer_as_it_came(cli, clients, endpoint_answers):
    endpoint_answers(['{"predictions": []}'])

    result = cli("invoke", "--endpoint", ENDPOINT, "--raw", "hello", clients=clients)

    assert (result.code, result.out) == (0, '{"predictions": []}\n')


def test_invoke_of_a_missing_file_is_one_line_without_a_traceback(cli, clients, sent, tmp_path):
    result = cli("invoke", "--endpoint", ENDPOINT, "--file", str(tmp_path / "missing.txt"), clients=clients)

    assert result.code == 1
    assert (
        result.err
        == f"error: Cannot read --file {tmp_path / 'missing.txt'}: No such file or directory. Fix: Check the path (one text per line; '-' reads stdin).\n"
    )
    assert sent("InvokeEndpoint") == []


def test_invoke_of_a_file_that_is_not_utf8_says_how_to_convert_it(cli, clients, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_bytes("caf\xe9 fire\n".encode("latin-1"))

    result = cli("invoke", "--endpoint", ENDPOINT, "--file", str(texts), clients=clients)

    assert result.code == 1 and result.err.count("\n") == 1
    assert "is not UTF-8 text (byte 3: b'\\xe9 fire\\n')" in result.err and "iconv" in result.err


def test_invoke_of_an_endpoint_aws_does_not_know_is_one_not_found_line(cli, clients, fake):
    with Stubber(clients.runtime) as stub:  # moto answers every InvokeEndpoint; AWS says this
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ValidationError",
            service_message=f"Endpoint {ENDPOINT} of account {fake.account} not found.",
            http_status_code=400,
        )
        result = cli("invoke", "--endpoint", ENDPOINT, "fire", clients=clients)

    assert result.code == 1 and result.err.count("\n") == 1
    assert result.err.startswith(f"error: Not found: InvokeEndpoint failed: Endpoint {ENDPOINT} of account")
    assert "and the region (eu-west-1)" in result.err


def test_invoke_async_hands_the_object_over_and_waits_for_the_answer(cli, clients, sent, fake, bucket, aws):
    requests.post(
        f"{aws}/moto-api/static/sagemaker/async-endpoint-results",
        json={"account_id": fake.account, "region": fake.region, "results": [{"data": json.dumps(PREDICTIONS)}]},
        timeout=10,
    ).raise_for_status()

    result = cli(
        "invoke",
        "--endpoint",
        ENDPOINT,
        "--async",
        f"s3://{bucket}/in/texts.jsonl",
        "--wait",
        "--poll-interval",
        "0",
        clients=clients,
    )

    assert result.code == 0, result.err
    request = sent.one("InvokeEndpointAsync")
    assert request == {
        "EndpointName": ENDPOINT,
        "InputLocation": f"s3://{bucket}/in/texts.jsonl",
        "ContentType": "application/jsonlines",
        "Accept": "application/jsonlines",
    }
    assert result.lines[-1] == json.dumps(PREDICTIONS)


def test_invoke_async_takes_no_texts(cli, clients, sent):
    result = cli("invoke", "--endpoint", ENDPOINT, "--async", "s3://sagebert-test/in/t.jsonl", "fire", clients=clients)

    assert result.code == 1 and "--async sends an object already in S3" in result.err
    assert sent("InvokeEndpointAsync") == []


# ---- status -----------------------------------------------------------------------------------------
def test_status_of_an_endpoint_shows_its_config_model_image_and_environment(
    cli, clients, fake, completed_job, fixed_names
):
    deploy(cli, clients, "--training-job", "job-1", "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=2")

    result = cli("status", "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 0, result.err
    assert result.lines[0] == f"Endpoint {ENDPOINT}: InService"
    assert re.search(rf"^  config\s+{fixed_names(ENDPOINT)}$", result.out, re.M)
    assert re.search(rf"^  image\s+{re.escape(fake.image)}$", result.out, re.M)
    assert re.search(r"^  env\s+SAGEMAKER_MODEL_SERVER_WORKERS=2$", result.out, re.M)


def test_status_of_a_failed_endpoint_explains_it_from_its_log(cli, clients, completed_job, fixed_names):
    deploy(cli, clients, "--training-job", "job-1")
    seed_endpoint_log(clients, ENDPOINT, {"AllTraffic/i-0ddd": [MODEL_FAILED]})

    def failed(parsed, **_):  # moto's endpoints never fail: SageMaker's answer for one that did
        parsed.update(EndpointStatus="Failed", FailureReason=PING_FAILED)

    clients.sagemaker.meta.events.register("after-call.sagemaker.DescribeEndpoint", failed)
    result = cli("status", "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 1
    assert f"  failure reason     {PING_FAILED}" in result.lines
    assert "container says     loading the model failed: /opt/ml/model holds no model" in result.err
    assert f"    [AllTraffic/i-0ddd] {MODEL_FAILED}" in result.err.splitlines()


def test_status_without_a_name_lists_endpoints_and_recent_training_jobs(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")

    result = cli("status", clients=clients)

    assert result.code == 0
    assert re.search(rf"^  {ENDPOINT}\s+InService$", result.out, re.M)
    assert re.search(r"^  job-1\s+Completed$", result.out, re.M)


# ---- delete -----------------------------------------------------------------------------------------
def test_delete_asks_first_and_deletes_nothing_without_a_yes(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")

    result = cli("delete", "--endpoint", ENDPOINT, clients=clients, stdin="n\n")

    assert result.code == 1
    assert "Delete these? [y/N]" in result.out
    assert "Nothing deleted" in result.err
    assert clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def test_delete_after_a_yes_at_the_prompt_deletes_the_endpoint_only(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")

    result = cli("delete", "--endpoint", ENDPOINT, clients=clients, stdin="y\n")

    assert result.code == 0, result.err
    assert [e["EndpointName"] for e in clients.sagemaker.list_endpoints()["Endpoints"]] == []
    assert len(clients.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_delete_with_configs_and_models_removes_the_previous_ones_too_but_nothing_else(
    cli, clients, fake, completed_job
):
    sm = clients.sagemaker
    container = {"Image": fake.image, "ModelDataUrl": "s3://bucket/old/model.tar.gz"}
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
    owned = [{"Key": "sagebert:endpoint", "Value": ENDPOINT}]
    for name, tags in (("disaster-tweets-kept", owned), ("disaster-tweets-unrelated", [])):
        sm.create_model(ModelName=name, ExecutionRoleArn=fake.role_arn, PrimaryContainer=container, Tags=tags)
        sm.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[{**variant, "ModelName": name}], Tags=tags
        )
    deploy(cli, clients, "--training-job", "job-1")
    current = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    result = cli(
        "delete",
        "--endpoint",
        ENDPOINT,
        "--with-configs",
        "--with-models",
        "--yes",
        "--poll-interval",
        "0",
        clients=clients,
    )

    assert result.code == 0, result.err
    assert f"deleted endpoint config {current}" in result.lines
    assert "deleted endpoint config disaster-tweets-kept" in result.lines
    assert "deleted model disaster-tweets-kept" in result.lines
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
        "disaster-tweets-unrelated"
    ]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["disaster-tweets-unrelated"]


def make_config(clients, fake, name: str, endpoint_tag: str | None) -> None:
    """A model and a config of the same name, tagged for ``endpoint_tag`` (None: not made by sagebert)."""
    tags = [{"Key": "sagebert:endpoint", "Value": endpoint_tag}] if endpoint_tag else []
    container = {"Image": fake.image, "ModelDataUrl": "s3://bucket/old/model.tar.gz"}
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
    clients.sagemaker.create_model(
        ModelName=name, ExecutionRoleArn=fake.role_arn, PrimaryContainer=container, Tags=tags
    )
    clients.sagemaker.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[{**variant, "ModelName": name}], Tags=tags
    )


def delete(cli, clients, *extra: str):
    return cli("delete", "--endpoint", ENDPOINT, "--yes", "--poll-interval", "0", *extra, clients=clients)


def names(clients) -> tuple[list[str], list[str]]:
    sm = clients.sagemaker
    return (
        sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]),
        sorted(m["ModelName"] for m in sm.list_models()["Models"]),
    )


def test_delete_finds_what_a_failed_deploy_left_after_the_endpoint_is_gone(cli, clients, fake):
    make_config(clients, fake, "disaster-tweets-20261126-120000-abcd", ENDPOINT)
    make_config(clients, fake, "disaster-tweets-unrelated", None)

    result = delete(cli, clients, "--with-models")

    assert result.code == 0, result.err
    assert "deleted endpoint config disaster-tweets-20261126-120000-abcd" in result.lines
    assert names(clients) == (["disaster-tweets-unrelated"], ["disaster-tweets-unrelated"])


def test_delete_never_deletes_a_config_or_model_another_endpoint_uses(cli, clients, fake, completed_job):
    make_config(clients, fake, "disaster-tweets-shared", ENDPOINT)
    clients.sagemaker.create_endpoint(EndpointName="other-endpoint", EndpointConfigName="disaster-tweets-shared")
    deploy(cli, clients, "--training-job", "job-1")

    result = delete(cli, clients, "--with-models")

    assert result.code == 0, result.err
    assert (
        "Keeping endpoint config disaster-tweets-shared: endpoint other-endpoint runs it, is moving to it or keeps it "
        "for rollback" in result.lines
    )
    assert "Keeping model disaster-tweets-shared: endpoint config disaster-tweets-shared still uses it" in result.lines
    assert names(clients) == (["disaster-tweets-shared"], ["disaster-tweets-shared"])


def test_delete_keeps_a_current_config_sagebert_did_not_make(cli, clients, fake):
    make_config(clients, fake, "hand-made", None)
    clients.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="hand-made")

    result = delete(cli, clients, "--with-models")

    assert result.code == 0, result.err
    assert f"Keeping endpoint config hand-made: not made by sagebert for {ENDPOINT}" in result.lines
    assert names(clients) == (["hand-made"], ["hand-made"])


def test_delete_orphans_keeps_the_endpoint_and_its_rollback_config(cli, clients, fake, completed_job):
    make_config(clients, fake, "disaster-tweets-previous", ENDPOINT)
    make_config(clients, fake, "disaster-tweets-failed-update", ENDPOINT)
    deploy(cli, clients, "--training-job", "job-1")
    endpoint = clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    clients.sagemaker.add_tags(
        ResourceArn=endpoint["EndpointArn"],
        Tags=[{"Key": "sagebert:previous-endpoint-config", "Value": "disaster-tweets-previous"}],
    )

    result = delete(cli, clients, "--orphans")

    assert result.code == 0, result.err
    assert names(clients)[0] == sorted([endpoint["EndpointConfigName"], "disaster-tweets-previous"])
    assert "deleted model disaster-tweets-failed-update" in result.lines
    assert clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def updating_to(clients, endpoint: str, config: str) -> None:
    """moto has no UpdateEndpoint: DescribeEndpoint of ``endpoint`` answers as during an update to
    ``config`` — EndpointStatus Updating and PendingDeploymentSummary {EndpointConfigName, StartTime},
    the shape of the API reference — patched into moto's parsed answer."""

    def patch(parsed, **_):
        if parsed.get("EndpointName") == endpoint:
            parsed["EndpointStatus"] = "Updating"
            parsed["PendingDeploymentSummary"] = {"EndpointConfigName": config, "StartTime": parsed["CreationTime"]}

    clients.sagemaker.meta.events.register("after-call.sagemaker.DescribeEndpoint", patch)


def test_delete_orphans_during_an_update_keeps_the_config_and_model_it_is_moving_to(cli, clients, fake, completed_job):
    make_config(clients, fake, "disaster-tweets-pending", ENDPOINT)  # what `update --no-wait` created
    make_config(clients, fake, "disaster-tweets-failed-update", ENDPOINT)
    deploy(cli, clients, "--training-job", "job-1")
    running = clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    updating_to(clients, ENDPOINT, "disaster-tweets-pending")

    result = delete(cli, clients, "--orphans")

    assert result.code == 0, result.err
    assert names(clients)[0] == sorted([running, "disaster-tweets-pending"])
    assert "disaster-tweets-pending" in names(clients)[1]
    assert "deleted model disaster-tweets-failed-update" in result.lines


def test_delete_keeps_a_config_another_endpoint_is_moving_to(cli, clients, fake, completed_job):
    make_config(clients, fake, "disaster-tweets-next", ENDPOINT)
    make_config(clients, fake, "other-config", None)
    clients.sagemaker.create_endpoint(EndpointName="other-endpoint", EndpointConfigName="other-config")
    updating_to(clients, "other-endpoint", "disaster-tweets-next")
    deploy(cli, clients, "--training-job", "job-1")

    result = delete(cli, clients, "--with-models")

    assert result.code == 0, result.err
    assert (
        "Keeping endpoint config disaster-tweets-next: endpoint other-endpoint runs it, is moving to it or keeps it "
        "for rollback"
    ) in result.lines
    assert "disaster-tweets-next" in names(clients)[0] and "disaster-tweets-next" in names(clients)[1]


def test_delete_removes_autoscaling_before_the_endpoint(cli, clients, completed_job):
    deploy(cli, clients, "--training-job", "job-1")
    assert (
        cli(
            "autoscale",
            "--endpoint",
            ENDPOINT,
            "--min",
            "1",
            "--max",
            "3",
            "--target-invocations",
            "50",
            clients=clients,
        ).code
        == 0
    )

    result = delete(cli, clients, "--with-models")

    assert result.code == 0, result.err
    assert result.lines.index(f"removed autoscaling of {ENDPOINT}") < result.lines.index(f"deleted endpoint {ENDPOINT}")
    assert clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert clients.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert names(clients) == ([], [])
