"""The pure request builders of sagebert.aws.build (training, hosting) and the service-model checks:
no AWS at all."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagebert.aws.build.common import S3Location, check_name, unique_name
from sagebert.aws.build.hosting import (
    CapacitySize,
    Changes,
    ContainerSpec,
    DeploymentPolicy,
    HostingSpec,
    Running,
    ServerlessSpec,
    VariantSpec,
    create_endpoint_config_request,
    create_model_request,
    hosting_plan,
    update_endpoint_request,
    updated_spec,
)
from sagebert.aws.build.training import (
    MAX_RUNTIME_SECONDS,
    TrainingJobSpec,
    channel_uris,
    create_training_job_request,
    job_hyperparameters,
    model_artifacts,
    spot_saving_percent,
)
from sagebert.aws.endpoints import validate_plan
from sagebert.aws.validation import InvalidRequestError, request_problems, shape_limits, validate_request
from sagebert.errors import HyperparameterError
from sagebert.logs import FORMAT
from sagebert.metric_lines import METRIC_DEFINITIONS, format_metric_line

ROLE = "arn:aws:iam::123456789012:role/SageMakerExec"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:0123456789ab"
NOW = datetime(2026, 11, 26, 12, 0, 0)


def spec(**changes) -> TrainingJobSpec:
    values = dict(
        name="bert-1",
        image=IMAGE,
        role_arn=ROLE,
        output_path="s3://bucket/sagebert/output/",
        channels={"training": "s3://bucket/data/training/"},
        instance_type="ml.m5.xlarge",
    )
    return TrainingJobSpec(**{**values, **changes})


def logged(message: str) -> str:
    """``message`` as the training program's logging writes it to stdout (hence CloudWatch)."""
    record = logging.LogRecord("sagebert.training", logging.INFO, __file__, 1, message, None, None)
    return logging.Formatter(FORMAT).format(record)


# ---- metric definitions -----------------------------------------------------------------------------
PROGRESS = {"epoch": 1, "step": 350, "train_loss": 0.41237, "learning_rate": 3.2e-05, "samples_per_second": 211.5}
EPOCH_END = {
    "epoch": 1,
    "step": 358,
    "train_loss": 0.3412,
    "eval_loss": 0.4102,
    "eval_accuracy": 0.8351,
    "eval_precision": 0.8123,
    "eval_recall": 0.7834,
    "eval_f1": 0.7975,
}


@pytest.mark.parametrize(
    "values, expected",
    [
        (
            PROGRESS,
            {
                "train:epoch": "1",
                "train:loss": "0.4124",
                "train:learning_rate": "3.200e-05",
                "train:samples_per_second": "211.5000",
            },
        ),
        (
            EPOCH_END,
            {
                "train:epoch": "1",
                "train:loss": "0.3412",
                "eval:loss": "0.4102",
                "eval:accuracy": "0.8351",
                "eval:precision": "0.8123",
                "eval:recall": "0.7834",
                "eval:f1": "0.7975",
            },
        ),
    ],
    ids=["progress line", "epoch line"],
)
def test_every_metric_regex_reads_its_value_from_the_lines_training_prints(values, expected):
    line = logged(format_metric_line(values))

    found = {}
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], line)
        if match:
            found[definition["Name"]] = match.group(1)

    assert found == expected


def test_metric_regexes_do_not_confuse_train_and_eval_loss():
    line = logged(format_metric_line({"eval_loss": 0.5, "train_loss": 0.25}))
    regex = {d["Name"]: d["Regex"] for d in METRIC_DEFINITIONS}

    assert re.search(regex["train:loss"], line).group(1) == "0.2500"
    assert re.search(regex["eval:loss"], line).group(1) == "0.5000"


def test_the_metric_definitions_fit_the_api_limits():
    assert request_problems("CreateTrainingJob", create_training_job_request(spec())) == []
    assert len(METRIC_DEFINITIONS) <= 40


