"""Pure builders of the SageMaker requests sagebert sends: values in, request dicts out.

Nothing here talks to AWS. The field names are the API's own (CreateTrainingJob, CreateModel,
CreateEndpointConfig, CreateEndpoint, UpdateEndpoint), so a request can be compared with the API
reference line by line. Rules the API states but botocore does not check (name patterns and
lengths, spot's MaxWait > MaxRuntime, deployment-policy ranges) are checked here, with the fix.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..environment import PRETRAINED_CHANNEL, TESTING_CHANNEL, TRAINING_CHANNEL
from ..hyperparameters import from_mapping
from ..metric_lines import METRIC_DEFINITIONS
from .validation import InvalidRequestError, shape_limits

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
DEFAULT_VARIANT = "AllTraffic"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# Tags that let `update`, `rollback` and `delete` find what `deploy` made for an endpoint.
ENDPOINT_TAG = "sagebert:endpoint"
TRAINING_JOB_TAG = "sagebert:training-job"
PREVIOUS_CONFIG_TAG = "sagebert:previous-endpoint-config"

TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
_NAME_SHAPES = {
    "training job": "TrainingJobName",
    "endpoint": "EndpointName",
    "endpoint config": "EndpointConfigName",
    "model": "ModelName",
    "variant": "VariantName",
}
_STAMP_FORMAT = "%Y%m%d-%H%M%S"
_SUFFIX_LENGTH = len("-20260101-000000-abcd")


# ---- S3 locations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or key prefix) in it."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str, what: str = "S3 location") -> S3Location:
        """``s3://bucket/key`` → S3Location; a SagebertError naming ``what`` if it is not one."""
        match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?", uri or "")
        if not match:
            raise InvalidRequestError(
                f"The {what} {uri!r} is not an S3 URI.",
                "Write it as s3://BUCKET/PREFIX (bucket names are lower-case letters, digits, dots and hyphens).",
            )
        return cls(match.group(1), match.group(2) or "")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_prefix(self) -> S3Location:
        """The same location as a "folder": empty or ending in ``/``."""
        key = self.key.strip("/")
        return S3Location(self.bucket, key + "/" if key else "")

    def child(self, *parts: str) -> S3Location:
        """A location below this one (``child("training", "")`` → ``.../training/``)."""
        return S3Location(self.bucket, self.as_prefix().key + "/".join(parts))

    def parent(self) -> S3Location:
        """The folder that holds this location (the bucket root for a top-level one)."""
        key = self.key.strip("/")
        return S3Location(self.bucket, key.rsplit("/", 1)[0] + "/" if "/" in key else "")


# ---- names ------------------------------------------------------------------------------------------
def name_stem(text: str, fallback: str = "sagebert") -> str:
    """``text`` made safe for SageMaker names: letters, digits and single hyphens, no edge hyphens."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", text or "").strip("-")
    return stem or fallback


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid SageMaker ``kind`` name ("training job", "endpoint", …)."""
    limits = shape_limits(_NAME_SHAPES[kind])
    maximum = limits["max"]
    if value and len(value) <= maximum and re.fullmatch(limits["pattern"], value):
        return value
    suggestion = name_stem(value)[:maximum].strip("-")
    raise InvalidRequestError(
        f"{value!r} is not a valid SageMaker {kind} name: use 1-{maximum} letters, digits and hyphens, "
        "starting and ending with a letter or digit (no underscores, dots or spaces).",
        f"Use e.g. {suggestion!r}.",
    )


def unique_name(stem: str, now: datetime | None = None, token: str | None = None) -> str:
    """``<stem>-YYYYmmdd-HHMMSS-xxxx``: unique per account and region, at most 63 characters.

    The random part keeps two runs started in the same second (two CI jobs) apart.
    """
    now = now or datetime.now(UTC)
    token = token or secrets.token_hex(2)
    stem = name_stem(stem)[: 63 - _SUFFIX_LENGTH].rstrip("-")
    return f"{stem}-{now.strftime(_STAMP_FORMAT)}-{token}"


def endpoint_resource_stem(endpoint: str) -> str:
    """The name prefix of the models and configs made for ``endpoint`` (how delete finds them)."""
    return name_stem(endpoint)[: 63 - _SUFFIX_LENGTH].rstrip("-")


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"k": "v"}`` → ``[{"Key": "k", "Value": "v"}]``, the API's tag form."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


