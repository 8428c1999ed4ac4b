"""Argument types and the option groups several commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from ..aws.build.hosting import DEFAULT_INSTANCE_TYPE, CapacitySize, DeploymentPolicy
from ..aws.validation import InvalidRequestError
from ..hyperparameters import describe
from .output import warn

# Hyperparameters that also have their own flag (any of them can be set with -H name=value).
HYPERPARAMETER_FLAGS = (
    "epochs",
    "learning_rate",
    "train_batch_size",
    "eval_batch_size",
    "max_length",
    "warmup_ratio",
    "seed",
    "processes_per_host",
    "mixed_precision",
    "model_name_or_path",
)
MAX_RUN_DEFAULT = 86400


# ---- argument types ---------------------------------------------------------------------------------
def pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` → ``(NAME, VALUE)`` (the value may contain ``=``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def whole_number(minimum: int, noun: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def number(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def non_negative_number(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


positive = whole_number(1, "a whole number")
seconds = whole_number(0, "a number of seconds")


def pairs_to_dict(items: Iterable[tuple[str, str]] | None, option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in items or ():
        if name in result and result[name] != value:
            raise InvalidRequestError(
                f"{option} {name} is given twice ({result[name]!r} and {value!r}).", f"Give {option} {name}=... once."
            )
        result[name] = value
    return result


# ---- shared option groups ---------------------------------------------------------------------------
def common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """--region, --profile and --debug, accepted before and after the command name."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--region", default=default, help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--profile", default=default, help="AWS profile from ~/.aws/config")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show the traceback of an error",
    )


def waiting(parser: argparse.ArgumentParser, *, timeout: bool = False, no_wait: bool = False) -> None:
    parser.add_argument(
        "--poll-interval", type=float, default=30, metavar="SECONDS", help="seconds between status polls (default 30)"
    )
    if timeout:
        parser.add_argument(
            "--timeout",
            type=seconds,
            default=3600,
            metavar="SECONDS",
            help="stop waiting after this long (default 3600)",
        )
    if no_wait:
        parser.add_argument("--no-wait", action="store_true", help="return once the request is accepted")


def tags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", action="append", type=pair, metavar="KEY=VALUE", help="tag, repeatable")


def environment(parser: argparse.ArgumentParser, example: str = "") -> None:
    parser.add_argument(
        "--env", action="append", type=pair, metavar="NAME=VALUE", help="container environment, repeatable" + example
    )


