"""`sagebert tune`, `transform`, `register`, `compare` and `autoscale` against moto.

moto implements CreateHyperParameterTuningJob, CreateTransformJob, the model registry and
Application Auto Scaling; it has no ListTrainingJobsForHyperParameterTuningJob and fixes a
tuning job's BestTrainingJob and every job's FinalMetricDataList, so those paths use botocore's
Stubber with the exact requests expected, and metrics reach moto's jobs through the metrics.json
inside model.tar.gz objects the tests put in moto's S3.
"""

from __future__ import annotations

import json
import re

import pytest
from botocore.stub import Stubber

from sagebert.aws.build.tuning import best_training_job

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"


def tune_args(fake, data: str, *extra: str) -> list[str]:
    return ["tune", "--image", fake.image, "--role", fake.role_arn, "--data", data, *extra]


# ---- tune ----------------------------------------------------------------------------------------------
def test_tune_keep_alive_keeps_each_trials_instances_warm_for_the_next(cli, clients, sent, fake, training_data):
    result = cli(*tune_args(fake, training_data, "--keep-alive", "600", "--max-jobs", "2"), clients=clients)

    assert result.code == 0, result.err
    definition = sent.one("CreateHyperParameterTuningJob")["TrainingJobDefinition"]
    assert definition["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600


def test_tune_sends_ranges_objective_limits_and_spot_checkpoints(cli, clients, sent, fake, training_data):
    result = cli(
        *tune_args(
            fake,
            training_data,
            "--range",
            "learning_rate=1e-5:1e-4:log",
            "--range",
            "warmup_ratio=0:0.2",
            "--values",
            "train_batch_size=16,32",
            "--max-jobs",
            "4",
            "--max-parallel-jobs",
            "2",
            "--strategy",
            "random",
            "--early-stopping",
            "--spot",
            "--checkpoint-s3",
            f"s3://{fake.bucket}/ckpt",
            "--epochs",
            "3",
            "--name",
            "tweets-tune-1",
        ),
        clients=clients,
    )

    assert result.code == 0, result.err
    request = sent.one("CreateHyperParameterTuningJob")
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random" and config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "eval:f1"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert [r["Name"] for r in config["ParameterRanges"]["ContinuousParameterRanges"]] == [
        "learning_rate",
        "warmup_ratio",
    ]
    definition = request["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"] == {"epochs": "3"}
    assert definition["CheckpointConfig"]["S3Uri"] == f"s3://{fake.bucket}/ckpt/tweets-tune-1/"
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800}
    described = clients.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tweets-tune-1")
    assert described["HyperParameterTuningJobConfig"]["Strategy"] == "Random"
    assert "Follow it: sagebert status --tuning-job tweets-tune-1 --follow" in result.lines


def test_tune_dry_run_plans_the_request_and_creates_nothing(cli, clients, fake, training_data):
    result = cli(*tune_args(fake, training_data, "--dry-run", "--json", "--name", "t-1"), clients=clients)

    assert result.code == 0, result.err
    [line] = result.lines
    assert json.loads(line)["request"]["HyperParameterTuningJobName"] == "t-1"
    assert clients.sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []


def test_tune_refuses_a_range_before_sending_anything(cli, clients, sent, fake, training_data):
    result = cli(*tune_args(fake, training_data, "--range", "epoch=2:4"), clients=clients)

    assert result.code == 1
    assert "unknown hyperparameter 'epoch' (did you mean 'epochs'?)" in result.err
    assert sent("CreateHyperParameterTuningJob") == []


def trial(name: str, status: str, value: float | None, lr: str, created) -> dict:
    summary = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{name}",
        "CreationTime": created,
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"learning_rate": lr},
    }
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "eval:f1", "Value": value}
    return summary


def tuning_job(described, status: str, best: dict | None = None) -> dict:
    job = {
        "HyperParameterTuningJobName": "tune-1",
        "HyperParameterTuningJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/tune-1",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "eval:f1"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
        },
        "HyperParameterTuningJobStatus": status,
        "CreationTime": described.created,
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }
    if best:
        job["BestTrainingJob"] = best
    return job


