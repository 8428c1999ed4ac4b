"""`sagebert delete`: an endpoint (its autoscaling first), and the configs and models made for it."""

from __future__ import annotations

import time

from ..aws import autoscaling, endpoints
from ..aws.build.alarms import alarm_names
from ..aws.clients import AwsClients
from . import options
from .output import OK, fail, say


def register(sub) -> None:
    p = sub.add_parser(
        "delete",
        help="delete an endpoint (and the configs and models made for it)",
        description=(
            "Delete an endpoint — its autoscaling first — and, with --with-configs/--with-models, the configs and "
            "models sagebert made for it (tagged sagebert:endpoint=NAME): previous ones, and those left by a "
            "deploy or update that failed, also after the endpoint itself is gone. A config or model another "
            "endpoint runs or keeps for rollback is never deleted."
        ),
    )
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("--with-configs", action="store_true", help="also the endpoint configs made for it")
    p.add_argument("--with-models", action="store_true", help="also the models made for it (implies --with-configs)")
    p.add_argument(
        "--orphans",
        action="store_true",
        help="keep the endpoint, and what it runs and keeps for rollback; delete only the other configs and models made for it",
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    options.waiting(p, timeout=True)
    p.set_defaults(handler=run)


def _confirmed(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _wait_until_deleted(clients: AwsClients, endpoint: str, poll_interval: float, timeout: float) -> None:
    """Configs and models must outlive the endpoint that uses them: wait for it to go."""
    start = time.monotonic()
    while endpoints.find_endpoint(clients, endpoint) is not None:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"endpoint {endpoint} is still being deleted after {int(timeout)} s")
        time.sleep(poll_interval)


def run(args, clients: AwsClients) -> int:
    with_configs = args.with_configs or args.with_models or args.orphans
    teardown = endpoints.plan_teardown(clients, args.endpoint, with_configs=with_configs, orphans_only=args.orphans)
    # The rollback alarms deploy/update --alarms made go with the endpoint (also when it is gone already).
    alarms = [] if args.orphans else endpoints.existing_alarms(clients, alarm_names(args.endpoint))
    lines = []
    if teardown.endpoint:
        lines.append(f"endpoint {teardown.endpoint}")
    if teardown.scaling:
        lines.append(f"autoscaling {teardown.scaling.describe()}")
    lines += [f"alarm {alarm}" for alarm in alarms]
    lines += [f"endpoint config {config}" for config in teardown.configs]
    lines += [f"model {model}" for model in teardown.models]
    for kept in teardown.kept:
        say(f"Keeping {kept.kind} {kept.name}: {kept.why}")
    if not lines:
        say(f"Nothing to delete for {args.endpoint}.")
        return OK
    say("To delete: " + lines[0])
    for line in lines[1:]:
        say(f"           {line}")
    if not (args.yes or clients.dry_run) and not _confirmed("Delete these?"):
        return fail("Nothing deleted (not confirmed; pass --yes to skip the question).")
    if teardown.scaling:
        autoscaling.remove(clients, teardown.scaling)
        say(f"removed autoscaling of {args.endpoint}")
    if teardown.endpoint:
        endpoints.delete_endpoint(clients, teardown.endpoint)
        say(f"deleted endpoint {teardown.endpoint}")
        if (teardown.configs or teardown.models) and not clients.dry_run:  # a planned delete leaves it there
            try:
                _wait_until_deleted(clients, teardown.endpoint, args.poll_interval, args.timeout)
            except TimeoutError as exc:
                return fail(f"{exc}; its configs and models were kept. Run the same command again later.")
    endpoints.delete_alarms(clients, alarms)
    for alarm in alarms:
        say(f"deleted alarm {alarm}")
    for config in teardown.configs:
        gone = endpoints.delete_endpoint_config(clients, config)
        say(f"deleted endpoint config {config}" if gone else f"endpoint config {config} was already gone")
    for model in teardown.models:
        gone = endpoints.delete_model(clients, model)
        say(f"deleted model {model}" if gone else f"model {model} was already gone")
    return OK
