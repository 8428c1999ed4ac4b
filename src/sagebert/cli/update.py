"""`sagebert update`: roll a new model (or image, environment, instances) out to a live endpoint.

Blue/green, gated by the model's metrics when asked (--require-better; exit 3 when not better, 4
when the two cannot be compared, with nothing created), keeping what runs unless told otherwise:
the running instance count and its autoscaling, the image and role, the environment,
serverless/async/data-capture settings, and every other setting of the model and config that
CreateModel/CreateEndpointConfig accept (VPC, network isolation, KMS keys, volume size, routing...)
and their tags.
"""

from __future__ import annotations

from dataclasses import replace

from botocore.exceptions import ClientError

from ..aws import autoscaling, endpoints, sources
from ..aws.autoscaling import Scaling
from ..aws.build.common import TRAINING_JOB_TAG
from ..aws.build.gpu import inference_ami, is_gpu_instance
from ..aws.build.hosting import (
    Changes,
    ContainerSpec,
    Running,
    config_kms_key,
    hosting_plan,
    update_endpoint_request,
    updated_spec,
)
from ..aws.build.scaling import BACKLOG_METRIC, METRIC, tracked_metric
from ..aws.clients import AwsClients, role_arn
from ..aws.errors import translate
from ..aws.gate import (
    CANNOT_COMPARE,
    DEFAULT_MIN_DELTA,
    DEFAULT_SIGNIFICANCE_LEVEL,
    EVAL_DATA_TAG,
    METRIC_TAG_PREFIX,
    PROMOTE,
    decide,
    gate_table,
    metric_tags,
)
from ..aws.validation import InvalidRequestError
from . import deploy, model_source, options
from .output import NOT_BETTER, NOT_COMPARABLE, fail, say, show, warn
from .progress import Settled, await_endpoint


def register(sub) -> None:
    p = sub.add_parser(
        "update",
        help="roll a new model/image out to an endpoint (blue/green), optionally only if it is better",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--endpoint", required=True, metavar="NAME")
    options.model_source(
        p, required=False, multi_model=False, model_data_help="a model.tar.gz (a prefix for a multi-model endpoint)"
    )
    options.hosting(p, defaults=False)
    options.uncompressed(p)
    p.add_argument(
        "--keep-image",
        action="store_true",
        help="serve the new model with the running image although another image trained it",
    )
    gate = p.add_argument_group("metric gate")
    gate.add_argument(
        "--require-better",
        metavar="METRIC",
        type=options.quality_metric,
        help="roll out only if the new model's METRIC (a quality metric: eval:f1, eval:accuracy, eval:precision, "
        "eval:recall higher; eval:loss lower) beats the serving model's on the same test data; otherwise exit 3 "
        "(not better) or 4 (cannot compare: a metric or the test-data match missing) and create nothing",
    )
    gate.add_argument(
        "--min-delta",
        type=options.non_negative_number,
        default=None,
        metavar="X",
        help=f"with --require-better: by at least X (default {DEFAULT_MIN_DELTA:g}: the seed-to-seed spread of "
        "one recipe, so a retrained twin is not promoted; 0 accepts any improvement)",
    )
    gate.add_argument(
        "--require-significant",
        action="store_true",
        help="with --require-better: also refuse (exit 3) an improvement an exact McNemar test on both models' "
        "per-example test predictions cannot tell from noise (exit 4 when either model has no predictions)",
    )
    gate.add_argument(
        "--significance-level",
        type=options.probability,
        default=None,
        metavar="ALPHA",
        help=f"with --require-significant: the p-value to beat (default {DEFAULT_SIGNIFICANCE_LEVEL:g})",
    )
    gate.add_argument(
        "--force", action="store_true", help="roll out even when the gate refuses (exit 3 or 4), and say so loudly"
    )
    options.deployment(p)
    options.alarms(p)
    options.waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=run)