# ---- training jobs ----------------------------------------------------------------------------------
def test_a_training_request_has_file_mode_s3_prefix_channels_and_string_hyperparameters():
    request = create_training_job_request(
        spec(
            channels={"training": "s3://bucket/d/training/", "testing": "s3://bucket/d/testing/"},
            hyperparameters=job_hyperparameters({"epochs": "3", "learning-rate": "2e-5"}),
        )
    )

    assert request["InputDataConfig"][1] == {
        "ChannelName": "testing",
        "InputMode": "File",
        "CompressionType": "None",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://bucket/d/testing/",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }
    assert request["HyperParameters"] == {"epochs": "3", "learning_rate": "2e-05"}
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}


def test_a_spot_request_has_max_wait_above_max_run_and_a_checkpoint_folder_per_job():
    request = create_training_job_request(
        spec(spot=True, max_run=4000, max_wait=5000, checkpoint_s3="s3://bucket/sagebert/checkpoints")
    )

    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 4000, "MaxWaitTimeInSeconds": 5000}
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://bucket/sagebert/checkpoints/bert-1/",
        "LocalPath": "/opt/ml/checkpoints",
    }


def test_spot_without_max_wait_waits_twice_the_max_run():
    assert spec(spot=True, max_run=3600).stopping_condition() == {
        "MaxRuntimeInSeconds": 3600,
        "MaxWaitTimeInSeconds": 7200,
    }


@given(max_run=st.integers(1, MAX_RUNTIME_SECONDS), extra=st.integers(-MAX_RUNTIME_SECONDS, MAX_RUNTIME_SECONDS))
def test_spot_max_wait_may_equal_max_run_but_never_be_shorter(max_run, extra):
    max_wait = max(1, max_run + extra)
    job = spec(spot=True, max_run=max_run, max_wait=max_wait)

    if max_wait >= max_run:  # the API: "equal to or greater than MaxRuntimeInSeconds"
        assert job.stopping_condition() == {"MaxRuntimeInSeconds": max_run, "MaxWaitTimeInSeconds": max_wait}
    else:
        with pytest.raises(InvalidRequestError, match=rf"must be at least MaxRuntimeInSeconds \({max_run}"):
            job.stopping_condition()


@given(max_run=st.integers(MAX_RUNTIME_SECONDS + 1, 10 * MAX_RUNTIME_SECONDS), spot=st.booleans())
def test_max_run_over_28_days_is_refused(max_run, spot):
    with pytest.raises(InvalidRequestError, match="runs at most 28 days"):
        spec(max_run=max_run, spot=spot).stopping_condition()


def test_max_run_of_exactly_28_days_is_accepted():
    assert spec(max_run=MAX_RUNTIME_SECONDS).stopping_condition() == {"MaxRuntimeInSeconds": 2419200}


def test_max_wait_without_spot_is_refused():
    with pytest.raises(InvalidRequestError, match="--max-wait only applies to managed spot training"):
        spec(max_wait=5000).stopping_condition()


def test_hyperparameters_are_validated_and_sent_in_canonical_form_only_when_given():
    assert job_hyperparameters({"clean_text": "True", "label_names": '["No", "Yes"]', "sagemaker_x": "1"}) == {
        "clean_text": "true",
        "label_names": "No,Yes",
        "sagemaker_x": "1",
    }
    with pytest.raises(HyperparameterError, match=r"'max_length' is '4'; allowed: an integer from 8 to 8192"):
        job_hyperparameters({"max_length": "4"})


def test_channels_take_testing_only_when_it_holds_objects():
    data = S3Location.parse("s3://bucket/sagebert/data")

    assert channel_uris(data, {"training"}) == {"training": "s3://bucket/sagebert/data/training/"}
    assert channel_uris(data, {"training", "testing"}, S3Location.parse("s3://bucket/base")) == {
        "training": "s3://bucket/sagebert/data/training/",
        "testing": "s3://bucket/sagebert/data/testing/",
        "pretrained": "s3://bucket/base/",
    }
    with pytest.raises(
        InvalidRequestError, match="There is no training data under s3://bucket/sagebert/data/training/"
    ):
        channel_uris(data, {"testing"})