# ---- training ---------------------------------------------------------------------------------------
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
    max_run: int = 86400
    spot: bool = False
    max_wait: int | None = None
    checkpoint_s3: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def stopping_condition(self) -> dict[str, int]:
        """MaxRuntimeInSeconds, and for spot MaxWaitTimeInSeconds, strictly larger."""
        if not self.spot:
            if self.max_wait is not None:
                raise InvalidRequestError(
                    "--max-wait only applies to managed spot training.", "Add --spot, or drop --max-wait."
                )
            return {"MaxRuntimeInSeconds": self.max_run}
        max_wait = self.max_wait if self.max_wait is not None else 2 * self.max_run
        if max_wait <= self.max_run:
            raise InvalidRequestError(
                f"MaxWaitTimeInSeconds ({max_wait}, --max-wait) must be larger than "
                f"MaxRuntimeInSeconds ({self.max_run}, --max-run): it counts the time spent waiting "
                "for spot capacity as well as the training itself.",
                f"Raise --max-wait above {self.max_run} (e.g. {2 * self.max_run}) or lower --max-run.",
            )
        return {"MaxRuntimeInSeconds": self.max_run, "MaxWaitTimeInSeconds": max_wait}

    def checkpoint_uri(self) -> str | None:
        """``<checkpoint_s3>/<job name>/``: one folder per job, so jobs never resume each other."""
        if not self.checkpoint_s3:
            return None
        return S3Location.parse(self.checkpoint_s3, "checkpoint location").child(self.name, "").uri


def _channel(name: str, uri: str) -> dict:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        "InputMode": "File",
        "CompressionType": "None",
    }


def create_training_job_request(spec: TrainingJobSpec) -> dict:
    """The CreateTrainingJob request for ``spec``."""
    check_name("training job", spec.name)
    request = {
        "TrainingJobName": spec.name,
        "RoleArn": spec.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(definition) for definition in METRIC_DEFINITIONS],
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": dict(spec.hyperparameters),
        "InputDataConfig": [_channel(name, uri) for name, uri in spec.channels.items()],
        "OutputDataConfig": {"S3OutputPath": spec.output_path},
        "ResourceConfig": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
            "VolumeSizeInGB": spec.volume_size_gb,
        },
        "StoppingCondition": spec.stopping_condition(),
        "EnableManagedSpotTraining": spec.spot,
    }
    checkpoint = spec.checkpoint_uri()
    if checkpoint:
        request["CheckpointConfig"] = {"S3Uri": checkpoint, "LocalPath": CHECKPOINT_LOCAL_PATH}
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


# ---- hosting ---------------------------------------------------------------------------------------
def model_data_url(uri: str, multi_model: bool) -> str:
    """Check a ModelDataUrl: a model.tar.gz for one model, an S3 prefix for a multi-model endpoint."""
    location = S3Location.parse(uri, "model data location")
    if multi_model:
        return location.as_prefix().uri
    if not location.key.endswith(".tar.gz"):
        raise InvalidRequestError(
            f"The model data {uri} is not a .tar.gz file; SageMaker extracts exactly one archive into /opt/ml/model.",
            "Pass the training job's model.tar.gz (--training-job JOB does it for you), or use "
            "--multi-model for a prefix holding several archives.",
        )
    return location.uri


