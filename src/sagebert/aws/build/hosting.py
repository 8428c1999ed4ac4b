"""Models, endpoint configs and endpoints of the three kinds, and their blue/green updates.

An endpoint is real-time on instances (the default), serverless (``ServerlessConfig``: memory and
concurrency, no instances) or asynchronous (``AsyncInferenceConfig``: requests and answers in S3).
Everything a deployment is made of is a ``HostingSpec``; ``hosting_plan`` turns it into the
CreateModel, CreateEndpointConfig and CreateEndpoint requests, ``updated_spec`` into the next spec
of a live endpoint (what runs, with the given changes), and ``DeploymentPolicy`` into the
UpdateEndpoint DeploymentConfig. Combinations SageMaker refuses are refused here first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache

from ... import contract
from ..validation import InvalidRequestError, service_model
from .common import (
    ENDPOINT_TAG,
    TRAINING_JOB_TAG,
    S3Location,
    check_name,
    endpoint_resource_stem,
    tag_list,
    unique_name,
)

DEFAULT_VARIANT = "AllTraffic"
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
# Serverless inference (API reference, ProductionVariantServerlessConfig; developer guide).
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
# Data capture records these request and answer types as text (CaptureContentTypeHeader).
CAPTURED_JSON_TYPES = (contract.JSON, contract.JSONLINES)
CAPTURED_CSV_TYPES = (contract.CSV,)
# What sagebert writes itself in CreateModel / CreateEndpointConfig / their ProductionVariant and
# ContainerDefinition. Every other member that both the Create request and the Describe answer have
# is carried from what runs into what `update` creates (``carried_members``), read from the service
# model so that a field AWS adds later is kept rather than silently dropped.
MODEL_MEMBERS_SET_HERE = frozenset(
    # InferenceExecutionConfig only applies to several Containers; sagebert serves one PrimaryContainer.
    {"ModelName", "PrimaryContainer", "Containers", "InferenceExecutionConfig", "ExecutionRoleArn", "Tags"}
)
CONFIG_MEMBERS_SET_HERE = frozenset(
    {"EndpointConfigName", "ProductionVariants", "DataCaptureConfig", "AsyncInferenceConfig", "Tags"}
)
VARIANT_MEMBERS_SET_HERE = frozenset(
    {
        "VariantName",
        "ModelName",
        "InstanceType",
        "InitialInstanceCount",
        "InitialVariantWeight",
        "ServerlessConfig",
        "ContainerStartupHealthCheckTimeoutInSeconds",
        "InferenceAmiVersion",  # VariantSpec.inference_ami (aws/build/gpu.py checks it against the image)
        "RoutingConfig",  # VariantSpec.routing
    }
)
# The model data members describe the model itself: a new model brings its own.
CONTAINER_MEMBERS_SET_HERE = frozenset(
    {
        "Image",
        "Mode",
        "ModelDataUrl",
        "ModelDataSource",
        "AdditionalModelDataSources",
        "Environment",
        "ModelPackageName",
    }
)
# Instance families whose storage is local NVMe, encrypted by a hardware module rather than by the
# config's KmsKeyId (the API reference, CreateEndpointConfig KmsKeyId; EC2 instance store volumes).
# A heuristic for a warning only: "d" families (m5d, g4dn, p4d...) and the NVMe-only GPU/Trainium ones.
LOCAL_STORAGE_FAMILIES = re.compile(r"[a-z]+[0-9]+[a-z]*d[a-z]*|g5|g6|g6e|p5|p5e|p5en|trn1|trn1n|trn2")


@cache
def carried_members(kind: str) -> tuple[str, ...]:
    """The members of ``kind`` ("model", "endpoint config", "variant", "container") that `update`
    carries from what runs: accepted by the Create request, returned by the Describe answer, and
    not written by sagebert itself."""
    sagemaker = service_model()
    model_in = sagemaker.operation_model("CreateModel").input_shape
    model_out = sagemaker.operation_model("DescribeModel").output_shape
    config_in = sagemaker.operation_model("CreateEndpointConfig").input_shape
    config_out = sagemaker.operation_model("DescribeEndpointConfig").output_shape
    shapes = {
        "model": (model_in, model_out, MODEL_MEMBERS_SET_HERE),
        "endpoint config": (config_in, config_out, CONFIG_MEMBERS_SET_HERE),
        "variant": (
            config_in.members["ProductionVariants"].member,
            config_out.members["ProductionVariants"].member,
            VARIANT_MEMBERS_SET_HERE,
        ),
        "container": (
            model_in.members["PrimaryContainer"],
            model_out.members["PrimaryContainer"],
            CONTAINER_MEMBERS_SET_HERE,
        ),
    }
    accepted, described, set_here = shapes[kind]
    return tuple(name for name in accepted.members if name in described.members and name not in set_here)


def _carried(kind: str, described: Mapping) -> dict:
    # An empty structure or list (how moto describes "not set") carries nothing and fails validation.
    return {name: described[name] for name in carried_members(kind) if described.get(name) not in (None, {}, [])}


def has_local_storage(instance_type: str | None) -> bool:
    """Whether ``instance_type`` (ml.FAMILY.SIZE) keeps its storage on local NVMe drives."""
    parts = (instance_type or "").split(".")
    return len(parts) == 3 and LOCAL_STORAGE_FAMILIES.fullmatch(parts[1]) is not None


def _in_range(what: str, value: int, low: int, high: int, option: str) -> None:
    if not low <= value <= high:
        raise InvalidRequestError(
            f"{what} is {value}; SageMaker allows {low} to {high}.", f"Pass {option} between {low} and {high}."
        )


# ---- the container ----------------------------------------------------------------------------------
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


def check_uncompressed(multi_model: bool) -> None:
    """Refuse uncompressed model data for a multi-model endpoint, saying why."""
    if multi_model:
        raise InvalidRequestError(
            "--uncompressed does not apply to a multi-model endpoint: it loads each model's model.tar.gz from "
            "its prefix on demand, and SageMaker takes no uncompressed model data for it.",
            "Drop --uncompressed (or deploy the model on its own endpoint).",
        )


def uncompressed_model_data_source(uri: str, multi_model: bool = False) -> dict:
    """ModelDataSource for model files stored unpacked under an S3 prefix: SageMaker copies them
    into /opt/ml/model as they are (no download and untar of a model.tar.gz). Not for multi-model
    endpoints, which load archives from their prefix on demand."""
    check_uncompressed(multi_model)
    prefix = S3Location.parse(uri, "uncompressed model data location").as_prefix()
    return {"S3DataSource": {"S3Uri": prefix.uri, "S3DataType": "S3Prefix", "CompressionType": "None"}}


@dataclass(frozen=True)
class ContainerSpec:
    """The model's one container: an image and model data, or a registered model package.

    ``uncompressed``: ``model_data`` is a prefix of unpacked model files (ModelDataSource), not a
    model.tar.gz (ModelDataUrl)."""

    image: str | None = None
    model_data: str | None = None
    model_package: str | None = None
    multi_model: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping = field(default_factory=dict)  # other ContainerDefinition members, carried as they are
    uncompressed: bool = False

    @classmethod
    def from_api(cls, container: Mapping) -> ContainerSpec:
        """The ContainerDefinition of a DescribeModel answer."""
        source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
        packaged = bool(container.get("ModelPackageName"))
        return cls(
            image=container.get("Image") if not packaged else None,
            model_data=None if packaged else container.get("ModelDataUrl") or source.get("S3Uri"),
            model_package=container.get("ModelPackageName"),
            multi_model=container.get("Mode") == "MultiModel",
            environment=dict(container.get("Environment") or {}),
            extra=_carried("container", container),
            uncompressed=not packaged and not container.get("ModelDataUrl") and bool(source),
        )

    def as_api(self) -> dict:
        """The PrimaryContainer of CreateModel."""
        if self.model_package:
            container: dict = {"ModelPackageName": self.model_package}
        else:
            if not self.image or not self.model_data:
                raise InvalidRequestError(
                    "A model needs an image and model data (or a model package).",
                    "Pass --training-job JOB, or --model-data S3_URI with --image and --role.",
                )
            container = {"Image": self.image, "Mode": "MultiModel" if self.multi_model else "SingleModel"}
            if self.uncompressed:
                container["ModelDataSource"] = uncompressed_model_data_source(self.model_data, self.multi_model)
            else:
                container["ModelDataUrl"] = model_data_url(self.model_data, self.multi_model)
        if self.environment:
            container["Environment"] = dict(self.environment)
        for name, value in self.extra.items():
            container.setdefault(name, value)
        return container


def create_model_request(
    name: str,
    container: ContainerSpec,
    role_arn: str,
    tags: Mapping[str, str] | None = None,
    fields: Mapping | None = None,
) -> dict:
    """CreateModel with one container: ``SingleModel``, ``MultiModel`` (a prefix) or a model package;
    ``fields`` adds members such as VpcConfig and EnableNetworkIsolation."""
    check_name("model", name)
    request = {"ModelName": name, "ExecutionRoleArn": role_arn, "PrimaryContainer": container.as_api()}
    request.update(fields or {})
    if tags:
        request["Tags"] = tag_list(tags)
    return request


# ---- endpoint kinds ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerlessSpec:
    """A serverless variant: memory (1-6 GB in 1 GB steps), concurrent invocations, kept-warm ones."""

    memory_mb: int
    max_concurrency: int
    provisioned: int | None = None

    @classmethod
    def parse(cls, text: str) -> ServerlessSpec:
        """``MEMORY_MB:MAX_CONCURRENCY[:PROVISIONED]`` → ServerlessSpec, checked against the API's limits."""
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+)\s*)?", text or "")
        if not match:
            raise InvalidRequestError(
                f"--serverless {text!r} is not MEMORY_MB:MAX_CONCURRENCY[:PROVISIONED].",
                "Write e.g. --serverless 2048:5 (2 GB, up to 5 concurrent invocations) or 2048:5:1.",
            )
        spec = cls(int(match[1]), int(match[2]), int(match[3]) if match[3] else None)
        spec.check()
        return spec

    def check(self) -> None:
        if self.memory_mb not in SERVERLESS_MEMORY_SIZES:
            raise InvalidRequestError(
                f"Serverless memory {self.memory_mb} MB is not one SageMaker offers.",
                "Use one of " + ", ".join(map(str, SERVERLESS_MEMORY_SIZES)) + " (MB).",
            )
        _in_range("Serverless MaxConcurrency", self.max_concurrency, 1, SERVERLESS_MAX_CONCURRENCY, "--serverless")
        if self.provisioned is not None:
            _in_range("Serverless ProvisionedConcurrency", self.provisioned, 1, self.max_concurrency, "--serverless")

    def as_api(self) -> dict:
        config = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned is not None:
            config["ProvisionedConcurrency"] = self.provisioned
        return config

    @classmethod
    def from_api(cls, config: Mapping) -> ServerlessSpec:
        return cls(config["MemorySizeInMB"], config["MaxConcurrency"], config.get("ProvisionedConcurrency"))