def test_spot_saving_is_the_unbilled_share_of_the_training_time():
    job = {"EnableManagedSpotTraining": True, "TrainingTimeInSeconds": 1000, "BillableTimeInSeconds": 350}

    assert spot_saving_percent(job) == pytest.approx(65.0)
    assert spot_saving_percent({**job, "EnableManagedSpotTraining": False}) is None
    assert spot_saving_percent({"EnableManagedSpotTraining": True}) is None


def test_only_a_completed_job_has_model_artifacts_to_deploy():
    job = {"TrainingJobName": "j", "TrainingJobStatus": "Failed", "FailureReason": "OOM"}

    with pytest.raises(InvalidRequestError, match=r"Training job j is Failed \(OOM\); only a Completed job"):
        model_artifacts(job)
    assert (
        model_artifacts(
            {"TrainingJobStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/m.tar.gz"}}
        )
        == "s3://bucket/m.tar.gz"
    )


# ---- names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stem", ["sagebert", "a" * 80, "my_job.v2 (test)", "---", "Ünïcödé-Ø"])
def test_generated_names_fit_every_sagemaker_name_pattern_and_length(stem):
    name = unique_name(stem, NOW, "abcd")

    for shape in ("TrainingJobName", "EndpointName", "EndpointConfigName", "ModelName"):
        limits = shape_limits(shape)
        assert len(name) <= limits["max"] and re.fullmatch(limits["pattern"], name), (shape, name)
    assert name.endswith("-20261126-120000-abcd")


def test_generated_names_differ_within_the_same_second():
    assert unique_name("sagebert", NOW) != unique_name("sagebert", NOW)


@pytest.mark.parametrize("bad", ["bert_run", "-bert", "bert-", "bert.v2", "", "x" * 64])
def test_names_sagemaker_would_reject_are_refused_with_a_suggestion(bad):
    with pytest.raises(InvalidRequestError, match="is not a valid SageMaker endpoint name") as raised:
        check_name("endpoint", bad)
    assert "letters, digits and hyphens" in raised.value.message


def test_the_longest_valid_name_is_accepted():
    assert check_name("training job", "a" * 63) == "a" * 63


@pytest.mark.parametrize("uri", ["bucket/key", "s3://", "s3://B/k", "http://bucket/k"])
def test_non_s3_uris_are_refused(uri):
    with pytest.raises(InvalidRequestError, match="is not an S3 URI"):
        S3Location.parse(uri)


def test_s3_locations_give_prefixes_children_and_parents():
    data = S3Location.parse("s3://bucket/sagebert/data")

    assert data.child("training", "").uri == "s3://bucket/sagebert/data/training/"
    assert data.parent().child("output", "").uri == "s3://bucket/sagebert/output/"
    assert S3Location.parse("s3://bucket").as_prefix().uri == "s3://bucket/"


# ---- hosting ----------------------------------------------------------------------------------------
def test_a_single_model_needs_a_tar_gz_and_a_multi_model_a_prefix():
    single = create_model_request("m", ContainerSpec(IMAGE, "s3://bucket/out/model.tar.gz"), ROLE)
    multi = create_model_request("m", ContainerSpec(IMAGE, "s3://bucket/models", multi_model=True), ROLE)

    assert single["PrimaryContainer"] == {
        "Image": IMAGE,
        "Mode": "SingleModel",
        "ModelDataUrl": "s3://bucket/out/model.tar.gz",
    }
    assert multi["PrimaryContainer"] == {"Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": "s3://bucket/models/"}
    with pytest.raises(InvalidRequestError, match="is not a .tar.gz file"):
        create_model_request("m", ContainerSpec(IMAGE, "s3://bucket/models/"), ROLE)


def test_an_uncompressed_model_reads_back_as_it_was_sent():
    """What update reads from DescribeModel of an endpoint deployed with --uncompressed is what deploy sent,
    and the request passes botocore's service model."""
    request = create_model_request("m", ContainerSpec(IMAGE, "s3://bucket/out/model", uncompressed=True), ROLE)
    validate_request("CreateModel", request)

    assert request["PrimaryContainer"]["ModelDataSource"] == {
        "S3DataSource": {"S3Uri": "s3://bucket/out/model/", "S3DataType": "S3Prefix", "CompressionType": "None"}
    }
    again = ContainerSpec.from_api(request["PrimaryContainer"])
    assert again.uncompressed and again.model_data == "s3://bucket/out/model/"
    assert again.as_api() == request["PrimaryContainer"]


