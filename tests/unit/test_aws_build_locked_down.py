"""Private networks, KMS keys and tags in the request builders (sagebert.aws.build): no AWS at all.

Every request is checked twice against botocore's service model: by its ParamValidator (required
members, types, minimums: what boto3 checks before sending) and by ``request_problems`` (the
patterns, maximums and enums it leaves to the service).
"""

from __future__ import annotations

import pytest
from botocore.validate import ParamValidator

from sagebert.aws.build.common import EncryptionSpec, ImageReference, NetworkSpec, check_tags
from sagebert.aws.build.hosting import (
    AsyncSpec,
    Changes,
    ContainerSpec,
    DataCaptureSpec,
    HostingSpec,
    Running,
    ServerlessSpec,
    VariantSpec,
    config_kms_key,
    has_local_storage,
    hosting_plan,
    updated_spec,
)
from sagebert.aws.build.packages import PackageSpec, create_model_package_request
from sagebert.aws.build.training import TrainingJobSpec, create_training_job_request
from sagebert.aws.build.transform import TransformSpec, create_transform_job_request
from sagebert.aws.build.tuning import TuningSpec, create_tuning_job_request
from sagebert.aws.validation import InvalidRequestError, request_problems, service_model

ROLE = "arn:aws:iam::123456789012:role/SageMakerExec"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:0123456789ab"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VOLUME_KEY = "alias/sagebert-volumes"
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")
GROUPS = ("sg-0123456789abcdef0",)
VPC = {"SecurityGroupIds": list(GROUPS), "Subnets": list(SUBNETS)}
PRIVATE = NetworkSpec(SUBNETS, GROUPS, isolation=True, inter_container_encryption=True)