def create_model_request(
    name: str,
    *,
    image: str,
    role_arn: str,
    model_data: str,
    multi_model: bool = False,
    environment: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict:
    """CreateModel with one container: ``SingleModel`` or ``MultiModel`` (ModelDataUrl = a prefix)."""
    check_name("model", name)
    container = {
        "Image": image,
        "Mode": "MultiModel" if multi_model else "SingleModel",
        "ModelDataUrl": model_data_url(model_data, multi_model),
    }
    if environment:
        container["Environment"] = dict(environment)
    request = {"ModelName": name, "ExecutionRoleArn": role_arn, "PrimaryContainer": container}
    if tags:
        request["Tags"] = tag_list(tags)
    return request


def create_endpoint_config_request(
    name: str,
    *,
    model_name: str,
    instance_type: str,
    instance_count: int = 1,
    variant_name: str = DEFAULT_VARIANT,
    startup_timeout: int | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict:
    """CreateEndpointConfig with one production variant taking all the traffic."""
    check_name("endpoint config", name)
    check_name("variant", variant_name)
    variant = {
        "VariantName": variant_name,
        "ModelName": model_name,
        "InstanceType": instance_type,
        "InitialInstanceCount": instance_count,
        "InitialVariantWeight": 1.0,
    }
    if startup_timeout is not None:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = startup_timeout
    request = {"EndpointConfigName": name, "ProductionVariants": [variant]}
    if tags:
        request["Tags"] = tag_list(tags)
    return request


def create_endpoint_request(name: str, config_name: str, tags: Mapping[str, str] | None = None) -> dict:
    """CreateEndpoint."""
    check_name("endpoint", name)
    request = {"EndpointName": name, "EndpointConfigName": config_name}
    if tags:
        request["Tags"] = tag_list(tags)
    return request


@dataclass(frozen=True)
class HostingPlan:
    """The three requests of a deployment (update sends the first two and an UpdateEndpoint)."""

    model: dict
    endpoint_config: dict
    endpoint: dict

    @property
    def model_name(self) -> str:
        return self.model["ModelName"]

    @property
    def config_name(self) -> str:
        return self.endpoint_config["EndpointConfigName"]

    @property
    def endpoint_name(self) -> str:
        return self.endpoint["EndpointName"]


def hosting_plan(
    endpoint: str,
    *,
    image: str,
    role_arn: str,
    model_data: str,
    instance_type: str,
    instance_count: int = 1,
    multi_model: bool = False,
    environment: Mapping[str, str] | None = None,
    startup_timeout: int | None = None,
    variant_name: str = DEFAULT_VARIANT,
    training_job: str | None = None,
    tags: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> HostingPlan:
    """A new model and endpoint config for ``endpoint``, named ``<endpoint>-<time>-<random>``.

    The model and config carry the ``sagebert:endpoint`` tag (and the model the training job it
    came from), which is how ``update``, ``rollback`` and ``delete`` find them later.
    """
    check_name("endpoint", endpoint)
    stem = endpoint_resource_stem(endpoint)
    owned = {**(tags or {}), ENDPOINT_TAG: endpoint}
    model_tags = {**owned, TRAINING_JOB_TAG: training_job} if training_job else owned
    # One name for the model and its config (different resource types): easy to match up.
    model_name = config_name = unique_name(stem, now)
    return HostingPlan(
        model=create_model_request(
            model_name,
            image=image,
            role_arn=role_arn,
            model_data=model_data,
            multi_model=multi_model,
            environment=environment,
            tags=model_tags,
        ),
        endpoint_config=create_endpoint_config_request(
            config_name,
            model_name=model_name,
            instance_type=instance_type,
            instance_count=instance_count,
            variant_name=variant_name,
            startup_timeout=startup_timeout,
            tags=owned,
        ),
        endpoint=create_endpoint_request(endpoint, config_name, tags),
    )


# ---- blue/green updates ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CapacitySize:
    """A canary size or linear step: a number of instances or a percentage of the fleet."""

    type: str
    value: int

    @classmethod
    def parse(cls, text: str) -> CapacitySize:
        """``"2"`` → 2 instances; ``"10%"`` → 10 % of the fleet."""
        match = re.fullmatch(r"\s*([0-9]+)\s*(%?)\s*", str(text))
        if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(1)) > 100):
            raise InvalidRequestError(
                f"{text!r} is not a capacity size.",
                "Give a number of instances (e.g. 1) or a percentage of the fleet (e.g. 10%).",
            )
        kind = "CAPACITY_PERCENT" if match.group(2) else "INSTANCE_COUNT"
        return cls(kind, int(match.group(1)))

    def as_api(self) -> dict:
        return {"Type": self.type, "Value": self.value}


def _in_range(what: str, value: int, low: int, high: int, option: str) -> None:
    if not low <= value <= high:
        raise InvalidRequestError(
            f"{what} is {value}; SageMaker allows {low} to {high}.", f"Pass {option} between {low} and {high}."
        )


@dataclass(frozen=True)
class DeploymentPolicy:
    """How UpdateEndpoint shifts traffic to the new fleet (blue/green), and what rolls it back."""

    traffic: str = "ALL_AT_ONCE"
    step: CapacitySize | None = None
    wait_interval: int | None = None
    termination_wait: int = 0
    max_execution_timeout: int | None = None
    alarms: tuple[str, ...] = ()

    def deployment_config(self) -> dict:
        """The DeploymentConfig: BlueGreenUpdatePolicy and, with alarms, AutoRollbackConfiguration."""
        if self.traffic not in TRAFFIC_TYPES:
            raise InvalidRequestError(
                f"Unknown traffic routing {self.traffic!r}.", "Use one of " + ", ".join(TRAFFIC_TYPES) + "."
            )
        default_wait = 0 if self.traffic == "ALL_AT_ONCE" else 300
        wait = default_wait if self.wait_interval is None else self.wait_interval
        _in_range("WaitIntervalInSeconds", wait, 0, 3600, "--wait-interval")
        _in_range("TerminationWaitInSeconds", self.termination_wait, 0, 3600, "--termination-wait")
        routing: dict = {"Type": self.traffic, "WaitIntervalInSeconds": wait}
        if self.traffic == "CANARY":
            routing["CanarySize"] = self._step(CapacitySize("CAPACITY_PERCENT", 10), 1, 50, "--canary-size")
        elif self.traffic == "LINEAR":
            routing["LinearStepSize"] = self._step(CapacitySize("CAPACITY_PERCENT", 20), 10, 50, "--linear-step")
        elif self.step is not None:
            raise InvalidRequestError(
                "A step size only applies to CANARY and LINEAR traffic routing.",
                "Drop --canary-size/--linear-step, or choose --traffic canary or linear.",
            )
        policy: dict = {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": self.termination_wait}
        if self.max_execution_timeout is not None:
            _in_range(
                "MaximumExecutionTimeoutInSeconds", self.max_execution_timeout, 600, 28800, "--max-execution-timeout"
            )
            policy["MaximumExecutionTimeoutInSeconds"] = self.max_execution_timeout
        config: dict = {"BlueGreenUpdatePolicy": policy}
        if self.alarms:
            if len(self.alarms) > 10:
                raise InvalidRequestError(
                    f"{len(self.alarms)} alarms given; SageMaker watches at most 10.",
                    "Pass --alarm at most 10 times (a composite alarm can combine more).",
                )
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in self.alarms]}
        return config

    def _step(self, default: CapacitySize, low_percent: int, high_percent: int, option: str) -> dict:
        step = self.step or default
        if step.type == "CAPACITY_PERCENT":
            _in_range(f"{option} (percent of the fleet)", step.value, low_percent, high_percent, option)
        return step.as_api()