def test_a_model_from_a_package_names_only_the_package():
    request = create_model_request("m", ContainerSpec(model_package="arn:aws:sagemaker:x:1:model-package/g/1"), ROLE)

    assert request["PrimaryContainer"] == {"ModelPackageName": "arn:aws:sagemaker:x:1:model-package/g/1"}


def test_an_endpoint_config_has_one_variant_with_all_the_traffic():
    spec = HostingSpec(
        ContainerSpec(IMAGE, "s3://bucket/m.tar.gz"), ROLE, VariantSpec("ml.g5.xlarge", 2, startup_timeout=600)
    )

    request = create_endpoint_config_request("c", spec, "m", {})

    assert request["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": "m",
            "InstanceType": "ml.g5.xlarge",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1.0,
            "ContainerStartupHealthCheckTimeoutInSeconds": 600,
        }
    ]


@pytest.mark.parametrize("timeout", [0, 59, 3601])
def test_a_startup_timeout_outside_60_to_3600_is_refused_before_anything_is_built(timeout):
    spec = HostingSpec(ContainerSpec(IMAGE, "s3://bucket/m.tar.gz"), ROLE, VariantSpec(startup_timeout=timeout))

    with pytest.raises(InvalidRequestError, match=f"--startup-timeout is {timeout}; SageMaker allows 60 to 3600"):
        hosting_plan("ep", spec, now=NOW)


def test_a_hosting_plan_names_and_tags_everything_after_the_endpoint():
    spec = HostingSpec(ContainerSpec(IMAGE, "s3://bucket/m.tar.gz"), ROLE)

    plan = hosting_plan(
        "disaster-tweets", spec, training_job="job-1", model_tags={"sagebert:metric:eval:f1": "0.8"}, now=NOW
    )

    assert plan.model_name == plan.config_name
    assert plan.model_name.startswith("disaster-tweets-20261126-120000-")
    assert {"Key": "sagebert:endpoint", "Value": "disaster-tweets"} in plan.model["Tags"]
    assert {"Key": "sagebert:training-job", "Value": "job-1"} in plan.model["Tags"]
    assert {"Key": "sagebert:metric:eval:f1", "Value": "0.8"} in plan.model["Tags"]
    assert plan.endpoint_config["Tags"] == [{"Key": "sagebert:endpoint", "Value": "disaster-tweets"}]
    assert plan.endpoint == {"EndpointName": "disaster-tweets", "EndpointConfigName": plan.config_name}


def running(count_now: int | None = 5, initial: int = 3, **config) -> Running:
    model = {
        "ModelName": "m-old",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": "old:1",
            "Mode": "SingleModel",
            "ModelDataUrl": "s3://bucket/old/model.tar.gz",
            "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEBERT_INFERENCE_PRECISION": "fp32"},
        },
    }
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.c5.xlarge", "InitialInstanceCount": initial}
    summary = {"VariantName": "AllTraffic"}
    if count_now is not None:
        summary.update(CurrentInstanceCount=count_now, DesiredInstanceCount=count_now)
    endpoint = {"EndpointName": "ep", "EndpointConfigName": "c-old", "ProductionVariants": [summary]}
    return Running(endpoint, {"ProductionVariants": [variant], **config}, variant, model)


def test_an_update_keeps_what_runs_and_lays_the_changes_over_it():
    spec = updated_spec(
        running(),
        Changes(
            container=ContainerSpec("trained-by:2", "s3://bucket/new/model.tar.gz"),
            environment={"SAGEBERT_INFERENCE_PRECISION": "int8"},
        ),
    )

    assert spec.container.as_api() == {
        "Image": "trained-by:2",
        "Mode": "SingleModel",
        "ModelDataUrl": "s3://bucket/new/model.tar.gz",
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEBERT_INFERENCE_PRECISION": "int8"},
    }
    assert spec.role_arn == ROLE
    assert spec.variant.instance_type == "ml.c5.xlarge"