@dataclass(frozen=True)
class AsyncSpec:
    """An asynchronous endpoint: answers go to S3, optionally announced on SNS topics."""

    output: str
    failure: str | None = None
    success_topic: str | None = None
    error_topic: str | None = None
    max_concurrent_invocations: int | None = None
    kms_key: str | None = None

    def as_api(self) -> dict:
        """The AsyncInferenceConfig (answers encrypted with ``kms_key`` when given)."""
        output: dict = {"S3OutputPath": S3Location.parse(self.output, "--async output location").as_prefix().uri}
        if self.kms_key:
            output["KmsKeyId"] = self.kms_key
        if self.failure:
            output["S3FailurePath"] = S3Location.parse(self.failure, "--async-failure location").as_prefix().uri
        if bool(self.success_topic) != bool(self.error_topic):
            raise InvalidRequestError(
                "--sns-success and --sns-error go together.", "Give both topic ARNs (they may be the same topic)."
            )
        if self.success_topic:
            output["NotificationConfig"] = {"SuccessTopic": self.success_topic, "ErrorTopic": self.error_topic}
        config: dict = {"OutputConfig": output}
        if self.max_concurrent_invocations is not None:
            _in_range(
                "MaxConcurrentInvocationsPerInstance", self.max_concurrent_invocations, 1, 1000, "--async-concurrency"
            )
            config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": self.max_concurrent_invocations}
        return config


