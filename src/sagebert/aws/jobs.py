"""Training, tuning and transform jobs: creating, describing, stopping, and a job's final metrics."""

from __future__ import annotations

from dataclasses import dataclass

from ..metric_lines import EVAL_DATA_KEY
from .clients import AwsClients, described, send
from .gate import EVAL_METRICS, final_metrics, metrics_from_model_json
from .storage import model_metrics_json


# ---- training jobs ----------------------------------------------------------------------------------
def create_training_job(clients: AwsClients, request: dict) -> str:
    """Send CreateTrainingJob; return the job's ARN."""
    return send(clients.sagemaker, "CreateTrainingJob", request)["TrainingJobArn"]


def describe_training_job(clients: AwsClients, name: str) -> dict:
    """DescribeTrainingJob; a not-found names the job and the region."""
    return described(
        clients,
        "training job",
        name,
        "sagebert status lists recent training jobs",
        lambda: clients.sagemaker.describe_training_job(TrainingJobName=name),
    )


def stop_training_job(clients: AwsClients, name: str) -> None:
    """StopTrainingJob: SageMaker sends SIGTERM, then SIGKILL 120 s later."""
    clients.sagemaker.stop_training_job(TrainingJobName=name)


def recent_training_jobs(clients: AwsClients, count: int = 10) -> list[dict]:
    return clients.sagemaker.list_training_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=count)[
        "TrainingJobSummaries"
    ]


@dataclass(frozen=True)
class JobMetrics:
    """A training job's final metrics and where they were read."""

    job: str
    values: dict[str, float]
    source: str
    eval_data: str | None = None  # metrics.json's test-data digest, when it was read


def job_metrics(clients: AwsClients, description: dict) -> JobMetrics:
    """The final metrics of a described training job: FinalMetricDataList when it has the eval
    metrics, else (and merged under it) the metrics.json inside the model artifact."""
    name = description["TrainingJobName"]
    reported = final_metrics(description)
    if any(metric in reported for metric in EVAL_METRICS):
        return JobMetrics(name, reported, "FinalMetricDataList")
    artifact = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    from_archive = model_metrics_json(clients, artifact) if artifact else None
    if from_archive is None:
        return JobMetrics(name, reported, "FinalMetricDataList" if reported else "nothing recorded")
    digest = from_archive.get(EVAL_DATA_KEY)
    return JobMetrics(
        name,
        {**metrics_from_model_json(from_archive), **reported},
        f"metrics.json in {artifact}",
        digest if isinstance(digest, str) else None,
    )


# ---- tuning jobs ------------------------------------------------------------------------------------
def create_tuning_job(clients: AwsClients, request: dict) -> str:
    return send(clients.sagemaker, "CreateHyperParameterTuningJob", request)["HyperParameterTuningJobArn"]


def describe_tuning_job(clients: AwsClients, name: str) -> dict:
    return described(
        clients,
        "tuning job",
        name,
        "aws sagemaker list-hyper-parameter-tuning-jobs",
        lambda: clients.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
    )


def tuning_trials(clients: AwsClients, name: str) -> list[dict]:
    """Every training job a tuning job launched (TrainingJobName, status, objective), newest first."""
    trials: list[dict] = []
    pages = clients.sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, SortBy="CreationTime", SortOrder="Descending"
    )
    for page in pages:
        trials.extend(page["TrainingJobSummaries"])
    return trials


# ---- transform jobs ---------------------------------------------------------------------------------
def create_transform_job(clients: AwsClients, request: dict) -> str:
    return send(clients.sagemaker, "CreateTransformJob", request)["TransformJobArn"]


def describe_transform_job(clients: AwsClients, name: str) -> dict:
    return described(
        clients,
        "transform job",
        name,
        "aws sagemaker list-transform-jobs",
        lambda: clients.sagemaker.describe_transform_job(TransformJobName=name),
    )
