"""`sagebert autoscale`: Application Auto Scaling of an endpoint's instance count, on or off."""

from __future__ import annotations

from ..aws import autoscaling, endpoints
from ..aws.build.scaling import BACKLOG_METRIC, METRIC, ScalingSpec
from ..aws.clients import AwsClients
from ..aws.validation import InvalidRequestError
from . import options
from .output import OK, say


def register(sub) -> None:
    p = sub.add_parser(
        "autoscale",
        help="scale an endpoint's instances with its traffic (Application Auto Scaling)",
        description=(
            f"Keep --min..--max instances, aiming at --target-invocations per instance per minute ({METRIC}); "
            f"an asynchronous endpoint at --target-backlog queued requests per instance ({BACKLOG_METRIC}), "
            "and it may scale to --min 0. Without --min/--max/--off it shows the current setting."
        ),
    )
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument(
        "--min",
        type=options.whole_number(0, "a whole number"),
        metavar="N",
        help="instances at least (1 or more; 0 for an asynchronous endpoint: it scales in to zero when idle)",
    )
    p.add_argument("--max", type=options.positive, metavar="M", help="instances at most")
    p.add_argument(
        "--target-invocations",
        type=options.number,
        metavar="T",
        help="invocations per instance per minute to aim at (measure what one instance handles first)",
    )
    p.add_argument(
        "--target-backlog",
        type=options.number,
        metavar="B",
        help="asynchronous endpoints: queued requests per instance to aim at (e.g. 5), instead of --target-invocations",
    )
    p.add_argument("--scale-in-cooldown", type=options.seconds, default=300, metavar="SECONDS", help="default 300")
    p.add_argument("--scale-out-cooldown", type=options.seconds, default=60, metavar="SECONDS", help="default 60")
    p.add_argument("--off", action="store_true", help="remove the policies and deregister the endpoint")
    p.set_defaults(handler=run)


def _target(args, asynchronous: bool) -> float:
    """The target value: queued requests per instance for an async endpoint, else invocations."""
    if asynchronous:
        if args.target_invocations is not None:
            raise InvalidRequestError(
                f"{args.endpoint} is asynchronous: AWS scales those on the queued requests per instance "
                f"({BACKLOG_METRIC}), not on invocations.",
                f"Use --target-backlog B instead (e.g. sagebert autoscale --endpoint {args.endpoint} --min 0 --max 4 "
                "--target-backlog 5).",
            )
        return args.target_backlog
    if args.target_backlog is not None:
        raise InvalidRequestError(
            f"--target-backlog is for asynchronous endpoints; {args.endpoint} answers in real time.",
            "Use --target-invocations T.",
        )
    return args.target_invocations


def run(args, clients: AwsClients) -> int:
    target_given = args.target_invocations is not None or args.target_backlog is not None
    setting = (args.min, args.max, target_given or None)
    if args.off and any(v is not None for v in setting):
        raise InvalidRequestError(
            "--off removes autoscaling; --min/--max/--target-invocations (--target-backlog) set it.", "Give one."
        )
    if not args.off and any(v is not None for v in setting) and None in setting:
        raise InvalidRequestError(
            "Autoscaling needs --min, --max and --target-invocations (--target-backlog for async) together.",
            f"e.g. sagebert autoscale --endpoint {args.endpoint} --min 1 --max 4 --target-invocations 100",
        )
    current = endpoints.running(clients, args.endpoint)
    variant = current.variant["VariantName"]
    if current.variant.get("ServerlessConfig"):
        raise InvalidRequestError(
            f"{args.endpoint} is serverless: SageMaker scales it by itself up to its MaxConcurrency.",
            "Autoscale endpoints on instances only.",
        )
    before = autoscaling.current(clients, args.endpoint, variant)
    if args.off:
        if before is None:
            say(f"{args.endpoint} is not autoscaled; nothing to remove.")
            return OK
        autoscaling.remove(clients, before)
        say(
            f"Autoscaling of {args.endpoint} removed ({before.describe()}); it keeps {current.instance_count} instance(s)."
        )
        return OK
    if args.min is None:
        say(
            f"{args.endpoint}: {current.instance_count} instance(s); autoscaling {before.describe() if before else 'none'}"
        )
        return OK
    endpoints.require_in_service(current.endpoint)
    asynchronous = bool(current.config.get("AsyncInferenceConfig"))
    target = _target(args, asynchronous)
    spec = ScalingSpec(
        args.min, args.max, target, args.scale_in_cooldown, args.scale_out_cooldown, backlog=asynchronous
    )
    autoscaling.apply(clients, args.endpoint, variant, spec)
    aim = "queued requests per instance" if asynchronous else "invocations per instance per minute"
    say(
        f"Autoscaling {args.endpoint}/{variant}: {spec.minimum}-{spec.maximum} instances, target "
        f"{spec.target:g} {aim} (cooldowns: in {spec.scale_in_cooldown} s, out {spec.scale_out_cooldown} s)."
    )
    if asynchronous and spec.minimum == 0:
        say("At 0 instances requests wait in the queue; it scales out once the backlog passes the target.")
    if not spec.minimum <= (current.instance_count or 0) <= spec.maximum:
        say(f"It runs {current.instance_count} now; Application Auto Scaling moves it into the range.")
    return OK