def choose_image(
    running: ContainerSpec, candidate: ContainerSpec | None, image: str | None, keep_image: bool
) -> tuple[str | None, str | None]:
    """(image to serve, the ``image: OLD -> NEW`` line or None). The running image is kept unless
    --image says otherwise; a new model trained by another image is refused until --image or
    --keep-image decides, before anything is created."""
    if candidate is not None and candidate.model_package:
        if image or keep_image:
            raise InvalidRequestError(
                "A model package fixes its own image (by digest).", "Drop --image/--keep-image with --model-package."
            )
        return None, None
    current = running.image
    if image:
        return image, (f"image: {current} -> {image}" if image != current else None)
    trained_by = candidate.image if candidate else None
    if keep_image or not trained_by or trained_by == current or current is None:
        return (current or trained_by), None
    raise InvalidRequestError(
        f"image: {current} -> {trained_by}: the new model was trained by another image than the one serving.",
        f"Pass --image {trained_by} to serve it with the image that trained it, or --keep-image to keep {current}.",
    )


def _carried_tags(clients: AwsClients, current: Running) -> dict[str, str]:
    """The running model's training job and metrics, for a new model made of the same artifacts."""
    tags = endpoints.tags_of(clients, current.model["ModelArn"])
    return {k: v for k, v in tags.items() if k in (TRAINING_JOB_TAG, EVAL_DATA_TAG) or k.startswith(METRIC_TAG_PREFIX)}


def _digest(digest: str | None) -> str:
    return f"{digest[:12]}..." if digest else "not recorded"


def _gate(args, clients: AwsClients, current: Running, source: sources.ModelSource) -> tuple[int | None, str | None]:
    """Compare the candidate with the serving model: (the exit code when the update must not go
    on, else None; the candidate's test-data digest, to tag on the new model)."""
    tested = args.require_significant
    level = args.significance_level if args.significance_level is not None else DEFAULT_SIGNIFICANCE_LEVEL
    label, serving, where = sources.serving_evidence(clients, current, predictions=tested)
    candidate = sources.candidate_evidence(clients, source, predictions=tested)
    min_delta = DEFAULT_MIN_DELTA if args.min_delta is None else args.min_delta
    decision = decide(args.require_better, candidate, serving, min_delta, level if tested else None)
    say(f"Metrics: serving from {where}; candidate from {source.metrics_source}.")
    for row in gate_table(
        decision.verdict, f"serving ({label})", f"candidate ({source.label})", serving.metrics, candidate.metrics
    ):
        say(row)
    say(f"Test data (sha256): serving {_digest(serving.eval_data)}, candidate {_digest(candidate.eval_data)}.")
    for note in decision.notes:
        warn(note)
    if decision.outcome == PROMOTE:
        say(f"Gate passed: {decision.reason}.")
        return None, candidate.eval_data
    if args.force:
        warn(f"--force: ROLLING OUT ANYWAY although the gate refused it ({decision.outcome}): {decision.reason}")
        return None, candidate.eval_data
    if decision.outcome == CANNOT_COMPARE:
        return fail(
            f"Cannot compare: {decision.reason}. Nothing was created; {args.endpoint} keeps serving {label}. "
            "Fix: retrain the candidate on the same testing channel with an image that records its metrics, "
            "or pass --force to roll it out without the gate.",
            NOT_COMPARABLE,
        ), None
    return fail(
        f"Not promoted: {decision.reason}. Nothing was created; {args.endpoint} keeps serving {label}. "
        "Fix: train a better model, lower --min-delta, or pass --force to roll it out anyway.",
        NOT_BETTER,
    ), None


def scaling_command(endpoint: str, scaling: Scaling) -> str:
    """The `sagebert autoscale` line that recreates ``scaling`` (when it is sagebert's kind of policy)."""
    for policy in scaling.policies:
        option = {METRIC: "--target-invocations", BACKLOG_METRIC: "--target-backlog"}.get(tracked_metric(policy))
        if option:
            return (
                f"sagebert autoscale --endpoint {endpoint} --min {scaling.minimum} --max {scaling.maximum} "
                f"{option} {policy['TargetTrackingScalingPolicyConfiguration']['TargetValue']:g}"
            )
    return f"sagebert autoscale --endpoint {endpoint} --min {scaling.minimum} --max {scaling.maximum} ..."