def update_endpoint_request(endpoint: str, config_name: str, policy: DeploymentPolicy) -> dict:
    """UpdateEndpoint to a new config with an explicit blue/green DeploymentConfig."""
    check_name("endpoint", endpoint)
    return {"EndpointName": endpoint, "EndpointConfigName": config_name, "DeploymentConfig": policy.deployment_config()}


def updated_hosting_plan(
    endpoint: str,
    current_model: Mapping,
    current_variant: Mapping,
    *,
    model_data: str | None = None,
    image: str | None = None,
    role_arn: str | None = None,
    environment: Mapping[str, str] | None = None,
    instance_type: str | None = None,
    instance_count: int | None = None,
    training_job: str | None = None,
    tags: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> HostingPlan:
    """The next model and config of a live endpoint: what is running, with the given changes.

    Everything not given is carried over from the current model and variant — image, role,
    environment (``environment`` is laid over it), mode, ModelDataUrl, instance type and count —
    so an update never silently drops a setting made at deploy time.
    """
    container = current_model.get("PrimaryContainer") or (current_model.get("Containers") or [{}])[0]
    multi_model = container.get("Mode") == "MultiModel"
    return hosting_plan(
        endpoint,
        image=image or container["Image"],
        role_arn=role_arn or current_model["ExecutionRoleArn"],
        model_data=model_data or container["ModelDataUrl"],
        multi_model=multi_model,
        environment={**container.get("Environment", {}), **(environment or {})},
        instance_type=instance_type or current_variant["InstanceType"],
        instance_count=instance_count or current_variant["InitialInstanceCount"],
        startup_timeout=current_variant.get("ContainerStartupHealthCheckTimeoutInSeconds"),
        variant_name=current_variant["VariantName"],
        training_job=training_job,
        tags=tags,
        now=now,
    )