@given(initial=st.integers(1, 20), now=st.integers(1, 50))
def test_an_update_keeps_the_running_instance_count_not_the_configs_initial_one(initial, now):
    spec = updated_spec(running(count_now=now, initial=initial), Changes())

    assert spec.variant.instance_count == now
    assert spec.variant.as_api("m")["InitialInstanceCount"] == now


def test_without_a_running_count_the_configs_initial_count_is_kept():
    assert updated_spec(running(count_now=None, initial=3), Changes()).variant.instance_count == 3


def test_an_update_carries_data_capture_and_async_settings_over():
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 10,
        "DestinationS3Uri": "s3://bucket/c/",
        "CaptureOptions": [],
    }
    spec = updated_spec(running(DataCaptureConfig=capture, AsyncInferenceConfig={"OutputConfig": {}}), Changes())

    assert spec.data_capture == capture
    assert spec.async_config == {"OutputConfig": {}}


# ---- blue/green deployment configs ------------------------------------------------------------------
def test_the_default_update_is_blue_green_all_at_once_keeping_the_running_variant_properties():
    assert update_endpoint_request("ep", "c2", DeploymentPolicy(), 2) == {
        "EndpointName": "ep",
        "EndpointConfigName": "c2",
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": 0,
            }
        },
        "RetainAllVariantProperties": True,
    }


def test_an_instance_count_set_on_purpose_is_excluded_from_what_is_retained():
    request = update_endpoint_request("ep", "c2", DeploymentPolicy(), 4, exclude_retained=("DesiredInstanceCount",))

    assert request["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredInstanceCount"}]


def test_canary_defaults_to_ten_percent_and_five_minutes_of_baking_with_alarms_for_rollback():
    config = DeploymentPolicy(traffic="CANARY", alarms=("errors",)).deployment_config(4)

    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 300,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "errors"}]}


def test_linear_takes_its_step_as_instances_or_a_percentage():
    config = DeploymentPolicy(traffic="LINEAR", step=CapacitySize.parse("2"), wait_interval=60).deployment_config(8)

    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 60,
        "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 2},
    }


@given(fleet=st.integers(1, 40), size=st.integers(1, 40))
def test_a_canary_counted_in_instances_is_at_most_half_the_new_fleet(fleet, size):
    policy = DeploymentPolicy(traffic="CANARY", step=CapacitySize("INSTANCE_COUNT", size))

    if 2 * size <= fleet:  # "less than or equal to 50% of the variant's total instance count"
        assert policy.deployment_config(fleet)["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
            "CanarySize"
        ] == {
            "Type": "INSTANCE_COUNT",
            "Value": size,
        }
    else:
        with pytest.raises(InvalidRequestError, match=rf"--canary-size {size} is \d+% of the new fleet of {fleet}"):
            policy.deployment_config(fleet)


@given(fleet=st.integers(1, 40), size=st.integers(1, 40))
def test_a_linear_step_counted_in_instances_is_10_to_50_percent_of_the_new_fleet(fleet, size):
    policy = DeploymentPolicy(traffic="LINEAR", step=CapacitySize("INSTANCE_COUNT", size))

    if fleet <= 10 * size and 2 * size <= fleet:
        assert policy.deployment_config(fleet)
    else:
        with pytest.raises(InvalidRequestError, match="SageMaker allows 10-50%"):
            policy.deployment_config(fleet)


@pytest.mark.parametrize("traffic", ["CANARY", "LINEAR"])
def test_canary_and_linear_need_two_instances_even_as_percentages(traffic):
    with pytest.raises(InvalidRequestError, match="needs at least 2 instances") as raised:
        DeploymentPolicy(traffic=traffic).deployment_config(1)
    assert "--traffic all-at-once" in raised.value.fix


def test_a_serverless_endpoint_takes_steps_only_as_percentages():
    policy = DeploymentPolicy(traffic="CANARY", step=CapacitySize("INSTANCE_COUNT", 1))

    with pytest.raises(InvalidRequestError, match="a serverless endpoint has none"):
        policy.deployment_config(None)
    assert DeploymentPolicy(traffic="CANARY").deployment_config(None)