def model_source(parser: argparse.ArgumentParser, *, required: bool, multi_model: bool, model_data_help: str) -> None:
    """Where the model comes from: exactly one of a training job, a tuning job, a package, an archive."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--training-job", metavar="JOB", help="a Completed training job's model")
    source.add_argument("--tuning-job", metavar="NAME", help="the best training job of a tuning job")
    source.add_argument(
        "--model-package", metavar="ARN", help="an Approved model package from the registry (sagebert register)"
    )
    source.add_argument("--model-data", metavar="S3_URI", help=model_data_help)
    if multi_model:
        source.add_argument("--multi-model", metavar="S3_PREFIX", help="a multi-model endpoint over this prefix")


def hosting(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """Image, role, instances and environment of deploy (with defaults) and update (keep what runs)."""
    parser.add_argument(
        "--image",
        help="image URI (default: the training job's image" + (")" if defaults else "; update keeps the running one)"),
    )
    parser.add_argument(
        "--role",
        help="execution role ARN or name (default: the training job's role"
        + (")" if defaults else "; update keeps the running one)"),
    )
    parser.add_argument(
        "--instance-type",
        default=None,
        help=f"default {DEFAULT_INSTANCE_TYPE}" if defaults else "default: the running one",
    )
    parser.add_argument(
        "--instance-count",
        type=positive,
        default=None,
        help="instances behind the endpoint"
        + (" (default 1)" if defaults else " (default: the running CurrentInstanceCount)"),
    )
    environment(parser, " (e.g. SAGEBERT_INFERENCE_PRECISION=int8, SAGEMAKER_MODEL_SERVER_WORKERS=2)")
    data_capture(parser)
    tags(parser)


def data_capture(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data capture")
    group.add_argument(
        "--data-capture", metavar="S3_URI", help="record requests and answers (JSON, JSON Lines, CSV) under this prefix"
    )
    group.add_argument(
        "--sampling-percent",
        type=whole_number(0, "a percentage"),
        default=None,
        metavar="P",
        help="with --data-capture: the share of invocations recorded, 0-100 (default 100)",
    )


def deployment(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("blue/green deployment")
    group.add_argument(
        "--traffic",
        choices=("all-at-once", "canary", "linear"),
        default="all-at-once",
        help="how traffic moves to the new fleet (default all-at-once)",
    )
    group.add_argument(
        "--canary-size", metavar="N|P%", help="canary: instances or %% of the fleet, at most 50%% (default 10%%)"
    )
    group.add_argument("--linear-step", metavar="N|P%", help="linear: instances or %% per step, 10-50%% (default 20%%)")
    group.add_argument(
        "--wait-interval",
        type=seconds,
        metavar="SECONDS",
        help="bake time between traffic shifts, 0-3600 (default 0 all-at-once, 300 canary/linear)",
    )
    group.add_argument(
        "--termination-wait",
        type=seconds,
        default=0,
        metavar="SECONDS",
        help="keep the old fleet this long after the shift, 0-3600 (default 0)",
    )
    group.add_argument(
        "--max-execution-timeout",
        type=seconds,
        metavar="SECONDS",
        help="give up the deployment after this long (600-28800; more than the waits above)",
    )
    group.add_argument(
        "--alarm",
        action="append",
        metavar="NAME",
        help="CloudWatch alarm that rolls the update back when it fires, repeatable (at most 10; checked to exist)",
    )


def deployment_policy(args) -> DeploymentPolicy:
    """The DeploymentPolicy of --traffic, --canary-size/--linear-step, the waits and --alarm."""
    step_text = args.canary_size or args.linear_step
    if args.canary_size and args.linear_step:
        raise InvalidRequestError(
            "--canary-size and --linear-step are given together.", "Give the one that matches --traffic."
        )
    policy = DeploymentPolicy(
        traffic=args.traffic.upper().replace("-", "_"),
        step=CapacitySize.parse(step_text) if step_text else None,
        wait_interval=args.wait_interval,
        termination_wait=args.termination_wait,
        max_execution_timeout=args.max_execution_timeout,
        alarms=tuple(dict.fromkeys(args.alarm or ())),
    )
    if policy.traffic != "ALL_AT_ONCE" and not policy.alarms:
        warn(f"{policy.traffic} without --alarm: nothing can roll the update back automatically while it bakes")
    return policy


def hyperparameter_options(parser: argparse.ArgumentParser, heading: str) -> None:
    """--epochs, --learning-rate, ... and -H NAME=VALUE for any hyperparameter."""
    group = parser.add_argument_group(heading)
    helps = {name: (default, text) for name, default, text in describe()}
    for name in HYPERPARAMETER_FLAGS:
        default, text = helps[name]
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"hp_{name}",
            metavar="VALUE",
            help=f"{text} (image default: {default or 'empty'})".replace("%", "%%"),
        )
    group.add_argument(
        "-H",
        "--hyperparameter",
        action="append",
        type=pair,
        metavar="NAME=VALUE",
        help="any hyperparameter, repeatable",
    )


def given_hyperparameters(args) -> dict[str, str]:
    """The hyperparameters given by flag and by -H, each at most once."""
    given = {
        name: getattr(args, f"hp_{name}") for name in HYPERPARAMETER_FLAGS if getattr(args, f"hp_{name}") is not None
    }
    for name, value in pairs_to_dict(args.hyperparameter, "--hyperparameter").items():
        key = name.replace("-", "_")
        if key in given and given[key] != value:
            raise InvalidRequestError(
                f"Hyperparameter {key} is given twice (--{key.replace('_', '-')} {given[key]} "
                f"and --hyperparameter {name}={value}).",
                "Give it once.",
            )
        given[key] = value
    return given


def job_resources(parser: argparse.ArgumentParser, *, trials: bool) -> None:
    """Instances, time, spot and checkpoints of a training job (or of each tuning trial)."""
    each = " per trial" if trials else ""
    parser.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help=f"default {DEFAULT_INSTANCE_TYPE}")
    parser.add_argument(
        "--instance-count", type=positive, default=1, help=f"hosts for data-parallel training{each} (default 1)"
    )
    parser.add_argument("--volume-size", type=positive, default=30, metavar="GB", help="ML storage volume (default 30)")
    cost = parser.add_argument_group("time and cost")
    cost.add_argument(
        "--max-run",
        type=positive,
        default=MAX_RUN_DEFAULT,
        metavar="SECONDS",
        help=f"MaxRuntimeInSeconds{each}, at most 2419200 = 28 days (default {MAX_RUN_DEFAULT})",
    )
    cost.add_argument(
        "--keep-alive",
        type=seconds,
        metavar="SECONDS",
        help=f"KeepAlivePeriodInSeconds, 0-3600: keep the instances{each} in a warm pool this long after the job, "
        "for the next job of the same instance type and count (billed while idle; README: Warm pools)",
    )
    cost.add_argument("--spot", action="store_true", help="managed spot training")
    cost.add_argument(
        "--max-wait",
        type=positive,
        metavar="SECONDS",
        help="spot: MaxWaitTimeInSeconds, >= --max-run (default 2 x --max-run)",
    )
    cost.add_argument(
        "--checkpoint-s3",
        metavar="S3_URI",
        help="CheckpointConfig: checkpoints go to S3_URI/<job>/"
        if not trials
        else "CheckpointConfig: S3_URI/<tuning job>/",
    )


def data_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image", required=True, help="the sagebert image URI in ECR (REGISTRY/REPOSITORY[:TAG|@DIGEST])"
    )
    parser.add_argument("--role", required=True, help="SageMaker execution role ARN (or name in this account)")
    parser.add_argument("--data", required=True, metavar="S3_URI", help="folder holding training/ and testing/")
    parser.add_argument("--pretrained", metavar="S3_URI", help="base model files for the pretrained channel")
    parser.add_argument("--output", metavar="S3_URI", help="S3OutputPath (default: output/ next to --data)")


def uncompressed(parser: argparse.ArgumentParser) -> None:
    """deploy/update --uncompressed: the model's files unpacked in S3 instead of its model.tar.gz."""
    parser.add_argument(
        "--uncompressed",
        action="store_true",
        help="serve the model's files unpacked under the prefix beside its model.tar.gz (unpacked there once): "
        "ModelDataSource with CompressionType None, no download-and-untar at each instance's start; "
        "not for multi-model endpoints",
    )
