"""Argument types and the option groups several commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from .. import contract
from ..aws import registry
from ..aws.build.alarms import DEFAULT_5XX_THRESHOLD, DEFAULT_LATENCY_P99_MS, put_metric_alarm_requests
from ..aws.build.common import EncryptionSpec, NetworkSpec, check_tags
from ..aws.build.gpu import CUDA_LINES, GPU_IMAGE_CUDA, cuda_from_labels, is_gpu_instance
from ..aws.build.hosting import DEFAULT_INSTANCE_TYPE, CapacitySize, DeploymentPolicy
from ..aws.gate import quality_metric_problem
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
MAX_RUN_DEFAULT = contract.DEFAULT_MAX_RUN_SECONDS
# --routing → ProductionVariant RoutingConfig RoutingStrategy.
ROUTING_STRATEGIES = {"least-outstanding": "LEAST_OUTSTANDING_REQUESTS", "random": "RANDOM"}


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


def poll_interval(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more (0: poll without pausing)."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, got {text!r}")
    return value


def probability(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    value = number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (e.g. 0.05), got {text!r}")
    return value


def quality_metric(text: str) -> str:
    """An argparse type: a metric the gate (or a tuning objective) may compare, ``eval:*``."""
    problem = quality_metric_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


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
    parser.add_argument(
        "--region",
        default=default,
        help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's)",
    )
    parser.add_argument("--profile", default=default, help="AWS profile from ~/.aws/config")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show the traceback of an error",
    )


def planning(parser: argparse.ArgumentParser) -> None:
    """--dry-run and --json, on every command that changes something."""
    group = parser.add_argument_group("plan before changing")
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print every request that would change something, in order, and send none of them "
        "(read-only Describe/List/Get calls still go out, and are listed as read:)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help='with --dry-run: one {"operation": ..., "request": {...}} line per change on stdout, nothing else',
    )


def waiting(parser: argparse.ArgumentParser, *, timeout: bool = False, no_wait: bool = False) -> None:
    parser.add_argument(
        "--poll-interval",
        type=poll_interval,
        default=30,
        metavar="SECONDS",
        help="seconds between status polls (default 30)",
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
    parser.add_argument(
        "--tag",
        action="append",
        type=pair,
        metavar="KEY=VALUE",
        help="tag on every resource the command creates, repeatable (no aws: prefix)",
    )


def tag_values(args) -> dict[str, str]:
    """--tag KEY=VALUE..., each key once, checked against the API's Tag shape."""
    return check_tags(pairs_to_dict(args.tag, "--tag"))


def id_list(text: str) -> tuple[str, ...]:
    """An argparse type: ``ID,ID,...`` → a tuple of the non-empty IDs."""
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise argparse.ArgumentTypeError(f"expected ID,ID,..., got {text!r}")
    return ids


def network(parser: argparse.ArgumentParser, *, training: bool = False, update: bool = False) -> None:
    """--subnets/--security-groups (VpcConfig), --network-isolation and, for training,
    --inter-container-encryption. On update each one left out keeps what runs."""
    group = parser.add_argument_group("private network" + (" (default: what runs)" if update else ""))
    group.add_argument(
        "--subnets", type=id_list, metavar="ID,ID", help="VpcConfig: run in these subnets (with --security-groups)"
    )
    group.add_argument(
        "--security-groups", type=id_list, metavar="ID,ID", help="VpcConfig: with these security groups (1-5)"
    )
    group.add_argument(
        "--network-isolation",
        action=argparse.BooleanOptionalAction if update else "store_true",
        default=None if update else False,
        help="EnableNetworkIsolation: the container can make no network calls in or out",
    )
    if training:
        group.add_argument(
            "--inter-container-encryption",
            action="store_true",
            help="EnableInterContainerTrafficEncryption: encrypt traffic between training hosts",
        )


def network_spec(args) -> NetworkSpec:
    """The NetworkSpec of the network options (VpcConfig checked: both lists or neither)."""
    spec = NetworkSpec(
        subnets=args.subnets or (),
        security_groups=args.security_groups or (),
        isolation=bool(args.network_isolation),
        inter_container_encryption=getattr(args, "inter_container_encryption", False),
    )
    spec.vpc_config()
    return spec


def encryption(parser: argparse.ArgumentParser, *, volumes: bool = True) -> None:
    group = parser.add_argument_group("encryption")
    group.add_argument(
        "--kms-key",
        metavar="KEY",
        help="KMS key (ID, ARN or alias/NAME) for what is written to S3"
        + (" and, unless --volume-kms-key, the ML storage volumes" if volumes else ""),
    )
    if volumes:
        group.add_argument("--volume-kms-key", metavar="KEY", help="KMS key for the ML storage volumes")


def encryption_spec(args) -> EncryptionSpec:
    return EncryptionSpec(kms_key=args.kms_key, volume_kms_key=getattr(args, "volume_kms_key", None))


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
    parser.add_argument(
        "--routing",
        choices=sorted(ROUTING_STRATEGIES),
        help="how requests are spread over the instances: least-outstanding (to the least busy) or random "
        + ("(default: SageMaker's, random)" if defaults else "(default: the running one)"),
    )
    gpu_hosts(
        parser,
        "--inference-ami-version",
        "InferenceAmiVersion of a GPU instance type (default: the one "
        "the image's CUDA line needs, e.g. al2023-ami-sagemaker-inference-gpu-4-1 for CUDA 13)",
    )
    data_capture(parser)
    network(parser, update=not defaults)
    encryption(parser)
    tags(parser)