def scaling_plan(args, current: Running, instance_type: str | None, instance_count: int | None, clients) -> tuple:
    """(the variant's autoscaling or None, the same when the update must remove it first or None).

    Application Auto Scaling refuses an UpdateEndpoint that changes an autoscaled variant's
    instance type; its registration is removed first and put back once the update has ended
    (which needs waiting). A model or image change keeps it.
    """
    if current.variant.get("ServerlessConfig"):
        return None, None
    scaling = autoscaling.current(clients, current.name, current.variant["VariantName"])
    if scaling is None:
        return None, None
    if instance_count and not scaling.minimum <= instance_count <= scaling.maximum:
        raise InvalidRequestError(
            f"--instance-count {instance_count} is outside the autoscaling range {scaling.minimum}-{scaling.maximum} "
            f"of {current.name}; Application Auto Scaling would move it back.",
            f"Change the range first ({scaling_command(current.name, scaling)} with new --min/--max) or drop --instance-count.",
        )
    if instance_type == current.variant.get("InstanceType"):
        return scaling, None
    if args.no_wait:
        raise InvalidRequestError(
            f"{current.name} is autoscaled ({scaling.describe()}); changing its instance type means removing "
            "autoscaling for the update and registering it again after, which needs waiting.",
            "Drop --no-wait (sagebert re-registers it when the update ends), or remove autoscaling yourself first "
            f"(sagebert autoscale --endpoint {current.name} --off).",
        )
    return scaling, scaling


def describe_policy(request: dict) -> str:
    alarms = request["DeploymentConfig"].get("AutoRollbackConfiguration", {}).get("Alarms", [])
    watched = f", rolled back by {len(alarms)} alarm(s)" if alarms else ""
    rolling = request["DeploymentConfig"].get("RollingUpdatePolicy")
    if rolling:
        batch = rolling["MaximumBatchSize"]
        size = f"{batch['Value']}%" if batch["Type"] == "CAPACITY_PERCENT" else f"{batch['Value']} instance(s)"
        return f"rolling, {size} at a time, baking {rolling['WaitIntervalInSeconds']} s{watched}"
    routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    return f"blue/green {routing['Type']}{watched}"


def finish(
    args, clients: AwsClients, current: Running, expected: str, scaling: Scaling | None, removed: bool
) -> Settled:
    """Wait for the update, then make sure autoscaling is (back) in place."""
    settled = await_endpoint(clients, args, args.endpoint, expected, before=current.endpoint)
    variant = current.variant["VariantName"]
    if settled.outcome == "planned":
        if scaling is not None and removed:  # what the wait would be followed by
            autoscaling.restore(clients, scaling)
        return settled
    if settled.outcome in ("in-service", "rolled-back", "failed") and scaling is not None:
        try:
            show(endpoints.ensure_scaling(clients, args.endpoint, variant, scaling))
        except ClientError as exc:  # e.g. an endpoint left Failed cannot be registered
            warn(
                f"autoscaling could not be put back ({translate(exc)}); later: {scaling_command(args.endpoint, scaling)}"
            )
    elif scaling is not None and removed:
        warn(
            f"autoscaling was removed for the update; once {args.endpoint} is InService: {scaling_command(args.endpoint, scaling)}"
        )
    elif scaling is not None:
        say(f"autoscaling stays registered ({scaling.describe()}): the instance type is unchanged")
    return settled


