"""`sagebert upload-data`, `train` (with --wait), and `stop`, against moto and botocore's Stubber."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.stub import Stubber

from sagebert.aws.watch import TrainingLogReader
from sagebert.metric_lines import METRIC_DEFINITIONS

pytestmark = pytest.mark.aws

JOB_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def train_args(fake, data: str, *extra: str) -> list[str]:
    return ["train", "--image", fake.image, "--role", fake.role_arn, "--data", data, *extra]


# ---- upload-data ------------------------------------------------------------------------------------
def test_upload_data_copies_the_folder_tree_and_names_the_channels(cli, clients, bucket):
    result = cli("upload-data", "local_test/data", f"s3://{bucket}/sagebert/data", clients=clients)

    assert result.code == 0, result.err
    keys = sorted(o["Key"] for o in clients.s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["sagebert/data/testing/test.csv", "sagebert/data/training/train.csv"]
    assert f"Channels: testing, training. Next: sagebert train --data s3://{bucket}/sagebert/data/" in result.out


def test_upload_data_to_a_missing_bucket_is_one_line_with_the_fix(cli, clients):
    result = cli("upload-data", "local_test/data", "s3://no-such-bucket/data", clients=clients)

    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "The S3 bucket does not exist" in result.err and "aws s3 mb" in result.err


# ---- what train sends -------------------------------------------------------------------------------
def test_train_sends_file_mode_channels_string_hyperparameters_and_our_metric_regexes(
    cli, clients, sent, fake, training_data
):
    result = cli(
        *train_args(
            fake,
            training_data,
            "--epochs",
            "2",
            "--learning-rate",
            "2e-5",
            "--instance-type",
            "ml.g5.xlarge",
            "--job-name",
            "bert-run-1",
        ),
        clients=clients,
    )

    assert result.code == 0, result.err
    request = sent.one("CreateTrainingJob")
    assert request["TrainingJobName"] == "bert-run-1"
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": fake.image,
        "TrainingInputMode": "File",
        "MetricDefinitions": METRIC_DEFINITIONS,
        "EnableSageMakerMetricsTimeSeries": True,
    }
    assert request["HyperParameters"] == {"epochs": "2", "learning_rate": "2e-05"}
    assert [
        (c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"], c["InputMode"]) for c in request["InputDataConfig"]
    ] == [("training", f"{training_data}/training/", "File"), ("testing", f"{training_data}/testing/", "File")]
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{fake.bucket}/sagebert/output/"}
    assert request["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert request["EnableManagedSpotTraining"] is False and "CheckpointConfig" not in request
    assert "Follow it: sagebert status --training-job bert-run-1 --follow" in result.out


def test_train_with_spot_sends_max_wait_above_max_run_and_a_per_job_checkpoint_folder(
    cli, clients, sent, fake, training_data
):
    result = cli(
        *train_args(
            fake,
            training_data,
            "--spot",
            "--max-run",
            "4000",
            "--max-wait",
            "5000",
            "--checkpoint-s3",
            f"s3://{fake.bucket}/sagebert/checkpoints",
            "--job-name",
            "spot-1",
        ),
        clients=clients,
    )

    assert result.code == 0, result.err
    request = sent.one("CreateTrainingJob")
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 4000, "MaxWaitTimeInSeconds": 5000}
    assert request["CheckpointConfig"] == {
        "S3Uri": f"s3://{fake.bucket}/sagebert/checkpoints/spot-1/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    echoed = clients.sagemaker.describe_training_job(TrainingJobName="spot-1")
    assert echoed["CheckpointConfig"]["S3Uri"] == f"s3://{fake.bucket}/sagebert/checkpoints/spot-1/"


def test_train_spot_without_checkpoints_warns_that_an_interruption_restarts_from_scratch(
    cli, clients, fake, training_data
):
    result = cli(*train_args(fake, training_data, "--spot"), clients=clients)

    assert result.code == 0
    assert "warning: --spot without --checkpoint-s3" in result.err


def test_train_accepts_a_max_wait_equal_to_max_run_as_the_api_does(cli, clients, sent, fake, training_data):
    result = cli(*train_args(fake, training_data, "--spot", "--max-run", "4000", "--max-wait", "4000"), clients=clients)

    assert result.code == 0, result.err
    assert sent.one("CreateTrainingJob")["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 4000,
        "MaxWaitTimeInSeconds": 4000,
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ("--spot", "--max-run", "4000", "--max-wait", "3999"),
            "must be at least MaxRuntimeInSeconds (4000, --max-run)",
        ),
        (("--max-run", "2419201"), "a SageMaker training job runs at most 28 days (2419200 s)"),
    ],
)
def test_train_refuses_stopping_conditions_the_api_refuses_before_sending_anything(
    cli, clients, sent, fake, training_data, extra, message
):
    result = cli(*train_args(fake, training_data, *extra), clients=clients)

    assert result.code == 1
    assert message in result.err
    assert sent("CreateTrainingJob") == []


def test_train_keep_alive_asks_for_a_warm_pool(cli, clients, sent, fake, training_data):
    result = cli(*train_args(fake, training_data, "--keep-alive", "1800", "--job-name", "warm-1"), clients=clients)

    assert result.code == 0, result.err
    assert sent.one("CreateTrainingJob")["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800


@pytest.mark.parametrize(
    "seconds, message", [("3601", "0 to 3600 s"), ("-1", "must be at least 0"), ("half", "a number of seconds")]
)
def test_train_refuses_a_keep_alive_outside_the_apis_range_before_sending_anything(
    cli, clients, sent, fake, training_data, seconds, message
):
    result = cli(*train_args(fake, training_data, "--keep-alive", seconds), clients=clients)

    assert result.code != 0 and message in result.err
    assert sent("CreateTrainingJob") == []


@pytest.mark.parametrize(
    "image",
    [
        "sagebert",  # no registry
        "sagebert:latest",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/Sagebert:1",  # upper case repository
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:bad tag",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert@sha256:abc",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/" + "a" * 250,
    ],
)
def test_train_refuses_an_image_that_is_not_an_image_uri(cli, clients, sent, fake, training_data, image):
    result = cli("train", "--image", image, "--role", fake.role_arn, "--data", training_data, clients=clients)

    assert result.code == 1
    assert "is not an image URI SageMaker can pull" in result.err and "build_and_push.sh" in result.err
    assert sent("CreateTrainingJob") == []


def test_train_accepts_an_image_by_digest(cli, clients, sent, fake, training_data):
    image = f"{fake.account}.dkr.ecr.{fake.region}.amazonaws.com/sagebert@sha256:{'0' * 64}"

    result = cli("train", "--image", image, "--role", fake.role_arn, "--data", training_data, clients=clients)

    assert result.code == 0, result.err
    assert sent.one("CreateTrainingJob")["AlgorithmSpecification"]["TrainingImage"] == image


def test_train_multi_host_sets_instance_count_and_processes_per_host(cli, clients, sent, fake, training_data):
    result = cli(
        *train_args(
            fake,
            training_data,
            "--instance-count",
            "2",
            "--processes-per-host",
            "4",
            "-H",
            "clean_text=True",
            "--hyperparameter",
            "label_names=No,Yes",
        ),
        clients=clients,
    )

    assert result.code == 0, result.err
    request = sent.one("CreateTrainingJob")
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["HyperParameters"] == {"processes_per_host": "4", "clean_text": "true", "label_names": "No,Yes"}


def test_train_rejects_an_unknown_hyperparameter_client_side(cli, clients, sent, fake, training_data):
    result = cli(*train_args(fake, training_data, "-H", "epoch=3"), clients=clients)

    assert result.code == 1
    assert "unknown hyperparameter 'epoch' (did you mean 'epochs'?)" in result.err
    assert sent("CreateTrainingJob") == []


def test_train_without_a_testing_folder_sends_only_the_training_channel(cli, clients, sent, fake, bucket):
    clients.s3.put_object(Bucket=bucket, Key="only/training/train.csv", Body=b"label,sentence\n0,hi\n")

    result = cli(*train_args(fake, f"s3://{bucket}/only"), clients=clients)

    assert result.code == 0, result.err
    assert [c["ChannelName"] for c in sent.one("CreateTrainingJob")["InputDataConfig"]] == ["training"]


def test_train_with_no_training_data_says_how_to_upload_it(cli, clients, fake, bucket):
    result = cli(*train_args(fake, f"s3://{bucket}/empty"), clients=clients)

    assert result.code == 1
    assert f"There is no training data under s3://{bucket}/empty/training/" in result.err
    assert "sagebert upload-data local_test/data" in result.err


def test_train_with_a_pretrained_location_adds_the_pretrained_channel(cli, clients, sent, fake, training_data):
    clients.s3.put_object(Bucket=fake.bucket, Key="models/minilm/config.json", Body=b"{}")

    result = cli(*train_args(fake, training_data, "--pretrained", f"s3://{fake.bucket}/models/minilm"), clients=clients)

    assert result.code == 0, result.err
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in sent.one("CreateTrainingJob")["InputDataConfig"]
    }
    assert channels["pretrained"] == f"s3://{fake.bucket}/models/minilm/"


def test_generated_job_names_are_unique_and_valid_for_sagemaker(cli, clients, sent, fake, training_data):
    long_stem = "my_Experiment.with-a-very-long-name-that-goes-on-and-on-and-on-and-on"
    for _ in range(2):
        assert cli(*train_args(fake, training_data, "--base-job-name", long_stem), clients=clients).code == 0

    names = [request["TrainingJobName"] for request in sent("CreateTrainingJob")]
    assert len(set(names)) == 2
    for name in names:
        assert len(name) <= 63 and JOB_NAME_PATTERN.fullmatch(name), name
        assert name.startswith("my-Experiment-with-a-very-long")


def test_train_refuses_a_job_name_sagemaker_would_reject(cli, clients, sent, fake, training_data):
    result = cli(*train_args(fake, training_data, "--job-name", "bert_run_1"), clients=clients)

    assert result.code == 1
    assert "'bert_run_1' is not a valid SageMaker training job name" in result.err and "'bert-run-1'" in result.err
    assert sent("CreateTrainingJob") == []


def test_train_accepts_a_role_name_and_sends_its_arn_in_the_callers_account(cli, clients, sent, fake, training_data):
    result = cli("train", "--image", fake.image, "--role", "SageMakerExec", "--data", training_data, clients=clients)

    assert result.code == 0, result.err
    assert sent.one("CreateTrainingJob")["RoleArn"] == fake.role_arn


def test_train_dry_run_reads_the_channels_and_the_roles_account_and_creates_nothing(
    cli, clients, sent, fake, training_data
):
    result = cli(
        "train",
        "--image",
        fake.image,
        "--role",
        "SageMakerExec",
        "--data",
        training_data,
        "--job-name",
        "dry-1",
        "--dry-run",
        "--json",
        clients=clients,
    )

    assert result.code == 0, result.err
    [line] = result.lines
    step = json.loads(line)
    assert step["operation"] == "CreateTrainingJob"
    assert step["request"]["TrainingJobName"] == "dry-1" and step["request"]["RoleArn"] == fake.role_arn
    assert [c["ChannelName"] for c in step["request"]["InputDataConfig"]] == ["training", "testing"]
    assert "read: sts GetCallerIdentity" in result.err and "read: s3 ListObjectsV2" in result.err
    assert clients.sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


# ---- --wait: transitions, every host's logs, the outcome ------------------------------------------
def test_train_wait_streams_every_hosts_log_lines_and_ends_with_the_final_metrics(
    cli, clients, fake, training_data, seed_logs
):
    seed_logs(
        "wait-1",
        {
            "algo-1-1790000000": ["host one starting", "epoch=0 step=10 train_loss=0.6931"],
            "algo-2-1790000000": ["host two starting"],
        },
    )

    result = cli(
        *train_args(
            fake, training_data, "--instance-count", "2", "--job-name", "wait-1", "--wait", "--poll-interval", "0"
        ),
        clients=clients,
    )

    assert result.code == 0, result.err
    assert "[algo-1] host one starting" in result.lines
    assert "[algo-2] host two starting" in result.lines
    assert "[algo-1] epoch=0 step=10 train_loss=0.6931" in result.lines
    assert "Training job wait-1 Completed." in result.lines
    assert re.search(r"^  train:progress\s+100\.0000$", result.out, re.M)  # moto's canned final metric


def test_the_log_reader_follows_new_lines_and_new_streams_without_repeating(clients, seed_logs):
    seed_logs("job-7", {"algo-1-1": ["a1"], "algo-2-1": ["b1"]})
    reader = TrainingLogReader(clients.logs, "job-7")
    assert sorted((line.host, line.message) for line in reader.read_new()) == [("algo-1", "a1"), ("algo-2", "b1")]

    clients.logs.put_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName="job-7/algo-2-1",
        logEvents=[{"timestamp": int(time.time() * 1000) + 100, "message": "b2"}],
    )
    seed_logs("job-7", {"algo-1-2": ["a1 again after a spot restart"]})

    assert sorted((line.host, line.message) for line in reader.read_new()) == [
        ("algo-1", "a1 again after a spot restart"),
        ("algo-2", "b2"),
    ]
    assert reader.read_new() == []


def test_train_wait_shows_each_transition_and_fails_with_the_failure_reason(
    cli, clients, fake, training_data, described
):
    steps = ("Starting", "Downloading", "Training")
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:x:1:training-job/f-1"})
        for count in range(1, 4):
            stub.add_response(
                "describe_training_job",
                described.training_job("f-1", "InProgress", steps[count - 1], steps[:count]),
                {"TrainingJobName": "f-1"},
            )
        stub.add_response(
            "describe_training_job",
            described.training_job(
                "f-1",
                "Failed",
                "Failed",
                (*steps, "Failed"),
                FailureReason="Invalid hyperparameters: hyperparameter 'epochs' is '0'.",
            ),
        )

        result = cli(
            *train_args(fake, training_data, "--job-name", "f-1", "--wait", "--poll-interval", "0"), clients=clients
        )
        stub.assert_no_pending_responses()

    assert result.code == 1
    shown = [line for line in result.lines if line.startswith("==> ")]
    assert shown == [
        "==> Starting: Starting message",
        "==> Downloading: Downloading message",
        "==> Training: Training message",
        "==> Failed: Failed message",
    ]
    assert "error: Training job f-1 Failed: Invalid hyperparameters: hyperparameter 'epochs' is '0'." in result.err


def test_train_wait_reports_billable_time_and_the_spot_saving(cli, clients, fake, training_data, described):
    final = described.training_job(
        "s-1",
        "Completed",
        "Completed",
        ("Starting", "Training", "Uploading", "Completed"),
        EnableManagedSpotTraining=True,
        TrainingTimeInSeconds=1800,
        BillableTimeInSeconds=720,
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
        FinalMetricDataList=[{"MetricName": "eval:accuracy", "Value": 0.8351, "Timestamp": "2026-11-26T12:00:00Z"}],
    )
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:x:1:training-job/s-1"})
        stub.add_response("describe_training_job", final, {"TrainingJobName": "s-1"})

        result = cli(
            *train_args(
                fake, training_data, "--spot", "--job-name", "s-1", "--wait", "--no-logs", "--poll-interval", "0"
            ),
            clients=clients,
        )

    assert result.code == 0, result.err
    assert re.search(r"^  eval:accuracy\s+0\.8351$", result.out, re.M)
    assert re.search(r"^  training time\s+1800 s \(30m00s\)$", result.out, re.M)
    assert re.search(r"^  billable time\s+720 s x 2 instances = 1440 instance-seconds$", result.out, re.M)
    assert re.search(r"^  spot saving\s+60\.0% \(billed 720 s of 1800 s trained\)$", result.out, re.M)


def test_a_stopped_job_exits_non_zero_naming_why(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub.add_response(
            "describe_training_job",
            described.training_job(
                "m-1",
                "Stopped",
                "MaxRuntimeExceeded",
                FailureReason="Training job runtime exceeded MaxRuntimeInSeconds",
            ),
        )
        result = cli("status", "--training-job", "m-1", "--follow", "--poll-interval", "0", clients=clients)

    assert result.code == 1
    assert "Training job m-1 Stopped (MaxRuntimeExceeded): Training job runtime exceeded" in result.err


# ---- stop (moto has no StopTrainingJob) -------------------------------------------------------------
def test_stop_sends_stop_training_job_and_waits_until_stopped(cli, clients, described):
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("stop_training_job", {}, {"TrainingJobName": "long-1"})
        stub.add_response(
            "describe_training_job",
            described.training_job("long-1", "Stopping", "Stopping"),
            {"TrainingJobName": "long-1"},
        )
        stub.add_response(
            "describe_training_job",
            described.training_job("long-1", "Stopped", "Stopped"),
            {"TrainingJobName": "long-1"},
        )

        result = cli("stop", "--training-job", "long-1", "--wait", "--poll-interval", "0", clients=clients)
        stub.assert_no_pending_responses()

    assert result.code == 0, result.err
    assert "SIGTERM, then SIGKILL after 120 s" in result.out
    assert "Training job long-1 is Stopped." in result.lines


# ---- AWS errors: one line, the fix, a non-zero exit, a traceback only with --debug -------------------
def deny_create(clients, code: str, message: str) -> Stubber:
    stub = Stubber(clients.sagemaker)
    stub.add_client_error("create_training_job", service_error_code=code, service_message=message, http_status_code=400)
    return stub


def test_access_denied_on_pass_role_names_the_permission_to_grant(cli, clients, fake, training_data):
    message = (
        f"User: arn:aws:iam::{fake.account}:user/ci is not authorized to perform: iam:PassRole on resource: "
        f"{fake.role_arn}"
    )
    with deny_create(clients, "AccessDeniedException", message):
        result = cli(*train_args(fake, training_data), clients=clients)

    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.err.startswith("error: Access denied: CreateTrainingJob failed: User:")
    assert "Fix: Allow the caller iam:PassRole on the execution role" in result.err


def test_access_denied_without_details_names_the_sagemaker_action(cli, clients, fake, training_data):
    with deny_create(clients, "AccessDeniedException", "Access denied"):
        result = cli(*train_args(fake, training_data), clients=clients)

    assert (
        "Fix: Allow the caller sagemaker:CreateTrainingJob (the permissions are listed in docs/aws.md)." in result.err
    )


def test_resource_limit_exceeded_points_at_service_quotas(cli, clients, fake, training_data):
    message = "The account-level service limit 'ml.p3.2xlarge for spot training job usage' is 0 Instances"
    with deny_create(clients, "ResourceLimitExceeded", message):
        result = cli(*train_args(fake, training_data, "--spot"), clients=clients)

    assert result.code == 1
    assert f"Quota reached: CreateTrainingJob failed: {message}" in result.err
    assert "Service Quotas" in result.err


def test_debug_adds_the_traceback(cli, clients, fake, training_data):
    with deny_create(clients, "ValidationException", "1 validation error detected"):
        result = cli(*train_args(fake, training_data, "--debug"), clients=clients)

    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert "error: SageMaker rejected the request: CreateTrainingJob failed: 1 validation error detected" in result.err


def test_missing_credentials_say_how_to_configure_them(cli, aws_environment, monkeypatch, fake, training_data):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = cli(*train_args(fake, training_data))

    assert result.code == 1
    assert "error: No AWS credentials found. Fix: Configure credentials: `aws configure`" in result.err
