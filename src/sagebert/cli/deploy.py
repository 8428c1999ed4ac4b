"""`sagebert deploy`: a model, an endpoint config and an endpoint — on instances, serverless or async."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from ..aws import endpoints, storage
from ..aws.build.common import image_region_warning
from ..aws.build.gpu import inference_ami
from ..aws.build.hosting import (
    DEFAULT_INSTANCE_TYPE,
    AsyncSpec,
    ContainerSpec,
    DataCaptureSpec,
    HostingSpec,
    ServerlessSpec,
    VariantSpec,
    check_kind,
    check_uncompressed,
    config_kms_key,
    hosting_plan,
)
from ..aws.clients import AwsClients, role_arn
from ..aws.gate import EVAL_DATA_TAG, metric_tags
from ..aws.validation import InvalidRequestError
from . import model_source, options
from .output import say, show, warn
from .progress import await_endpoint


def register(sub) -> None:
    p = sub.add_parser(
        "deploy",
        help="create a model, an endpoint config and an endpoint",
        description="Deploy a model to a new endpoint: real-time on instances (default), --serverless or --async.",
    )
    p.add_argument("--endpoint", required=True, metavar="NAME")
    options.model_source(
        p, required=True, multi_model=True, model_data_help="a model.tar.gz (needs --image and --role)"
    )
    options.hosting(p, defaults=True)
    kind = p.add_argument_group("endpoint kind (default: real-time on instances)")
    kind.add_argument(
        "--serverless",
        metavar="MEMORY_MB:MAX_CONCURRENCY[:PROVISIONED]",
        help="serverless: 1024-6144 MB in 1024 steps, 1-200 concurrent invocations, optional kept-warm ones",
    )
    kind.add_argument(
        "--async", dest="async_output", metavar="S3_URI", help="asynchronous: answers go under this prefix"
    )
    kind.add_argument("--async-failure", metavar="S3_URI", help="async: failed invocations' errors go here")
    kind.add_argument("--sns-success", metavar="TOPIC_ARN", help="async: announce each answer on this SNS topic")
    kind.add_argument("--sns-error", metavar="TOPIC_ARN", help="async: announce each failure on this SNS topic")
    kind.add_argument(
        "--async-concurrency",
        type=options.positive,
        metavar="N",
        help="async: MaxConcurrentInvocationsPerInstance, 1-1000 (default: SageMaker's)",
    )
    p.add_argument(
        "--startup-timeout",
        type=options.seconds,
        metavar="SECONDS",
        help="ContainerStartupHealthCheckTimeoutInSeconds (60-3600)",
    )
    options.alarms(p)
    options.uncompressed(p)
    options.waiting(p, timeout=True, no_wait=True)
    p.set_defaults(handler=run)


def uncompressed_container(clients: AwsClients, container: ContainerSpec) -> ContainerSpec:
    """``container`` served from its model.tar.gz's files unpacked beside it in S3 (unpacked there
    now unless an earlier call already did it for this archive)."""
    if container.uncompressed:
        return container
    if container.model_package:
        raise InvalidRequestError(
            "--uncompressed unpacks a model.tar.gz; a model package names its own model data.",
            "Drop --uncompressed, or deploy from --training-job JOB or --model-data s3://.../model.tar.gz.",
        )
    check_uncompressed(container.multi_model)
    with tempfile.TemporaryDirectory(prefix="sagebert-unpack-") as scratch:
        unpacked = storage.unpack_model_archive(clients, container.model_data or "", Path(scratch))
    done = "unpacked" if unpacked.uploaded else "already unpacked"
    say(f"model data {done}: {unpacked.files} files, {unpacked.size / 1e6:.1f} MB under {unpacked.prefix}")
    return replace(container, model_data=unpacked.prefix, uncompressed=True)


def _variant(args) -> VariantSpec:
    if args.serverless:
        given = [
            flag
            for flag, value in (("--instance-type", args.instance_type), ("--instance-count", args.instance_count))
            if value
        ]
        if given:
            raise InvalidRequestError(
                f"{' and '.join(given)} do not apply to a serverless endpoint (it has no instances).",
                "Drop them, or drop --serverless.",
            )
        return VariantSpec(
            instance_type=None,
            serverless=ServerlessSpec.parse(args.serverless),
            startup_timeout=args.startup_timeout,
            routing=options.ROUTING_STRATEGIES.get(args.routing),
        )
    return VariantSpec(
        instance_type=args.instance_type or DEFAULT_INSTANCE_TYPE,
        instance_count=args.instance_count or 1,
        startup_timeout=args.startup_timeout,
        routing=options.ROUTING_STRATEGIES.get(args.routing),
    )


def _async(args) -> dict | None:
    extras = [
        flag
        for flag, value in (
            ("--async-failure", args.async_failure),
            ("--sns-success", args.sns_success),
            ("--sns-error", args.sns_error),
            ("--async-concurrency", args.async_concurrency),
        )
        if value
    ]
    if not args.async_output:
        if extras:
            raise InvalidRequestError(
                f"{', '.join(extras)} only apply with --async S3_URI.", "Add --async, or drop them."
            )
        return None
    return AsyncSpec(
        output=args.async_output,
        failure=args.async_failure,
        success_topic=args.sns_success,
        error_topic=args.sns_error,
        max_concurrent_invocations=args.async_concurrency,
        kms_key=args.kms_key,
    ).as_api()


def data_capture(args) -> dict | None:
    """DataCaptureConfig from --data-capture/--sampling-percent, or None."""
    if not args.data_capture:
        if args.sampling_percent is not None:
            raise InvalidRequestError(
                "--sampling-percent only applies with --data-capture S3_URI.", "Add --data-capture."
            )
        return None
    percent = 100 if args.sampling_percent is None else args.sampling_percent
    return DataCaptureSpec(args.data_capture, percent, args.kms_key).as_api()


def run(args, clients: AwsClients) -> int:
    # Everything local is checked before the first call to AWS.
    encryption, model_fields = options.encryption_spec(args), options.network_spec(args).model_fields()
    variant, async_config, capture = _variant(args), _async(args), data_capture(args)
    check_kind(variant, async_config, capture, bool(args.multi_model), model_fields)
    if args.uncompressed:
        check_uncompressed(bool(args.multi_model))
    config_fields, key_warning = config_kms_key(variant, encryption.volume)
    environment, tags = options.pairs_to_dict(args.env, "--env"), options.tag_values(args)
    source = model_source.from_args(args, clients)
    packaged = bool(source.container.model_package)
    if packaged and args.image:
        raise InvalidRequestError("A model package fixes its own image (by digest).", "Drop --image.")
    image = None if packaged else args.image or source.container.image
    role = args.role or source.role
    missing = [flag for flag, value in (("--image", image or packaged), ("--role", role)) if not value]
    if missing:
        raise InvalidRequestError(
            f"{' and '.join(missing)} needed: without --training-job there is no job to take them from.",
            "Pass " + " and ".join(f"{m} ..." for m in missing) + ".",
        )
    cuda = options.image_cuda(args, clients, image, variant.instance_type)
    variant = replace(variant, inference_ami=inference_ami(variant.instance_type, cuda, args.inference_ami_version))
    container = replace(source.container, image=image, environment=environment)
    if args.uncompressed:
        container = uncompressed_container(clients, container)
    spec = HostingSpec(
        container=container,
        role_arn=role_arn(clients, role),
        variant=variant,
        async_config=async_config,
        data_capture=capture,
        model_fields=model_fields,
        config_fields=config_fields,
    )
    plan = hosting_plan(
        args.endpoint,
        spec,
        training_job=source.training_job,
        # The test-data digest too, when metrics.json was read: a later gated update compares on it.
        model_tags={**metric_tags(source.metrics), **({EVAL_DATA_TAG: source.eval_data} if source.eval_data else {})},
        tags=tags,
    )
    region_warning = image_region_warning(image, clients.region) if image else None
    for warning in (region_warning, key_warning):
        if warning:
            warn(warning)
    alarms = options.alarm_requests(args, args.endpoint, variant.name, tags)
    show(endpoints.deploy(clients, plan))
    show(endpoints.put_alarms(clients, alarms))
    if source.metrics:
        recorded = ", ".join(f"{name}={value:.4f}" for name, value in sorted(source.metrics.items()))
        say(f"model metrics recorded ({source.metrics_source}): {recorded}")
    return await_endpoint(clients, args, args.endpoint, plan.config_name).code