@pytest.mark.parametrize(
    "policy, message",
    [
        (DeploymentPolicy(traffic="CANARY", step=CapacitySize("CAPACITY_PERCENT", 60)), "allows 1 to 50"),
        (DeploymentPolicy(traffic="LINEAR", step=CapacitySize("CAPACITY_PERCENT", 5)), "allows 10 to 50"),
        (DeploymentPolicy(wait_interval=3601), "WaitIntervalInSeconds is 3601; SageMaker allows 0 to 3600"),
        (DeploymentPolicy(max_execution_timeout=300), "allows 600 to 28800"),
        (
            DeploymentPolicy(traffic="CANARY", wait_interval=600, termination_wait=300, max_execution_timeout=1200),
            "is not longer than the waiting the update itself asks for (2 x --wait-interval 600 + --termination-wait 300 = 1500 s)",
        ),
        (DeploymentPolicy(step=CapacitySize("INSTANCE_COUNT", 1)), "only applies to CANARY and LINEAR"),
        (DeploymentPolicy(alarms=tuple(f"a{i}" for i in range(11))), "at most 10"),
    ],
)
def test_deployment_policies_outside_what_sagemaker_allows_are_refused(policy, message):
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        policy.deployment_config(4)


@pytest.mark.parametrize("text", ["0", "abc", "101%", "-1"])
def test_capacity_sizes_must_be_a_count_or_a_percentage(text):
    with pytest.raises(InvalidRequestError, match="is not a capacity size"):
        CapacitySize.parse(text)


# ---- the service-model check ------------------------------------------------------------------------
def test_requests_are_checked_for_patterns_lengths_and_enums_botocore_lets_through():
    request = create_training_job_request(
        spec(
            instance_type="ml.m5.xlarg",
            environment={"BAD-KEY": "x"},
            hyperparameters={"model_name_or_path": "x" * 2501},
        )
    )

    problems = request_problems("CreateTrainingJob", request)

    assert any(
        "ResourceConfig.InstanceType 'ml.m5.xlarg' is not one of the values" in p and "ml.m5.xlarge" in p
        for p in problems
    )
    assert any(p.startswith("Environment key 'BAD-KEY' does not match the pattern") for p in problems)
    assert any("HyperParameters['model_name_or_path']" in p and "at most 2500" in p for p in problems)
    with pytest.raises(InvalidRequestError, match="The CreateTrainingJob request would be rejected"):
        validate_request("CreateTrainingJob", request)


def test_every_request_sagebert_builds_passes_the_service_model_check():
    plan = hosting_plan(
        "ep",
        HostingSpec(
            ContainerSpec(IMAGE, "s3://bucket/m.tar.gz", environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}), ROLE
        ),
        tags={"team": "nlp"},
        now=NOW,
    )
    update = update_endpoint_request("ep", plan.config_name, DeploymentPolicy(traffic="CANARY", alarms=("a",)), 4)

    assert request_problems("CreateTrainingJob", create_training_job_request(spec(spot=True))) == []
    assert request_problems("CreateModel", plan.model) == []
    assert request_problems("CreateEndpointConfig", plan.endpoint_config) == []
    assert request_problems("CreateEndpoint", plan.endpoint) == []
    assert request_problems("UpdateEndpoint", update) == []


