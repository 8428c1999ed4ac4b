"""``sagebert``: train, deploy, update, invoke and clean up the sagebert image on SageMaker.

Raw boto3 calls only (no SageMaker Python SDK). Every command returns an exit code: 0 on
success, 1 when AWS or the job reports a failure (one line on stderr with the fix; the traceback
only with --debug), 2 for a command line argparse rejects, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from . import __version__
from .aws import actions, requests, watch
from .aws.actions import AwsClients
from .aws.errors import translate
from .aws.invocation import CONTENT_TYPES, invocation_body, parse_predictions
from .aws.requests import CapacitySize, DeploymentPolicy, S3Location
from .aws.validation import InvalidRequestError, validate_request
from .errors import SagebertError
from .hyperparameters import describe

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
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


# ---- output -----------------------------------------------------------------------------------------
def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def fail(text: str) -> int:
    print(f"error: {text}", file=sys.stderr, flush=True)
    return 1


def duration(seconds: float | int | None) -> str:
    """``3725`` → ``1h02m05s``; ``95`` → ``1m35s``."""
    seconds = int(seconds or 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def console_url(region: str | None, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{path}"


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


# ---- upload-data ------------------------------------------------------------------------------------
def cmd_upload_data(args, clients: AwsClients) -> int:
    destination = S3Location.parse(args.destination, "destination").as_prefix()
    total, count = 0, 0
    for done in actions.upload_tree(clients, Path(args.directory), destination):
        say(f"uploaded {done.path} -> {done.uri} ({done.size:,} bytes)")
        total, count = total + done.size, count + 1
    say(f"Uploaded {count} file(s), {total:,} bytes, to {destination.uri}")
    present = actions.data_channels_present(clients, destination)
    if "training" not in present:
        warn(
            f"nothing under {destination.child('training', '').uri}: `sagebert train --data` expects "
            "the folder that holds training/ (and testing/)"
        )
    else:
        say(f"Channels: {', '.join(sorted(present))}. Next: sagebert train --data {destination.uri} ...")
    return 0


# ---- train ------------------------------------------------------------------------------------------
def _hyperparameters(args) -> dict[str, str]:
    given = {
        name: getattr(args, f"hp_{name}") for name in HYPERPARAMETER_FLAGS if getattr(args, f"hp_{name}") is not None
    }
    extra = pairs_to_dict(args.hyperparameter, "--hyperparameter")
    for name, value in extra.items():
        key = name.replace("-", "_")
        if key in given and given[key] != value:
            raise InvalidRequestError(
                f"Hyperparameter {key} is given twice (--{key.replace('_', '-')} {given[key]} "
                f"and --hyperparameter {name}={value}).",
                "Give it once.",
            )
        given[key] = value
    return requests.job_hyperparameters(given)


def _image_region_warning(image: str, region: str | None) -> None:
    parts = image.split("/", 1)[0].split(".")
    if len(parts) >= 6 and parts[1:3] == ["dkr", "ecr"] and region and parts[3] != region:
        warn(
            f"the image is in {parts[3]} but SageMaker runs in {region}: push it to {region} "
            "(SageMaker pulls images from its own region)"
        )


def _training_spec(args, clients: AwsClients) -> requests.TrainingJobSpec:
    hyperparameters = _hyperparameters(args)
    data = S3Location.parse(args.data, "--data location").as_prefix()
    pretrained = S3Location.parse(args.pretrained, "--pretrained location") if args.pretrained else None
    if pretrained is not None and not actions.has_objects(clients, pretrained.as_prefix()):
        raise InvalidRequestError(
            f"There is nothing under {pretrained.as_prefix().uri} (--pretrained).",
            "Upload the base model's files (config.json, weights, tokenizer) there first.",
        )
    output = S3Location.parse(args.output, "--output location") if args.output else data.parent().child("output", "")
    name = (
        requests.check_name("training job", args.job_name)
        if args.job_name
        else requests.unique_name(args.base_job_name)
    )
    channels = requests.channel_uris(data, actions.data_channels_present(clients, data), pretrained)
    return requests.TrainingJobSpec(
        name=name,
        image=args.image,
        role_arn=actions.role_arn(clients, args.role),
        channels=channels,
        output_path=output.as_prefix().uri,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        volume_size_gb=args.volume_size,
        hyperparameters=hyperparameters,
        max_run=args.max_run,
        spot=args.spot,
        max_wait=args.max_wait,
        checkpoint_s3=args.checkpoint_s3,
        environment=pairs_to_dict(args.env, "--env"),
        tags=pairs_to_dict(args.tag, "--tag"),
    )


def cmd_train(args, clients: AwsClients) -> int:
    spec = _training_spec(args, clients)
    request = requests.create_training_job_request(spec)
    if args.spot and not spec.checkpoint_s3:
        warn("--spot without --checkpoint-s3: an interrupted job restarts from the first epoch")
    _image_region_warning(spec.image, clients.region)
    if args.dry_run:
        validate_request("CreateTrainingJob", request)
        say(json.dumps(request, indent=2))
        return 0
    actions.create_training_job(clients, request)
    kind = "managed spot" if spec.spot else "on-demand"
    say(f"Training job {spec.name} created: {spec.instance_count} x {spec.instance_type}, {kind}.")
    for channel, uri in spec.channels.items():
        say(f"  channel {channel:<10} {uri}")
    say(f"  output             {spec.output_path}{spec.name}/output/model.tar.gz")
    if spec.checkpoint_uri():
        say(f"  checkpoints        {spec.checkpoint_uri()}")
    say(f"  console            {console_url(clients.region, 'jobs/' + spec.name)}")
    if not args.wait:
        say(f"Follow it: sagebert status --training-job {spec.name} --follow")
        return 0
    return follow_job(clients, spec.name, args.poll_interval, logs=not args.no_logs)


def _print_training_summary(job: dict) -> None:
    for metric in job.get("FinalMetricDataList", []):
        say(f"  {metric['MetricName']:<28} {metric['Value']:.4f}")
    training, billable = job.get("TrainingTimeInSeconds"), job.get("BillableTimeInSeconds")
    count = job.get("ResourceConfig", {}).get("InstanceCount", 1)
    if training:
        say(f"  training time      {training} s ({duration(training)})")
    if billable is not None:
        per_instance = f" x {count} instances = {billable * count} instance-seconds" if count > 1 else ""
        say(f"  billable time      {billable} s{per_instance}")
    saving = requests.spot_saving_percent(job)
    if saving is not None:
        say(f"  spot saving        {saving:.1f}% (billed {billable} s of {training} s trained)")
    artifacts = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if artifacts:
        say(f"  model              {artifacts}")


def follow_job(clients: AwsClients, name: str, poll_interval: float, logs: bool = True) -> int:
    """Show a training job's transitions and logs until it ends; 0 only if it Completed."""
    try:
        for event in watch.follow_training_job(clients, name, poll_interval=poll_interval, logs=logs):
            if isinstance(event, watch.StatusChange):
                say(f"==> {event.status}" + (f": {event.message}" if event.message else ""))
            elif isinstance(event, watch.LogLine):
                say(f"[{event.host}] {event.message}")
            else:
                job = event.description
    except KeyboardInterrupt:
        print(
            f"\nStopped following; the job keeps running. Follow again: sagebert status --training-job {name} "
            f"--follow; stop it: sagebert stop --training-job {name}",
            file=sys.stderr,
        )
        return 130
    status, secondary = job["TrainingJobStatus"], job.get("SecondaryStatus", "")
    if status == "Completed":
        say(f"Training job {name} Completed.")
        _print_training_summary(job)
        say(f"Next: sagebert deploy --training-job {name} --endpoint NAME")
        return 0
    _print_training_summary(job)
    why = f" ({secondary})" if secondary and secondary != status else ""
    reason = job.get("FailureReason") or "no reason given"
    return fail(f"Training job {name} {status}{why}: {reason}")


