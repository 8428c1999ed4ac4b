"""A locked-down account: what `update` and `rollback` keep of an endpoint made outside sagebert,
and the network, key and tag options of every command, against moto server.

The fields `update` must carry over are not listed here: they are read from botocore's service
model (``kept_members``: the Create request's members that Describe returns, less those an update
replaces on purpose), and each one gets a value made from its own shape, so a field AWS adds
later is tested as soon as boto3 knows it. moto has no UpdateEndpoint: it is answered here by
pointing the endpoint at the new config (DeleteEndpoint + CreateEndpoint in moto), which is what
SageMaker does once an update has finished. moto also forgets some members on Describe (the
model's EnableNetworkIsolation, the config's VpcConfig...): those are put back from the create
request, as SageMaker returns them.
"""

from __future__ import annotations

import json

import pytest
from botocore.awsrequest import AWSResponse

from sagebert.aws.build.hosting import carried_members
from sagebert.aws.validation import matches_pattern, request_problems, service_model

pytestmark = pytest.mark.aws

ENDPOINT = "tweets-private"
OLD = "tweets-private-outside"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")
GROUPS = ("sg-0123456789abcdef0",)
# Strings for shapes without an enum: the first one that fits the shape's pattern and length is used.
STRING_CANDIDATES = (
    "sagebert",
    "s3://sagebert-test/dumps/",
    "arn:aws:iam::123456789012:role/SageMakerExec",
    KEY,
    "arn:aws:sagemaker:eu-west-1:123456789012:ml-reservation/r1",
    "/metrics",
    "text/csv",
    "mig-1g.10gb",
)
KINDS = ("model", "endpoint config", "variant", "container")


def example(shape, names: dict[str, str]):
    """A small value valid for ``shape``: required members (or the first one), one list entry."""
    if shape.name in names:
        return names[shape.name]
    kind = shape.type_name
    if kind == "structure":
        members = shape.required_members or list(shape.members)[:1]
        return {name: example(shape.members[name], names) for name in members}
    if kind == "list":
        return [example(shape.member, names)] * max(shape.metadata.get("min", 1), 1)
    if kind == "map":
        return {"key": example(shape.value, names)}
    if kind == "boolean":
        return True
    if kind in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if kind in ("float", "double"):
        return float(max(shape.metadata.get("min", 1), 1))
    if shape.enum:
        return shape.enum[0]
    limits = shape.metadata
    for candidate in STRING_CANDIDATES:
        fits = limits.get("min", 0) <= len(candidate) <= limits.get("max", len(candidate))
        if fits and matches_pattern(limits.get("pattern", ".*"), candidate):
            return candidate
    raise AssertionError(f"no example string for {shape.name} ({limits}): add one to STRING_CANDIDATES")


# What an update replaces on purpose: names and tags it composes, the new model's data, the role and
# instance type/count it resolves; InferenceExecutionConfig (it only applies to several Containers)
# and ServerlessConfig (another kind of endpoint). Everything else both sides have must be kept.
REPLACED = {
    "model": {"ModelName", "PrimaryContainer", "Containers", "ExecutionRoleArn", "Tags", "InferenceExecutionConfig"},
    "endpoint config": {"EndpointConfigName", "ProductionVariants", "Tags"},
    "variant": {"VariantName", "ModelName", "InstanceType", "InitialInstanceCount", "InitialVariantWeight"}
    | {"ServerlessConfig"},
    "container": {"Image", "Mode", "ModelDataUrl", "ModelDataSource", "AdditionalModelDataSources", "ModelPackageName"},
}


def shapes(kind: str) -> tuple:
    """(the Create request's shape, the Describe answer's shape) of ``kind``."""
    sagemaker = service_model()
    model_in = sagemaker.operation_model("CreateModel").input_shape
    model_out = sagemaker.operation_model("DescribeModel").output_shape
    config_in = sagemaker.operation_model("CreateEndpointConfig").input_shape
    config_out = sagemaker.operation_model("DescribeEndpointConfig").output_shape
    return {
        "model": (model_in, model_out),
        "endpoint config": (config_in, config_out),
        "variant": (config_in.members["ProductionVariants"].member, config_out.members["ProductionVariants"].member),
        "container": (model_in.members["PrimaryContainer"], model_out.members["PrimaryContainer"]),
    }[kind]


