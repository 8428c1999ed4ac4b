"""`sagebert shadow`: test a candidate on a copy of live traffic, then promote it or stop it.

The candidate becomes the endpoint's shadow variant (ShadowProductionVariants): SageMaker sends it
a copy of --sampling-percent of the requests and captures its answers, which callers never see.
The production variant is kept exactly as it runs; data capture is on for both, so `sagebert
report` can compare them. --promote makes the shadow's model the production variant's (through
the metric gate with --require-better; exit 3 when refused); --stop removes the shadow and deletes
its model and config. --dry-run is not offered here: the general dry-run mechanism covers it.
"""

from __future__ import annotations

from dataclasses import replace

from ..aws import endpoints, sources
from ..aws import shadow as shadows
from ..aws.build import hosting
from ..aws.build.common import ENDPOINT_TAG, TRAINING_JOB_TAG, endpoint_resource_stem
from ..aws.build.hosting import (
    SHADOW_VARIANT,
    DataCaptureSpec,
    DeploymentPolicy,
    Running,
    VariantSpec,
    create_model_request,
    shadow_endpoint_config_request,
    update_endpoint_request,
)
from ..aws.clients import AwsClients
from ..aws.gate import (
    CANNOT_COMPARE,
    DEFAULT_MIN_DELTA,
    EVAL_DATA_TAG,
    PROMOTE,
    Evidence,
    decide,
    gate_table,
    metric_tags,
    metrics_from_tags,
)
from ..aws.validation import InvalidRequestError
from . import model_source, options
from .output import NOT_BETTER, NOT_COMPARABLE, fail, say, show, warn
from .progress import await_endpoint


def register(sub) -> None:
    p = sub.add_parser(
        "shadow",
        help="shadow-test a candidate on live traffic; --promote or --stop it",
        description=" ".join(__doc__.split("\n\n")[1].split()),
    )
    p.add_argument("--endpoint", required=True, metavar="NAME")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--promote", action="store_true", help="make the shadow's model the production variant's")
    action.add_argument("--stop", action="store_true", help="remove the shadow variant (its model and config too)")
    options.model_source(p, required=False, multi_model=False, model_data_help="a model.tar.gz (needs --image)")
    p.add_argument("--image", help="the shadow's image (default: the image that trained it, else production's)")
    p.add_argument(
        "--sampling-percent",
        type=options.whole_number(1, "a percentage"),
        default=None,
        metavar="P",
        help="the share of production requests copied to the shadow, 1-100 (default 100)",
    )
    p.add_argument("--instance-type", help="the shadow's instances (default: production's type)")
    p.add_argument("--instance-count", type=options.positive, help="the shadow's instance count (default 1)")
    p.add_argument(
        "--variant-name", default=SHADOW_VARIANT, help=f"the shadow variant's name (default {SHADOW_VARIANT})"
    )
    p.add_argument(
        "--data-capture",
        metavar="S3_URI",
        help="where requests and answers are captured, for an endpoint that does not capture yet",
    )
    gate = p.add_argument_group("metric gate (with --promote)")
    gate.add_argument(
        "--require-better",
        metavar="METRIC",
        type=options.quality_metric,
        help="promote only if the shadow model's METRIC (eval:f1, eval:accuracy, eval:precision, eval:recall "
        "higher; eval:loss lower) beats production's on the same test data, as `update` gates; otherwise exit 3 "
        "(not better) or 4 (cannot compare)",
    )
    gate.add_argument(
        "--min-delta",
        type=options.non_negative_number,
        default=None,
        metavar="X",
        help=f"with --require-better: by at least X (default {DEFAULT_MIN_DELTA:g}, as for update)",
    )
    options.waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=run)


def _check_flags(args) -> None:
    source_given = any((args.training_job, args.tuning_job, args.model_package, args.model_data))
    adding_only = [
        flag
        for flag, value in (
            ("--training-job/--tuning-job/--model-package/--model-data", source_given),
            ("--image", args.image),
            ("--sampling-percent", args.sampling_percent),
            ("--instance-type", args.instance_type),
            ("--instance-count", args.instance_count),
            ("--data-capture", args.data_capture),
        )
        if value
    ]
    if (args.promote or args.stop) and adding_only:
        raise InvalidRequestError(
            f"{', '.join(adding_only)} describe a new shadow; --promote and --stop act on the running one.",
            "Drop them, or stop the running shadow first and add the new one.",
        )
    if not (args.promote or args.stop) and not source_given:
        raise InvalidRequestError(
            "No candidate to shadow.",
            "Give --training-job JOB (or --tuning-job, --model-package, --model-data), or --promote / --stop.",
        )
    if (args.require_better or args.min_delta is not None) and not args.promote:
        raise InvalidRequestError("--require-better and --min-delta go with --promote.", "Add --promote.")


