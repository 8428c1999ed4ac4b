"""CreateTrainingJob, and reading a training job's description (artifacts, spot saving)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ... import contract
from ...environment import PRETRAINED_CHANNEL, TESTING_CHANNEL, TRAINING_CHANNEL
from ...hyperparameters import from_mapping
from ...metric_lines import METRIC_DEFINITIONS
from ..validation import InvalidRequestError
from .common import EncryptionSpec, ImageReference, NetworkSpec, S3Location, check_name, tag_list

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
CHECKPOINT_LOCAL_PATH = contract.CHECKPOINT_LOCAL_PATH
# The API reference: a training job runs at most 28 days (MaxRuntimeInSeconds, MaxPendingTimeInSeconds).
MAX_RUNTIME_SECONDS = 28 * 24 * 3600


def job_hyperparameters(values: Mapping[str, str]) -> dict[str, str]:
    """Validate ``values`` as sagebert hyperparameters; return them as SageMaker's strings.

    Only the names given are sent (the image's defaults apply to the rest), each in the canonical
    form the training program parses (``True`` → ``true``, ``2e-5`` → ``2e-05``).
    """
    canonical = from_mapping(values).to_sagemaker()
    sent = {}
    for name, value in values.items():
        key = name.replace("-", "_")
        sent[key] = canonical.get(key, str(value))  # sagemaker_* names are the toolkit's: as given
    return sent


def channel_uris(data: S3Location, present: Iterable[str], pretrained: S3Location | None = None) -> dict[str, str]:
    """The File-mode channels of a job whose data lies under ``data``.

    ``training`` is ``<data>/training/`` and is required; ``testing`` is ``<data>/testing/`` when
    ``present`` says objects exist there; ``pretrained`` is the given location.
    """
    present = set(present)
    if TRAINING_CHANNEL not in present:
        raise InvalidRequestError(
            f"There is no training data under {data.child(TRAINING_CHANNEL, '').uri}.",
            "Upload it first: sagebert upload-data local_test/data " + data.as_prefix().uri,
        )
    channels = {TRAINING_CHANNEL: data.child(TRAINING_CHANNEL, "").uri}
    if TESTING_CHANNEL in present:
        channels[TESTING_CHANNEL] = data.child(TESTING_CHANNEL, "").uri
    if pretrained is not None:
        channels[PRETRAINED_CHANNEL] = pretrained.as_prefix().uri
    return channels


def stopping_condition(max_run: int, spot: bool, max_wait: int | None) -> dict[str, int]:
    """MaxRuntimeInSeconds (at most 28 days), and for spot MaxWaitTimeInSeconds (at least as long).

    MaxWait counts the time spent waiting for spot capacity as well as the training itself, so the
    API wants it "equal to or greater than MaxRuntimeInSeconds"; the default is twice --max-run.
    """
    if not 1 <= max_run <= MAX_RUNTIME_SECONDS:
        raise InvalidRequestError(
            f"--max-run is {max_run} s; a SageMaker training job runs at most 28 days ({MAX_RUNTIME_SECONDS} s).",
            f"Pass --max-run between 1 and {MAX_RUNTIME_SECONDS}; for longer training, checkpoint and "
            "continue in a new job (--checkpoint-s3).",
        )
    if not spot:
        if max_wait is not None:
            raise InvalidRequestError(
                "--max-wait only applies to managed spot training.", "Add --spot, or drop --max-wait."
            )
        return {"MaxRuntimeInSeconds": max_run}
    wait = max_wait if max_wait is not None else 2 * max_run
    if wait < max_run:
        raise InvalidRequestError(
            f"MaxWaitTimeInSeconds ({wait}, --max-wait) must be at least MaxRuntimeInSeconds "
            f"({max_run}, --max-run): it counts the time spent waiting for spot capacity as well as "
            "the training itself.",
            f"Raise --max-wait to {max_run} or more (e.g. {2 * max_run}) or lower --max-run.",
        )
    return {"MaxRuntimeInSeconds": max_run, "MaxWaitTimeInSeconds": wait}


def checkpoint_config(checkpoint_s3: str | None, folder: str) -> dict | None:
    """CheckpointConfig at ``<checkpoint_s3>/<folder>/`` (one folder per job), or None."""
    if not checkpoint_s3:
        return None
    uri = S3Location.parse(checkpoint_s3, "checkpoint location").child(folder, "").uri
    return {"S3Uri": uri, "LocalPath": CHECKPOINT_LOCAL_PATH}


def algorithm_specification(image: str) -> dict:
    """The sagebert image in File mode, with the MetricDefinitions its log lines feed."""
    ImageReference.parse(image)
    return {
        "TrainingImage": image,
        "TrainingInputMode": "File",
        "MetricDefinitions": [dict(definition) for definition in METRIC_DEFINITIONS],
    }


# ResourceConfig.KeepAlivePeriodInSeconds (API reference): how long a warm pool keeps the instances.
KEEP_ALIVE_MAX = 3600


def resource_config(
    instance_type: str,
    instance_count: int,
    volume_size_gb: int,
    volume_kms_key: str | None = None,
    keep_alive_s: int | None = None,
) -> dict:
    """The instances of a job (or of each tuning trial): their ML storage volumes encrypted with
    ``volume_kms_key`` when given; ``keep_alive_s`` keeps them in a warm pool after the job for the
    next matching job (0 to 3600 s)."""
    config: dict = {"InstanceType": instance_type, "InstanceCount": instance_count, "VolumeSizeInGB": volume_size_gb}
    if volume_kms_key:
        config["VolumeKmsKeyId"] = volume_kms_key
    if keep_alive_s is not None:
        if not 0 <= keep_alive_s <= KEEP_ALIVE_MAX:
            raise InvalidRequestError(
                f"--keep-alive is {keep_alive_s} s; SageMaker keeps a warm pool 0 to {KEEP_ALIVE_MAX} s.",
                f"Pass --keep-alive between 0 and {KEEP_ALIVE_MAX}.",
            )
        config["KeepAlivePeriodInSeconds"] = keep_alive_s
    return config


def output_data_config(output_path: str, kms_key: str | None = None) -> dict:
    """Where the model artifacts go, encrypted with ``kms_key`` when given."""
    config = {"S3OutputPath": output_path}
    if kms_key:
        config["KmsKeyId"] = kms_key
    return config


def input_data_config(channels: Mapping[str, str]) -> list[dict]:
    """One File-mode, fully replicated S3Prefix channel per entry."""
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
            },
            "InputMode": "File",
            "CompressionType": "None",
        }
        for name, uri in channels.items()
    ]


@dataclass(frozen=True)
class TrainingJobSpec:
    """Everything a sagebert training job is made of."""

    name: str
    image: str
    role_arn: str
    channels: Mapping[str, str]
    output_path: str
    instance_type: str
    instance_count: int = 1
    volume_size_gb: int = 30
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    max_run: int = contract.DEFAULT_MAX_RUN_SECONDS
    spot: bool = False
    max_wait: int | None = None
    checkpoint_s3: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    encryption: EncryptionSpec = field(default_factory=EncryptionSpec)
    keep_alive_s: int | None = None

    def stopping_condition(self) -> dict[str, int]:
        return stopping_condition(self.max_run, self.spot, self.max_wait)

    def checkpoint_uri(self) -> str | None:
        """``<checkpoint_s3>/<job name>/``: one folder per job, so jobs never resume each other."""
        config = checkpoint_config(self.checkpoint_s3, self.name)
        return config["S3Uri"] if config else None


def create_training_job_request(spec: TrainingJobSpec) -> dict:
    """The CreateTrainingJob request for ``spec``."""
    check_name("training job", spec.name)
    request = {
        "TrainingJobName": spec.name,
        "RoleArn": spec.role_arn,
        "AlgorithmSpecification": {**algorithm_specification(spec.image), "EnableSageMakerMetricsTimeSeries": True},
        "HyperParameters": dict(spec.hyperparameters),
        "InputDataConfig": input_data_config(spec.channels),
        "OutputDataConfig": output_data_config(spec.output_path, spec.encryption.kms_key),
        "ResourceConfig": resource_config(
            spec.instance_type, spec.instance_count, spec.volume_size_gb, spec.encryption.volume, spec.keep_alive_s
        ),
        "StoppingCondition": spec.stopping_condition(),
        "EnableManagedSpotTraining": spec.spot,
        **spec.network.job_fields(),
    }
    checkpoint = checkpoint_config(spec.checkpoint_s3, spec.name)
    if checkpoint:
        request["CheckpointConfig"] = checkpoint
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    if spec.tags:
        request["Tags"] = tag_list(spec.tags)
    return request


def spot_saving_percent(description: Mapping) -> float | None:
    """``(1 - BillableTimeInSeconds / TrainingTimeInSeconds) * 100`` for a spot job, else None."""
    training = description.get("TrainingTimeInSeconds")
    billable = description.get("BillableTimeInSeconds")
    if not description.get("EnableManagedSpotTraining") or not training or billable is None:
        return None
    return (1 - billable / training) * 100


def model_artifacts(description: Mapping) -> str:
    """The model.tar.gz of a Completed training job; a SagebertError for any other status."""
    status = description.get("TrainingJobStatus")
    name = description.get("TrainingJobName")
    if status != "Completed":
        reason = f" ({description['FailureReason']})" if description.get("FailureReason") else ""
        raise InvalidRequestError(
            f"Training job {name} is {status}{reason}; only a Completed job has a model to deploy.",
            f"Wait for it (sagebert status --training-job {name} --follow) or deploy another job.",
        )
    return description["ModelArtifacts"]["S3ModelArtifacts"]