# ---- stop -------------------------------------------------------------------------------------------
def cmd_stop(args, clients: AwsClients) -> int:
    actions.stop_training_job(clients, args.training_job)
    say(f"Stopping training job {args.training_job}: SageMaker sends SIGTERM, then SIGKILL after 120 s.")
    if not args.wait:
        return 0
    try:
        for event in watch.follow_training_job(
            clients, args.training_job, poll_interval=args.poll_interval, logs=False
        ):
            if isinstance(event, watch.Finished):
                say(f"Training job {args.training_job} is {event.description['TrainingJobStatus']}.")
    except KeyboardInterrupt:
        return 130
    return 0


# ---- deploy / update / rollback ---------------------------------------------------------------------
def _await_endpoint(clients: AwsClients, args, endpoint: str, expected_config: str) -> int:
    """Wait for the endpoint to settle on ``expected_config``; 0 when it is InService on it."""
    if args.no_wait:
        say(f"Not waiting. Check it: sagebert status --endpoint {endpoint}")
        return 0
    try:
        for event in watch.wait_for_endpoint(clients, endpoint, poll_interval=args.poll_interval, timeout=args.timeout):
            if isinstance(event, watch.StatusChange):
                say(f"==> {endpoint}: {event.status} ({duration(event.elapsed)})")
            else:
                final = event.description
    except TimeoutError as exc:
        return fail(f"Stopped waiting: {exc}. It continues; check it with sagebert status --endpoint {endpoint}.")
    except KeyboardInterrupt:
        print(f"\nStopped waiting; SageMaker carries on. Check: sagebert status --endpoint {endpoint}", file=sys.stderr)
        return 130
    status, reason = final["EndpointStatus"], final.get("FailureReason") or "no reason given"
    if status != "InService":
        return fail(f"Endpoint {endpoint} is {status}: {reason}")
    if final["EndpointConfigName"] != expected_config:
        return fail(f"The update of {endpoint} was rolled back; it still runs {final['EndpointConfigName']}: {reason}")
    say(f"Endpoint {endpoint} is InService on {expected_config}.")
    say(f'Try it: sagebert invoke --endpoint {endpoint} "Just happened a terrible car crash"')
    return 0