def _data_capture(args, current: Running) -> tuple[dict, bool]:
    """(the DataCaptureConfig to run with, whether it is new). Both variants are captured: it is
    what `sagebert report` compares."""
    running = current.config.get("DataCaptureConfig")
    if args.data_capture:
        return DataCaptureSpec(args.data_capture, 100).as_api(), True
    if running and running.get("EnableCapture", True) and running.get("InitialSamplingPercentage", 0) > 0:
        return dict(running), False
    raise InvalidRequestError(
        f"Endpoint {current.name} does not capture data, and a shadow test is read from the captured answers.",
        "Add --data-capture s3://BUCKET/capture/ (both variants are captured there).",
    )


def _names(endpoint: str) -> str:
    return hosting.unique_name(endpoint_resource_stem(endpoint))  # one name for the model and config


def _add(args, clients: AwsClients, current: Running) -> int:
    existing = shadows.shadow_of(clients, current)
    if existing is not None:
        raise InvalidRequestError(
            f"Endpoint {args.endpoint} already has shadow variant {existing.name} (model {existing.model_name}); "
            "SageMaker allows one.",
            f"Promote it (sagebert shadow --endpoint {args.endpoint} --promote) or stop it (--stop) first.",
        )
    source = model_source.from_args(args, clients)
    image = args.image or source.container.image or current.container.image
    container = replace(
        source.container,
        image=None if source.container.model_package else image,
        environment=dict(current.container.environment),
    )
    capture, _ = _data_capture(args, current)
    running = replace(_production_only(current), data_capture=capture)
    name = _names(args.endpoint)
    tags = {ENDPOINT_TAG: args.endpoint, **metric_tags(source.metrics)}
    if source.eval_data:  # what the promote gate checks: both scored on the same test data
        tags[EVAL_DATA_TAG] = source.eval_data
    if source.training_job:
        tags[TRAINING_JOB_TAG] = source.training_job
    model = create_model_request(name, container, current.model["ExecutionRoleArn"], tags)
    spec = VariantSpec(
        instance_type=args.instance_type or running.variant.instance_type,
        instance_count=args.instance_count or 1,
        name=args.variant_name,
    )
    percent = 100 if args.sampling_percent is None else args.sampling_percent
    config = shadow_endpoint_config_request(
        name, running, current.model["ModelName"], spec, name, percent, {ENDPOINT_TAG: args.endpoint}
    )
    update = update_endpoint_request(
        args.endpoint,
        name,
        DeploymentPolicy(),
        running.variant.fleet_size,
        # Not ExcludeRetainedVariantProperties DataCaptureConfig ("not currently supported" as a
        # VariantPropertyType): the new config carries the capture itself.
    )
    show(shadows.apply(clients, current, model, config, update))
    say(
        f"Shadowing {source.label} on {args.endpoint}: {percent}% of requests copied to variant {spec.name} "
        f"({spec.instance_count} x {spec.instance_type}); captured under {capture['DestinationS3Uri']}."
    )
    settled = await_endpoint(clients, args, args.endpoint, name, before=current.endpoint)
    if settled.code == 0:
        say(f"Next: sagebert report --endpoint {args.endpoint}, then --promote or --stop.")
    return settled.code


def _production_only(current: Running):
    """What runs, less its shadow variant: ``Running.spec`` carries every config field, the shadow
    included, and each step here writes the shadow itself (added, promoted or stopped)."""
    spec = current.spec()
    fields = {k: v for k, v in spec.config_fields.items() if k != "ShadowProductionVariants"}
    return replace(spec, config_fields=fields)


