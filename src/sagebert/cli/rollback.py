"""`sagebert rollback`: point an endpoint back at its previous (or a named) endpoint config."""

from __future__ import annotations

from ..aws import endpoints
from ..aws.build.hosting import update_endpoint_request
from ..aws.clients import AwsClients
from ..aws.validation import InvalidRequestError, validate_request
from . import options
from .output import say, show
from .update import describe_policy, finish, scaling_plan


def register(sub) -> None:
    p = sub.add_parser("rollback", help="point an endpoint back at its previous config (blue/green)")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("--endpoint-config", metavar="NAME", help="the config to return to (default: the recorded one)")
    options.deployment(p)
    options.waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    policy = options.deployment_policy(args)
    current = endpoints.running(clients, args.endpoint)
    endpoints.require_in_service(current.endpoint, recovering=True)  # UpdateRollbackFailed: this is the way out
    target = args.endpoint_config or endpoints.previous_config(clients, current.endpoint)
    if not target:
        raise InvalidRequestError(
            f"No previous endpoint config is recorded for {args.endpoint}.",
            "Name the one to return to with --endpoint-config NAME.",
        )
    if target == current.config_name:
        raise InvalidRequestError(
            f"Endpoint {args.endpoint} already runs {target}.", "Name another config with --endpoint-config NAME."
        )
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=target)  # it must still exist
    variants = config["ProductionVariants"]
    if [v["VariantName"] for v in variants] != [current.variant["VariantName"]]:
        raise InvalidRequestError(
            f"{target} does not have the one variant {current.variant['VariantName']} that {args.endpoint} runs; "
            "a blue/green update needs the same variant name.",
            "Name a config made for this endpoint (sagebert status --endpoint NAME shows the previous one).",
        )
    scaling, remove = scaling_plan(args, current, variants[0].get("InstanceType"), None, clients)
    # The running instance count is kept (RetainAllVariantProperties), not the old config's initial one.
    update = update_endpoint_request(args.endpoint, target, policy, current.instance_count)
    validate_request("UpdateEndpoint", update)
    endpoints.check_alarms(clients, policy.alarms)
    show(endpoints.start_update(clients, current, None, update, remove_scaling=remove))
    say(f"Rolling {args.endpoint} back from {current.config_name} to {target} ({describe_policy(update)}).")
    return finish(args, clients, current, target, scaling, remove is not None).code