def gpu_hosts(parser: argparse.ArgumentParser, ami_option: str, ami_help: str) -> None:
    """The GPU host's AMI (its NVIDIA driver) and the CUDA line of the image it must run."""
    group = parser.add_argument_group("GPU hosts")
    group.add_argument(ami_option, metavar="AMI", help=ami_help)
    group.add_argument(
        "--image-cuda",
        choices=CUDA_LINES,
        help="the CUDA line the image's torch is built for, none for the CPU variant (default, on GPU instance "
        f"types: what the image's sagebert.variant label in ECR says, else {GPU_IMAGE_CUDA}, the GPU lock's)",
    )


def image_cuda(args, clients, image: str | None, instance_type: str | None) -> str:
    """The image's CUDA line: --image-cuda; else, for a GPU instance type, what the image's labels
    in ECR say; else the GPU lock's (a CPU instance type needs no AMI, whatever the line)."""
    if args.image_cuda:
        return args.image_cuda
    if not image or not is_gpu_instance(instance_type):
        return GPU_IMAGE_CUDA
    line = cuda_from_labels(registry.image_labels(clients, image))
    if line is None:
        warn(
            f"the CUDA line of {image} could not be read from its labels in ECR; taking {GPU_IMAGE_CUDA} (--image-cuda)"
        )
        return GPU_IMAGE_CUDA
    return line


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
        "--rolling",
        metavar="BATCH[:BAKE]",
        help="a rolling update instead of blue/green: BATCH instances (2) or %% of the fleet (25%%) at a time, "
        "5-50%% of it, each batch watched for BAKE seconds (default 300)",
    )
    group.add_argument(
        "--rollback-batch",
        metavar="N|P%",
        help="with --rolling: instances or %% brought back per step on a rollback (default: all at once)",
    )
    group.add_argument(
        "--alarm",
        action="append",
        metavar="NAME",
        help="CloudWatch alarm that rolls the update back when it fires, repeatable (at most 10; checked to exist)",
    )


def alarms(parser: argparse.ArgumentParser) -> None:
    """--alarms default and its thresholds (deploy creates the alarms; update also rolls back on them)."""
    group = parser.add_argument_group("rollback alarms")
    group.add_argument(
        "--alarms",
        choices=("default",),
        help="create CloudWatch alarms on the endpoint's Invocation5XXErrors and p99 ModelLatency "
        "(sagebert-<endpoint>-...); update rolls back when one fires; delete removes them",
    )
    group.add_argument(
        "--alarm-5xx-threshold",
        type=positive,
        default=DEFAULT_5XX_THRESHOLD,
        metavar="N",
        help=f"5xx answers in a minute that fire the alarm (default {DEFAULT_5XX_THRESHOLD})",
    )
    group.add_argument(
        "--alarm-latency-p99-ms",
        type=non_negative_number,
        default=DEFAULT_LATENCY_P99_MS,
        metavar="MS",
        help=f"p99 model latency, two minutes in a row, that fires the alarm (default {DEFAULT_LATENCY_P99_MS})",
    )


def alarm_requests(args, endpoint: str, variant: str, tags: dict[str, str]) -> list[dict]:
    """The PutMetricAlarm requests of --alarms default (none without it)."""
    if not args.alarms:
        return []
    return put_metric_alarm_requests(
        endpoint,
        variant,
        five_xx_threshold=args.alarm_5xx_threshold,
        latency_p99_ms=args.alarm_latency_p99_ms,
        tags=tags,
    )


def deployment_policy(args) -> DeploymentPolicy:
    """The DeploymentPolicy of --traffic, --canary-size/--linear-step, the waits and --alarm."""
    step_text = args.canary_size or args.linear_step
    if args.canary_size and args.linear_step:
        raise InvalidRequestError(
            "--canary-size and --linear-step are given together.", "Give the one that matches --traffic."
        )
    rolling, bake = rolling_batch(args.rolling)
    if bake is not None and args.wait_interval is not None:
        raise InvalidRequestError(
            f"The bake time is given twice (--rolling {args.rolling} and --wait-interval {args.wait_interval}).",
            "Give it once, as --rolling BATCH:BAKE.",
        )
    policy = DeploymentPolicy(
        traffic=args.traffic.upper().replace("-", "_"),
        step=CapacitySize.parse(step_text) if step_text else None,
        wait_interval=args.wait_interval if bake is None else bake,
        termination_wait=args.termination_wait,
        max_execution_timeout=args.max_execution_timeout,
        alarms=tuple(dict.fromkeys(args.alarm or ())),
        rolling=rolling,
        rollback_batch=CapacitySize.parse(args.rollback_batch) if args.rollback_batch else None,
    )
    if (policy.traffic != "ALL_AT_ONCE" or policy.rolling) and not policy.alarms and not getattr(args, "alarms", None):
        kind = "a rolling update" if policy.rolling else policy.traffic
        warn(f"{kind} without --alarm or --alarms: nothing can roll the update back automatically while it bakes")
    return policy


def rolling_batch(text: str | None) -> tuple[CapacitySize | None, int | None]:
    """``--rolling 25%:300`` → (25 % of the fleet, 300 s of baking); the bake time is optional."""
    if text is None:
        return None, None
    batch, sep, bake = text.partition(":")
    if not sep:
        return CapacitySize.parse(batch), None
    try:
        return CapacitySize.parse(batch), seconds(bake)
    except argparse.ArgumentTypeError:
        raise InvalidRequestError(
            f"--rolling {text}: the bake time {bake!r} is not a number of seconds.",
            "Write BATCH:SECONDS, e.g. 25%:300.",
        ) from None


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