# ---- GPU hosts, routing, rolling updates, closed features ----------------------------------------------
def test_a_variant_sends_its_inference_ami_and_routing_and_an_update_keeps_them():
    variant = VariantSpec("ml.g5.xlarge", 2, inference_ami="al2023-ami-sagemaker-inference-gpu-4-1")
    variant = replace(variant, routing="LEAST_OUTSTANDING_REQUESTS")
    sent = variant.as_api("m")

    assert sent["InferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert sent["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    kept = updated_spec(running(), Changes())
    assert "RoutingConfig" not in kept.variant.as_api("m") and "InferenceAmiVersion" not in kept.variant.as_api("m")
    live = running()
    live.variant.update(sent)  # the running variant has both
    assert updated_spec(live, Changes()).variant.as_api("m")["RoutingConfig"] == sent["RoutingConfig"]
    assert updated_spec(live, Changes(routing="RANDOM")).variant.as_api("m")["RoutingConfig"] == {
        "RoutingStrategy": "RANDOM"
    }
    assert updated_spec(live, Changes()).variant.inference_ami == "al2023-ami-sagemaker-inference-gpu-4-1"


def test_routing_is_refused_on_a_serverless_variant():
    with pytest.raises(InvalidRequestError, match="RoutingConfig is for instances"):
        VariantSpec(None, serverless=ServerlessSpec(2048, 5), routing="RANDOM").as_api("m")


@pytest.mark.parametrize(
    ("batch", "fleet", "expected"),
    [("25%", 4, {"Type": "CAPACITY_PERCENT", "Value": 25}), ("2", 4, {"Type": "INSTANCE_COUNT", "Value": 2})],
)
def test_a_rolling_update_sends_its_batch_bake_time_and_rollback_batch(batch, fleet, expected):
    policy = DeploymentPolicy(
        rolling=CapacitySize.parse(batch),
        wait_interval=120,
        rollback_batch=CapacitySize.parse("50%"),
        max_execution_timeout=3600,
        alarms=("errors",),
    )

    request = update_endpoint_request("ep", "c2", policy, fleet)

    assert request["DeploymentConfig"] == {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": expected,
            "WaitIntervalInSeconds": 120,
            "MaximumExecutionTimeoutInSeconds": 3600,
            "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]},
    }
    assert request_problems("UpdateEndpoint", request) == []


def test_a_rolling_update_bakes_five_minutes_unless_told():
    config = DeploymentPolicy(rolling=CapacitySize.parse("25%")).deployment_config(4)

    assert config == {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            "WaitIntervalInSeconds": 300,
        }
    }


@pytest.mark.parametrize(
    ("policy", "fleet", "message"),
    [
        (DeploymentPolicy(rolling=CapacitySize.parse("25%")), None, "serverless endpoint cannot take a rolling update"),
        (DeploymentPolicy(rolling=CapacitySize.parse("60%")), 4, "is 60% of the 4 instance"),
        (DeploymentPolicy(rolling=CapacitySize.parse("3%")), 40, "SageMaker wants 5-50%"),
        (DeploymentPolicy(rolling=CapacitySize.parse("3")), 4, "is 75% of the 4"),
        (DeploymentPolicy(rolling=CapacitySize.parse("1")), 1, "Scale to 2\\+ instances first"),
        (DeploymentPolicy(rolling=CapacitySize.parse("1"), traffic="CANARY"), 4, "replaces blue/green"),
        (DeploymentPolicy(rolling=CapacitySize.parse("1"), termination_wait=60), 4, "replaces blue/green"),
        (DeploymentPolicy(rolling=CapacitySize.parse("1"), wait_interval=4000), 4, "the bake time"),
        (DeploymentPolicy(rollback_batch=CapacitySize.parse("1")), 4, "--rollback-batch belongs to a rolling update"),
    ],
)
def test_rolling_updates_sagemaker_excludes_or_refuses_are_refused_before_anything_is_sent(policy, fleet, message):
    with pytest.raises(InvalidRequestError, match=message):
        policy.deployment_config(fleet)


def test_an_elastic_inference_accelerator_is_refused_on_every_path_that_sends_a_config():
    plan = hosting_plan("ep", HostingSpec(ContainerSpec(IMAGE, "s3://bucket/m.tar.gz"), ROLE), now=NOW)
    validate_plan(plan)  # the plan sagebert builds has none
    plan.endpoint_config["ProductionVariants"][0]["AcceleratorType"] = "ml.eia2.medium"

    with pytest.raises(InvalidRequestError, match="Elastic Inference"):
        validate_plan(plan)
    with pytest.raises(InvalidRequestError, match="Elastic Inference"):
        validate_plan(plan, update=update_endpoint_request("ep", plan.config_name, DeploymentPolicy(), 1))


def test_training_requests_carry_no_debugger_or_profiler_configuration():
    closed = {"DebugHookConfig", "DebugRuleConfigurations", "ProfilerConfig", "ProfilerRuleConfigurations"}

    assert closed.isdisjoint(create_training_job_request(spec(spot=True)))
