"""`sagebert tune`: CreateHyperParameterTuningJob over sagebert's hyperparameters, with a live trial table."""

from __future__ import annotations

from ..aws import jobs
from ..aws.build.common import check_name, unique_name
from ..aws.build.tuning import (
    DEFAULT_RANGES,
    DEFAULT_VALUES,
    STRATEGIES,
    TUNING_NAME_MAX,
    WARM_START_TYPES,
    TuningSpec,
    create_tuning_job_request,
    parameter_ranges,
)
from ..aws.clients import AwsClients
from ..aws.gate import metric_goal
from . import options
from .output import OK, say, warn
from .progress import follow_tuning
from .training_inputs import job_warnings, training_inputs


def register(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="search hyperparameters (CreateHyperParameterTuningJob)",
        description=(
            "Run trials of sagebert training jobs over hyperparameter ranges and keep the best by an objective metric. "
            "Without --range/--values it searches " + ", ".join(DEFAULT_RANGES + DEFAULT_VALUES) + "."
        ),
    )
    options.data_location(p)
    search = p.add_argument_group("the search")
    search.add_argument(
        "--objective",
        default="eval:f1",
        metavar="METRIC",
        type=options.quality_metric,
        help="maximised (losses minimised); default eval:f1",
    )
    search.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:log]",
        help="a numeric hyperparameter's range, repeatable (e.g. learning_rate=1e-5:1e-4:log, epochs=2:4)",
    )
    search.add_argument(
        "--values",
        action="append",
        default=[],
        metavar="NAME=A,B,...",
        help="a hyperparameter's choices, repeatable (e.g. train_batch_size=16,32)",
    )
    search.add_argument("--strategy", choices=sorted(STRATEGIES), default="bayesian", help="default bayesian")
    search.add_argument("--max-jobs", type=options.positive, default=4, metavar="N", help="trials in all (default 4)")
    search.add_argument(
        "--max-parallel-jobs", type=options.positive, default=2, metavar="N", help="trials at once (default 2)"
    )
    search.add_argument("--early-stopping", action="store_true", help="stop trials that are unlikely to win (Auto)")
    search.add_argument("--min-resource", type=options.positive, metavar="EPOCHS", help="hyperband: epochs at least")
    search.add_argument("--max-resource", type=options.positive, metavar="EPOCHS", help="hyperband: epochs at most")
    search.add_argument(
        "--warm-start", action="append", default=[], metavar="TUNING_JOB", help="a parent tuning job, repeatable (<= 5)"
    )
    search.add_argument(
        "--warm-start-type", choices=sorted(WARM_START_TYPES), default="identical", help="default identical"
    )
    options.job_resources(p, trials=True)
    p.add_argument(
        "--name", help=f"tuning job name, at most {TUNING_NAME_MAX} characters (default: BASE-yyyymmdd-HHMMSS-xxxx)"
    )
    p.add_argument("--base-name", default="sagebert", help="stem of generated names (default sagebert)")
    options.hyperparameter_options(p, "fixed hyperparameters (every trial; not the tuned ones)")
    options.environment(p)
    options.network(p, training=True)
    options.encryption(p)
    options.tags(p)
    p.add_argument("--wait", action="store_true", help="show the trials as they run and end with the best job")
    options.waiting(p)
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    network, encryption = options.network_spec(args), options.encryption_spec(args)  # checked before AWS is asked
    inputs = training_inputs(args, clients)
    ranges = parameter_ranges(args.range, args.values)
    if not args.range and not args.values:
        warn("no --range/--values: searching " + ", ".join(DEFAULT_RANGES + DEFAULT_VALUES))
    name = check_name("tuning job", args.name) if args.name else unique_name(args.base_name, max_length=TUNING_NAME_MAX)
    spec = TuningSpec(
        name=name,
        image=args.image,
        role_arn=inputs.role_arn,
        channels=inputs.channels,
        output_path=inputs.output_path,
        objective_metric=args.objective,
        ranges=ranges,
        static_hyperparameters=inputs.hyperparameters,
        strategy=args.strategy,
        max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs,
        early_stopping=args.early_stopping,
        min_resource=args.min_resource,
        max_resource=args.max_resource,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        volume_size_gb=args.volume_size,
        keep_alive_s=args.keep_alive,
        max_run=args.max_run,
        spot=args.spot,
        max_wait=args.max_wait,
        checkpoint_s3=args.checkpoint_s3,
        warm_start_parents=tuple(args.warm_start),
        warm_start_type=args.warm_start_type,
        environment=inputs.environment,
        tags=inputs.tags,
        network=network,
        encryption=encryption,
    )
    request = create_tuning_job_request(spec)
    job_warnings(args, clients, "trial")
    jobs.create_tuning_job(clients, request)
    goal = metric_goal(args.objective).lower()
    say(
        f"Tuning job {name} created: {args.max_jobs} trials, {args.max_parallel_jobs} at a time, "
        f"{args.strategy}, {goal} {args.objective}."
    )
    for entries in ranges.values():
        for entry in entries:
            shown = (
                ",".join(entry["Values"])
                if "Values" in entry
                else f"{entry['MinValue']}..{entry['MaxValue']} ({entry['ScalingType']})"
            )
            say(f"  {entry['Name']:<18} {shown}")
    if spec.checkpoint_s3:
        say(f"  checkpoints        {request['TrainingJobDefinition']['CheckpointConfig']['S3Uri']}")
    if not args.wait or clients.dry_run:  # a planned job does not exist: nothing to follow
        say(f"Follow it: sagebert status --tuning-job {name} --follow")
        return OK
    return follow_tuning(clients, name, args.poll_interval)