# What an update refuses rather than carries: Elastic Inference, which AWS has closed.
REFUSED = {"variant": {"AcceleratorType"}}


def kept_members(kind: str) -> list[str]:
    """Accepted by the Create request, returned by Describe, not replaced or refused on purpose."""
    accepted, described = shapes(kind)
    skipped = REPLACED[kind] | REFUSED.get(kind, set())
    return [name for name in accepted.members if name in described.members and name not in skipped]


KEPT = [(kind, member) for kind in KINDS for member in kept_members(kind)]


def test_the_kept_fields_come_from_the_service_model_and_cover_the_review_list():
    # The fields the review found dropped (A5) are among them, whatever else AWS has added since.
    review = {"VpcConfig", "EnableNetworkIsolation", "KmsKeyId", "VolumeSizeInGB", "ModelDataDownloadTimeoutInSeconds"}
    review |= {"ContainerStartupHealthCheckTimeoutInSeconds", "RoutingConfig", "ManagedInstanceScaling"}
    assert review | {"InferenceAmiVersion"} <= {member for _, member in KEPT}
    for kind in KINDS:  # what sagebert's builders carry verbatim is a part of it
        assert set(carried_members(kind)) - REFUSED.get(kind, set()) <= set(kept_members(kind))


@pytest.fixture
def sagemaker_updates(clients):
    """UpdateEndpoint answered by pointing the endpoint at the new config in moto; returns the
    requests. Describe answers get back the members moto forgets, as the create request set them."""
    updates: list[dict] = []
    created: dict[str, dict] = {}

    def update_endpoint(params, **_):
        params = json.loads(params["body"])  # the serialised request: SageMaker speaks JSON
        updates.append(params)
        clients.sagemaker.delete_endpoint(EndpointName=params["EndpointName"])
        clients.sagemaker.create_endpoint(
            EndpointName=params["EndpointName"], EndpointConfigName=params["EndpointConfigName"]
        )
        return AWSResponse(None, 200, {}, None), {"EndpointArn": f"arn:{params['EndpointName']}"}

    def remember(params, model, **_):
        name = params.get("ModelName") if model.name == "CreateModel" else params.get("EndpointConfigName")
        created[f"{model.name}:{name}"] = params

    def restore(parsed, model, **_):
        source = model.name.replace("Describe", "Create")
        key = "ModelName" if model.name == "DescribeModel" else "EndpointConfigName"
        request = created.get(f"{source}:{parsed.get(key)}", {})
        for member, value in request.items():
            if member != "Tags" and member in model.output_shape.members:
                parsed.setdefault(member, value)
                if parsed[member] in (False, {}) and value not in (False, {}):  # moto's fixed defaults
                    parsed[member] = value

    events = clients.sagemaker.meta.events
    events.register("before-call.sagemaker.UpdateEndpoint", update_endpoint)
    for operation in ("CreateModel", "CreateEndpointConfig"):
        events.register(f"before-parameter-build.sagemaker.{operation}", remember)
    for operation in ("DescribeModel", "DescribeEndpointConfig"):
        events.register(f"after-call.sagemaker.{operation}", restore)
    return updates


def made_outside_sagebert(clients, fake, kind: str, member: str, value) -> None:
    """An endpoint created with raw boto3 (as a console or CloudFormation would) carrying ``member``,
    and the user's own tags on its model and config."""
    container = {"Image": fake.image, "Mode": "SingleModel", "ModelDataUrl": f"s3://{fake.bucket}/old/model.tar.gz"}
    model = {"ModelName": OLD, "ExecutionRoleArn": fake.role_arn, "PrimaryContainer": container}
    variant = {"VariantName": "AllTraffic", "ModelName": OLD, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
    config = {"EndpointConfigName": OLD, "ProductionVariants": [variant]}
    target = {"model": model, "endpoint config": config, "variant": variant, "container": container}[kind]
    target[member] = value
    tags = [{"Key": "team", "Value": "ml"}, {"Key": "cost-center", "Value": "1234"}]
    clients.sagemaker.create_model(**model, Tags=tags)
    clients.sagemaker.create_endpoint_config(**config, Tags=tags)
    clients.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=OLD)


