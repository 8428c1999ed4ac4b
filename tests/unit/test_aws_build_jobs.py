"""The pure builders of tuning, transform, registry and autoscaling requests, image references, and
the service-model check of Java-only patterns (tags with \\p{L}): no AWS at all."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagebert.aws.build.common import ImageReference, unique_name
from sagebert.aws.build.packages import PackageSpec, create_model_package_request, require_approved
from sagebert.aws.build.scaling import (
    ScalingSpec,
    put_scaling_policy_request,
    register_scalable_target_request,
    restore_requests,
)
from sagebert.aws.build.transform import (
    CONTAINER_BATCH_STRATEGY,
    CONTAINER_MAX_PAYLOAD_MB,
    TransformSpec,
    create_transform_job_request,
)
from sagebert.aws.build.tuning import (
    DEFAULT_RANGES,
    TuningSpec,
    best_training_job,
    create_tuning_job_request,
    parameter_ranges,
)
from sagebert.aws.validation import InvalidRequestError, matches_pattern, request_problems, shape_limits
from sagebert.metric_lines import METRIC_DEFINITIONS

ROLE = "arn:aws:iam::123456789012:role/SageMakerExec"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:0123456789ab"
DIGEST = "sha256:" + "ab" * 32
TAG_PATTERN = shape_limits("TagValue")["pattern"]


# ---- images -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        IMAGE,
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/sagebert@{DIGEST}",
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:v1@{DIGEST}",
        "127.0.0.1:5000/sagebert:latest",
        "registry.example.com/a/b/c",
    ],
)
def test_image_uris_sagemaker_can_pull_are_accepted_and_round_trip(uri):
    assert ImageReference.parse(uri).uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "sagebert:1",
        "sagebert",
        "/sagebert",
        "reg.example.com/Upper:1",
        "reg.example.com/x:-bad",
        "reg.example.com/x@sha256:12",
    ],
)
def test_what_is_not_an_image_uri_is_refused_naming_the_form(uri):
    with pytest.raises(InvalidRequestError, match=r"not REGISTRY/REPOSITORY\[:TAG\]\[@sha256:DIGEST\]"):
        ImageReference.parse(uri)


def test_an_ecr_image_knows_its_account_and_region_and_can_be_named_by_digest():
    image = ImageReference.parse(IMAGE)

    assert image.ecr == ("123456789012", "eu-west-1")
    assert image.by_digest(DIGEST).uri == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert@{DIGEST}"
    assert ImageReference.parse("127.0.0.1:5000/sagebert:1").ecr is None


# ---- Java patterns: tags and the other \p{...} fields ------------------------------------------------
@pytest.mark.parametrize("value", ["nlp team", "café", "東京", "a_b.c:d/e=f+g-h@i", "٣", "x\u2028y"])
def test_tag_values_sagemaker_accepts_are_accepted_letters_of_any_script_included(value):
    assert matches_pattern(TAG_PATTERN, value)


@pytest.mark.parametrize("value", ["a#b", "x\ty", "50%", "a!", "emoji \U0001f600", "semi;colon"])
def test_tag_values_sagemaker_refuses_are_refused(value):
    assert not matches_pattern(TAG_PATTERN, value)


def test_a_bad_tag_is_found_in_a_whole_request():
    request = {"ModelName": "m", "Tags": [{"Key": "team", "Value": "nlp#1"}]}

    problems = request_problems("CreateModel", request)

    assert len(problems) == 1 and problems[0].startswith("Tags[0].Value 'nlp#1' does not match the pattern")


def test_autoscaling_resource_ids_are_checked_too():
    assert matches_pattern(
        shape_limits("ResourceIdMaxLen1600", "application-autoscaling")["pattern"], "endpoint/e/variant/v"
    )
    assert not matches_pattern(
        shape_limits("ResourceIdMaxLen1600", "application-autoscaling")["pattern"], "endpoint/\x01"
    )


# ---- tuning ------------------------------------------------------------------------------------------
def tuning(**changes) -> TuningSpec:
    values = dict(
        name="sagebert-tune-1",
        image=IMAGE,
        role_arn=ROLE,
        channels={"training": "s3://bucket/d/training/"},
        output_path="s3://bucket/out/",
    )
    return TuningSpec(**{**values, **changes})


def test_a_tuning_request_maximises_the_objective_over_typed_ranges_and_the_images_metric_definitions():
    ranges = parameter_ranges(["learning_rate=1e-5:1e-4:log", "epochs=2:4"], ["train_batch_size=16,32"])

    request = create_tuning_job_request(
        tuning(ranges=ranges, static_hyperparameters={"max_length": "64"}, early_stopping=True)
    )

    config = request["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "eval:f1"}
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "2", "MaxValue": "4", "ScalingType": "Auto"}],
        "ContinuousParameterRanges": [
            {"Name": "learning_rate", "MinValue": "1e-05", "MaxValue": "0.0001", "ScalingType": "Logarithmic"}
        ],
        "CategoricalParameterRanges": [{"Name": "train_batch_size", "Values": ["16", "32"]}],
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    definition = request["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert definition["StaticHyperParameters"] == {"max_length": "64"}
    assert request_problems("CreateHyperParameterTuningJob", request) == []


def test_without_ranges_the_default_search_is_used():
    assert [r["Name"] for r in parameter_ranges([], [])["ContinuousParameterRanges"]] == [
        "learning_rate",
        "warmup_ratio",
    ]
    assert DEFAULT_RANGES


def test_spot_trials_share_a_checkpoint_folder_per_tuning_job_and_wait_at_least_their_run():
    request = create_tuning_job_request(
        tuning(spot=True, max_run=3600, checkpoint_s3="s3://bucket/ckpt", ranges=parameter_ranges([], []))
    )

    definition = request["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert definition["CheckpointConfig"] == {
        "S3Uri": "s3://bucket/ckpt/sagebert-tune-1/",
        "LocalPath": "/opt/ml/checkpoints",
    }


def test_warm_start_names_its_parents():
    request = create_tuning_job_request(
        tuning(warm_start_parents=("tune-a", "tune-b"), warm_start_type="transfer", ranges=parameter_ranges([], []))
    )

    assert request["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [
            {"HyperParameterTuningJobName": "tune-a"},
            {"HyperParameterTuningJobName": "tune-b"},
        ],
        "WarmStartType": "TransferLearning",
    }


@pytest.mark.parametrize(
    "ranges, values, message",
    [
        (["learning_rate=1e-4:1e-5"], [], "is not below"),
        (["learning_rate=0:1e-4:log"], [], "is '0'; allowed: a number greater than 0"),
        (["learning_rate=0.0:1e-4:log"], [], "allowed"),
        (["max_length=4:64"], [], "'max_length' is '4'; allowed: an integer from 8 to 8192"),
        (["epoch=2:4"], [], "unknown hyperparameter 'epoch' (did you mean 'epochs'?)"),
        (["clean_text=0:1"], [], "is not numeric, so it has no range"),
        (["epochs=2-4"], [], "is not NAME=LOW:HIGH[:log]"),
        ([], ["mixed_precision=fp16,fp8"], "'mixed_precision' is 'fp8'"),
        (["epochs=2:4"], ["epochs=2,3"], "epochs is tuned twice"),
    ],
)
def test_ranges_are_checked_as_the_hyperparameters_they_tune(ranges, values, message):
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        parameter_ranges(ranges, values)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"max_jobs": 2, "max_parallel_jobs": 3}, "--max-parallel-jobs 3 is more than --max-jobs 2"),
        ({"static_hyperparameters": {"epochs": "3"}}, "epochs is both tuned and fixed"),
        ({"strategy": "hyperband", "early_stopping": True}, "Hyperband stops poor trials itself"),
        ({"strategy": "hyperband"}, "epochs cannot be a tuned range"),
        ({"min_resource": 1}, "only apply to --strategy hyperband"),
        ({"objective_metric": "eval:f2"}, "'eval:f2' is not a sagebert metric: compare only eval:loss (lower"),
        ({"objective_metric": "train:learning_rate"}, "'train:learning_rate' is one of sagebert's metrics but not a"),
        ({"name": "a-name-much-longer-than-thirty-two-characters"}, "not a valid SageMaker tuning job name"),
    ],
)
def test_tuning_jobs_sagemaker_would_refuse_are_refused(changes, message):
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        create_tuning_job_request(tuning(ranges=parameter_ranges(["epochs=2:4"], []), **changes))


def test_generated_tuning_names_fit_32_characters():
    name = unique_name("a-rather-long-stem-for-a-tuning-job", datetime(2026, 11, 26), "abcd", max_length=32)

    assert len(name) <= 32 and re.fullmatch(shape_limits("HyperParameterTuningJobName")["pattern"], name)


def test_the_best_training_job_is_named_or_its_absence_explained():
    assert best_training_job({"BestTrainingJob": {"TrainingJobName": "t-001"}}) == "t-001"
    with pytest.raises(InvalidRequestError, match="has no best training job yet"):
        best_training_job({"HyperParameterTuningJobName": "t", "HyperParameterTuningJobStatus": "InProgress"})


# ---- transform ---------------------------------------------------------------------------------------
def transform(**changes) -> TransformSpec:
    values = dict(name="score-1", model_name="m", input="s3://bucket/in/", output="s3://bucket/out")
    return TransformSpec(**{**values, **changes})


def test_a_transform_splits_lines_sends_many_per_request_and_assembles_lines():
    request = create_transform_job_request(transform(join_input=True))

    assert request["BatchStrategy"] == "MultiRecord" and request["MaxPayloadInMB"] == 6
    assert "MaxConcurrentTransforms" not in request  # the container's /execution-parameters decides
    assert request["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in/"}},
        "ContentType": "application/jsonlines",
        "SplitType": "Line",
        "CompressionType": "None",
    }
    assert request["TransformOutput"] == {
        "S3OutputPath": "s3://bucket/out/",
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }
    assert request["DataProcessing"] == {"JoinSource": "Input"}
    assert request_problems("CreateTransformJob", request) == []


@given(payload=st.integers(1, 100), concurrent=st.integers(1, 200))
def test_concurrent_transforms_times_payload_stays_within_100_mb(payload, concurrent):
    spec = transform(max_payload_mb=payload, max_concurrent_transforms=concurrent)

    if payload * concurrent <= 100:
        assert create_transform_job_request(spec)["MaxConcurrentTransforms"] == concurrent
    else:
        with pytest.raises(InvalidRequestError, match=f"= {payload * concurrent} MB; SageMaker allows at most 100 MB"):
            create_transform_job_request(spec)


def test_the_transform_defaults_are_what_the_container_answers_on_execution_parameters():
    from sagebert.serving.app import ModelHolder, create_app  # flask is a dependency: no skip
    from sagebert.serving.settings import ServingSettings

    settings = ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    answer = create_app(ModelHolder(), settings).test_client().get("/execution-parameters").json

    assert answer["BatchStrategy"].replace("_", "").lower() == CONTAINER_BATCH_STRATEGY.lower()
    assert answer["MaxPayloadInMB"] == CONTAINER_MAX_PAYLOAD_MB


# ---- registry --------------------------------------------------------------------------------------------
def package(**changes) -> PackageSpec:
    values = dict(
        group="disaster-tweets",
        image=ImageReference.parse(IMAGE).by_digest(DIGEST),
        model_data="s3://bucket/out/job-1/output/model.tar.gz",
        training_job="job-1",
        metrics={"eval:f1": 0.7993},
        metrics_uri="s3://bucket/out/job-1/output/sagebert-model-metrics.json",
        metrics_digest="sha256:" + "cd" * 32,
    )
    return PackageSpec(**{**values, **changes})


def test_a_model_package_names_the_image_by_digest_and_carries_its_metrics():
    request = create_model_package_request(package())

    container = request["InferenceSpecification"]["Containers"][0]
    assert container == {
        "Image": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert@{DIGEST}",
        "ImageDigest": DIGEST,
        "ModelDataUrl": "s3://bucket/out/job-1/output/model.tar.gz",
    }
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    assert request["CustomerMetadataProperties"] == {
        "sagebert:training-job": "job-1",
        "sagebert:metric:eval:f1": "0.7993",
    }
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("sagebert-model-metrics.json")
    assert "text/csv" in request["InferenceSpecification"]["SupportedContentTypes"]
    assert request_problems("CreateModelPackage", request) == []


def test_a_model_package_carries_its_test_data_digest_for_the_gate():
    request = create_model_package_request(package(eval_data="ab" * 32))

    assert request["CustomerMetadataProperties"]["sagebert:eval-data-sha256"] == "ab" * 32
    assert request_problems("CreateModelPackage", request) == []


def test_a_package_without_a_digest_is_refused():
    with pytest.raises(InvalidRequestError, match="is not named by digest"):
        create_model_package_request(package(image=ImageReference.parse(IMAGE)))


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected", None])
def test_only_approved_packages_are_deployed_and_the_fix_says_how_to_approve(status):
    with pytest.raises(InvalidRequestError, match="only Approved packages are deployed") as raised:
        require_approved(
            {"ModelPackageArn": "arn:aws:sagemaker:eu-west-1:1:model-package/g/1", "ModelApprovalStatus": status}
        )
    assert "--model-approval-status Approved" in raised.value.fix
    require_approved({"ModelApprovalStatus": "Approved"})


# ---- autoscaling -------------------------------------------------------------------------------------
def test_autoscaling_registers_the_variant_and_tracks_invocations_per_instance():
    spec = ScalingSpec(1, 4, 100)

    assert register_scalable_target_request("ep", "AllTraffic", spec) == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/ep/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 1,
        "MaxCapacity": 4,
    }
    policy = put_scaling_policy_request("ep", "AllTraffic", spec)
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 100.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }
    assert request_problems("PutScalingPolicy", policy, "application-autoscaling") == []


@pytest.mark.parametrize(
    "spec, message",
    [
        (ScalingSpec(0, 2, 10), "keeps at least 1"),
        (ScalingSpec(3, 2, 10), "below --min 3"),
        (ScalingSpec(1, 2, 0), "must be positive"),
    ],
)
def test_scaling_settings_outside_what_makes_sense_are_refused(spec, message):
    with pytest.raises(InvalidRequestError, match=message):
        register_scalable_target_request("ep", "v", spec)


def test_a_described_target_and_policy_are_recreated_as_they_were():
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/ep/variant/v",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 2,
        "MaxCapacity": 6,
        "RoleARN": "arn:aws:iam::1:role/x",
        "CreationTime": "t",
    }
    tracking = {
        "TargetValue": 70.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "Alarms": [{"AlarmName": "a", "AlarmARN": "arn"}],
    }
    policy = {
        "PolicyName": "p",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": tracking,
        "PolicyARN": "x",
    }

    register, puts = restore_requests(target, [policy])

    assert register == {
        k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension", "MinCapacity", "MaxCapacity")
    }
    assert puts == [
        {
            **{k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")},
            "PolicyName": "p",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {k: v for k, v in tracking.items() if k != "Alarms"},
        }
    ]


def test_the_cli_never_imports_the_serving_code():
    import subprocess
    import sys

    probe = "import sys, sagebert.cli; print(sorted(m for m in sys.modules if m.startswith('sagebert.serving') or m.split('.')[0] in ('flask', 'numpy')))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
    )

    assert result.stdout.strip() == "[]"