def _show_created(events: Iterable[actions.Created]) -> None:
    for created in events:
        say(f"created {created.kind} {created.name}")


def _model_source(args, clients: AwsClients) -> tuple[str | None, str | None, str | None]:
    """(model data, image, role) from --training-job (its artifacts, image and role) or the flags."""
    if getattr(args, "training_job", None):
        job = actions.describe_training_job(clients, args.training_job)
        return (
            requests.model_artifacts(job),
            args.image or job["AlgorithmSpecification"]["TrainingImage"],
            args.role or job["RoleArn"],
        )
    return getattr(args, "model_data", None) or getattr(args, "multi_model", None), args.image, args.role


def cmd_deploy(args, clients: AwsClients) -> int:
    model_data, image, role = _model_source(args, clients)
    missing = [flag for flag, value in (("--image", image), ("--role", role)) if not value]
    if missing:
        raise InvalidRequestError(
            f"{' and '.join(missing)} needed: without --training-job there is no job to take them from.",
            "Pass " + " and ".join(f"{m} ..." for m in missing) + ".",
        )
    plan = requests.hosting_plan(
        args.endpoint,
        image=image,
        role_arn=actions.role_arn(clients, role),
        model_data=model_data,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        multi_model=bool(args.multi_model),
        environment=pairs_to_dict(args.env, "--env"),
        startup_timeout=args.startup_timeout,
        training_job=args.training_job,
        tags=pairs_to_dict(args.tag, "--tag"),
    )
    _image_region_warning(image, clients.region)
    _show_created(actions.deploy(clients, plan))
    return _await_endpoint(clients, args, args.endpoint, plan.config_name)


def _policy(args) -> DeploymentPolicy:
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
        alarms=tuple(args.alarm or ()),
    )
    if policy.traffic != "ALL_AT_ONCE" and not policy.alarms:
        warn(f"{policy.traffic} without --alarm: nothing can roll the update back automatically while it bakes")
    return policy


def _describe_policy(request: dict) -> str:
    routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    alarms = request["DeploymentConfig"].get("AutoRollbackConfiguration", {}).get("Alarms", [])
    watched = f", rolled back by {len(alarms)} alarm(s)" if alarms else ""
    return f"blue/green {routing['Type']}{watched}"


