"""Shadow variants on a live endpoint: add one, promote it to production, or stop it.

Each is one new endpoint config (and, to add, one new model) and an UpdateEndpoint to it, every
request checked against the service model before the first is sent; what was created is deleted
again if a later step fails (``endpoints.Undo``). SageMaker allows one shadow variant, beside one
production variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .build.common import PREVIOUS_CONFIG_TAG
from .build.hosting import Running, VariantSpec
from .clients import AwsClients, send
from .endpoints import Created, Deleted, Event, Kept, Undo, tags_of, wait_until_visible
from .errors import error_code
from .validation import validate_request


@dataclass(frozen=True)
class Shadow:
    """The shadow variant of a live endpoint, as its config describes it, and its model."""

    variant: Mapping
    model: Mapping

    @property
    def name(self) -> str:
        return self.variant["VariantName"]

    @property
    def model_name(self) -> str:
        return self.model["ModelName"]

    def spec(self) -> VariantSpec:
        return VariantSpec.from_api(self.variant)

    @property
    def sampling_percent(self) -> int:
        return round(100 * float(self.variant.get("InitialVariantWeight", 1.0)))


def shadow_of(clients: AwsClients, current: Running) -> Shadow | None:
    """The endpoint's shadow variant (None without one) and its model."""
    variants = current.config.get("ShadowProductionVariants") or ()
    if not variants:
        return None
    model = clients.sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    return Shadow(variants[0], model)


def shadow_metrics_tags(clients: AwsClients, shadow: Shadow) -> dict[str, str]:
    return tags_of(clients, shadow.model["ModelArn"])


def validate(model: dict | None, config: dict, update: dict) -> None:
    """Every request of the change, against botocore's service model, before any is sent."""
    if model is not None:
        validate_request("CreateModel", model)
    validate_request("CreateEndpointConfig", config)
    validate_request("UpdateEndpoint", update)


def apply(
    clients: AwsClients,
    current: Running,
    model: dict | None,
    config: dict,
    update: dict,
    *,
    record_previous: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Event]:
    """CreateModel (when adding a shadow), CreateEndpointConfig, UpdateEndpoint; undone on failure.
    The config replaced is recorded on the endpoint for `sagebert rollback` (unless
    ``record_previous`` is false: a stopped shadow's config is deleted, and the endpoint keeps
    the config it ran before the shadow as the one to roll back to)."""
    validate(model, config, update)
    undo = Undo(clients)
    try:
        if model is not None:
            send(clients.sagemaker, "CreateModel", model)
            undo.created("model", model["ModelName"])
            yield Created("model", model["ModelName"])
        send(clients.sagemaker, "CreateEndpointConfig", config)
        undo.created("endpoint config", config["EndpointConfigName"])
        yield Created("endpoint config", config["EndpointConfigName"])
        wait_until_visible(clients, config["EndpointConfigName"], sleep)
        send(clients.sagemaker, "UpdateEndpoint", update)
    except Exception:
        yield from undo.run("the change could not start")
        raise
    if not record_previous:
        return
    try:
        clients.sagemaker.add_tags(
            ResourceArn=current.endpoint["EndpointArn"],
            Tags=[{"Key": PREVIOUS_CONFIG_TAG, "Value": current.config_name}],
        )
    except ClientError as exc:
        yield Kept("endpoint config", current.config_name, f"not recorded for rollback ({error_code(exc)})")


def drop(clients: AwsClients, config_name: str, model_name: str, why: str) -> Iterator[Event]:
    """Delete a stopped shadow's config and model (nothing runs them any more)."""
    for kind, name, call in (
        (
            "endpoint config",
            config_name,
            lambda: clients.sagemaker.delete_endpoint_config(EndpointConfigName=config_name),
        ),
        ("model", model_name, lambda: clients.sagemaker.delete_model(ModelName=model_name)),
    ):
        try:
            call()
            yield Deleted(kind, name, why)
        except ClientError as exc:
            yield Kept(kind, name, f"could not be deleted ({error_code(exc)}); sagebert delete --orphans removes it")