def _gate(args, clients: AwsClients, current: Running, shadow: shadows.Shadow) -> int | None:
    """The promote gate with `update`'s rules (aws/gate.decide): quality metrics only, both models
    scored on the same test data, at least --min-delta better; the exit code when it refuses."""
    label, serving, where = sources.serving_evidence(clients, current)
    tags = shadows.shadow_metrics_tags(clients, shadow)
    candidate = Evidence(metrics_from_tags(tags), tags.get(EVAL_DATA_TAG))
    min_delta = DEFAULT_MIN_DELTA if args.min_delta is None else args.min_delta
    decision = decide(args.require_better, candidate, serving, min_delta)
    say(f"Metrics: production from {where}; shadow from the tags of model {shadow.model_name}.")
    production, shadowed = f"production ({label})", f"shadow ({shadow.model_name})"
    for row in gate_table(decision.verdict, production, shadowed, serving.metrics, candidate.metrics):
        say(row)
    for note in decision.notes:
        warn(note)
    if decision.outcome == PROMOTE:
        say(f"Gate passed: {decision.reason}.")
        return None
    fix = f"Fix: stop it (sagebert shadow --endpoint {args.endpoint} --stop)"
    if decision.outcome == CANNOT_COMPARE:
        return fail(
            f"Cannot compare: {decision.reason}. Nothing was changed; the shadow keeps running. "
            f"{fix}, or promote without --require-better.",
            NOT_COMPARABLE,
        )
    return fail(
        f"Not promoted: {decision.reason}. Nothing was changed; the shadow keeps running. {fix} or lower --min-delta.",
        NOT_BETTER,
    )


def _promote(args, clients: AwsClients, current: Running, shadow: shadows.Shadow) -> int:
    if args.require_better:
        refused = _gate(args, clients, current, shadow)
        if refused is not None:
            return refused
    # The shadow's model on production's instances: only the model changes, so autoscaling
    # registered on the variant stays valid (an instance type change would need it removed first;
    # `sagebert update --instance-type` does that).
    promoted = _production_only(current)
    name = _names(args.endpoint)
    config = shadow_endpoint_config_request(name, promoted, shadow.model_name, tags={ENDPOINT_TAG: args.endpoint})
    update = update_endpoint_request(args.endpoint, name, DeploymentPolicy(), promoted.variant.fleet_size)
    show(shadows.apply(clients, current, None, config, update))
    say(
        f"Promoting {shadow.model_name} to production variant {promoted.variant.name} of {args.endpoint} "
        f"({promoted.variant.fleet_size} x {promoted.variant.instance_type}); the shadow config {current.config_name} "
        f"is kept for `sagebert rollback --endpoint {args.endpoint}`."
    )
    return await_endpoint(clients, args, args.endpoint, name, before=current.endpoint).code


def _stop(args, clients: AwsClients, current: Running, shadow: shadows.Shadow) -> int:
    name, production = _names(args.endpoint), _production_only(current)
    config = shadow_endpoint_config_request(
        name, production, current.model["ModelName"], tags={ENDPOINT_TAG: args.endpoint}
    )
    update = update_endpoint_request(args.endpoint, name, DeploymentPolicy(), production.variant.fleet_size)
    show(shadows.apply(clients, current, None, config, update, record_previous=False))
    say(f"Stopping shadow variant {shadow.name} of {args.endpoint}.")
    settled = await_endpoint(clients, args, args.endpoint, name, before=current.endpoint)
    if settled.outcome != "in-service":
        warn(f"the shadow's config {current.config_name} and model {shadow.model_name} are kept until it settles")
        return settled.code
    owned = endpoints.tags_of(clients, shadow.model["ModelArn"]).get(ENDPOINT_TAG) == args.endpoint
    if owned:
        show(shadows.drop(clients, current.config_name, shadow.model_name, "the shadow was stopped"))
    else:
        warn(f"kept model {shadow.model_name}: sagebert did not make it for {args.endpoint}")
    return settled.code


def run(args, clients: AwsClients) -> int:
    _check_flags(args)
    current = endpoints.running(clients, args.endpoint)
    endpoints.require_in_service(current.endpoint)
    if not (args.promote or args.stop):
        return _add(args, clients, current)
    shadow = shadows.shadow_of(clients, current)
    if shadow is None:
        raise InvalidRequestError(
            f"Endpoint {args.endpoint} has no shadow variant.",
            f"Add one: sagebert shadow --endpoint {args.endpoint} --training-job JOB.",
        )
    return _promote(args, clients, current, shadow) if args.promote else _stop(args, clients, current, shadow)