def cmd_update(args, clients: AwsClients) -> int:
    current = actions.current_deployment(clients, args.endpoint)
    actions.require_in_service(current.endpoint)
    model_data, image, role = _model_source(args, clients)
    environment = pairs_to_dict(args.env, "--env")
    if not any((model_data, image, role, environment, args.instance_type, args.instance_count)):
        raise InvalidRequestError(
            "Nothing to update.",
            "Give --training-job, --model-data, --image, --env, --instance-type or --instance-count.",
        )
    plan = requests.updated_hosting_plan(
        args.endpoint,
        current.model,
        current.variant,
        model_data=model_data,
        image=image,
        role_arn=actions.role_arn(clients, role) if role else None,
        environment=environment,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        training_job=args.training_job,
        tags=pairs_to_dict(args.tag, "--tag"),
    )
    update = requests.update_endpoint_request(args.endpoint, plan.config_name, _policy(args))
    previous = current.endpoint["EndpointConfigName"]
    _show_created(actions.start_update(clients, plan, update))
    actions.remember_previous_config(clients, current.endpoint, previous)
    say(
        f"Updating {args.endpoint} to {plan.config_name} ({_describe_policy(update)}); "
        f"{previous} and its model are kept for `sagebert rollback --endpoint {args.endpoint}`."
    )
    return _await_endpoint(clients, args, args.endpoint, plan.config_name)


def cmd_rollback(args, clients: AwsClients) -> int:
    endpoint = clients.sagemaker.describe_endpoint(EndpointName=args.endpoint)
    actions.require_in_service(endpoint)
    current = endpoint["EndpointConfigName"]
    target = args.endpoint_config or actions.previous_config(clients, endpoint)
    if not target:
        raise InvalidRequestError(
            f"No previous endpoint config is recorded for {args.endpoint}.",
            "Name the one to return to with --endpoint-config NAME.",
        )
    if target == current:
        raise InvalidRequestError(
            f"Endpoint {args.endpoint} already runs {target}.", "Name another config with --endpoint-config NAME."
        )
    clients.sagemaker.describe_endpoint_config(EndpointConfigName=target)  # it must still exist
    update = requests.update_endpoint_request(args.endpoint, target, _policy(args))
    actions.send(clients.sagemaker, "UpdateEndpoint", update)
    actions.remember_previous_config(clients, endpoint, current)
    say(f"Rolling {args.endpoint} back from {current} to {target} ({_describe_policy(update)}).")
    return _await_endpoint(clients, args, args.endpoint, target)


# ---- invoke -----------------------------------------------------------------------------------------
def _texts(args) -> list[str]:
    texts = list(args.texts)
    if args.file:
        handle = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115 - closed by the with below
        with handle:
            texts.extend(line.rstrip("\n") for line in handle if line.strip())
    return texts


def prediction_lines(texts: Sequence[str], predictions) -> list[str]:
    """One line per text: the label (padded), its probability, the text (and [truncated])."""
    width = max(len(p.label) for p in predictions)
    lines = []
    for text, prediction in zip(texts, predictions, strict=True):
        probability = f"{prediction.probability:.3f}" if prediction.probability is not None else "  -  "
        mark = "  [truncated]" if prediction.truncated else ""
        lines.append(f"{prediction.label:<{width}}  {probability}  {text}{mark}")
    return lines


def cmd_invoke(args, clients: AwsClients) -> int:
    texts = _texts(args)
    body = invocation_body(texts, CONTENT_TYPES[args.content_type])
    answer = actions.invoke_endpoint(clients, args.endpoint, body, CONTENT_TYPES[args.content_type], args.target_model)
    if args.raw:
        say(answer.decode("utf-8", "replace"))
        return 0
    for line in prediction_lines(texts, parse_predictions(answer, len(texts))):
        say(line)
    return 0


# ---- status -----------------------------------------------------------------------------------------
def _status_training_job(args, clients: AwsClients) -> int:
    if args.follow:
        return follow_job(clients, args.training_job, args.poll_interval)
    job = actions.describe_training_job(clients, args.training_job)
    say(f"Training job {job['TrainingJobName']}: {job['TrainingJobStatus']} ({job.get('SecondaryStatus', '')})")
    resources = job.get("ResourceConfig", {})
    spot = "managed spot" if job.get("EnableManagedSpotTraining") else "on-demand"
    say(f"  instances          {resources.get('InstanceCount')} x {resources.get('InstanceType')}, {spot}")
    say(f"  image              {job['AlgorithmSpecification'].get('TrainingImage')}")
    for transition in job.get("SecondaryStatusTransitions", []):
        say(f"  {transition['Status']:<18} {transition.get('StatusMessage', '')}")
    if job.get("FailureReason"):
        say(f"  failure reason     {job['FailureReason']}")
    _print_training_summary(job)
    return 0 if job["TrainingJobStatus"] in ("Completed", "InProgress", "Stopping") else 1


