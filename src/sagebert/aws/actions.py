"""The AWS side of each command: boto3 clients and the calls, in the order SageMaker needs them.

Requests come ready-made from ``requests``; every create/update request is checked against the
service model (``validation``) before it is sent. Functions return data or yield events; they
never print. AWS errors propagate as botocore exceptions; the CLI turns them into one line
(``errors.translate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from .. import __version__
from ..environment import TESTING_CHANNEL, TRAINING_CHANNEL
from .requests import ENDPOINT_TAG, PREVIOUS_CONFIG_TAG, HostingPlan, S3Location, endpoint_resource_stem
from .validation import InvalidRequestError, validate_request

# SageMaker reads a new endpoint config with eventual consistency: CreateEndpoint/UpdateEndpoint
# right after CreateEndpointConfig can say it does not exist.
VISIBILITY_ATTEMPTS = 10
VISIBILITY_DELAY_SECONDS = 2.0


class AwsClients:
    """The boto3 clients of one session, made when first used.

    Region and credentials follow boto3's usual chain (AWS_PROFILE, AWS_REGION, ~/.aws/config,
    instance roles...) unless ``region``/``profile`` are given; AWS_ENDPOINT_URL is honoured.
    """

    def __init__(
        self, session: boto3.session.Session | None = None, *, region: str | None = None, profile: str | None = None
    ):
        self._session = session
        self._region = region
        self._profile = profile

    @cached_property
    def session(self) -> boto3.session.Session:
        return self._session or boto3.session.Session(region_name=self._region, profile_name=self._profile)

    def _client(self, service: str, **config):
        settings = Config(
            retries={"mode": "standard", "max_attempts": 5}, user_agent_extra=f"sagebert/{__version__}", **config
        )
        return self.session.client(service, config=settings)

    @cached_property
    def sagemaker(self):
        return self._client("sagemaker")

    @cached_property
    def runtime(self):
        # The container has 60 s to answer an invocation; wait a little longer than that.
        return self._client("sagemaker-runtime", read_timeout=70)

    @cached_property
    def s3(self):
        return self._client("s3")

    @cached_property
    def logs(self):
        return self._client("logs")

    @cached_property
    def sts(self):
        return self._client("sts")

    @property
    def region(self) -> str | None:
        return self.sagemaker.meta.region_name


def send(client, operation: str, request: dict) -> dict:
    """Validate ``request`` against ``operation``'s input rules, then send it."""
    validate_request(operation, request, client.meta.service_model.service_name)
    return getattr(client, xform_name(operation))(**request)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_not_found(exc: ClientError) -> bool:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return _error_code(exc) in ("ValidationException", "ResourceNotFound") and "ould not find" in message


# ---- identity -------------------------------------------------------------------------------------
def account_id(clients: AwsClients) -> str:
    """The caller's AWS account (STS GetCallerIdentity)."""
    return clients.sts.get_caller_identity()["Account"]


def role_arn(clients: AwsClients, role: str) -> str:
    """An execution role's ARN; a bare role name is completed with the caller's account."""
    if role.startswith("arn:"):
        return role
    partition = clients.session.get_partition_for_region(clients.region or "us-east-1")
    return f"arn:{partition}:iam::{account_id(clients)}:role/{role.strip('/')}"


# ---- S3 -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Uploaded:
    """One file copied to S3."""

    path: Path
    uri: str
    size: int


def local_files(directory: Path) -> list[tuple[Path, str]]:
    """Every file under ``directory`` (hidden ones skipped) with its key relative to it, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidRequestError(
            f"{directory} is not a directory.",
            "Pass the folder that holds training/ (and testing/), e.g. local_test/data.",
        )
    files = sorted(
        (path, path.relative_to(directory).as_posix())
        for path in directory.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
    if not files:
        raise InvalidRequestError(
            f"{directory} holds no files to upload.", "Put training/train.csv (and testing/test.csv) in it."
        )
    return files


def upload_tree(clients: AwsClients, directory: Path, destination: S3Location) -> Iterator[Uploaded]:
    """Upload the folder tree to ``destination``, keeping relative paths; yield each file as done."""
    files = local_files(directory)
    prefix = destination.as_prefix()
    clients.s3.head_bucket(Bucket=prefix.bucket)  # a missing bucket fails here, once, clearly
    for path, relative in files:
        target = prefix.child(relative)
        clients.s3.upload_file(str(path), target.bucket, target.key)
        yield Uploaded(path, target.uri, path.stat().st_size)


def has_objects(clients: AwsClients, location: S3Location) -> bool:
    """Whether at least one object lies under the prefix ``location``."""
    listing = clients.s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    return listing.get("KeyCount", 0) > 0


def data_channels_present(clients: AwsClients, data: S3Location) -> set[str]:
    """Which of ``training/`` and ``testing/`` under ``data`` hold objects."""
    return {name for name in (TRAINING_CHANNEL, TESTING_CHANNEL) if has_objects(clients, data.child(name, ""))}


# ---- training jobs --------------------------------------------------------------------------------
def create_training_job(clients: AwsClients, request: dict) -> str:
    """Send CreateTrainingJob; return the job's ARN."""
    return send(clients.sagemaker, "CreateTrainingJob", request)["TrainingJobArn"]


