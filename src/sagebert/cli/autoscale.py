"""`sagebert autoscale`: Application Auto Scaling of an endpoint's instance count, on or off."""

from __future__ import annotations

from ..aws import autoscaling, endpoints
from ..aws.build.scaling import METRIC, ScalingSpec
from ..aws.clients import AwsClients
from ..aws.validation import InvalidRequestError
from . import options
from .output import OK, say


def register(sub) -> None:
    p = sub.add_parser(
        "autoscale",
        help="scale an endpoint's instances with its traffic (Application Auto Scaling)",
        description=(
            f"Keep --min..--max instances, aiming at --target-invocations per instance per minute ({METRIC}). "
            "Without --min/--max/--off it shows the current setting."
        ),
    )
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("--min", type=options.positive, metavar="N", help="instances at least (1 or more)")
    p.add_argument("--max", type=options.positive, metavar="M", help="instances at most")
    p.add_argument(
        "--target-invocations",
        type=options.number,
        metavar="T",
        help="invocations per instance per minute to aim at (measure what one instance handles first)",
    )
    p.add_argument("--scale-in-cooldown", type=options.seconds, default=300, metavar="SECONDS", help="default 300")
    p.add_argument("--scale-out-cooldown", type=options.seconds, default=60, metavar="SECONDS", help="default 60")
    p.add_argument("--off", action="store_true", help="remove the policies and deregister the endpoint")
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    setting = (args.min, args.max, args.target_invocations)
    if args.off and any(v is not None for v in setting):
        raise InvalidRequestError("--off removes autoscaling; --min/--max/--target-invocations set it.", "Give one.")
    if not args.off and any(v is not None for v in setting) and None in setting:
        raise InvalidRequestError(
            "Autoscaling needs --min, --max and --target-invocations together.",
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
    spec = ScalingSpec(args.min, args.max, args.target_invocations, args.scale_in_cooldown, args.scale_out_cooldown)
    autoscaling.apply(clients, args.endpoint, variant, spec)
    say(
        f"Autoscaling {args.endpoint}/{variant}: {spec.minimum}-{spec.maximum} instances, target "
        f"{spec.target:g} invocations per instance per minute (cooldowns: in {spec.scale_in_cooldown} s, "
        f"out {spec.scale_out_cooldown} s)."
    )
    if not spec.minimum <= (current.instance_count or 0) <= spec.maximum:
        say(f"It runs {current.instance_count} now; Application Auto Scaling moves it into the range.")
    return OK