def next_inference_ami(args, current: Running, variant, cuda: str) -> str | None:
    """The new variant's InferenceAmiVersion: --inference-ami-version if given; else the running
    one while it still suits the instance type and the image's CUDA line ``cuda``; else the one
    they need."""
    keep = current.variant.get("InferenceAmiVersion") if not args.instance_type else None
    if keep and not args.inference_ami_version and not is_gpu_instance(variant.instance_type):
        return keep  # what runs, on a host without a GPU: no driver to check against the image
    if args.inference_ami_version or not keep:
        return inference_ami(variant.instance_type, cuda, args.inference_ami_version)
    try:
        return inference_ami(variant.instance_type, cuda, keep)
    except InvalidRequestError:  # the running AMI's driver is too old for the image now served
        chosen = inference_ami(variant.instance_type, cuda)
        warn(f"InferenceAmiVersion {keep} -> {chosen}: its NVIDIA driver is too old for CUDA {cuda}")
        return chosen


def _check_flags(args) -> None:
    """Contradictions among the options, before anything is asked of AWS."""
    gate_only = (args.min_delta is not None, args.force, args.require_significant, args.significance_level is not None)
    if any(gate_only) and not args.require_better:
        raise InvalidRequestError(
            "--min-delta, --require-significant, --significance-level and --force go with --require-better METRIC.",
            "Add --require-better eval:f1.",
        )
    if args.significance_level is not None and not args.require_significant:
        raise InvalidRequestError("--significance-level goes with --require-significant.", "Add --require-significant.")
    if args.keep_image and args.image:
        raise InvalidRequestError("--keep-image and --image contradict each other.", "Give one of them.")


def _candidate(args, clients: AwsClients, current: Running, changes_given: bool) -> sources.ModelSource | None:
    """The new model (None: the running one, with other changes), checked against what the update asks."""
    source = model_source.from_args(args, clients)
    if source is not None and args.model_data and current.container.multi_model:
        source = replace(source, container=replace(source.container, multi_model=True))  # a prefix of archives
    if source is None and args.image and current.container.model_package:
        raise InvalidRequestError(
            f"{args.endpoint} serves model package {current.container.model_package}, whose image is fixed.",
            "Roll out a new model with its image: --training-job JOB --image IMAGE (or --model-package ARN).",
        )
    if source is None and not changes_given:
        raise InvalidRequestError(
            "Nothing to update.",
            "Give --training-job, --tuning-job, --model-package, --model-data, --image, --env, --instance-type, "
            "--instance-count, --data-capture, --routing, --inference-ami-version, --subnets/--security-groups, "
            "--network-isolation or --kms-key.",
        )
    if args.require_better and (source is None or not (source.training_job or source.metrics)):
        raise InvalidRequestError(
            "--require-better compares the metrics of a new model, and this one has none recorded.",
            "Update from --training-job, --tuning-job or --model-package, or drop --require-better.",
        )
    return source


def _container_and_tags(
    clients: AwsClients, current: Running, source: sources.ModelSource | None, image: str | None, eval_data: str | None
) -> tuple[ContainerSpec | None, dict[str, str]]:
    """The new model's container (None: the running one) and the job and metrics it records."""
    if source is None:
        container = replace(current.container, image=image) if image != current.container.image else None
        return container, _carried_tags(clients, current)
    container = replace(source.container, image=image if not source.container.model_package else None)
    tags = metric_tags(source.metrics)
    if source.training_job:
        tags[TRAINING_JOB_TAG] = source.training_job
    if eval_data or source.eval_data:
        tags[EVAL_DATA_TAG] = eval_data or source.eval_data
    return container, tags


def _network_changes(args) -> dict:
    """The VpcConfig and EnableNetworkIsolation the options set; what they leave out runs on."""
    changes: dict = {}
    vpc = options.network_spec(args).vpc_config()
    if vpc:
        changes["VpcConfig"] = vpc
    if args.network_isolation is not None:
        changes["EnableNetworkIsolation"] = args.network_isolation
    return changes