def _status_endpoint(args, clients: AwsClients) -> int:
    deployment = actions.current_deployment(clients, args.endpoint)
    endpoint, variant, model = deployment.endpoint, deployment.variant, deployment.model
    container = model.get("PrimaryContainer", {})
    say(f"Endpoint {endpoint['EndpointName']}: {endpoint['EndpointStatus']}")
    say(f"  config             {endpoint['EndpointConfigName']}")
    previous = actions.previous_config(clients, endpoint)
    if previous:
        say(f"  previous config    {previous} (sagebert rollback --endpoint {args.endpoint})")
    say(
        f"  variant            {variant['VariantName']}: {variant.get('InitialInstanceCount')} x "
        f"{variant.get('InstanceType')}"
    )
    say(f"  model              {model['ModelName']} ({container.get('Mode', 'SingleModel')})")
    say(f"  image              {container.get('Image')}")
    say(f"  model data         {container.get('ModelDataUrl')}")
    for name, value in sorted(container.get("Environment", {}).items()):
        say(f"  env                {name}={value}")
    if endpoint.get("FailureReason"):
        say(f"  failure reason     {endpoint['FailureReason']}")
    return 0 if endpoint["EndpointStatus"] not in ("Failed", "UpdateRollbackFailed") else 1


def cmd_status(args, clients: AwsClients) -> int:
    if args.training_job:
        return _status_training_job(args, clients)
    if args.endpoint:
        return _status_endpoint(args, clients)
    say("Endpoints:")
    for endpoint in actions.list_endpoints(clients):
        say(f"  {endpoint['EndpointName']:<40} {endpoint['EndpointStatus']}")
    say("Recent training jobs:")
    for job in actions.recent_training_jobs(clients):
        say(f"  {job['TrainingJobName']:<40} {job['TrainingJobStatus']}")
    return 0


# ---- delete -----------------------------------------------------------------------------------------
def _confirmed(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _wait_until_deleted(clients: AwsClients, endpoint: str, poll_interval: float, timeout: float) -> None:
    """Configs and models must outlive the endpoint that uses them: wait for it to go."""
    start = time.monotonic()
    while actions.find_endpoint(clients, endpoint) is not None:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"endpoint {endpoint} is still being deleted after {int(timeout)} s")
        time.sleep(poll_interval)


def cmd_delete(args, clients: AwsClients) -> int:
    teardown = actions.plan_teardown(clients, args.endpoint, configs=args.with_configs, models=args.with_models)
    say(f"To delete: endpoint {teardown.endpoint}")
    for config in teardown.configs:
        say(f"           endpoint config {config}")
    for model in teardown.models:
        say(f"           model {model}")
    if not args.yes and not _confirmed("Delete these?"):
        return fail("Nothing deleted (not confirmed; pass --yes to skip the question).")
    actions.delete_endpoint(clients, teardown.endpoint)
    say(f"deleted endpoint {teardown.endpoint}")
    if teardown.configs or teardown.models:
        try:
            _wait_until_deleted(clients, teardown.endpoint, args.poll_interval, args.timeout)
        except TimeoutError as exc:
            return fail(f"{exc}; its configs and models were kept. Run the same command again later.")
    for config in teardown.configs:
        gone = actions.delete_endpoint_config(clients, config)
        say(f"deleted endpoint config {config}" if gone else f"endpoint config {config} was already gone")
    for model in teardown.models:
        gone = actions.delete_model(clients, model)
        say(f"deleted model {model}" if gone else f"model {model} was already gone")
    return 0


# ---- the parser -------------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--region", default=default, help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--profile", default=default, help="AWS profile from ~/.aws/config")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show the traceback of an error",
    )


def _waiting(parser: argparse.ArgumentParser, *, timeout: bool = False, no_wait: bool = False) -> None:
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


