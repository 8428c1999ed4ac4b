"""`sagebert transform`: batch-score every JSON Lines or CSV file under an S3 prefix."""

from __future__ import annotations

import math

from ..aws import endpoints, jobs
from ..aws.build.common import TRAINING_JOB_TAG, TRANSFORM_JOB_TAG, check_name, unique_name
from ..aws.build.gpu import transform_ami
from ..aws.build.hosting import create_model_request
from ..aws.build.transform import (
    CONTAINER_MAX_PAYLOAD_MB,
    FORMATS,
    TRANSFORM_BUDGET_MB,
    TransformSpec,
    create_transform_job_request,
)
from ..aws.clients import AwsClients, role_arn, send
from ..aws.endpoints import Undo
from ..aws.validation import InvalidRequestError, validate_request
from ..environment import MAX_PAYLOAD_IN_MB_ENV
from . import model_source, options
from .output import OK, say, show
from .progress import follow_transform


def register(sub) -> None:
    p = sub.add_parser(
        "transform",
        help="batch-score files in S3 (CreateTransformJob)",
        description=(
            "Score every file under --input, one answer line per input line (SplitType Line, MultiRecord), into "
            "--output as <file>.out. A model made here from a job or package is deleted when --wait sees the job end."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--training-job", metavar="JOB", help="a Completed training job's model")
    source.add_argument("--tuning-job", metavar="NAME", help="the best training job of a tuning job")
    source.add_argument("--model-package", metavar="ARN", help="an Approved model package")
    source.add_argument("--model", metavar="NAME", help="an existing SageMaker model")
    source.add_argument("--endpoint", metavar="NAME", help="the model an endpoint serves now")
    p.add_argument("--input", required=True, metavar="S3_URI", help="a file or a prefix of files to score")
    p.add_argument("--output", required=True, metavar="S3_URI", help="where the <file>.out answers go")
    p.add_argument(
        "--format", choices=sorted(FORMATS), default="jsonlines", help="input and output format (default jsonlines)"
    )
    p.add_argument(
        "--join-input",
        action="store_true",
        help="each output line carries its input record (JSON Lines: under SageMakerOutput; CSV: appended)",
    )
    p.add_argument("--role", help="execution role for a model made here (default: the training job's)")
    p.add_argument("--instance-type", default="ml.m5.xlarge", help="default ml.m5.xlarge")
    p.add_argument("--instance-count", type=options.positive, default=1, help="default 1")
    p.add_argument(
        "--max-payload-mb",
        type=options.positive,
        metavar="MB",
        help=f"MaxPayloadInMB, 1-100 (default: the model's SAGEMAKER_MAX_PAYLOAD_IN_MB, else {CONTAINER_MAX_PAYLOAD_MB})",
    )
    p.add_argument(
        "--max-concurrent-transforms",
        type=options.positive,
        metavar="N",
        help="requests in flight per instance; x MB <= 100 (default: what the container's /execution-parameters says)",
    )
    p.add_argument(
        "--invocation-timeout", type=options.positive, metavar="SECONDS", help="per request, 1-3600 (default 600)"
    )
    p.add_argument("--name", help="transform job name (default: <model source>-yyyymmdd-HHMMSS-xxxx)")
    options.gpu_hosts(
        p,
        "--transform-ami-version",
        "TransformAmiVersion of a GPU instance type: al2-ami-sagemaker-batch-gpu-470 or -535 (default: the one the "
        "image's CUDA line needs; a CUDA 13 image is refused on GPU transform hosts, whose drivers are older)",
    )
    options.environment(p)
    options.network(p)
    options.encryption(p)
    options.tags(p)
    p.add_argument("--wait", action="store_true", help="wait for the job, then list the output files")
    options.waiting(p)
    p.set_defaults(handler=run)


def _model(args, clients: AwsClients, name: str) -> tuple[str, dict | None, dict, str | None]:
    """(model name, the CreateModel request when one is made here, the model's environment, its image)."""
    network = options.network_spec(args).model_fields()
    if network and (args.model or args.endpoint):
        raise InvalidRequestError(
            "--subnets/--security-groups/--network-isolation apply to a model made here; an existing model "
            "keeps its own network settings.",
            "Drop them, or transform from --training-job/--tuning-job/--model-package.",
        )
    if args.model:
        model = clients.sagemaker.describe_model(ModelName=args.model)
        container = model.get("PrimaryContainer") or {}
        return args.model, None, container.get("Environment") or {}, container.get("Image")
    if args.endpoint:
        current = endpoints.running(clients, args.endpoint)
        return current.model["ModelName"], None, dict(current.container.environment), current.container.image
    source = model_source.from_args(args, clients)
    role = args.role or source.role
    if not role:
        raise InvalidRequestError("--role is needed for a model made from a package.", "Pass --role ROLE_ARN.")
    tags = {**options.tag_values(args), TRANSFORM_JOB_TAG: name}
    if source.training_job:
        tags[TRAINING_JOB_TAG] = source.training_job
    request = create_model_request(name, source.container, role_arn(clients, role), tags, network)
    return name, request, {}, source.container.image


def payload_from_model(model_env: dict, model_name: str) -> int:
    """MaxPayloadInMB from the model's SAGEMAKER_MAX_PAYLOAD_IN_MB (whole MB, at most what a
    transform allows); a value the container would not read either is refused with the fix."""
    text = model_env.get(MAX_PAYLOAD_IN_MB_ENV)
    if text is None or not str(text).strip():
        return CONTAINER_MAX_PAYLOAD_MB
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1:
        raise InvalidRequestError(
            f"Model {model_name} has {MAX_PAYLOAD_IN_MB_ENV}={text!r}, which is not a number of megabytes (1 or more).",
            f"Pass --max-payload-mb N (1-{TRANSFORM_BUDGET_MB}), or give the model a plain number "
            f"(e.g. {MAX_PAYLOAD_IN_MB_ENV}=12).",
        )
    # Whole megabytes, rounded down: a batch must fit what the container accepts.
    return min(int(value), TRANSFORM_BUDGET_MB)


def run(args, clients: AwsClients) -> int:
    stem = args.training_job or args.tuning_job or args.model or args.endpoint or "sagebert-transform"
    name = check_name("transform job", args.name) if args.name else unique_name(stem.rsplit("/", 1)[-1])
    model_name, model_request, model_env, image = _model(args, clients, name)
    # A GPU host whose driver cannot run the image is refused before anything is made.
    cuda = options.image_cuda(args, clients, image, args.instance_type)
    ami = transform_ami(args.instance_type, cuda, args.transform_ami_version)
    payload = args.max_payload_mb or payload_from_model(model_env, model_name)
    spec = TransformSpec(
        name=name,
        model_name=model_name,
        input=args.input,
        output=args.output,
        data_format=args.format,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        max_payload_mb=payload,
        max_concurrent_transforms=args.max_concurrent_transforms,
        join_input=args.join_input,
        invocation_timeout=args.invocation_timeout,
        environment=options.pairs_to_dict(args.env, "--env"),
        tags=options.tag_values(args),
        transform_ami=ami,
        encryption=options.encryption_spec(args),
    )
    request = create_transform_job_request(spec)
    if model_request:
        validate_request("CreateModel", model_request)
    validate_request("CreateTransformJob", request)
    undo = Undo(clients)
    try:
        if model_request:
            send(clients.sagemaker, "CreateModel", model_request)
            undo.created("model", model_name)
            say(f"created model {model_name} (for this transform job only)")
        jobs.create_transform_job(clients, request)
    except Exception:
        show(undo.run("the transform job could not be created"))
        raise
    say(
        f"Transform job {name} created: {args.instance_count} x {args.instance_type}, {args.format}, "
        f"MaxPayloadInMB {payload}, MultiRecord" + (", joined with the input" if args.join_input else "") + "."
    )
    say(f"  input              {request['TransformInput']['DataSource']['S3DataSource']['S3Uri']}")
    say(f"  output             {request['TransformOutput']['S3OutputPath']}")
    if not args.wait:
        say(f"Follow it: sagebert status --transform-job {name} --follow")
        if model_request:
            say(
                f"The model {model_name} stays until you delete it: aws sagemaker delete-model --model-name {model_name}"
            )
        return OK
    # A dry run plans what follows the wait: the model made for the job is deleted.
    code = OK if clients.dry_run else follow_transform(clients, name, args.poll_interval)
    if model_request:
        show(undo.run("made for this transform job, which has ended"))
    return code