@dataclass(frozen=True)
class DataCaptureSpec:
    """Record a sample of requests and answers to S3 (for Model Monitor, or to replay them)."""

    destination: str
    sampling_percent: int = 100
    kms_key: str | None = None

    def as_api(self) -> dict:
        """The DataCaptureConfig: input and output, JSON, JSON Lines and CSV captured as text (and
        encrypted with ``kms_key`` when given)."""
        _in_range("--sampling-percent", self.sampling_percent, 0, 100, "--sampling-percent")
        key = {"KmsKeyId": self.kms_key} if self.kms_key else {}
        return {
            **key,
            "EnableCapture": True,
            "InitialSamplingPercentage": self.sampling_percent,
            "DestinationS3Uri": S3Location.parse(self.destination, "--data-capture location").as_prefix().uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "JsonContentTypes": list(CAPTURED_JSON_TYPES),
                "CsvContentTypes": list(CAPTURED_CSV_TYPES),
            },
        }


@dataclass(frozen=True)
class VariantSpec:
    """The one production variant: instances (type and count) or a serverless configuration."""

    instance_type: str | None = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    serverless: ServerlessSpec | None = None
    startup_timeout: int | None = None
    name: str = DEFAULT_VARIANT
    inference_ami: str | None = None  # InferenceAmiVersion: the GPU host's driver (aws/build/gpu.py)
    routing: str | None = None  # RoutingConfig RoutingStrategy
    extra: Mapping = field(default_factory=dict)  # other ProductionVariant members, carried as they are

    @property
    def fleet_size(self) -> int | None:
        """Instances behind the variant; None for serverless."""
        return None if self.serverless else self.instance_count

    def as_api(self, model_name: str) -> dict:
        check_name("variant", self.name)
        variant: dict = {"VariantName": self.name, "ModelName": model_name}
        if self.serverless:
            variant["ServerlessConfig"] = self.serverless.as_api()
        else:
            variant.update(
                InstanceType=self.instance_type, InitialInstanceCount=self.instance_count, InitialVariantWeight=1.0
            )
        if self.startup_timeout is not None:
            _in_range("--startup-timeout", self.startup_timeout, 60, 3600, "--startup-timeout")
            variant["ContainerStartupHealthCheckTimeoutInSeconds"] = self.startup_timeout
        if self.inference_ami:
            variant["InferenceAmiVersion"] = self.inference_ami
        if self.routing:
            if self.serverless:
                raise InvalidRequestError(
                    "A serverless endpoint routes its requests itself: RoutingConfig is for instances.",
                    "Drop --routing, or deploy on instances.",
                )
            variant["RoutingConfig"] = {"RoutingStrategy": self.routing}
        for name, value in self.extra.items():
            variant.setdefault(name, value)
        return variant

    @classmethod
    def from_api(cls, variant: Mapping, instance_count: int | None = None) -> VariantSpec:
        """A config's ProductionVariant; ``instance_count`` (the running count) replaces its initial one."""
        serverless = variant.get("ServerlessConfig")
        return cls(
            instance_type=variant.get("InstanceType"),
            instance_count=instance_count or variant.get("InitialInstanceCount") or 1,
            serverless=ServerlessSpec.from_api(serverless) if serverless else None,
            startup_timeout=variant.get("ContainerStartupHealthCheckTimeoutInSeconds"),
            name=variant["VariantName"],
            inference_ami=variant.get("InferenceAmiVersion"),
            routing=(variant.get("RoutingConfig") or {}).get("RoutingStrategy"),
            extra=_carried("variant", variant),
        )


