"""`--dry-run` plans: every command that changes something prints its requests, in order, and
changes nothing.

The reference loop of test_lifecycle.py again, against moto: before each command runs for real,
the same command runs with ``--dry-run --json``; its plan must be one JSON line per request, each
valid by botocore's service model, and moto's state (objects, jobs, models, configs, endpoints,
packages, scaling, alarms) must be the same afterwards. moto has no UpdateEndpoint: the dry runs
of `update` and `rollback` are where their exact requests are checked.
"""

from __future__ import annotations

import json

import pytest
from botocore.validate import ParamValidator

from sagebert.aws.plan import is_read
from sagebert.aws.validation import service_model

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"
# An autoscaled endpoint moving to another instance type: autoscaling off, the update, the config
# it left recorded for rollback, autoscaling back on.
SWITCH_AUTOSCALED = (
    "DeleteScalingPolicy",
    "DeregisterScalableTarget",
    "UpdateEndpoint",
    "AddTags",
    "RegisterScalableTarget",
    "PutScalingPolicy",
)
SERVICES = {
    "CreateBucket": "s3",
    "PutObject": "s3",
    "CreateMultipartUpload": "s3",
    "RegisterScalableTarget": "application-autoscaling",
    "PutScalingPolicy": "application-autoscaling",
    "DeregisterScalableTarget": "application-autoscaling",
    "DeleteScalingPolicy": "application-autoscaling",
    "PutMetricAlarm": "cloudwatch",
    "DeleteAlarms": "cloudwatch",
}


def state(clients, bucket: str) -> dict:
    """Everything in moto a command could create, change or delete."""
    sm, scaling = clients.sagemaker, clients.autoscaling
    objects = clients.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        "objects": sorted((o["Key"], o["ETag"]) for o in objects),
        "training jobs": sorted(
            (j["TrainingJobName"], j["TrainingJobStatus"]) for j in sm.list_training_jobs()["TrainingJobSummaries"]
        ),
        "transform jobs": sorted(j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]),
        "models": sorted(m["ModelName"] for m in sm.list_models()["Models"]),
        "configs": sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]),
        "endpoints": sorted(
            (
                e["EndpointName"],
                e["EndpointStatus"],
                sm.describe_endpoint(EndpointName=e["EndpointName"])["EndpointConfigName"],
            )
            for e in sm.list_endpoints()["Endpoints"]
        ),
        "packages": sorted(
            (p["ModelPackageArn"], p.get("ModelApprovalStatus"))
            for p in sm.list_model_packages(ModelPackageType="Versioned")["ModelPackageSummaryList"]
        ),
        "package groups": sorted(
            g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        ),
        "scalable targets": scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"],
        "scaling policies": scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"],
        "alarms": sorted(a["AlarmName"] for a in clients.cloudwatch.describe_alarms()["MetricAlarms"]),
    }


def invalid(operation: str, request: dict) -> str | None:
    """What botocore's validator finds wrong with ``request`` (None: nothing)."""
    service = SERVICES.get(operation, "sagemaker")
    shape = service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else None


@pytest.fixture
def planned(cli, clients, fake):
    """``planned(*argv)``: the command's --dry-run --json plan as (operation, request) pairs,
    after checking every line is a valid request and moto's state did not move."""

    def run(*argv: str) -> list[tuple[str, dict]]:
        before = state(clients, fake.bucket)
        result = cli(*argv, "--dry-run", "--json", clients=clients)
        assert result.code == 0, f"sagebert {' '.join(argv)} --dry-run -> {result.code}:\n{result.out}\n{result.err}"
        steps = [json.loads(line) for line in result.lines]
        assert all(set(step) == {"operation", "request"} for step in steps), result.out
        for step in steps:
            problem = invalid(step["operation"], step["request"])
            assert problem is None, f"{step['operation']}: {problem}"
        assert state(clients, fake.bucket) == before, f"sagebert {' '.join(argv)} --dry-run changed moto"
        return [(step["operation"], step["request"]) for step in steps]

    return run


def operations(plan: list[tuple[str, dict]]) -> list[str]:
    return [operation for operation, _ in plan]