def test_status_follow_of_a_tuning_job_shows_each_trial_and_ends_with_the_best(cli, clients, described):
    at = described.created
    first = [trial("tune-1-001", "InProgress", None, "2e-05", at), trial("tune-1-002", "InProgress", None, "5e-05", at)]
    final = [
        trial("tune-1-001", "Completed", 0.7811, "2e-05", at),
        trial("tune-1-002", "Completed", 0.8123, "5e-05", at),
    ]
    key = {"HyperParameterTuningJobName": "tune-1"}
    listing = {**key, "SortBy": "CreationTime", "SortOrder": "Descending"}
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_hyper_parameter_tuning_job", tuning_job(described, "InProgress"), key)
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": first}, listing)
        stub.add_response("describe_hyper_parameter_tuning_job", tuning_job(described, "Completed", final[1]), key)
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": final}, listing)
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": final}, listing)

        result = cli("status", "--tuning-job", "tune-1", "--follow", "--poll-interval", "0", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    trials = [line.split() for line in result.lines if line.startswith("  trial tune")]
    assert trials == [
        ["trial", "tune-1-002", "InProgress"],
        ["trial", "tune-1-001", "InProgress"],
        ["trial", "tune-1-002", "Completed", "objective", "0.8123"],
        ["trial", "tune-1-001", "Completed", "objective", "0.7811"],
    ]
    table = [line.split() for line in result.lines if line.startswith("  tune-1-00")]
    assert table == [
        ["tune-1-002", "Completed", "0.8123", "learning_rate=5e-05"],
        ["tune-1-001", "Completed", "0.7811", "learning_rate=2e-05"],
    ]
    assert (
        "Best: tune-1-002 (eval:f1 0.8123). Deploy it: sagebert deploy --tuning-job tune-1 --endpoint NAME"
        in result.lines
    )


def test_deploy_from_a_tuning_job_deploys_its_best_training_job(cli, clients, fake, described, fixed_names):
    name = fixed_names(ENDPOINT)
    best = trial("tune-1-002", "Completed", 0.8123, "5e-05", described.created)
    with Stubber(clients.sagemaker) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            tuning_job(described, "Completed", best),
            {"HyperParameterTuningJobName": "tune-1"},
        )
        metrics = [{"MetricName": "eval:f1", "Value": 0.8123, "Timestamp": described.created}]
        stub.add_response(
            "describe_training_job",
            described.training_job("tune-1-002", FinalMetricDataList=metrics),
            {"TrainingJobName": "tune-1-002"},
        )
        described.not_found(stub, "describe_endpoint", described.arn("endpoint", ENDPOINT))
        artifacts = f"s3://{fake.bucket}/sagebert/output/tune-1-002/output/model.tar.gz"
        stub.add_response(
            "create_model",
            {"ModelArn": described.arn("model", name)},
            {
                "ModelName": name,
                "ExecutionRoleArn": fake.role_arn,
                "PrimaryContainer": {"Image": fake.image, "Mode": "SingleModel", "ModelDataUrl": artifacts},
                "Tags": [
                    {"Key": "sagebert:endpoint", "Value": ENDPOINT},
                    {"Key": "sagebert:training-job", "Value": "tune-1-002"},
                    {"Key": "sagebert:metric:eval:f1", "Value": "0.8123"},
                ],
            },
        )
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": described.arn("endpoint-config", name)})
        stub.add_response("describe_endpoint_config", described.endpoint_config(name, name))
        stub.add_response("create_endpoint", {"EndpointArn": described.arn("endpoint", ENDPOINT)})
        stub.add_response("describe_endpoint", described.endpoint(ENDPOINT, "InService", name))

        result = cli(
            "deploy", "--tuning-job", "tune-1", "--endpoint", ENDPOINT, "--poll-interval", "0", clients=clients
        )
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err