def describe_training_job(clients: AwsClients, name: str) -> dict:
    return clients.sagemaker.describe_training_job(TrainingJobName=name)


def stop_training_job(clients: AwsClients, name: str) -> None:
    """StopTrainingJob: SageMaker sends SIGTERM, then SIGKILL 120 s later."""
    clients.sagemaker.stop_training_job(TrainingJobName=name)


def recent_training_jobs(clients: AwsClients, count: int = 10) -> list[dict]:
    return clients.sagemaker.list_training_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=count)[
        "TrainingJobSummaries"
    ]


# ---- endpoints ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Created:
    """A resource was created (an event for the CLI to show)."""

    kind: str
    name: str


@dataclass(frozen=True)
class Deployment:
    """What a live endpoint runs: its description, its config's only variant, that variant's model."""

    endpoint: dict
    config: dict
    variant: dict
    model: dict


def find_endpoint(clients: AwsClients, name: str) -> dict | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    try:
        return clients.sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise


def list_endpoints(clients: AwsClients) -> list[dict]:
    return clients.sagemaker.list_endpoints(SortBy="CreationTime", SortOrder="Descending")["Endpoints"]


def _wait_until_visible(clients: AwsClients, config_name: str, sleep: Callable[[float], None]) -> None:
    for attempt in range(VISIBILITY_ATTEMPTS):
        try:
            clients.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            return
        except ClientError as exc:
            if not _is_not_found(exc) or attempt == VISIBILITY_ATTEMPTS - 1:
                raise
            sleep(VISIBILITY_DELAY_SECONDS)


def create_model_and_config(
    clients: AwsClients, plan: HostingPlan, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Created]:
    """CreateModel, then CreateEndpointConfig, then wait until SageMaker can read the config."""
    send(clients.sagemaker, "CreateModel", plan.model)
    yield Created("model", plan.model_name)
    send(clients.sagemaker, "CreateEndpointConfig", plan.endpoint_config)
    yield Created("endpoint config", plan.config_name)
    _wait_until_visible(clients, plan.config_name, sleep)


def deploy(clients: AwsClients, plan: HostingPlan, sleep: Callable[[float], None] = time.sleep) -> Iterator[Created]:
    """Model → endpoint config → endpoint; refuses to touch an endpoint that already exists."""
    existing = find_endpoint(clients, plan.endpoint_name)
    if existing is not None:
        raise InvalidRequestError(
            f"Endpoint {plan.endpoint_name} already exists ({existing['EndpointStatus']}).",
            f"Roll out a new model with `sagebert update --endpoint {plan.endpoint_name} ...`, or choose another name.",
        )
    yield from create_model_and_config(clients, plan, sleep)
    send(clients.sagemaker, "CreateEndpoint", plan.endpoint)
    yield Created("endpoint", plan.endpoint_name)


def current_deployment(clients: AwsClients, endpoint: str) -> Deployment:
    """The endpoint, its config, and the model of its single variant."""
    description = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=description["EndpointConfigName"])
    variants = config["ProductionVariants"]
    if len(variants) != 1:
        raise InvalidRequestError(
            f"Endpoint {endpoint} has {len(variants)} production variants; sagebert manages one-variant endpoints.",
            "Update it with the console or UpdateEndpoint directly.",
        )
    model = clients.sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    return Deployment(description, config, variants[0], model)