def test_every_command_plans_its_requests_in_order_and_changes_nothing(
    cli, clients, fake, bucket, model_in_s3, ecr_image, update_endpoint_stand_in, planned
):
    data = f"s3://{bucket}/sagebert/data"

    def run(*argv: str) -> None:
        result = cli(*argv, clients=clients)
        assert result.code == 0, f"sagebert {' '.join(argv)} -> {result.code}:\n{result.out}\n{result.err}"

    upload = ("upload-data", "local_test/data", data)
    plan = planned(*upload)
    assert {op for op, _ in plan} == {"PutObject"}
    assert sorted(r["Key"] for _, r in plan) == ["sagebert/data/testing/test.csv", "sagebert/data/training/train.csv"]
    run(*upload)

    inputs = ("--image", fake.image, "--role", fake.role_arn, "--data", data)
    train = ("train", *inputs, "--job-name", "tweets-1", "--wait")
    [(operation, request)] = planned(*train)
    assert operation == "CreateTrainingJob" and request["TrainingJobName"] == "tweets-1"
    assert set(request["InputDataConfig"][i]["ChannelName"] for i in range(2)) == {"training", "testing"}
    run(*train[:-1])
    model_in_s3("tweets-1", 0.7993)

    tune = ("tune", *inputs, "--name", "tune-1", "--max-jobs", "2")
    assert operations(planned(*tune)) == ["CreateHyperParameterTuningJob"]

    register = ("register", "--training-job", "tweets-1", "--group", "disaster-tweets")
    assert operations(planned(*register)) == ["PutObject", "CreateModelPackageGroup", "CreateModelPackage"]

    deploy = ("deploy", "--training-job", "tweets-1", "--endpoint", ENDPOINT, "--poll-interval", "0")
    plan = planned(*deploy)
    assert operations(plan) == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    config = plan[1][1]["EndpointConfigName"]
    assert plan[2][1] == {"EndpointName": ENDPOINT, "EndpointConfigName": config}
    assert plan[1][1]["ProductionVariants"][0]["ModelName"] == plan[0][1]["ModelName"]
    run(*deploy)
    first_config = clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    autoscale = ("autoscale", "--endpoint", ENDPOINT, "--min", "1", "--max", "4", "--target-invocations", "100")
    assert operations(planned(*autoscale)) == ["RegisterScalableTarget", "PutScalingPolicy"]
    run(*autoscale)

    # moto has no UpdateEndpoint: the plan is where the exact request is checked.
    update = ("update", "--endpoint", ENDPOINT, "--training-job", "tweets-1", "--instance-type", "ml.c5.xlarge")
    plan = planned(*update, "--poll-interval", "0")
    assert operations(plan) == ["CreateModel", "CreateEndpointConfig", *SWITCH_AUTOSCALED]
    requests = dict(plan)
    assert requests["UpdateEndpoint"] == {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": plan[1][1]["EndpointConfigName"],
        "RetainAllVariantProperties": True,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": 0,
            }
        },
    }
    assert requests["CreateEndpointConfig"]["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert update_endpoint_stand_in == []
    run(*update, "--poll-interval", "0")

    rollback = ("rollback", "--endpoint", ENDPOINT, "--poll-interval", "0")
    plan = planned(*rollback)
    assert operations(plan) == list(SWITCH_AUTOSCALED)
    assert dict(plan)["UpdateEndpoint"]["EndpointConfigName"] == first_config

    transform = (
        "transform",
        "--endpoint",
        ENDPOINT,
        "--input",
        f"{data}/testing/",
        "--output",
        f"s3://{bucket}/scored/",
        "--wait",
    )
    assert operations(planned(*transform)) == ["CreateTransformJob"]

    stop = ("stop", "--training-job", "tweets-1")
    assert planned(*stop) == [("StopTrainingJob", {"TrainingJobName": "tweets-1"})]

    delete = ("delete", "--endpoint", ENDPOINT, "--with-models", "--poll-interval", "0")
    plan = planned(*delete)
    configs = sorted(c["EndpointConfigName"] for c in clients.sagemaker.list_endpoint_configs()["EndpointConfigs"])
    models = sorted(m["ModelName"] for m in clients.sagemaker.list_models()["Models"])
    assert operations(plan) == [
        "DeleteScalingPolicy",
        "DeregisterScalableTarget",
        "DeleteEndpoint",
        *["DeleteEndpointConfig"] * len(configs),
        *["DeleteModel"] * len(models),
    ]
    assert sorted(r["EndpointConfigName"] for op, r in plan if op == "DeleteEndpointConfig") == configs
    assert sorted(r["ModelName"] for op, r in plan if op == "DeleteModel") == models


def test_the_text_plan_numbers_the_changes_and_says_what_it_read(cli, clients, fake, trained):
    trained("job-1", 0.8)

    result = cli("deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--dry-run", clients=clients)

    assert result.code == 0, result.err
    print(result.out)
    assert result.lines[0] == "Plan (3 changes; dry run: nothing was changed):"
    numbered = [line.split()[:3] for line in result.lines if line.lstrip()[:1].isdigit()]
    assert numbered == [
        ["1.", "sagemaker", "CreateModel"],
        ["2.", "sagemaker", "CreateEndpointConfig"],
        ["3.", "sagemaker", "CreateEndpoint"],
    ]
    assert '  read: sagemaker DescribeTrainingJob {"TrainingJobName": "job-1"}' in result.lines
    assert f'  read: sagemaker DescribeEndpoint {{"EndpointName": "{ENDPOINT}"}}' in result.lines
    assert clients.sagemaker.list_models()["Models"] == []


def test_upload_data_plans_each_object_without_its_content(cli, clients, bucket):
    result = cli("upload-data", "local_test/data", f"s3://{bucket}/d", "--dry-run", "--json", clients=clients)

    assert result.code == 0, result.err
    print(result.out)
    requests = [json.loads(line)["request"] for line in result.lines]
    assert [(r["Bucket"], r["Key"]) for r in requests] == [
        (bucket, "d/testing/test.csv"),
        (bucket, "d/training/train.csv"),
    ]
    assert all(r["Body"].startswith("<file ") and r["Body"].endswith(".csv>") for r in requests)
    assert "Contents" not in clients.s3.list_objects_v2(Bucket=bucket)


def test_json_without_dry_run_is_a_usage_error(cli, clients):
    result = cli("delete", "--endpoint", ENDPOINT, "--json", clients=clients)

    assert result.code == 2
    assert "--json prints a plan, so it goes with --dry-run" in result.err


# ---- GPU hosts, routing and rolling updates, through the CLI ---------------------------------------------
def test_deploy_to_a_gpu_instance_sets_the_ami_the_cuda_13_image_needs_and_the_routing(planned, trained):
    trained("job-1", 0.8)

    plan = planned(
        "deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--instance-type", "ml.g5.xlarge",
        "--routing", "least-outstanding",
    )  # fmt: skip

    [variant] = dict(plan)["CreateEndpointConfig"]["ProductionVariants"]
    assert variant["InferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


def test_deploy_refuses_an_ami_whose_driver_is_too_old_for_the_image_before_anything_is_sent(
    cli, clients, sent, trained
):
    trained("job-1", 0.8)
    sent.calls.clear()

    result = cli(
        "deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--instance-type", "ml.g4dn.xlarge",
        "--inference-ami-version", "al2-ami-sagemaker-inference-gpu-2", clients=clients,
    )  # fmt: skip

    assert result.code == 1
    assert "has NVIDIA driver 535; the image's CUDA 13.0 needs 580" in result.err
    assert "--inference-ami-version al2023-ami-sagemaker-inference-gpu-4-1" in result.err
    assert [operation for operation, _ in sent.calls if not is_read(operation)] == []


def test_a_gpu_transform_of_the_cuda_13_image_is_refused_before_anything_is_created(cli, clients, sent, trained):
    trained("job-1", 0.8)
    sent.calls.clear()

    result = cli(
        "transform", "--training-job", "job-1", "--input", "s3://sagebert-test/in/", "--output",
        "s3://sagebert-test/out/", "--instance-type", "ml.g5.xlarge", clients=clients,
    )  # fmt: skip

    assert result.code == 1
    assert "Batch transform cannot run this image on ml.g5.xlarge" in result.err and "535" in result.err
    assert [operation for operation, _ in sent.calls if not is_read(operation)] == []
    assert clients.sagemaker.list_transform_jobs()["TransformJobSummaries"] == []


def test_a_cuda_12_transform_on_gpu_names_the_535_ami(planned, trained):
    trained("job-1", 0.8)

    plan = planned(
        "transform", "--training-job", "job-1", "--input", "s3://sagebert-test/in/", "--output",
        "s3://sagebert-test/out/", "--instance-type", "ml.g5.xlarge", "--image-cuda", "12.x",
        "--transform-ami-version", "al2-ami-sagemaker-batch-gpu-535", "--wait",
    )  # fmt: skip

    # --wait: the model made for the job is deleted once it ends, and the plan says so.
    assert operations(plan) == ["CreateModel", "CreateTransformJob", "DeleteModel"]
    assert dict(plan)["DeleteModel"] == {"ModelName": dict(plan)["CreateModel"]["ModelName"]}
    assert dict(plan)["CreateTransformJob"]["TransformResources"] == {
        "InstanceType": "ml.g5.xlarge",
        "InstanceCount": 1,
        "TransformAmiVersion": "al2-ami-sagemaker-batch-gpu-535",
    }


def test_update_rolling_sends_a_rolling_update_policy_and_keeps_the_routing(cli, clients, planned, trained):
    trained("job-1", 0.8)
    deployed = cli(
        "deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--instance-count", "4", "--routing",
        "least-outstanding", "--poll-interval", "0", clients=clients,
    )  # fmt: skip
    assert deployed.code == 0, deployed.err

    plan = planned(
        "update", "--endpoint", ENDPOINT, "--training-job", "job-1", "--rolling", "25%:300", "--rollback-batch", "2",
        "--poll-interval", "0",
    )  # fmt: skip

    requests = dict(plan)
    assert requests["UpdateEndpoint"]["DeploymentConfig"] == {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            "WaitIntervalInSeconds": 300,
            "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
        }
    }
    [variant] = requests["CreateEndpointConfig"]["ProductionVariants"]
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


def test_update_rolling_on_a_one_instance_endpoint_is_refused_before_anything_is_created(cli, clients, sent, trained):
    trained("job-1", 0.8)
    assert cli("deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--no-wait", clients=clients).code == 0
    sent.calls.clear()

    result = cli("update", "--endpoint", ENDPOINT, "--training-job", "job-1", "--rolling", "1", clients=clients)

    assert result.code == 1 and "Scale to 2+ instances first" in result.err
    assert [operation for operation, _ in sent.calls if not is_read(operation)] == []


def test_a_large_upload_is_planned_as_its_multipart_requests(cli, clients, bucket, tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "train.csv").write_bytes(b"label,sentence\n" + b"1,x\n" * (9 * 1024 * 1024 // 4))

    result = cli("upload-data", str(tmp_path), f"s3://{bucket}/big", "--dry-run", "--json", clients=clients)

    assert result.code == 0, result.err
    steps = [json.loads(line) for line in result.lines]
    operations = [step["operation"] for step in steps]
    assert operations[0] == "CreateMultipartUpload" and operations[-1] == "CompleteMultipartUpload"
    assert operations[1:-1] == ["UploadPart", "UploadPart"]  # 8 MiB parts of a 9 MiB file
    assert all(step["request"]["Key"] == "big/training/train.csv" for step in steps)
    assert clients.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert "Contents" not in clients.s3.list_objects_v2(Bucket=bucket)


def test_shadow_plans_its_model_config_and_update_and_changes_nothing(cli, clients, fake, bucket, planned, trained):
    trained("job-1", 0.8)
    trained("job-2", 0.81)
    deployed = cli("deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--poll-interval", "0", clients=clients)
    assert deployed.code == 0, deployed.err

    plan = planned(
        "shadow", "--endpoint", ENDPOINT, "--training-job", "job-2", "--sampling-percent", "25",
        "--data-capture", f"s3://{bucket}/capture/", "--poll-interval", "0",
    )  # fmt: skip

    assert operations(plan)[:3] == ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint"]
    requests = dict(plan)
    [shadow] = requests["CreateEndpointConfig"]["ShadowProductionVariants"]
    assert shadow["ModelName"] == requests["CreateModel"]["ModelName"]
    assert requests["UpdateEndpoint"]["EndpointName"] == ENDPOINT
    # Capture turned on here is carried by the new config: ExcludeRetainedVariantProperties
    # DataCaptureConfig is "not currently supported" (VariantProperty, API reference).
    assert "ExcludeRetainedVariantProperties" not in requests["UpdateEndpoint"]
    assert requests["CreateEndpointConfig"]["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{bucket}/capture/"