def _hosting_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    parser.add_argument(
        "--image",
        help="image URI (default: the training job's image" + (")" if defaults else ", else the current model's)"),
    )
    parser.add_argument(
        "--role",
        help="execution role ARN or name (default: the training job's role"
        + (")" if defaults else ", else the current model's)"),
    )
    parser.add_argument(
        "--instance-type",
        default=DEFAULT_INSTANCE_TYPE if defaults else None,
        help=f"default {DEFAULT_INSTANCE_TYPE}" if defaults else "default: the current one",
    )
    parser.add_argument(
        "--instance-count",
        type=positive,
        default=1 if defaults else None,
        help="instances behind the endpoint" + (" (default 1)" if defaults else " (default: the current count)"),
    )
    parser.add_argument(
        "--env",
        action="append",
        type=pair,
        metavar="NAME=VALUE",
        help="container environment, repeatable (e.g. SAGEBERT_INFERENCE_PRECISION=int8, "
        "SAGEMAKER_MODEL_SERVER_WORKERS=2)",
    )
    parser.add_argument("--tag", action="append", type=pair, metavar="KEY=VALUE", help="tag, repeatable")


def _deployment_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("blue/green deployment")
    group.add_argument(
        "--traffic",
        choices=("all-at-once", "canary", "linear"),
        default="all-at-once",
        help="how traffic moves to the new fleet (default all-at-once)",
    )
    group.add_argument("--canary-size", metavar="N|P%", help="canary: instances or %% of the fleet (default 10%%)")
    group.add_argument("--linear-step", metavar="N|P%", help="linear: instances or %% per step (default 20%%)")
    group.add_argument(
        "--wait-interval",
        type=seconds,
        metavar="SECONDS",
        help="bake time between traffic shifts (default 0 all-at-once, 300 canary/linear)",
    )
    group.add_argument(
        "--termination-wait",
        type=seconds,
        default=0,
        metavar="SECONDS",
        help="keep the old fleet this long after the shift (default 0)",
    )
    group.add_argument(
        "--max-execution-timeout",
        type=seconds,
        metavar="SECONDS",
        help="give up the deployment after this long (600-28800)",
    )
    group.add_argument(
        "--alarm",
        action="append",
        metavar="NAME",
        help="CloudWatch alarm that rolls the update back when it fires, repeatable (at most 10)",
    )


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="start a training job (CreateTrainingJob)",
        description=(
            "Start a training job on the sagebert image. --data s3://B/P gives the channels training=P/training/ "
            "and, if it holds objects, testing=P/testing/."
        ),
    )
    p.add_argument("--image", required=True, help="the sagebert image URI in ECR")
    p.add_argument("--role", required=True, help="SageMaker execution role ARN (or name in this account)")
    p.add_argument("--data", required=True, metavar="S3_URI", help="folder holding training/ and testing/")
    p.add_argument("--pretrained", metavar="S3_URI", help="base model files for the pretrained channel")
    p.add_argument("--output", metavar="S3_URI", help="S3OutputPath (default: output/ next to --data)")
    p.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help=f"default {DEFAULT_INSTANCE_TYPE}")
    p.add_argument("--instance-count", type=positive, default=1, help="hosts for data-parallel training (default 1)")
    p.add_argument("--volume-size", type=positive, default=30, metavar="GB", help="ML storage volume (default 30)")
    p.add_argument("--job-name", help="exact job name (default: BASE-yyyymmdd-HHMMSS-xxxx)")
    p.add_argument("--base-job-name", default="sagebert", help="stem of generated job names (default sagebert)")
    hp = p.add_argument_group("hyperparameters (validated before sending; any of them with -H name=value)")
    helps = {name: (default, text) for name, default, text in describe()}
    for name in HYPERPARAMETER_FLAGS:
        default, text = helps[name]
        hp.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"hp_{name}",
            metavar="VALUE",
            help=f"{text} (image default: {default or 'empty'})".replace("%", "%%"),
        )
    hp.add_argument(
        "-H",
        "--hyperparameter",
        action="append",
        type=pair,
        metavar="NAME=VALUE",
        help="any hyperparameter, repeatable",
    )
    cost = p.add_argument_group("time and cost")
    cost.add_argument(
        "--max-run", type=positive, default=86400, metavar="SECONDS", help="MaxRuntimeInSeconds (default 86400)"
    )
    cost.add_argument("--spot", action="store_true", help="managed spot training")
    cost.add_argument(
        "--max-wait",
        type=positive,
        metavar="SECONDS",
        help="spot: MaxWaitTimeInSeconds, > --max-run (default 2 x --max-run)",
    )
    cost.add_argument("--checkpoint-s3", metavar="S3_URI", help="CheckpointConfig: checkpoints go to S3_URI/<job>/")
    p.add_argument("--env", action="append", type=pair, metavar="NAME=VALUE", help="container environment, repeatable")
    p.add_argument("--tag", action="append", type=pair, metavar="KEY=VALUE", help="tag, repeatable")
    p.add_argument("--wait", action="store_true", help="follow status and logs until the job ends")
    p.add_argument("--no-logs", action="store_true", help="with --wait: status only, no CloudWatch lines")
    p.add_argument("--dry-run", action="store_true", help="print the CreateTrainingJob request; send nothing")
    _waiting(p)
    p.set_defaults(handler=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    """The ``sagebert`` command line."""
    parser = argparse.ArgumentParser(prog="sagebert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"sagebert {__version__}")
    _common(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _common(common, suppress=True)
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=lambda **kw: argparse.ArgumentParser(parents=[common], **kw),
    )

    p = sub.add_parser("upload-data", help="upload a data folder (training/, testing/) to S3")
    p.add_argument("directory", metavar="LOCAL_DIR")
    p.add_argument("destination", metavar="S3_URI")
    p.set_defaults(handler=cmd_upload_data)

    _train_parser(sub)

    p = sub.add_parser("stop", help="stop a training job (StopTrainingJob)")
    p.add_argument("--training-job", required=True, metavar="JOB")
    p.add_argument("--wait", action="store_true", help="wait until it has stopped")
    _waiting(p)
    p.set_defaults(handler=cmd_stop)

    p = sub.add_parser("deploy", help="create a model, an endpoint config and an endpoint")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--training-job", metavar="JOB", help="deploy this Completed job's model")
    source.add_argument("--model-data", metavar="S3_URI", help="a model.tar.gz")
    source.add_argument("--multi-model", metavar="S3_PREFIX", help="a multi-model endpoint over this prefix")
    _hosting_options(p, defaults=True)
    p.add_argument(
        "--startup-timeout",
        type=seconds,
        metavar="SECONDS",
        help="ContainerStartupHealthCheckTimeoutInSeconds (60-3600)",
    )
    _waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=cmd_deploy)

    p = sub.add_parser("update", help="roll a new model/image out to an endpoint (blue/green)")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--training-job", metavar="JOB", help="the Completed job whose model to roll out")
    source.add_argument("--model-data", metavar="S3_URI", help="a model.tar.gz (a prefix for multi-model)")
    _hosting_options(p, defaults=False)
    _deployment_options(p)
    _waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=cmd_update)

    p = sub.add_parser("rollback", help="point an endpoint back at its previous config")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("--endpoint-config", metavar="NAME", help="the config to return to (default: the recorded one)")
    _deployment_options(p)
    _waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=cmd_rollback)

    p = sub.add_parser("invoke", help="classify texts with an endpoint")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", metavar="PATH", help="more texts, one per line ('-' = stdin)")
    p.add_argument("--content-type", choices=sorted(CONTENT_TYPES), default="json", help="request format")
    p.add_argument("--target-model", metavar="NAME.tar.gz", help="multi-model endpoints: the model to use")
    p.add_argument("--raw", action="store_true", help="print the endpoint's answer as it is")
    p.set_defaults(handler=cmd_invoke)

    p = sub.add_parser("status", help="show an endpoint, a training job, or list both")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--endpoint", metavar="NAME")
    which.add_argument("--training-job", metavar="JOB")
    p.add_argument("--follow", action="store_true", help="with --training-job: follow it until it ends")
    _waiting(p)
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("delete", help="delete an endpoint (and its configs and models)")
    p.add_argument("--endpoint", required=True, metavar="NAME")
    p.add_argument("--with-configs", action="store_true", help="also its current and previous endpoint configs")
    p.add_argument("--with-models", action="store_true", help="also the models those configs use")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _waiting(p, timeout=True)
    p.set_defaults(handler=cmd_delete)
    return parser


def main(argv: Sequence[str] | None = None, *, clients: AwsClients | None = None) -> int:
    """Run one command; return its exit code. ``clients`` replaces the boto3 clients (tests)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse already explained
        return exc.code if isinstance(exc.code, int) else 2
    clients = clients or AwsClients(region=args.region, profile=args.profile)
    try:
        return args.handler(args, clients)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except SagebertError as exc:
        if args.debug:
            traceback.print_exc()
        return fail(str(exc))
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        if args.debug:
            traceback.print_exc()
        return fail(str(translate(exc)))


if __name__ == "__main__":
    sys.exit(main())