def carried(request: dict, kind: str, member: str):
    located = {
        "model": lambda: request,
        "endpoint config": lambda: request,
        "variant": lambda: request["ProductionVariants"][0],
        "container": lambda: request["PrimaryContainer"],
    }[kind]()
    return located.get(member)


@pytest.mark.parametrize("kind, member", KEPT, ids=[f"{k}.{m}" for k, m in KEPT])
def test_update_and_rollback_keep_every_field_the_running_endpoint_has(
    kind, member, cli, clients, sent, fake, trained, sagemaker_updates
):
    value = example(shapes(kind)[0].members[member], {"ModelName": OLD, "VariantName": "Shadow"})
    made_outside_sagebert(clients, fake, kind, member, value)
    trained("job-2", f1=0.8)

    result = cli("update", "--endpoint", ENDPOINT, "--training-job", "job-2", "--no-wait", clients=clients)

    assert result.code == 0, result.err
    model, config = sent("CreateModel")[-1], sent("CreateEndpointConfig")[-1]  # after the raw ones
    assert request_problems("CreateModel", model) == [] and request_problems("CreateEndpointConfig", config) == []
    assert carried(model if kind in ("model", "container") else config, kind, member) == value
    for request in (model, config):  # the user's own tags go on what replaces theirs
        assert {"Key": "team", "Value": "ml"} in request["Tags"] and {"Key": "cost-center", "Value": "1234"} in request[
            "Tags"
        ]
    new = config["EndpointConfigName"]
    assert clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == new

    result = cli("rollback", "--endpoint", ENDPOINT, "--no-wait", clients=clients)

    assert result.code == 0, result.err
    assert [u["EndpointConfigName"] for u in sagemaker_updates] == [new, OLD]
    running = clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    described = (
        clients.sagemaker.describe_model(ModelName=OLD)
        if kind in ("model", "container")
        else clients.sagemaker.describe_endpoint_config(EndpointConfigName=running)
    )
    assert running == OLD and carried(described, kind, member) == value


def test_update_of_an_endpoint_with_an_elastic_inference_accelerator_is_refused_before_anything_is_created(
    cli, clients, sent, fake, trained
):
    made_outside_sagebert(clients, fake, "variant", "AcceleratorType", "ml.eia2.medium")
    trained("job-2", f1=0.8)
    created = len(sent("CreateModel")), len(sent("CreateEndpointConfig"))

    result = cli("update", "--endpoint", ENDPOINT, "--training-job", "job-2", "--no-wait", clients=clients)

    assert result.code == 1 and "Elastic Inference" in result.err
    assert (len(sent("CreateModel")), len(sent("CreateEndpointConfig"))) == created


# ---- the options of each command, end to end ------------------------------------------------------------
PRIVATE = ("--subnets", ",".join(SUBNETS), "--security-groups", ",".join(GROUPS), "--network-isolation")
VPC = {"SecurityGroupIds": list(GROUPS), "Subnets": list(SUBNETS)}
TEAM = {"Key": "team", "Value": "ml"}