def valid(operation: str, request: dict) -> None:
    """The request passes botocore's own validation and the service model's other rules."""
    report = ParamValidator().validate(request, service_model().operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request_problems(operation, request) == []


# ---- jobs ---------------------------------------------------------------------------------------------
def test_a_training_job_runs_in_the_vpc_isolated_encrypted_with_the_keys():
    spec = TrainingJobSpec(
        name="bert-1",
        image=IMAGE,
        role_arn=ROLE,
        channels={"training": "s3://bucket/data/training/"},
        output_path="s3://bucket/output/",
        instance_type="ml.m5.xlarge",
        instance_count=2,
        network=PRIVATE,
        encryption=EncryptionSpec(KEY, VOLUME_KEY),
    )
    request = create_training_job_request(spec)

    valid("CreateTrainingJob", request)
    assert request["VpcConfig"] == VPC
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://bucket/output/", "KmsKeyId": KEY}
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == VOLUME_KEY


def test_a_job_without_those_options_sends_none_of_their_fields():
    spec = TrainingJobSpec("bert-1", IMAGE, ROLE, {"training": "s3://b/d/training/"}, "s3://b/o/", "ml.m5.xlarge")
    request = create_training_job_request(spec)

    absent = {"VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"}
    assert absent.isdisjoint(request)
    assert "KmsKeyId" not in request["OutputDataConfig"] and "VolumeKmsKeyId" not in request["ResourceConfig"]


def test_the_volume_key_defaults_to_the_kms_key():
    assert EncryptionSpec(KEY).volume == KEY
    assert EncryptionSpec(KEY, VOLUME_KEY).volume == VOLUME_KEY


def test_every_tuning_trial_shares_the_network_and_keys():
    spec = TuningSpec(
        name="tune-1",
        image=IMAGE,
        role_arn=ROLE,
        channels={"training": "s3://bucket/data/training/"},
        output_path="s3://bucket/output/",
        ranges={"IntegerParameterRanges": [{"Name": "epochs", "MinValue": "2", "MaxValue": "4"}]},
        network=PRIVATE,
        encryption=EncryptionSpec(KEY),
    )
    request = create_tuning_job_request(spec)

    valid("CreateHyperParameterTuningJob", request)
    definition = request["TrainingJobDefinition"]
    assert definition["VpcConfig"] == VPC
    assert definition["EnableNetworkIsolation"] is definition["EnableInterContainerTrafficEncryption"] is True
    assert definition["OutputDataConfig"]["KmsKeyId"] == definition["ResourceConfig"]["VolumeKmsKeyId"] == KEY


def test_a_transform_job_encrypts_its_answers_and_volumes():
    spec = TransformSpec(
        "score-1", "model-1", "s3://bucket/in/", "s3://bucket/out/", encryption=EncryptionSpec(KEY, VOLUME_KEY)
    )
    request = create_transform_job_request(spec)

    valid("CreateTransformJob", request)
    assert request["TransformOutput"]["KmsKeyId"] == KEY
    assert request["TransformResources"]["VolumeKmsKeyId"] == VOLUME_KEY


def test_a_model_package_is_encrypted_with_the_key():
    image = ImageReference.parse(IMAGE).by_digest("sha256:" + "a" * 64)
    spec = PackageSpec("tweets", image, "s3://bucket/m/model.tar.gz", "job-1", kms_key=KEY, tags={"team": "ml"})
    request = create_model_package_request(spec)

    valid("CreateModelPackage", request)
    assert request["SecurityConfig"] == {"KmsKeyId": KEY}
    assert {"Key": "team", "Value": "ml"} in request["Tags"]


# ---- hosting ------------------------------------------------------------------------------------------
def _spec(variant: VariantSpec | None = None, **fields) -> HostingSpec:
    container = ContainerSpec(image=IMAGE, model_data="s3://bucket/m/model.tar.gz")
    return HostingSpec(container=container, role_arn=ROLE, variant=variant or VariantSpec(), **fields)


def test_a_deployment_puts_the_network_on_the_model_and_the_keys_on_the_config():
    spec = _spec(
        model_fields=PRIVATE.model_fields(),
        config_fields={"KmsKeyId": VOLUME_KEY},
        data_capture=DataCaptureSpec("s3://bucket/capture", kms_key=KEY).as_api(),
    )
    plan = hosting_plan("tweets", spec, tags={"team": "ml"})

    valid("CreateModel", plan.model)
    valid("CreateEndpointConfig", plan.endpoint_config)
    valid("CreateEndpoint", plan.endpoint)
    assert plan.model["VpcConfig"] == VPC and plan.model["EnableNetworkIsolation"] is True
    # Inter-container encryption is a training setting: CreateModel has no such member.
    assert "EnableInterContainerTrafficEncryption" not in plan.model
    assert plan.endpoint_config["KmsKeyId"] == VOLUME_KEY
    assert plan.endpoint_config["DataCaptureConfig"]["KmsKeyId"] == KEY
    for request in (plan.model, plan.endpoint_config, plan.endpoint):
        assert {"Key": "team", "Value": "ml"} in request["Tags"]


def test_async_answers_are_encrypted_with_the_key():
    config = AsyncSpec("s3://bucket/answers", kms_key=KEY).as_api()
    plan = hosting_plan("tweets", _spec(async_config=config))

    valid("CreateEndpointConfig", plan.endpoint_config)
    assert plan.endpoint_config["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] == KEY


@pytest.mark.parametrize(
    "fields, what",
    [({"VpcConfig": VPC}, "a VPC configuration"), ({"EnableNetworkIsolation": True}, "network isolation")],
)
def test_a_serverless_endpoint_refuses_what_serverless_inference_does_not_support(fields, what):
    serverless = VariantSpec(instance_type=None, serverless=ServerlessSpec(2048, 5))
    with pytest.raises(InvalidRequestError, match=f"A serverless endpoint cannot have {what}"):
        hosting_plan("tweets", _spec(serverless, model_fields=fields))


def test_the_volume_key_is_not_sent_for_a_serverless_endpoint_and_the_user_is_told_why():
    fields, warning = config_kms_key(VariantSpec(instance_type=None, serverless=ServerlessSpec(2048, 5)), KEY)

    assert fields == {}
    assert "serverless endpoint has none" in warning


def test_instances_with_local_storage_get_the_key_and_a_warning_that_it_does_not_cover_that_storage():
    fields, warning = config_kms_key(VariantSpec(instance_type="ml.g5.xlarge"), KEY)
    plain, none = config_kms_key(VariantSpec(instance_type="ml.m5.xlarge"), KEY)

    assert fields == plain == {"KmsKeyId": KEY}
    assert "local NVMe" in warning and none is None


@pytest.mark.parametrize(
    "instance_type, local",
    [
        ("ml.m5.xlarge", False),
        ("ml.c5.2xlarge", False),
        ("ml.inf2.xlarge", False),
        ("ml.m5d.xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.g5.2xlarge", True),
        ("ml.p4d.24xlarge", True),
    ],
)
def test_local_storage_instance_types_are_recognised(instance_type, local):
    assert has_local_storage(instance_type) is local


# ---- what is refused before anything is sent -----------------------------------------------------------
@pytest.mark.parametrize(
    "network, message",
    [
        (NetworkSpec(subnets=SUBNETS), "--subnets without --security-groups"),
        (NetworkSpec(security_groups=GROUPS), "--security-groups without --subnets"),
        (NetworkSpec(("sg-0123456789abcdef0",), GROUPS), "is not a subnet-... ID"),
        (NetworkSpec(SUBNETS, ("subnet-0123456789abcdef0",)), "is not a sg-... ID"),
        (NetworkSpec(("subnet-0123_bad",), GROUPS), "is not a subnet-... ID"),
        (NetworkSpec(("subnet-" + "a" * 30,), GROUPS), "is not a subnet-... ID"),
        (NetworkSpec(tuple(f"subnet-{i:017x}" for i in range(17)), GROUPS), "SageMaker takes 1 to 16"),
        (NetworkSpec(SUBNETS, tuple(f"sg-{i:017x}" for i in range(6))), "SageMaker takes 1 to 5"),
    ],
)
def test_a_vpc_config_sagemaker_would_refuse_is_refused_with_the_fix(network, message):
    with pytest.raises(InvalidRequestError, match=message.replace(".", r"\.")):
        network.vpc_config()


@pytest.mark.parametrize("key", ["", "arn:aws:kms:eu-west-1:123456789012:key/has space", "a" * 2049, "key;drop"])
def test_a_kms_key_that_is_not_one_is_refused(key):
    with pytest.raises(InvalidRequestError, match="is not a KMS key ID"):
        EncryptionSpec(kms_key=key)


@pytest.mark.parametrize(
    "tags, message",
    [
        ({"aws:cloudformation:stack-name": "x"}, "AWS reserves"),
        ({"AWS:team": "x"}, "AWS reserves"),
        ({"": "x"}, "is not a valid tag key"),
        ({"k" * 129: "x"}, "is not a valid tag key"),
        ({"team#1": "x"}, "is not a valid tag key"),
        ({"team": "v" * 257}, "a tag value is 0-256"),
        ({"team": "ml;rm"}, "a tag value is 0-256"),
        ({f"k{i}": "v" for i in range(51)}, "at most 50"),
    ],
)
def test_tags_the_api_would_refuse_are_refused_naming_the_tag(tags, message):
    with pytest.raises(InvalidRequestError, match=message):
        check_tags(tags)


def test_tags_within_the_tag_shape_pass_unicode_spaces_and_empty_values_included():
    tags = {"team": "ml", "cost-center": "", "owner@example.com": "Zoë Müller", "path/x:y=z+1": "a b_c.d"}
    assert check_tags(tags) == tags
    valid(
        "AddTags",
        {
            "ResourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:model/m",
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        },
    )


# ---- update: options laid over what runs ----------------------------------------------------------------
def _running(variant_extra: dict | None = None, serverless: bool = False, **config) -> Running:
    variant = {"VariantName": "AllTraffic", "ModelName": "old", **(variant_extra or {})}
    if serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    else:
        variant.update(InstanceType="ml.m5.xlarge", InitialInstanceCount=1)
    model = {
        "ModelName": "old",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": IMAGE, "Mode": "SingleModel", "ModelDataUrl": "s3://bucket/old/model.tar.gz"},
        "VpcConfig": VPC,
        "EnableNetworkIsolation": True,
    }
    endpoint = {"EndpointName": "tweets", "EndpointConfigName": "old-config"}
    return Running(endpoint, {"EndpointConfigName": "old-config", **config}, variant, model)


def test_update_options_replace_the_running_network_and_keys():
    running = _running(
        KmsKeyId="alias/old",
        DataCaptureConfig={**DataCaptureSpec("s3://bucket/capture").as_api(), "KmsKeyId": "alias/old"},
    )
    other = {"SecurityGroupIds": ["sg-0fedcba9876543210"], "Subnets": ["subnet-0123456789abcdef0"]}
    changes = Changes(
        model_fields={"VpcConfig": other, "EnableNetworkIsolation": False}, kms_key=KEY, volume_kms_key=VOLUME_KEY
    )
    plan = hosting_plan("tweets", updated_spec(running, changes))

    valid("CreateModel", plan.model)
    valid("CreateEndpointConfig", plan.endpoint_config)
    assert plan.model["VpcConfig"] == other and plan.model["EnableNetworkIsolation"] is False
    assert plan.endpoint_config["KmsKeyId"] == VOLUME_KEY
    assert plan.endpoint_config["DataCaptureConfig"]["KmsKeyId"] == KEY


def test_a_new_capture_destination_keeps_the_running_captures_key():
    running = _running(DataCaptureConfig={**DataCaptureSpec("s3://bucket/capture").as_api(), "KmsKeyId": "alias/old"})
    capture = DataCaptureSpec("s3://bucket/capture-2").as_api()
    spec = updated_spec(running, Changes(data_capture=capture))

    assert spec.data_capture["DestinationS3Uri"] == "s3://bucket/capture-2/"
    assert spec.data_capture["KmsKeyId"] == "alias/old"


def test_update_encrypts_a_running_async_endpoints_answers_with_the_new_key():
    running = _running(AsyncInferenceConfig=AsyncSpec("s3://bucket/answers").as_api())
    plan = hosting_plan("tweets", updated_spec(running, Changes(kms_key=KEY)))

    valid("CreateEndpointConfig", plan.endpoint_config)
    assert plan.endpoint_config["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] == KEY


def test_a_volume_key_is_not_laid_over_a_serverless_endpoint():
    spec = updated_spec(_running(serverless=True), Changes(volume_kms_key=KEY))

    assert "KmsKeyId" not in spec.config_fields
