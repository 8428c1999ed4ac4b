"""`sagebert train`: CreateTrainingJob on the sagebert image, optionally followed to the end."""

from __future__ import annotations

from ..aws import jobs
from ..aws.build.common import check_name, unique_name
from ..aws.build.training import TrainingJobSpec, create_training_job_request
from ..aws.clients import AwsClients
from . import options
from .output import OK, console_url, say
from .progress import follow_job
from .training_inputs import job_warnings, training_inputs


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="start a training job (CreateTrainingJob)",
        description=(
            "Start a training job on the sagebert image. --data s3://B/P gives the channels training=P/training/ "
            "and, if it holds objects, testing=P/testing/."
        ),
    )
    options.data_location(p)
    options.job_resources(p, trials=False)
    p.add_argument("--job-name", help="exact job name (default: BASE-yyyymmdd-HHMMSS-xxxx)")
    p.add_argument("--base-job-name", default="sagebert", help="stem of generated job names (default sagebert)")
    options.hyperparameter_options(p, "hyperparameters (validated before sending; any of them with -H name=value)")
    options.environment(p)
    options.network(p, training=True)
    options.encryption(p)
    options.tags(p)
    p.add_argument("--wait", action="store_true", help="follow status and logs until the job ends")
    p.add_argument("--no-logs", action="store_true", help="with --wait: status only, no CloudWatch lines")
    options.waiting(p)
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    network, encryption = options.network_spec(args), options.encryption_spec(args)  # checked before AWS is asked
    inputs = training_inputs(args, clients)
    spec = TrainingJobSpec(
        name=check_name("training job", args.job_name) if args.job_name else unique_name(args.base_job_name),
        image=args.image,
        role_arn=inputs.role_arn,
        channels=inputs.channels,
        output_path=inputs.output_path,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        volume_size_gb=args.volume_size,
        keep_alive_s=args.keep_alive,
        hyperparameters=inputs.hyperparameters,
        max_run=args.max_run,
        spot=args.spot,
        max_wait=args.max_wait,
        checkpoint_s3=args.checkpoint_s3,
        environment=inputs.environment,
        tags=inputs.tags,
        network=network,
        encryption=encryption,
    )
    request = create_training_job_request(spec)
    job_warnings(args, clients, "job")
    jobs.create_training_job(clients, request)
    kind = "managed spot" if spec.spot else "on-demand"
    say(f"Training job {spec.name} created: {spec.instance_count} x {spec.instance_type}, {kind}.")
    for channel, uri in spec.channels.items():
        say(f"  channel {channel:<10} {uri}")
    say(f"  output             {spec.output_path}{spec.name}/output/model.tar.gz")
    if spec.checkpoint_uri():
        say(f"  checkpoints        {spec.checkpoint_uri()}")
    say(f"  console            {console_url(clients.region, 'jobs/' + spec.name)}")
    if not args.wait or clients.dry_run:  # a planned job does not exist: nothing to follow
        say(f"Follow it: sagebert status --training-job {spec.name} --follow")
        return OK
    return follow_job(clients, spec.name, args.poll_interval, logs=not args.no_logs)