def test_train_runs_in_the_private_subnets_isolated_and_encrypted_with_the_tags(
    cli, clients, sent, fake, training_data
):
    result = cli(
        "train", "--image", fake.image, "--role", fake.role_arn, "--data", training_data, "--instance-count", "2",
        *PRIVATE, "--inter-container-encryption", "--kms-key", KEY, "--tag", "team=ml", clients=clients,
    )  # fmt: skip

    assert result.code == 0, result.err
    request = sent.one("CreateTrainingJob")
    assert request_problems("CreateTrainingJob", request) == []
    assert request["VpcConfig"] == VPC
    assert request["EnableNetworkIsolation"] is request["EnableInterContainerTrafficEncryption"] is True
    assert request["OutputDataConfig"]["KmsKeyId"] == request["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert request["Tags"] == [TEAM]


def test_tune_gives_every_trial_the_network_and_keys(cli, clients, sent, fake, training_data):
    result = cli(
        "tune", "--image", fake.image, "--role", fake.role_arn, "--data", training_data, *PRIVATE,
        "--kms-key", KEY, "--volume-kms-key", "alias/volumes", "--tag", "team=ml", clients=clients,
    )  # fmt: skip

    assert result.code == 0, result.err
    request = sent.one("CreateHyperParameterTuningJob")
    assert request_problems("CreateHyperParameterTuningJob", request) == []
    definition = request["TrainingJobDefinition"]
    assert definition["VpcConfig"] == VPC and definition["EnableNetworkIsolation"] is True
    assert definition["OutputDataConfig"]["KmsKeyId"] == KEY
    assert definition["ResourceConfig"]["VolumeKmsKeyId"] == "alias/volumes"
    assert request["Tags"] == [TEAM]


def test_deploy_with_everything_on_tags_and_encrypts_every_resource_and_creates_the_alarms(
    cli, clients, sent, fake, trained
):
    trained("job-1", f1=0.8)

    result = cli(
        "deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, *PRIVATE, "--kms-key", KEY,
        "--data-capture", f"s3://{fake.bucket}/capture", "--tag", "team=ml", "--alarms", "default",
        "--alarm-latency-p99-ms", "250", "--no-wait", clients=clients,
    )  # fmt: skip

    assert result.code == 0, result.err
    model, config, endpoint = (sent.one(op) for op in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"))
    assert model["VpcConfig"] == VPC and model["EnableNetworkIsolation"] is True
    assert config["KmsKeyId"] == config["DataCaptureConfig"]["KmsKeyId"] == KEY
    for operation, request in (("CreateModel", model), ("CreateEndpointConfig", config), ("CreateEndpoint", endpoint)):
        assert request_problems(operation, request) == [] and TEAM in request["Tags"]
    alarms = clients.cloudwatch.describe_alarms(AlarmNamePrefix=f"sagebert-{ENDPOINT}-")["MetricAlarms"]
    by_metric = {alarm["MetricName"]: alarm for alarm in alarms}
    assert sorted(by_metric) == ["Invocation5XXErrors", "ModelLatency"]
    for alarm in alarms:
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["Dimensions"] == [
            {"Name": "EndpointName", "Value": ENDPOINT},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        assert TEAM in clients.cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert by_metric["ModelLatency"]["ExtendedStatistic"] == "p99"
    assert by_metric["ModelLatency"]["Threshold"] == 250_000.0  # ModelLatency is in microseconds
    assert by_metric["Invocation5XXErrors"]["Statistic"] == "Sum"
    for request in sent("PutMetricAlarm"):
        assert request_problems("PutMetricAlarm", request, "cloudwatch") == []


@pytest.mark.parametrize(
    "option", [("--subnets", SUBNETS[0], "--security-groups", GROUPS[0]), ("--network-isolation",)]
)
def test_a_serverless_endpoint_in_a_vpc_or_isolated_is_refused_before_anything_is_sent(
    cli, clients, sent, fake, trained, option
):
    trained("job-1")
    calls = len(sent.calls)

    result = cli(
        "deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--serverless", "2048:5", *option, clients=clients
    )

    assert result.code == 1 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "A serverless endpoint cannot have" in result.err
    assert sent.calls[calls:] == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--tag", "aws:owner=me"), "AWS reserves"),
        (("--subnets", SUBNETS[0]), "--subnets without --security-groups"),
        (("--subnets", "sg-0123456789abcdef0", "--security-groups", GROUPS[0]), "is not a subnet-... ID"),
        (("--kms-key", "not a key"), "is not a KMS key ID"),
    ],
)
def test_bad_network_key_or_tag_options_are_one_line_with_the_fix_and_nothing_is_sent(
    cli, clients, sent, fake, training_data, extra, message
):
    calls = len(sent.calls)
    result = cli(
        "train", "--image", fake.image, "--role", fake.role_arn, "--data", training_data, *extra, clients=clients
    )

    assert result.code == 1 and result.err.count("\n") == 1 and "Fix:" in result.err
    assert message in result.err
    assert [name for name, _ in sent.calls[calls:]] == []


def test_update_with_default_alarms_creates_them_and_rolls_back_on_them(
    cli, clients, sent, fake, trained, sagemaker_updates
):
    made_outside_sagebert(clients, fake, "model", "EnableNetworkIsolation", True)
    trained("job-2")

    result = cli(
        "update", "--endpoint", ENDPOINT, "--training-job", "job-2", "--alarms", "default", "--traffic", "canary",
        "--instance-count", "2", "--no-wait", clients=clients,
    )  # fmt: skip

    assert result.code == 0, result.err
    names = [f"sagebert-{ENDPOINT}-invocation-5xx", f"sagebert-{ENDPOINT}-model-latency-p99"]
    assert [request["AlarmName"] for request in sent("PutMetricAlarm")] == names
    rollback = sagemaker_updates[0]["DeploymentConfig"]["AutoRollbackConfiguration"]
    assert rollback == {"Alarms": [{"AlarmName": name} for name in names]}
    assert "without --alarm" not in result.err


def test_delete_removes_the_alarms_it_made_and_no_other(cli, clients, fake, trained):
    trained("job-1")
    assert cli("deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--alarms", "default", "--no-wait",
               clients=clients).code == 0  # fmt: skip
    clients.cloudwatch.put_metric_alarm(
        AlarmName=f"sagebert-{ENDPOINT}-mine", MetricName="CPUUtilization", Namespace="AWS/EC2", Statistic="Average",
        Period=60, EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip

    result = cli("delete", "--endpoint", ENDPOINT, "--yes", "--poll-interval", "0", clients=clients)

    assert result.code == 0, result.err
    assert f"deleted alarm sagebert-{ENDPOINT}-invocation-5xx" in result.lines
    assert f"deleted alarm sagebert-{ENDPOINT}-model-latency-p99" in result.lines
    left = clients.cloudwatch.describe_alarms()["MetricAlarms"]
    assert [alarm["AlarmName"] for alarm in left] == [f"sagebert-{ENDPOINT}-mine"]


def test_transform_encrypts_answers_and_volumes_and_tags_the_model_it_makes(cli, clients, sent, fake, trained):
    trained("job-1")

    result = cli(
        "transform", "--training-job", "job-1", "--input", f"s3://{fake.bucket}/in/", "--output",
        f"s3://{fake.bucket}/out/", *PRIVATE, "--kms-key", KEY, "--tag", "team=ml", clients=clients,
    )  # fmt: skip

    assert result.code == 0, result.err
    model, job = sent.one("CreateModel"), sent.one("CreateTransformJob")
    assert model["VpcConfig"] == VPC and model["EnableNetworkIsolation"] is True and TEAM in model["Tags"]
    assert job["TransformOutput"]["KmsKeyId"] == job["TransformResources"]["VolumeKmsKeyId"] == KEY
    assert job["Tags"] == [TEAM]
    assert request_problems("CreateModel", model) == request_problems("CreateTransformJob", job) == []


def test_transform_of_an_existing_model_refuses_network_options(cli, clients, sent, fake):
    result = cli(
        "transform", "--model", "existing", "--input", f"s3://{fake.bucket}/in/", "--output",
        f"s3://{fake.bucket}/out/", "--network-isolation", clients=clients,
    )  # fmt: skip

    assert result.code == 1 and "an existing model keeps its own network settings" in result.err
    assert sent.calls == []