@dataclass(frozen=True)
class HostingSpec:
    """Everything an endpoint runs: the container, the role, the variant, async and data capture,
    and the other members of the model (VpcConfig, EnableNetworkIsolation...) and of the endpoint
    config (KmsKeyId...)."""

    container: ContainerSpec
    role_arn: str
    variant: VariantSpec = field(default_factory=VariantSpec)
    async_config: Mapping | None = None
    data_capture: Mapping | None = None
    model_fields: Mapping = field(default_factory=dict)
    config_fields: Mapping = field(default_factory=dict)

    def check(self) -> None:
        """Refuse what SageMaker refuses for this kind of endpoint."""
        check_kind(self.variant, self.async_config, self.data_capture, self.container.multi_model, self.model_fields)


def capture_enabled(data_capture: Mapping | None) -> bool:
    """Whether a DataCaptureConfig captures anything: DescribeEndpointConfig may carry an empty one
    (moto answers ``{}``) or one with EnableCapture false, and neither is capture."""
    return bool(data_capture) and data_capture.get("EnableCapture", True) is not False


def check_kind(
    variant: VariantSpec, async_config, data_capture, multi_model: bool, model_fields: Mapping | None = None
) -> None:
    """Refuse what SageMaker refuses for the endpoint's kind (serverless: one model, no data
    capture, no async, /ping within 3 minutes, no VPC, no network isolation)."""
    if not variant.serverless:
        return
    model_fields = model_fields or {}
    refused = [
        (
            bool(model_fields.get("VpcConfig")),
            "a VPC configuration",
            "Drop --subnets/--security-groups, or deploy on instances.",
        ),
        (
            bool(model_fields.get("EnableNetworkIsolation")),
            "network isolation",
            "Drop --network-isolation, or deploy on instances.",
        ),
        (multi_model, "a multi-model container", "Deploy it on instances (drop --serverless)."),
        (capture_enabled(data_capture), "data capture", "Drop --data-capture, or deploy on instances."),
        (async_config is not None, "asynchronous inference", "Choose --serverless or --async."),
        (
            variant.startup_timeout is not None,
            "a container startup timeout (serverless containers must answer /ping within 3 minutes)",
            "Drop --startup-timeout.",
        ),
    ]
    for present, what, fix in refused:
        if present:
            raise InvalidRequestError(f"A serverless endpoint cannot have {what}.", fix)


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


