"""Endpoints: what runs, deploying, blue/green updates and rollbacks, and tearing down.

Requests come ready-made from ``build.hosting``; each is checked against the service model before
anything is created. The generators yield events (Created, Deleted, Kept, Note) for the CLI to
show. A step that fails after something was created deletes what this command created before the
error propagates; what cannot be deleted keeps its ``sagebert:endpoint`` tag (set at creation) and
``sagebert delete --endpoint NAME --orphans`` removes it later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from .. import contract
from . import autoscaling
from .autoscaling import Scaling
from .build.common import ENDPOINT_TAG, PREVIOUS_CONFIG_TAG, endpoint_resource_stem, tag_dict
from .build.hosting import HostingPlan, Running
from .clients import AwsClients, send
from .errors import AwsError, error_code, is_not_found
from .validation import InvalidRequestError, validate_request

# SageMaker reads a new endpoint config with eventual consistency: CreateEndpoint/UpdateEndpoint
# right after CreateEndpointConfig can say it does not exist.
VISIBILITY_ATTEMPTS = 10
VISIBILITY_DELAY_SECONDS = 2.0


@dataclass(frozen=True)
class Created:
    """A resource was created."""

    kind: str
    name: str


@dataclass(frozen=True)
class Deleted:
    """A resource this command (or an earlier one) made was deleted."""

    kind: str
    name: str
    why: str = ""


@dataclass(frozen=True)
class Kept:
    """A resource was left in place, and why."""

    kind: str
    name: str
    why: str


@dataclass(frozen=True)
class Note:
    """Something the user should know (autoscaling removed and restored, ...)."""

    text: str


Event = Created | Deleted | Kept | Note


# ---- reading -----------------------------------------------------------------------------------------
def find_endpoint(clients: AwsClients, name: str) -> dict | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    try:
        return clients.sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def describe_endpoint(clients: AwsClients, name: str) -> dict:
    """DescribeEndpoint; a missing endpoint is one line naming it, the region and how to list them."""
    description = find_endpoint(clients, name)
    if description is None:
        raise AwsError(
            f"There is no endpoint {name} in {clients.region or 'the configured region'}.",
            "Check the name (sagebert status lists endpoints) and the region (--region, AWS_REGION or AWS_DEFAULT_REGION); "
            f"create it with sagebert deploy --endpoint {name} ...",
            code="ValidationException",
        )
    return description


def list_endpoints(clients: AwsClients) -> list[dict]:
    endpoints: list[dict] = []
    for page in clients.sagemaker.get_paginator("list_endpoints").paginate(
        SortBy="CreationTime", SortOrder="Descending"
    ):
        endpoints.extend(page["Endpoints"])
    return endpoints


def tags_of(clients: AwsClients, arn: str) -> dict[str, str]:
    return tag_dict(clients.sagemaker.list_tags(ResourceArn=arn).get("Tags"))


def user_tags(clients: AwsClients, arn: str) -> dict[str, str]:
    """The resource's tags but sagebert's own (``sagebert:``) and AWS's (``aws:``, which no caller
    may set): the cost-allocation and access-control tags a new model or config should carry on."""
    return {
        key: value
        for key, value in tags_of(clients, arn).items()
        if not key.startswith("sagebert:") and not key.lower().startswith("aws:")
    }


def running(clients: AwsClients, endpoint: str) -> Running:
    """The endpoint, its config, the config's one variant and that variant's model."""
    description = describe_endpoint(clients, endpoint)
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=description["EndpointConfigName"])
    variants = config["ProductionVariants"]
    if len(variants) != 1:
        raise InvalidRequestError(
            f"Endpoint {endpoint} has {len(variants)} production variants; sagebert manages one-variant endpoints.",
            "Update it with the console or UpdateEndpoint directly.",
        )
    model = clients.sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    return Running(description, config, variants[0], model)


def rollback_failed_fix(name: str) -> str:
    """What ends UpdateRollbackFailed: a new UpdateEndpoint (waiting does not)."""
    return (
        f"Both the update and its automatic rollback failed, and {name} serves a mix of the old and new configs "
        "until a new UpdateEndpoint: waiting will not change it. Point it at a config that worked: "
        f"sagebert rollback --endpoint {name} (the one it ran before; --endpoint-config NAME for another), "
        f"or roll a new model out with sagebert update --endpoint {name} ..."
    )


def require_in_service(description: dict, *, recovering: bool = False) -> None:
    """Updates start only from InService (SageMaker refuses them while Creating/Updating) — or,
    ``recovering`` (update and rollback), from UpdateRollbackFailed, which only a new UpdateEndpoint ends."""
    status = description["EndpointStatus"]
    if status == "InService" or (recovering and status == "UpdateRollbackFailed"):
        return
    name = description["EndpointName"]
    if status == "Failed":
        fix = (
            f"Read why (sagebert status --endpoint {name}); a Failed endpoint cannot be updated: delete it "
            f"(sagebert delete --endpoint {name} --with-configs --with-models --yes) and deploy again."
        )
    elif status == "UpdateRollbackFailed":
        fix = rollback_failed_fix(name) + " Then retry."
    else:
        fix = f"Wait for it (sagebert status --endpoint {name}) and retry."
    raise InvalidRequestError(f"Endpoint {name} is {status}; it can only be updated when InService.", fix)


def previous_config(clients: AwsClients, endpoint: dict) -> str | None:
    """The config the endpoint ran before its last sagebert update or rollback, if recorded."""
    return tags_of(clients, endpoint["EndpointArn"]).get(PREVIOUS_CONFIG_TAG)


def put_alarms(clients: AwsClients, requests: list[dict]) -> Iterator[Event]:
    """PutMetricAlarm each request (it creates the alarm, or replaces one of that name)."""
    for request in requests:
        validate_request("PutMetricAlarm", request, "cloudwatch")
    for request in requests:
        send(clients.cloudwatch, "PutMetricAlarm", request)
        yield Created("alarm", request["AlarmName"])


def existing_alarms(clients: AwsClients, names: tuple[str, ...]) -> list[str]:
    """Those of the metric alarms ``names`` that exist, in that order."""
    found = {alarm["AlarmName"] for alarm in clients.cloudwatch.describe_alarms(AlarmNames=list(names))["MetricAlarms"]}
    return [name for name in names if name in found]


def delete_alarms(clients: AwsClients, names: list[str]) -> None:
    if names:
        clients.cloudwatch.delete_alarms(AlarmNames=names)


def check_alarms(clients: AwsClients, names: tuple[str, ...]) -> None:
    """Every auto-rollback alarm must exist: SageMaker watches alarms by name in this region."""
    if not names:
        return
    answer = clients.cloudwatch.describe_alarms(AlarmNames=list(names))
    found = {alarm["AlarmName"] for kind in ("MetricAlarms", "CompositeAlarms") for alarm in answer.get(kind, ())}
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidRequestError(
            f"CloudWatch alarm(s) {', '.join(missing)} do not exist in {clients.region}; SageMaker could not roll "
            "the update back on them.",
            "Create them first (aws cloudwatch put-metric-alarm ...) or correct --alarm.",
        )


# ---- creating, with undo -----------------------------------------------------------------------------
class Undo:
    """What one command created (or removed), to put back in reverse order if a later step fails."""

    def __init__(self, clients: AwsClients):
        self._clients = clients
        self._steps: list[tuple[str, str, Callable[[], None]]] = []

    def created(self, kind: str, name: str) -> None:
        delete = {
            "model": lambda: self._clients.sagemaker.delete_model(ModelName=name),
            "endpoint config": lambda: self._clients.sagemaker.delete_endpoint_config(EndpointConfigName=name),
        }[kind]
        self._steps.append((kind, name, delete))

    def removed_scaling(self, scaling: Scaling) -> None:
        self._steps.append(
            ("autoscaling", scaling.target["ResourceId"], lambda: autoscaling.restore(self._clients, scaling))
        )

    def run(self, why: str) -> Iterator[Event]:
        """Undo every step, newest first; a step that fails is reported, and the rest still run."""
        for kind, name, step in reversed(self._steps):
            try:
                step()
            except ClientError as exc:
                if kind == "autoscaling":
                    yield Kept(
                        kind,
                        name,
                        f"could not be registered again ({error_code(exc)}): re-apply it with sagebert autoscale",
                    )
                else:
                    endpoint_hint = "sagebert delete --endpoint ENDPOINT --orphans"
                    yield Kept(
                        kind,
                        name,
                        f"could not be deleted ({error_code(exc)}); it is tagged {ENDPOINT_TAG}, so {endpoint_hint} removes it",
                    )
                continue
            yield Note(f"autoscaling of {name} registered again") if kind == "autoscaling" else Deleted(kind, name, why)
        self._steps.clear()


def _wait_until_visible(clients: AwsClients, config_name: str, sleep: Callable[[float], None]) -> None:
    if clients.dry_run:  # a planned config is never there to see
        return
    for attempt in range(VISIBILITY_ATTEMPTS):
        try:
            clients.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            return
        except ClientError as exc:
            if not is_not_found(exc) or attempt == VISIBILITY_ATTEMPTS - 1:
                raise
            sleep(VISIBILITY_DELAY_SECONDS)


wait_until_visible = _wait_until_visible  # for the other modules that create configs (shadow)


def validate_plan(plan: HostingPlan, *, update: dict | None = None) -> None:
    """Check every request of a deployment before the first one is sent."""
    for variant in plan.endpoint_config.get("ProductionVariants", ()):
        if variant.get("AcceleratorType"):
            raise InvalidRequestError(
                f"The endpoint config would attach an Elastic Inference accelerator ({variant['AcceleratorType']}); "
                "AWS has closed Elastic Inference and SageMaker no longer accepts AcceleratorType.",
                "Serve on a GPU instance type instead (e.g. --instance-type ml.g5.xlarge) or on CPU.",
            )
    validate_request("CreateModel", plan.model)
    validate_request("CreateEndpointConfig", plan.endpoint_config)
    if update is None:
        validate_request("CreateEndpoint", plan.endpoint)
    else:
        validate_request("UpdateEndpoint", update)


def _create_model_and_config(
    clients: AwsClients, plan: HostingPlan, undo: Undo, sleep: Callable[[float], None]
) -> Iterator[Event]:
    send(clients.sagemaker, "CreateModel", plan.model)
    undo.created("model", plan.model_name)
    yield Created("model", plan.model_name)
    send(clients.sagemaker, "CreateEndpointConfig", plan.endpoint_config)
    undo.created("endpoint config", plan.config_name)
    yield Created("endpoint config", plan.config_name)
    _wait_until_visible(clients, plan.config_name, sleep)


def deploy(clients: AwsClients, plan: HostingPlan, sleep: Callable[[float], None] = time.sleep) -> Iterator[Event]:
    """Model → endpoint config → endpoint; refuses to touch an endpoint that already exists.

    If CreateEndpointConfig or CreateEndpoint fails (a quota, a rejected value), the model and
    config made here are deleted before the error propagates.
    """
    validate_plan(plan)
    existing = find_endpoint(clients, plan.endpoint_name)
    if existing is not None:
        raise InvalidRequestError(
            f"Endpoint {plan.endpoint_name} already exists ({existing['EndpointStatus']}).",
            f"Roll out a new model with `sagebert update --endpoint {plan.endpoint_name} ...`, or choose another name.",
        )
    undo = Undo(clients)
    try:
        yield from _create_model_and_config(clients, plan, undo, sleep)
        send(clients.sagemaker, "CreateEndpoint", plan.endpoint)
    except BaseException:  # Ctrl-C too: nothing half-made is left behind
        yield from undo.run("a later step failed")
        raise
    yield Created("endpoint", plan.endpoint_name)


def start_update(
    clients: AwsClients,
    current: Running,
    plan: HostingPlan | None,
    update_request: dict,
    *,
    remove_scaling: Scaling | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Event]:
    """A new model and config (``plan``; None for a rollback to an existing config), autoscaling
    removed when the update changes an autoscaled variant's instance type, then UpdateEndpoint,
    and the config it replaced recorded for `rollback`. Everything done here is undone if a step
    fails (or Ctrl-C interrupts) before UpdateEndpoint is accepted."""
    undo = Undo(clients)
    target = update_request["EndpointConfigName"]
    sending = False
    try:
        if plan is not None:
            yield from _create_model_and_config(clients, plan, undo, sleep)
        if remove_scaling is not None:
            autoscaling.remove(clients, remove_scaling)
            undo.removed_scaling(remove_scaling)
            yield Note(
                f"autoscaling ({remove_scaling.describe()}) removed for the instance type change; "
                "it is registered again once the update ends"
            )
        sending = True
        send(clients.sagemaker, "UpdateEndpoint", update_request)
    except KeyboardInterrupt:
        # Interrupted during UpdateEndpoint itself, SageMaker may have accepted it: then the new
        # config and model are what the endpoint is moving to, and must stay.
        if sending and _moving_to(clients, current.name, target):
            removed = (
                f"; autoscaling ({remove_scaling.describe()}) was removed for it: register it again once "
                f"{current.name} is InService (sagebert autoscale --endpoint {current.name} ...)"
                if remove_scaling is not None
                else ""
            )
            yield Note(f"interrupted, but SageMaker had accepted the update to {target}: it goes on{removed}")
        else:
            yield from undo.run("interrupted before the update started")
        raise
    except Exception:
        yield from undo.run("the update could not start")
        raise
    try:  # the update is under way: a tag that cannot be written must not stop the waiting
        clients.sagemaker.add_tags(
            ResourceArn=current.endpoint["EndpointArn"],
            Tags=[{"Key": PREVIOUS_CONFIG_TAG, "Value": current.config_name}],
        )
    except ClientError as exc:
        yield Kept(
            "endpoint config",
            current.config_name,
            f"not recorded for rollback ({error_code(exc)}); roll back with --endpoint-config {current.config_name}",
        )


def _moving_to(clients: AwsClients, endpoint: str, config: str) -> bool:
    """Whether ``endpoint`` runs ``config`` or is being updated to it (PendingDeploymentSummary)."""
    described = find_endpoint(clients, endpoint) or {}
    pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    return config in (described.get("EndpointConfigName"), pending)


def discard(clients: AwsClients, plan: HostingPlan, why: str) -> Iterator[Event]:
    """Delete the config and model of an update SageMaker rolled back (nothing uses them)."""
    for kind, name, call in (
        (
            "endpoint config",
            plan.config_name,
            lambda: clients.sagemaker.delete_endpoint_config(EndpointConfigName=plan.config_name),
        ),
        ("model", plan.model_name, lambda: clients.sagemaker.delete_model(ModelName=plan.model_name)),
    ):
        try:
            call()
            yield Deleted(kind, name, why)
        except ClientError as exc:
            yield Kept(
                kind,
                name,
                f"could not be deleted ({error_code(exc)}); sagebert delete --endpoint ... --orphans removes it",
            )


def ensure_scaling(clients: AwsClients, endpoint: str, variant: str, before: Scaling | None) -> Iterator[Event]:
    """After an update: put back the autoscaling the variant had, if SageMaker dropped it."""
    if before is None:
        return
    if autoscaling.current(clients, endpoint, variant) is not None:
        yield Note(f"autoscaling kept: {before.describe()}")
        return
    autoscaling.restore(clients, before)
    yield Note(f"autoscaling registered again: {before.describe()}")


# ---- tearing down -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Teardown:
    """What ``sagebert delete`` removes, and what it keeps and why."""

    endpoint: str | None
    scaling: Scaling | None = None
    configs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    kept: tuple[Kept, ...] = field(default_factory=tuple)


def _tagged_for(clients: AwsClients, kind: str, endpoint: str) -> list[str]:
    """Names of the endpoint configs or models (``kind``) named after ``endpoint`` and tagged for it."""
    lister, key, field_name = {
        "endpoint config": ("list_endpoint_configs", "EndpointConfigs", "EndpointConfig"),
        "model": ("list_models", "Models", "Model"),
    }[kind]
    found = []
    pages = clients.sagemaker.get_paginator(lister).paginate(NameContains=endpoint_resource_stem(endpoint))
    for page in pages:
        for summary in page[key]:
            if tags_of(clients, summary[f"{field_name}Arn"]).get(ENDPOINT_TAG) == endpoint:
                found.append(summary[f"{field_name}Name"])
    return found


def _models_of(clients: AwsClients, config: str) -> list[str]:
    try:
        described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=config)
    except ClientError as exc:
        if is_not_found(exc):
            return []
        raise
    return [variant["ModelName"] for variant in described["ProductionVariants"]]


def configs_of(clients: AwsClients, description: dict) -> list[str]:
    """The configs a described endpoint runs, is moving to (DescribeEndpoint's
    PendingDeploymentSummary, present while it is Creating or Updating to a new config) and keeps
    for rollback — none of them may be deleted."""
    configs = [description["EndpointConfigName"]]
    pending = (description.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if pending:
        configs.append(pending)
    previous = tags_of(clients, description["EndpointArn"]).get(PREVIOUS_CONFIG_TAG)
    if previous:
        configs.append(previous)
    return configs


def _configs_in_use(clients: AwsClients, skip: str | None) -> dict[str, str]:
    """config → the endpoint that runs it, is moving to it or keeps it for rollback (every endpoint but ``skip``)."""
    in_use: dict[str, str] = {}
    for summary in list_endpoints(clients):
        name = summary["EndpointName"]
        if name == skip:
            continue
        description = find_endpoint(clients, name)
        if description is None:
            continue
        for config in configs_of(clients, description):
            in_use.setdefault(config, name)
    return in_use


def plan_teardown(clients: AwsClients, endpoint: str, *, with_configs: bool, orphans_only: bool = False) -> Teardown:
    """Find what deleting ``endpoint`` (and, ``with_configs``, its configs and models) removes.

    Only configs and models tagged ``sagebert:endpoint=<endpoint>`` are candidates — including
    orphans of a deploy or update that failed, and those left after the endpoint itself is gone —
    and none that another endpoint runs or keeps for rollback. ``orphans_only`` keeps the endpoint
    and what it runs and keeps for rollback, and removes the rest.
    """
    description = find_endpoint(clients, endpoint)
    if description is None and not with_configs:
        raise AwsError(
            f"There is no endpoint {endpoint} in {clients.region or 'the configured region'}.",
            f"To remove configs and models left from it: sagebert delete --endpoint {endpoint} --with-configs "
            "--with-models.",
            code="ValidationException",
        )
    deleting_endpoint = description is not None and not orphans_only
    scaling = None
    if deleting_endpoint:
        variants = description.get("ProductionVariants") or [{}]
        variant = variants[0].get("VariantName")
        scaling = autoscaling.current(clients, endpoint, variant) if variant else None
    if not with_configs:
        return Teardown(endpoint if deleting_endpoint else None, scaling)
    in_use = _configs_in_use(clients, skip=endpoint if deleting_endpoint else None)
    if description is not None and not deleting_endpoint:
        for config in configs_of(clients, description):
            in_use[config] = endpoint
    kept: list[Kept] = []
    candidates = _tagged_for(clients, "endpoint config", endpoint)
    if description is not None and deleting_endpoint and description["EndpointConfigName"] not in candidates:
        kept.append(Kept("endpoint config", description["EndpointConfigName"], f"not made by sagebert for {endpoint}"))
    configs = []
    for config in candidates:
        if config in in_use:
            kept.append(
                Kept(
                    "endpoint config",
                    config,
                    f"endpoint {in_use[config]} runs it, is moving to it or keeps it for rollback",
                )
            )
        else:
            configs.append(config)
    used_models = {model: config for config in in_use for model in _models_of(clients, config)}
    models = []
    tagged_models = _tagged_for(clients, "model", endpoint)
    for model in dict.fromkeys([m for c in configs for m in _models_of(clients, c)] + tagged_models):
        if model in used_models:
            kept.append(Kept("model", model, f"endpoint config {used_models[model]} still uses it"))
        elif model in tagged_models:
            models.append(model)
        else:
            kept.append(Kept("model", model, f"not made by sagebert for {endpoint}"))
    return Teardown(endpoint if deleting_endpoint else None, scaling, tuple(configs), tuple(models), tuple(kept))


def _delete(call: Callable, **name) -> bool:
    """Run a delete call; False when the resource was already gone."""
    try:
        call(**name)
        return True
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise


def delete_endpoint(clients: AwsClients, name: str) -> None:
    clients.sagemaker.delete_endpoint(EndpointName=name)


def delete_endpoint_config(clients: AwsClients, name: str) -> bool:
    return _delete(clients.sagemaker.delete_endpoint_config, EndpointConfigName=name)


def delete_model(clients: AwsClients, name: str) -> bool:
    return _delete(clients.sagemaker.delete_model, ModelName=name)


# ---- invoking ------------------------------------------------------------------------------------------
def invoke_endpoint(
    clients: AwsClients,
    endpoint: str,
    body: bytes,
    content_type: str,
    target_model: str | None = None,
    inference_id: str | None = None,
) -> bytes:
    """InvokeEndpoint (Accept: application/json); the answer's body. ``inference_id`` is recorded
    in the data capture (eventMetadata.inferenceId), so a request can be found there again."""
    request = {"EndpointName": endpoint, "Body": body, "ContentType": content_type, "Accept": contract.JSON}
    if target_model:
        request["TargetModel"] = target_model
    if inference_id:
        request["InferenceId"] = inference_id
    return send(clients.runtime, "InvokeEndpoint", request)["Body"].read()


def invoke_endpoint_async(
    clients: AwsClients, endpoint: str, input_location: str, content_type: str, inference_id: str | None = None
) -> dict:
    """InvokeEndpointAsync on an object already in S3; the answer names where the result will be."""
    request = {
        "EndpointName": endpoint,
        "InputLocation": input_location,
        "ContentType": content_type,
        # The answer in the request's own format where the server writes it (JSON Lines, CSV), else JSON.
        "Accept": content_type if content_type in (contract.JSONLINES, contract.CSV) else contract.JSON,
    }
    if inference_id:
        request["InferenceId"] = inference_id
    return send(clients.runtime, "InvokeEndpointAsync", request)