def run(args, clients: AwsClients) -> int:
    _check_flags(args)
    policy = options.deployment_policy(args)
    environment = options.pairs_to_dict(args.env, "--env")
    capture = deploy.data_capture(args)
    network, encryption = _network_changes(args), options.encryption_spec(args)
    tags = options.tag_values(args)
    current = endpoints.running(clients, args.endpoint)
    endpoints.require_in_service(current.endpoint, recovering=True)
    if current.endpoint["EndpointStatus"] == "UpdateRollbackFailed":
        warn(f"{args.endpoint} is UpdateRollbackFailed: this update is what brings it back to one config.")
    given = (
        args.image,
        args.role,
        environment,
        args.instance_type,
        args.instance_count,
        capture,
        args.routing,
        args.inference_ami_version,
        network,
        args.uncompressed,
    )
    changes_given = any(given) or bool(encryption.kms_key or encryption.volume_kms_key)
    source = _candidate(args, clients, current, changes_given)
    image, image_line = choose_image(
        current.container, source.container if source else None, args.image, args.keep_image
    )
    if image_line:
        say(image_line)
    eval_data = None
    if args.require_better:
        stop, eval_data = _gate(args, clients, current, source)
        if stop is not None:
            return stop
    container, model_tags = _container_and_tags(clients, current, source, image, eval_data)
    if args.uncompressed:
        running = container or current.container
        unpacked = deploy.uncompressed_container(clients, running)
        container = unpacked if container is not None or unpacked != running else None
    spec = updated_spec(
        current,
        Changes(
            container=container,
            role_arn=role_arn(clients, args.role) if args.role else None,
            environment=environment,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            data_capture=capture,
            routing=options.ROUTING_STRATEGIES.get(args.routing),
            model_fields=network,
            kms_key=encryption.kms_key,
            volume_kms_key=encryption.volume,
        ),
    )
    cuda = options.image_cuda(args, clients, spec.container.image, spec.variant.instance_type)
    spec = replace(
        spec, variant=replace(spec.variant, inference_ami=next_inference_ami(args, current, spec.variant, cuda))
    )
    spec.check()  # e.g. --subnets on a serverless endpoint
    volume_key = encryption.volume or (None if spec.variant.serverless else spec.config_fields.get("KmsKeyId"))
    _, key_warning = config_kms_key(spec.variant, volume_key)
    if key_warning:
        warn(key_warning)
    scaling, remove = scaling_plan(args, current, spec.variant.instance_type, args.instance_count, clients)
    # The running model's and config's own tags (cost allocation, ABAC) go on what replaces them.
    kept = {
        **endpoints.user_tags(clients, current.model["ModelArn"]),
        **endpoints.user_tags(clients, current.config["EndpointConfigArn"]),
    }
    plan = hosting_plan(args.endpoint, spec, model_tags=model_tags, tags={**kept, **tags})
    # Not DataCaptureConfig: "not currently supported" as a VariantPropertyType; the new config
    # carries --data-capture (or the running capture) itself.
    excluded = ("DesiredInstanceCount",) if args.instance_count else ()
    alarms = options.alarm_requests(args, args.endpoint, current.variant["VariantName"], {**kept, **tags})
    policy = replace(policy, alarms=tuple(dict.fromkeys(policy.alarms + tuple(a["AlarmName"] for a in alarms))))
    update = update_endpoint_request(
        args.endpoint, plan.config_name, policy, spec.variant.fleet_size, exclude_retained=excluded
    )
    endpoints.validate_plan(plan, update=update)
    show(endpoints.put_alarms(clients, alarms))
    endpoints.check_alarms(clients, policy.alarms)
    show(endpoints.start_update(clients, current, plan, update, remove_scaling=remove))
    fleet = f"{spec.variant.fleet_size} x {spec.variant.instance_type}" if spec.variant.fleet_size else "serverless"
    say(
        f"Updating {args.endpoint} to {plan.config_name} ({describe_policy(update)}, {fleet}); "
        f"{current.config_name} and its model are kept for `sagebert rollback --endpoint {args.endpoint}`."
    )
    settled = finish(args, clients, current, plan.config_name, scaling, remove is not None)
    if settled.outcome == "rolled-back":
        show(endpoints.discard(clients, plan, "SageMaker rolled the update back; nothing uses it"))
    return settled.code