def create_endpoint_config_request(name: str, spec: HostingSpec, model_name: str, tags: Mapping[str, str]) -> dict:
    """CreateEndpointConfig with the one variant taking all the traffic."""
    check_name("endpoint config", name)
    request: dict = {"EndpointConfigName": name, "ProductionVariants": [spec.variant.as_api(model_name)]}
    request.update(spec.config_fields)
    if spec.async_config:
        request["AsyncInferenceConfig"] = dict(spec.async_config)
    if spec.data_capture:
        request["DataCaptureConfig"] = dict(spec.data_capture)
    if tags:
        request["Tags"] = tag_list(tags)
    return request


def hosting_plan(
    endpoint: str,
    spec: HostingSpec,
    *,
    training_job: str | None = None,
    model_tags: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> HostingPlan:
    """A new model and endpoint config for ``endpoint``, named ``<endpoint>-<time>-<random>``.

    Both carry the ``sagebert:endpoint`` tag from the moment they exist (so ``delete`` finds them
    even when a later step fails), and the model the training job it came from and its final
    metrics (``model_tags``), which the metric gate compares.
    """
    check_name("endpoint", endpoint)
    spec.check()
    owned = {**(tags or {}), ENDPOINT_TAG: endpoint}
    described = {TRAINING_JOB_TAG: training_job} if training_job else {}
    # One name for the model and its config (different resource types): easy to match up.
    name = unique_name(endpoint_resource_stem(endpoint), now)
    endpoint_request = {"EndpointName": endpoint, "EndpointConfigName": name}
    if tags:
        endpoint_request["Tags"] = tag_list(tags)
    return HostingPlan(
        model=create_model_request(
            name, spec.container, spec.role_arn, {**owned, **described, **(model_tags or {})}, spec.model_fields
        ),
        endpoint_config=create_endpoint_config_request(name, spec, name, owned),
        endpoint=endpoint_request,
    )


def config_kms_key(variant: VariantSpec, kms_key: str | None) -> tuple[dict, str | None]:
    """The endpoint config's KmsKeyId for ``kms_key`` (the key of the ML storage volume), and a
    warning when the key cannot do what it is given for: a serverless endpoint has no ML compute
    instance of its own, so nothing is sent; on instances with local NVMe storage the key is sent
    but that storage is encrypted by the instance's hardware module instead (API reference,
    CreateEndpointConfig KmsKeyId)."""
    if not kms_key:
        return {}, None
    if variant.serverless:
        return {}, (
            "the endpoint config's KmsKeyId is not sent: it encrypts the storage volume of the ML compute "
            "instances, and a serverless endpoint has none of its own"
        )
    if has_local_storage(variant.instance_type):
        return {"KmsKeyId": kms_key}, (
            f"{variant.instance_type} keeps its storage on local NVMe drives, which SageMaker encrypts with the "
            "instance's hardware module, not with the KMS key; pick a type without local storage if the key must apply"
        )
    return {"KmsKeyId": kms_key}, None


# ---- what runs, and the next spec of a live endpoint --------------------------------------------------
@dataclass(frozen=True)
class Running:
    """A live endpoint as SageMaker describes it: the endpoint, its config, its one variant, the model."""

    endpoint: Mapping
    config: Mapping
    variant: Mapping
    model: Mapping

    @property
    def name(self) -> str:
        return self.endpoint["EndpointName"]

    @property
    def config_name(self) -> str:
        return self.endpoint["EndpointConfigName"]

    @property
    def container(self) -> ContainerSpec:
        model = self.model
        return ContainerSpec.from_api(model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0])

    @property
    def instance_count(self) -> int | None:
        """Instances serving now: CurrentInstanceCount (what autoscaling set), else the config's; None serverless."""
        if self.variant.get("ServerlessConfig"):
            return None
        for summary in self.endpoint.get("ProductionVariants") or ():
            if summary.get("VariantName") == self.variant["VariantName"]:
                count = summary.get("CurrentInstanceCount") or summary.get("DesiredInstanceCount")
                if count:
                    return count
        return self.variant.get("InitialInstanceCount")

    def spec(self) -> HostingSpec:
        """What runs, as a HostingSpec, with the running instance count."""
        return HostingSpec(
            container=self.container,
            role_arn=self.model["ExecutionRoleArn"],
            variant=VariantSpec.from_api(self.variant, self.instance_count),
            async_config=self.config.get("AsyncInferenceConfig"),
            data_capture=self.config.get("DataCaptureConfig"),
            model_fields=_carried("model", self.model),
            config_fields=_carried("endpoint config", self.config),
        )