def require_in_service(description: dict) -> None:
    """Updates start only from InService (SageMaker refuses them while Creating/Updating)."""
    status = description["EndpointStatus"]
    if status != "InService":
        name = description["EndpointName"]
        raise InvalidRequestError(
            f"Endpoint {name} is {status}; it can only be updated when InService.",
            f"Wait for it (sagebert status --endpoint {name}) and retry.",
        )


def start_update(
    clients: AwsClients, plan: HostingPlan, update_request: dict, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Created]:
    """A new model and config, then UpdateEndpoint (the previous config and model are kept)."""
    yield from create_model_and_config(clients, plan, sleep)
    send(clients.sagemaker, "UpdateEndpoint", update_request)


def endpoint_tags(clients: AwsClients, arn: str) -> dict[str, str]:
    tags = clients.sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return {tag["Key"]: tag["Value"] for tag in tags}


def previous_config(clients: AwsClients, endpoint: dict) -> str | None:
    """The config the endpoint ran before its last sagebert update or rollback, if recorded."""
    return endpoint_tags(clients, endpoint["EndpointArn"]).get(PREVIOUS_CONFIG_TAG)


def remember_previous_config(clients: AwsClients, endpoint: dict, config_name: str) -> None:
    """Record ``config_name`` on the endpoint as the one to roll back to."""
    clients.sagemaker.add_tags(
        ResourceArn=endpoint["EndpointArn"], Tags=[{"Key": PREVIOUS_CONFIG_TAG, "Value": config_name}]
    )


# ---- deletion -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Teardown:
    """What ``sagebert delete`` removes: the endpoint, and optionally its configs and models."""

    endpoint: str
    configs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


def endpoint_configs(clients: AwsClients, endpoint: dict) -> list[str]:
    """The endpoint's current config and every config sagebert made for it (newest first)."""
    name = endpoint["EndpointName"]
    found = [endpoint["EndpointConfigName"]]
    paginator = clients.sagemaker.get_paginator("list_endpoint_configs")
    pages = paginator.paginate(NameContains=endpoint_resource_stem(name), SortBy="CreationTime", SortOrder="Descending")
    for page in pages:
        for summary in page["EndpointConfigs"]:
            config = summary["EndpointConfigName"]
            if config not in found and endpoint_tags(clients, summary["EndpointConfigArn"]).get(ENDPOINT_TAG) == name:
                found.append(config)
    return found


def plan_teardown(clients: AwsClients, endpoint_name: str, *, configs: bool, models: bool) -> Teardown:
    """Find what deleting ``endpoint_name`` (with its configs and/or models) would remove."""
    endpoint = clients.sagemaker.describe_endpoint(EndpointName=endpoint_name)
    config_names = endpoint_configs(clients, endpoint) if (configs or models) else []
    model_names: list[str] = []
    if models:
        for config in config_names:
            try:
                described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=config)
            except ClientError as exc:
                if _is_not_found(exc):
                    continue
                raise
            for variant in described["ProductionVariants"]:
                if variant["ModelName"] not in model_names:
                    model_names.append(variant["ModelName"])
    return Teardown(endpoint_name, tuple(config_names) if configs else (), tuple(model_names))


def _delete(call: Callable, **name) -> bool:
    """Run a delete call; False when the resource was already gone."""
    try:
        call(**name)
        return True
    except ClientError as exc:
        if _is_not_found(exc):
            return False
        raise


def delete_endpoint(clients: AwsClients, name: str) -> None:
    clients.sagemaker.delete_endpoint(EndpointName=name)


def delete_endpoint_config(clients: AwsClients, name: str) -> bool:
    return _delete(clients.sagemaker.delete_endpoint_config, EndpointConfigName=name)


def delete_model(clients: AwsClients, name: str) -> bool:
    return _delete(clients.sagemaker.delete_model, ModelName=name)


# ---- invocation -----------------------------------------------------------------------------------
def invoke_endpoint(
    clients: AwsClients, endpoint: str, body: bytes, content_type: str, target_model: str | None = None
) -> bytes:
    """InvokeEndpoint (Accept: application/json); the answer's body."""
    request = {"EndpointName": endpoint, "Body": body, "ContentType": content_type, "Accept": "application/json"}
    if target_model:
        request["TargetModel"] = target_model
    return send(clients.runtime, "InvokeEndpoint", request)["Body"].read()
