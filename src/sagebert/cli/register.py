"""`sagebert register`: a training job's model as a new version in a model package group."""

from __future__ import annotations

from dataclasses import replace

from ..aws import jobs, registry
from ..aws.build.packages import APPROVAL_STATUSES, REALTIME_INSTANCE_TYPES, TRANSFORM_INSTANCE_TYPES, PackageSpec
from ..aws.build.training import model_artifacts
from ..aws.clients import AwsClients
from ..aws.storage import digest_of, json_bytes
from . import options
from .output import OK, say


def register(sub) -> None:
    p = sub.add_parser(
        "register",
        help="register a training job's model in the model registry (CreateModelPackage)",
        description=(
            "Add the job's model to a model package group (created if missing): the image by digest, the content "
            "and instance types the server supports, the job's metrics (ModelQuality statistics next to the "
            "model.tar.gz, and customer metadata). deploy/update --model-package ARN serve Approved packages only."
        ),
    )
    p.add_argument("--training-job", required=True, metavar="JOB")
    p.add_argument("--group", required=True, metavar="NAME", help="model package group")
    p.add_argument(
        "--approval", choices=sorted(APPROVAL_STATUSES), default="pending", help="ModelApprovalStatus (default pending)"
    )
    p.add_argument("--description", help="the package's description")
    p.add_argument(
        "--instance-type",
        action="append",
        metavar="TYPE",
        help="real-time instance type it supports, repeatable (default " + ", ".join(REALTIME_INSTANCE_TYPES) + ")",
    )
    p.add_argument(
        "--transform-instance-type",
        action="append",
        metavar="TYPE",
        help="batch transform instance type, repeatable (default " + ", ".join(TRANSFORM_INSTANCE_TYPES) + ")",
    )
    options.encryption(p, volumes=False)
    options.tags(p)
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    job = jobs.describe_training_job(clients, args.training_job)
    artifacts = model_artifacts(job)
    metrics = jobs.job_metrics(clients, job)
    image = registry.image_by_digest(clients, job["AlgorithmSpecification"]["TrainingImage"])
    document = registry.metrics_document(args.training_job, metrics.values, metrics.source)
    spec = PackageSpec(
        group=args.group,
        image=image,
        model_data=artifacts,
        training_job=args.training_job,
        metrics=metrics.values,
        metrics_uri=registry.metrics_location(artifacts).uri,
        metrics_digest=digest_of(json_bytes(document)),
        eval_data=metrics.eval_data,
        approval=args.approval,
        description=args.description,
        tags=options.tag_values(args),
        kms_key=options.encryption_spec(args).kms_key,
    )
    if args.instance_type:
        spec = replace(spec, realtime_instance_types=tuple(args.instance_type))
    if args.transform_instance_type:
        spec = replace(spec, transform_instance_types=tuple(args.transform_instance_type))
    arn, created = registry.register(clients, spec, document)
    if created:
        say(f"created model package group {args.group}")
    say(f"Registered {args.training_job} as {arn} ({APPROVAL_STATUSES[args.approval]}).")
    say(f"  image              {image.uri}")
    say(f"  model              {artifacts}")
    say(f"  metrics            {spec.metrics_uri} ({metrics.source})")
    if args.approval != "approved":
        say(
            f"Approve it after review: aws sagemaker update-model-package --model-package-arn {arn} "
            "--model-approval-status Approved"
        )
    say(f"Deploy it: sagebert deploy --model-package {arn} --role ROLE --endpoint NAME")
    return OK