@dataclass(frozen=True)
class Changes:
    """What an update changes; None (or empty) keeps what runs."""

    container: ContainerSpec | None = None
    role_arn: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    instance_type: str | None = None
    instance_count: int | None = None
    data_capture: Mapping | None = None
    routing: str | None = None
    model_fields: Mapping = field(default_factory=dict)  # VpcConfig, EnableNetworkIsolation
    kms_key: str | None = None  # data capture and async answers
    volume_kms_key: str | None = None  # the endpoint config's KmsKeyId (not on serverless)


def _with_key(config: Mapping | None, key: str | None, kms_key: str | None) -> Mapping | None:
    """``config`` with its KmsKeyId (at ``key`` inside, or at the top) set to ``kms_key``."""
    if not config or not kms_key:  # moto describes "no capture" as {}
        return config
    if key is None:
        return {**config, "KmsKeyId": kms_key}
    return {**config, key: {**config[key], "KmsKeyId": kms_key}}


def updated_spec(running: Running, changes: Changes) -> HostingSpec:
    """The next spec of a live endpoint: what runs — image, role, environment, mode, instance type,
    the running instance count, serverless, async and data capture settings, and every other member
    of the model, its container, the config and its variant that the Create requests accept (VPC,
    network isolation, KMS keys, volume size, routing...) — with ``changes`` laid over it, so an
    update never silently drops a setting made at deploy time or outside sagebert."""
    current = running.spec()
    container = changes.container or current.container
    same_kind = bool(container.model_package) == bool(current.container.model_package)
    container = replace(
        container,
        environment={**current.container.environment, **container.environment, **changes.environment},
        extra={**(current.container.extra if same_kind else {}), **container.extra},
    )
    variant = current.variant
    if variant.serverless and (changes.instance_type or changes.instance_count):
        raise InvalidRequestError(
            f"Endpoint {running.name} is serverless: it has no instance type or count.",
            "Drop --instance-type/--instance-count (serverless memory and concurrency are set at deploy time).",
        )
    variant = replace(
        variant,
        instance_type=changes.instance_type or variant.instance_type,
        instance_count=changes.instance_count or variant.instance_count,
        routing=changes.routing or variant.routing,
    )
    data_capture = current.data_capture
    if changes.data_capture is not None:
        # A new capture destination keeps the running capture's key unless --kms-key gives another.
        data_capture = _with_key(changes.data_capture, None, (current.data_capture or {}).get("KmsKeyId"))
    config_fields = dict(current.config_fields)
    if changes.volume_kms_key and not variant.serverless:
        config_fields["KmsKeyId"] = changes.volume_kms_key
    return replace(
        current,
        container=container,
        role_arn=changes.role_arn or current.role_arn,
        variant=variant,
        async_config=_with_key(current.async_config, "OutputConfig", changes.kms_key),
        data_capture=_with_key(data_capture, None, changes.kms_key),
        model_fields={**current.model_fields, **changes.model_fields},
        config_fields=config_fields,
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

    def percent_of(self, fleet: int) -> float:
        return self.value if self.type == "CAPACITY_PERCENT" else 100.0 * self.value / fleet


@dataclass(frozen=True)
class DeploymentPolicy:
    """How UpdateEndpoint shifts traffic to the new fleet (blue/green), and what rolls it back."""

    traffic: str = "ALL_AT_ONCE"
    step: CapacitySize | None = None
    wait_interval: int | None = None
    termination_wait: int = 0
    max_execution_timeout: int | None = None
    alarms: tuple[str, ...] = ()
    rolling: CapacitySize | None = None  # a rolling update in batches of this size instead of blue/green
    rollback_batch: CapacitySize | None = None

    def deployment_config(self, fleet_size: int | None) -> dict:
        """The DeploymentConfig: BlueGreenUpdatePolicy and, with alarms, AutoRollbackConfiguration.

        ``fleet_size`` is the new fleet's instance count (None: serverless); canary and linear steps
        are checked against it as the API states them: a canary at most 50 % of the variant's
        instances, a linear step 10-50 %.
        """
        if self.traffic not in TRAFFIC_TYPES:
            raise InvalidRequestError(
                f"Unknown traffic routing {self.traffic!r}.", "Use one of " + ", ".join(TRAFFIC_TYPES) + "."
            )
        if self.rolling is not None:
            return self._with_alarms({"RollingUpdatePolicy": self._rolling_policy(fleet_size)})
        if self.rollback_batch is not None:
            raise InvalidRequestError("--rollback-batch belongs to a rolling update.", "Add --rolling, or drop it.")
        default_wait = 0 if self.traffic == "ALL_AT_ONCE" else 300
        wait = default_wait if self.wait_interval is None else self.wait_interval
        _in_range("WaitIntervalInSeconds", wait, 0, 3600, "--wait-interval")
        _in_range("TerminationWaitInSeconds", self.termination_wait, 0, 3600, "--termination-wait")
        routing: dict = {"Type": self.traffic, "WaitIntervalInSeconds": wait}
        shifts = 1
        if self.traffic == "CANARY":
            step = self._step(CapacitySize("CAPACITY_PERCENT", 10), 1, 50, "--canary-size", fleet_size)
            routing["CanarySize"] = step.as_api()
            shifts = 2
        elif self.traffic == "LINEAR":
            step = self._step(CapacitySize("CAPACITY_PERCENT", 20), 10, 50, "--linear-step", fleet_size)
            routing["LinearStepSize"] = step.as_api()
            shifts = math.ceil(100 / step.percent_of(fleet_size or 1))
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
            waiting = self.termination_wait + wait * shifts
            if self.max_execution_timeout <= waiting:
                raise InvalidRequestError(
                    f"--max-execution-timeout {self.max_execution_timeout} s is not longer than the waiting the "
                    f"update itself asks for ({shifts} x --wait-interval {wait} + --termination-wait "
                    f"{self.termination_wait} = {waiting} s); SageMaker wants it larger.",
                    f"Raise --max-execution-timeout above {waiting}, or shorten the waits.",
                )
            policy["MaximumExecutionTimeoutInSeconds"] = self.max_execution_timeout
        return self._with_alarms({"BlueGreenUpdatePolicy": policy})

    def _with_alarms(self, config: dict) -> dict:
        if self.alarms:
            if len(self.alarms) > 10:
                raise InvalidRequestError(
                    f"{len(self.alarms)} alarms given; SageMaker watches at most 10.",
                    "Pass --alarm at most 10 times (a composite alarm can combine more).",
                )
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in self.alarms]}
        return config

    def _rolling_policy(self, fleet_size: int | None) -> dict:
        """RollingUpdatePolicy, checked as the developer guide's exclusions and the API reference
        state them: not for serverless (or multi-variant) endpoints; each batch 5-50 % of the
        variant's instances; no blue/green traffic shifting beside it."""
        if self.traffic != "ALL_AT_ONCE" or self.step is not None or self.termination_wait:
            raise InvalidRequestError(
                "--rolling replaces blue/green traffic shifting: --traffic, --canary-size, --linear-step and "
                "--termination-wait do not apply to it.",
                "Drop them, or drop --rolling.",
            )
        if fleet_size is None:
            raise InvalidRequestError(
                "A serverless endpoint cannot take a rolling update (SageMaker excludes serverless endpoints).",
                "Drop --rolling: serverless endpoints are updated blue/green.",
            )
        share = self.rolling.percent_of(fleet_size)
        if not 5 <= share <= 50:
            raise InvalidRequestError(
                f"A rolling batch of {self.rolling.value}{'%' if self.rolling.type == 'CAPACITY_PERCENT' else ''} "
                f"is {share:g}% of the {fleet_size} instance(s); SageMaker wants 5-50% of the variant's instances.",
                "Give a batch of 5-50% of the fleet (e.g. --rolling 25%)."
                if fleet_size > 1
                else "Scale to 2+ instances first, or update blue/green (drop --rolling).",
            )
        wait = 300 if self.wait_interval is None else self.wait_interval
        _in_range("WaitIntervalInSeconds (the bake time)", wait, 0, 3600, "--rolling BATCH:BAKE")
        policy: dict = {"MaximumBatchSize": self.rolling.as_api(), "WaitIntervalInSeconds": wait}
        if self.max_execution_timeout is not None:
            _in_range(
                "MaximumExecutionTimeoutInSeconds", self.max_execution_timeout, 600, 28800, "--max-execution-timeout"
            )
            policy["MaximumExecutionTimeoutInSeconds"] = self.max_execution_timeout
        if self.rollback_batch is not None:
            policy["RollbackMaximumBatchSize"] = self.rollback_batch.as_api()
        return policy

    def _step(self, default: CapacitySize, low: int, high: int, option: str, fleet_size: int | None) -> CapacitySize:
        step = self.step or default
        if step.type == "CAPACITY_PERCENT":
            _in_range(f"{option} (percent of the fleet)", step.value, low, high, option)
            if fleet_size is not None and fleet_size < 2:
                raise InvalidRequestError(
                    f"{self.traffic.lower()} traffic needs at least 2 instances: on a fleet of {fleet_size} any "
                    f"step is the whole fleet, more than the {high}% SageMaker allows.",
                    "Use --traffic all-at-once, or first scale to 2+ instances (--instance-count).",
                )
            return step
        if fleet_size is None:
            raise InvalidRequestError(
                f"{option} {step.value} counts instances, and a serverless endpoint has none.",
                f"Give {option} as a percentage (e.g. {default.value}%).",
            )
        percent = step.percent_of(fleet_size)
        if not low <= percent <= high:
            most = math.floor(fleet_size * high / 100)
            least = math.ceil(fleet_size * low / 100)
            allowed = f"{least}-{most} instances" if least <= most else f"none on {fleet_size} instance(s)"
            raise InvalidRequestError(
                f"{option} {step.value} is {percent:.0f}% of the new fleet of {fleet_size} instance(s); "
                f"SageMaker allows {low}-{high}% ({allowed}).",
                "Pick a size in that range, give it as a percentage, or use --traffic all-at-once.",
            )
        return step