def test_a_warm_started_tuning_job_names_its_overall_best_training_job(cli, clients, described):
    # DescribeHyperParameterTuningJob: with IDENTICAL_DATA_AND_ALGORITHM warm start,
    # OverallBestTrainingJob is the best over this job and its parents; BestTrainingJob only its own.
    own = trial("tune-1-002", "Completed", 0.8011, "5e-05", described.created)
    overall = trial("parent-007", "Completed", 0.8312, "3e-05", described.created)
    job = {**tuning_job(described, "Completed", own), "OverallBestTrainingJob": overall}
    key = {"HyperParameterTuningJobName": "tune-1"}
    listing = {**key, "SortBy": "CreationTime", "SortOrder": "Descending"}
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("describe_hyper_parameter_tuning_job", job, key)
        stub.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": [own]}, listing)

        result = cli("status", "--tuning-job", "tune-1", clients=clients)

    assert result.code == 0, result.err
    assert "Best: parent-007 (eval:f1 0.8312). Deploy it: sagebert deploy --tuning-job tune-1 --endpoint NAME" in (
        result.lines
    )
    assert best_training_job(job) == "parent-007"  # what deploy/update/transform --tuning-job take


# ---- transform ---------------------------------------------------------------------------------------
def test_transform_from_a_training_job_makes_a_model_for_it_scores_and_deletes_the_model(
    cli, clients, sent, fake, trained
):
    trained("job-1", f1=0.8)

    result = cli(
        "transform",
        "--training-job",
        "job-1",
        "--input",
        f"s3://{fake.bucket}/score/in/",
        "--output",
        f"s3://{fake.bucket}/score/out",
        "--join-input",
        "--name",
        "score-1",
        "--wait",
        "--poll-interval",
        "0",
        clients=clients,
    )

    assert result.code == 0, result.err
    model = sent.one("CreateModel")
    assert model["ModelName"] == "score-1"
    assert {"Key": "sagebert:transform-job", "Value": "score-1"} in model["Tags"]
    assert sent.one("CreateTransformJob") == {
        "TransformJobName": "score-1",
        "ModelName": "score-1",
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{fake.bucket}/score/in/"}},
            "ContentType": "application/jsonlines",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{fake.bucket}/score/out/",
            "Accept": "application/jsonlines",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "DataProcessing": {"JoinSource": "Input"},
    }
    assert "==> score-1: Completed (0s)" in result.lines
    assert f"Transform job score-1 Completed: 0 answer file(s) under s3://{fake.bucket}/score/out/" in result.lines
    assert "deleted model score-1 (made for this transform job, which has ended)" in result.lines
    assert clients.sagemaker.list_models()["Models"] == []


def test_transform_with_an_endpoints_model_takes_its_payload_limit(cli, clients, sent, fake, trained):
    trained("job-1")
    assert (
        cli(
            "deploy",
            "--training-job",
            "job-1",
            "--endpoint",
            ENDPOINT,
            "--env",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB=20",
            "--poll-interval",
            "0",
            clients=clients,
        ).code
        == 0
    )

    result = cli(
        "transform",
        "--endpoint",
        ENDPOINT,
        "--input",
        f"s3://{fake.bucket}/in/",
        "--output",
        f"s3://{fake.bucket}/out/",
        "--format",
        "csv",
        "--max-concurrent-transforms",
        "5",
        clients=clients,
    )

    assert result.code == 0, result.err
    request = sent.one("CreateTransformJob")
    assert (request["MaxPayloadInMB"], request["MaxConcurrentTransforms"]) == (20, 5)
    assert request["TransformInput"]["ContentType"] == request["TransformOutput"]["Accept"] == "text/csv"
    assert len(sent("CreateModel")) == 1  # the endpoint's; the transform made none


