"""Where a model to deploy comes from — a training job, a tuning job's best job, a registered
package, or an archive in S3 — and the final metrics that come with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..metric_lines import EVAL_DATA_KEY
from .build.common import TRAINING_JOB_TAG
from .build.hosting import ContainerSpec, Running
from .build.packages import require_approved
from .build.training import model_artifacts
from .build.tuning import best_training_job
from .clients import AwsClients
from .endpoints import tags_of
from .gate import EVAL_DATA_TAG, Evidence, Predictions, metrics_from_tags
from .jobs import describe_training_job, describe_tuning_job, job_metrics
from .registry import describe_package, package_metrics
from .storage import METRICS_FILE, PREDICTIONS_FILE, model_json_files


@dataclass(frozen=True)
class ModelSource:
    """A candidate model: its container (image may be None: keep the running one), the role and
    training job it came with, and its final metrics."""

    label: str
    container: ContainerSpec
    role: str | None = None
    training_job: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_source: str = "nothing recorded"
    eval_data: str | None = None  # the sha256 of the test examples the metrics were measured on


def from_training_job(clients: AwsClients, name: str, label: str | None = None) -> ModelSource:
    """A Completed training job's model.tar.gz, image, role and final metrics."""
    job = describe_training_job(clients, name)
    artifacts = model_artifacts(job)
    metrics = job_metrics(clients, job)
    return ModelSource(
        label=label or name,
        container=ContainerSpec(image=job["AlgorithmSpecification"].get("TrainingImage"), model_data=artifacts),
        role=job["RoleArn"],
        training_job=name,
        metrics=metrics.values,
        metrics_source=metrics.source,
        eval_data=metrics.eval_data,
    )


def from_tuning_job(clients: AwsClients, name: str) -> ModelSource:
    """The best training job of a tuning job."""
    best = best_training_job(describe_tuning_job(clients, name))
    return from_training_job(clients, best, label=f"{best} (best of {name})")


def from_model_package(clients: AwsClients, arn: str) -> ModelSource:
    """An Approved model package; a SagebertError naming how to approve one that is not."""
    package = describe_package(clients, arn)
    require_approved(package)
    metadata = package.get("CustomerMetadataProperties") or {}
    return ModelSource(
        label=package.get("ModelPackageArn", arn),
        container=ContainerSpec(model_package=package.get("ModelPackageArn", arn)),
        training_job=metadata.get(TRAINING_JOB_TAG),
        metrics=package_metrics(package),
        metrics_source="the package's customer metadata",
        eval_data=metadata.get(EVAL_DATA_TAG),
    )


def from_model_data(uri: str, multi_model: bool = False) -> ModelSource:
    """An archive (or, multi-model, a prefix of archives) in S3: no job, no metrics."""
    return ModelSource(label=uri, container=ContainerSpec(model_data=uri, multi_model=multi_model))


def _serving(clients: AwsClients, current: Running) -> tuple[str, dict[str, float], str, dict[str, str]]:
    model = current.model
    tags = tags_of(clients, model["ModelArn"])
    job = tags.get(TRAINING_JOB_TAG)
    label = job or model["ModelName"]
    recorded = metrics_from_tags(tags)
    if recorded:
        return label, recorded, f"the tags of model {model['ModelName']}", tags
    if job:
        source = from_training_job(clients, job)
        return label, dict(source.metrics), source.metrics_source, {EVAL_DATA_TAG: source.eval_data, **tags}
    package = current.container.model_package
    if package:
        return label, package_metrics(describe_package(clients, package)), "the package's customer metadata", tags
    return label, {}, "nothing recorded", tags


def serving_metrics(clients: AwsClients, current: Running) -> tuple[str, dict[str, float], str]:
    """(label, metrics, source) of the model an endpoint serves: its ``sagebert:metric:*`` tags,
    else its training job's final metrics, else its package's."""
    label, metrics, where, _ = _serving(clients, current)
    return label, metrics, where


def _archive_evidence(
    clients: AwsClients, model_data: str | None, predictions: bool
) -> tuple[str | None, Predictions | None]:
    """(test-data digest, per-example predictions) read from a model.tar.gz in S3 (None: not there)."""
    if not model_data:
        return None, None
    names = (METRICS_FILE, PREDICTIONS_FILE) if predictions else (METRICS_FILE,)
    found = model_json_files(clients, model_data, names)
    metrics = found.get(METRICS_FILE)
    digest = metrics.get(EVAL_DATA_KEY) if isinstance(metrics, dict) else None
    return (digest if isinstance(digest, str) else None), Predictions.from_json(found.get(PREDICTIONS_FILE))


def candidate_evidence(clients: AwsClients, source: ModelSource, predictions: bool = False) -> Evidence:
    """What the gate knows of a candidate: its metrics, and from its artifact the test-data digest
    (and, when asked, its test predictions). A model package's artifact is not read: its digest
    comes from its customer metadata."""
    model_data = None if source.container.model_package else source.container.model_data
    digest, found = (source.eval_data, None)
    if model_data and (digest is None or predictions):
        digest_in_archive, found = _archive_evidence(clients, model_data, predictions)
        digest = digest or digest_in_archive
    return Evidence(dict(source.metrics), digest, found)


def serving_evidence(
    clients: AwsClients, current: Running, predictions: bool = False, read_archive: bool = True
) -> tuple[str, Evidence, str]:
    """(label, evidence, where the metrics came from) of the model an endpoint serves: its metrics
    as ``serving_metrics`` finds them, the test-data digest from its tag (else its artifact) and,
    when asked, the test predictions in its artifact (``read_archive`` False: the tags only)."""
    label, metrics, where, tags = _serving(clients, current)
    digest = tags.get(EVAL_DATA_TAG)
    container = current.container
    readable = read_archive and not (container.model_package or container.multi_model)
    model_data = container.model_data if readable else None
    found = None
    if model_data and (digest is None or predictions):
        digest_in_archive, found = _archive_evidence(clients, model_data, predictions)
        digest = digest or digest_in_archive
    return label, Evidence(metrics, digest, found), where