def update_endpoint_request(
    endpoint: str,
    config_name: str,
    policy: DeploymentPolicy,
    fleet_size: int | None,
    *,
    exclude_retained: tuple[str, ...] = (),
) -> dict:
    """UpdateEndpoint to a new config with an explicit blue/green DeploymentConfig.

    RetainAllVariantProperties keeps the variant's latest DesiredInstanceCount (what autoscaling
    set while the update runs), as the developer guide prescribes for autoscaled endpoints;
    ``exclude_retained`` names what the new config sets on purpose (``DesiredInstanceCount`` for
    --instance-count; not ``DataCaptureConfig``, which the VariantProperty reference marks "not
    currently supported": the new config carries the capture settings itself).
    """
    check_name("endpoint", endpoint)
    request = {
        "EndpointName": endpoint,
        "EndpointConfigName": config_name,
        "DeploymentConfig": policy.deployment_config(fleet_size),
        "RetainAllVariantProperties": True,
    }
    if exclude_retained:
        request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": name} for name in exclude_retained]
    return request


# ---- shadow variants -------------------------------------------------------------------------------
SHADOW_VARIANT = "Shadow"


def shadow_endpoint_config_request(
    name: str,
    running: HostingSpec,
    production_model: str,
    shadow: VariantSpec | None = None,
    shadow_model: str | None = None,
    sampling_percent: int = 100,
    tags: Mapping[str, str] | None = None,
) -> dict:
    """CreateEndpointConfig with the production variant as it runs (its model, instances and data
    capture) and, given ``shadow``, a shadow variant that receives a copy of ``sampling_percent`` %
    of the requests: SageMaker copies traffic to a shadow in the ratio of its InitialVariantWeight
    to the production variant's (1.0). Without ``shadow``: production alone (a shadow stopped)."""
    if running.variant.serverless:
        raise InvalidRequestError(
            "A serverless endpoint cannot have a shadow variant.", "Shadow-test on an endpoint on instances."
        )
    if running.async_config:
        raise InvalidRequestError(
            "An asynchronous endpoint cannot have a shadow variant.", "Shadow-test on a real-time endpoint."
        )
    request = create_endpoint_config_request(name, running, production_model, tags or {})
    if shadow is not None:
        _in_range("--sampling-percent", sampling_percent, 1, 100, "--sampling-percent")
        if shadow.name == running.variant.name:
            raise InvalidRequestError(
                f"The shadow variant cannot be named {shadow.name} like the production variant.",
                "Give the shadow another --variant-name.",
            )
        variant = shadow.as_api(shadow_model or "")
        variant["InitialVariantWeight"] = sampling_percent / 100
        request["ShadowProductionVariants"] = [variant]
    return request