@pytest.mark.parametrize("value", ["12MB", "nan", "0"])
def test_transform_with_a_model_payload_limit_that_is_not_a_number_is_one_clear_line(
    cli, clients, sent, fake, trained, value
):
    trained("job-1")
    deployed = cli(
        "deploy",
        "--training-job",
        "job-1",
        "--endpoint",
        ENDPOINT,
        "--env",
        f"SAGEMAKER_MAX_PAYLOAD_IN_MB={value}",
        "--poll-interval",
        "0",
        clients=clients,
    )
    assert deployed.code == 0, deployed.err

    result = cli(
        "transform",
        "--endpoint",
        ENDPOINT,
        "--input",
        f"s3://{fake.bucket}/in/",
        "--output",
        f"s3://{fake.bucket}/out/",
        clients=clients,
    )

    assert result.code == 1
    assert "Traceback" not in result.err and result.err.count("\n") == 1
    assert f"SAGEMAKER_MAX_PAYLOAD_IN_MB={value!r}, which is not a number of megabytes" in result.err
    assert "Fix: Pass --max-payload-mb N (1-100)" in result.err
    assert sent("CreateTransformJob") == []


def test_transform_over_the_100_mb_budget_is_refused_before_anything_is_created(cli, clients, sent, fake, trained):
    trained("job-1")

    result = cli(
        "transform",
        "--training-job",
        "job-1",
        "--input",
        f"s3://{fake.bucket}/in/",
        "--output",
        f"s3://{fake.bucket}/out/",
        "--max-payload-mb",
        "10",
        "--max-concurrent-transforms",
        "11",
        clients=clients,
    )

    assert result.code == 1
    assert "= 110 MB; SageMaker allows at most 100 MB" in result.err
    assert sent("CreateModel") == []


# ---- register ----------------------------------------------------------------------------------------
@pytest.fixture
def ecr_image(clients, fake) -> str:
    """fake.image pushed to moto's ECR (moto answers the digest of an empty manifest)."""
    ecr = clients.ecr
    ecr.create_repository(repositoryName="sagebert")
    ecr.put_image(
        repositoryName="sagebert",
        imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
        ),
        imageTag=fake.image.rsplit(":", 1)[1],
    )
    return ecr.describe_images(repositoryName="sagebert")["imageDetails"][0]["imageDigest"]


def test_register_adds_a_version_naming_the_image_by_digest_with_the_jobs_metrics(
    cli, clients, sent, fake, trained, ecr_image
):
    job = trained("job-1", f1=0.7993)

    result = cli("register", "--training-job", "job-1", "--group", "disaster-tweets", clients=clients)

    assert result.code == 0, result.err
    assert "created model package group disaster-tweets" in result.lines
    request = sent.one("CreateModelPackage")
    container = request["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == f"{fake.account}.dkr.ecr.{fake.region}.amazonaws.com/sagebert@{ecr_image}"
    assert container["ImageDigest"] == ecr_image
    assert container["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert request["CustomerMetadataProperties"]["sagebert:metric:eval:f1"] == "0.7993"
    statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]
    stored = clients.s3.get_object(Bucket=fake.bucket, Key=statistics["S3Uri"].split("/", 3)[3])["Body"].read()
    assert json.loads(stored)["binary_classification_metrics"]["f1"] == {"value": 0.7993}
    arn = re.search(r"as (\S+) \(PendingManualApproval\)", result.out).group(1)
    assert (
        clients.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"
    )


def test_register_of_an_image_without_a_digest_in_ecr_says_how_to_fix_it(cli, clients, fake, trained):
    trained("job-1", image="127.0.0.1:5000/sagebert:v1")

    result = cli("register", "--training-job", "job-1", "--group", "g", clients=clients)

    assert result.code == 1
    assert (
        "has no digest, and sagebert resolves digests only for ECR tags" in result.err
        and "image_digest_uri" in result.err
    )
    assert clients.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_deploy_refuses_a_package_that_is_not_approved_naming_how_to_approve(
    cli, clients, sent, fake, trained, ecr_image
):
    trained("job-1", f1=0.7993)
    assert cli("register", "--training-job", "job-1", "--group", "g", clients=clients).code == 0
    arn = clients.sagemaker.list_model_packages(ModelPackageGroupName="g")["ModelPackageSummaryList"][0][
        "ModelPackageArn"
    ]

    result = cli("deploy", "--model-package", arn, "--role", fake.role_arn, "--endpoint", ENDPOINT, clients=clients)

    assert result.code == 1
    assert f"Model package {arn} is PendingManualApproval; only Approved packages are deployed." in result.err
    assert f"--model-package-arn {arn} --model-approval-status Approved" in result.err
    assert sent("CreateModel") == []


# ---- compare -----------------------------------------------------------------------------------------
def test_compare_reads_metrics_json_from_the_model_archives(cli, clients, trained):
    trained("job-1", f1=0.7993)
    trained("job-2", f1=0.8123)

    result = cli("compare", "job-1", "job-2", clients=clients)

    assert result.code == 0, result.err
    rows = {line.split()[0]: line.split()[1:] for line in result.lines if line.startswith(("eval:", "train:"))}
    assert rows["eval:f1"] == ["0.7993", "0.8123"]
    assert rows["train:progress"] == ["100.0000", "100.0000"]  # moto's canned FinalMetricDataList
    assert any("job-1: metrics.json in s3://" in line for line in result.lines)


def test_compare_shows_each_models_test_data_and_warns_when_they_differ(cli, clients, trained):
    import io
    import tarfile

    for job, f1, digest in (("job-1", 0.7993, "a" * 64), ("job-2", 0.8123, "b" * 64)):
        artifact = trained(job)["ModelArtifacts"]["S3ModelArtifacts"]
        data = json.dumps({"f1": f1, "eval_data_sha256": digest}).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("metrics.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        bucket, key = artifact[len("s3://") :].split("/", 1)
        clients.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())

    result = cli("compare", "job-1", "job-2", clients=clients)

    assert result.code == 0, result.err
    assert any(line.endswith("; test data sha256 aaaaaaaaaaaa...)") for line in result.lines)
    assert any(line.endswith("; test data sha256 bbbbbbbbbbbb...)") for line in result.lines)
    assert "warning: these models were scored on different test data: their eval metrics are not comparable" in (
        result.err
    )


def test_compare_prefers_final_metric_data_list_and_reads_no_archive(cli, clients, sent, described):
    metrics = [{"MetricName": "eval:f1", "Value": 0.81, "Timestamp": described.created}]
    with Stubber(clients.sagemaker) as stub:
        stub.add_response(
            "describe_training_job",
            described.training_job("job-9", FinalMetricDataList=metrics),
            {"TrainingJobName": "job-9"},
        )
        result = cli("compare", "job-9", clients=clients)

    assert result.code == 0, result.err
    assert ["eval:f1", "0.8100"] in [line.split() for line in result.lines]
    assert "  (job-9: FinalMetricDataList)" in result.lines
    assert sent("GetObject") == []


# ---- autoscale -----------------------------------------------------------------------------------------
def test_autoscale_registers_and_tracks_and_off_removes_it(cli, clients, sent, trained):
    trained("job-1")
    assert (
        cli("deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--poll-interval", "0", clients=clients).code
        == 0
    )

    on = cli(
        "autoscale", "--endpoint", ENDPOINT, "--min", "1", "--max", "4", "--target-invocations", "100", clients=clients
    )
    shown = cli("autoscale", "--endpoint", ENDPOINT, clients=clients)
    off = cli("autoscale", "--endpoint", ENDPOINT, "--off", clients=clients)

    assert on.code == 0, on.err
    assert sent.one("RegisterScalableTarget") == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 1,
        "MaxCapacity": 4,
    }
    assert sent.one("PutScalingPolicy")["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 100.0
    assert shown.lines == [f"{ENDPOINT}: 1 instance(s); autoscaling 1-4 instances (sagebert-invocations-per-instance)"]
    assert off.code == 0 and "Autoscaling of disaster-tweets removed" in off.out
    assert clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_an_async_endpoint_autoscales_on_its_backlog_down_to_zero(cli, clients, sent, fake, trained):
    # AWS's "Autoscale an asynchronous endpoint": target tracking on ApproximateBacklogSizePerInstance
    # (AWS/SageMaker, EndpointName, Average), and asynchronous endpoints may scale in to zero.
    trained("job-1")
    deployed = cli(
        "deploy",
        "--training-job",
        "job-1",
        "--endpoint",
        ENDPOINT,
        "--async",
        f"s3://{fake.bucket}/async",
        "--poll-interval",
        "0",
        clients=clients,
    )
    assert deployed.code == 0, deployed.err

    on = cli("autoscale", "--endpoint", ENDPOINT, "--min", "0", "--max", "4", "--target-backlog", "5", clients=clients)
    by_invocations = cli(
        "autoscale", "--endpoint", ENDPOINT, "--min", "0", "--max", "4", "--target-invocations", "100", clients=clients
    )

    assert on.code == 0, on.err
    assert sent.one("RegisterScalableTarget")["MinCapacity"] == 0
    policy = sent.one("PutScalingPolicy")
    assert policy["PolicyName"] == "sagebert-backlog-per-instance"
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 5.0
    assert policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}],
        "Statistic": "Average",
    }
    assert "target 5 queued requests per instance" in on.out
    assert by_invocations.code == 1 and "Use --target-backlog B instead" in by_invocations.err


def test_a_real_time_endpoint_keeps_at_least_one_instance(cli, clients, trained):
    trained("job-1")
    assert (
        cli("deploy", "--training-job", "job-1", "--endpoint", ENDPOINT, "--poll-interval", "0", clients=clients).code
        == 0
    )

    zero = cli(
        "autoscale", "--endpoint", ENDPOINT, "--min", "0", "--max", "4", "--target-invocations", "100", clients=clients
    )
    backlog = cli(
        "autoscale", "--endpoint", ENDPOINT, "--min", "1", "--max", "4", "--target-backlog", "5", clients=clients
    )

    assert zero.code == 1 and "only an asynchronous endpoint scales to 0" in zero.err
    assert backlog.code == 1 and "--target-backlog is for asynchronous endpoints" in backlog.err


def test_autoscale_refuses_a_serverless_endpoint(cli, clients, trained):
    trained("job-1")
    assert (
        cli(
            "deploy",
            "--training-job",
            "job-1",
            "--endpoint",
            ENDPOINT,
            "--serverless",
            "2048:5",
            "--poll-interval",
            "0",
            clients=clients,
        ).code
        == 0
    )

    result = cli(
        "autoscale", "--endpoint", ENDPOINT, "--min", "1", "--max", "4", "--target-invocations", "100", clients=clients
    )

    assert result.code == 1
    assert "is serverless: SageMaker scales it by itself" in result.err


def test_register_encrypts_the_package_and_its_metrics_file_and_tags_the_group(
    cli, clients, sent, fake, trained, ecr_image
):
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    trained("job-1", f1=0.8)

    result = cli(
        "register", "--training-job", "job-1", "--group", "private-tweets", "--kms-key", key, "--tag", "team=ml",
        clients=clients,
    )  # fmt: skip

    assert result.code == 0, result.err
    package, group = sent.one("CreateModelPackage"), sent.one("CreateModelPackageGroup")
    assert package["SecurityConfig"] == {"KmsKeyId": key}
    assert {"Key": "team", "Value": "ml"} in package["Tags"] and group["Tags"] == [{"Key": "team", "Value": "ml"}]
    metrics_file = sent("PutObject")[-1]  # the first is the fixture's model archive
    assert (metrics_file["ServerSideEncryption"], metrics_file["SSEKMSKeyId"]) == ("aws:kms", key)
