"""The model registry: model package groups, packages named by image digest, approval."""

from __future__ import annotations

from collections.abc import Mapping

from botocore.exceptions import ClientError

from .build.common import ImageReference, S3Location
from .build.packages import PackageSpec, create_model_package_group_request, create_model_package_request
from .clients import AwsClients, described, send
from .errors import AwsError, error_code, is_not_found
from .gate import metrics_from_tags
from .storage import delete_object, put_json
from .validation import InvalidRequestError, validate_request

METRICS_DOCUMENT = "sagebert-model-metrics.json"  # written next to the model.tar.gz


def group_exists(clients: AwsClients, group: str) -> bool:
    """Whether the model package group exists (listed by name: no error wording to interpret)."""
    pages = clients.sagemaker.get_paginator("list_model_package_groups").paginate(NameContains=group)
    return any(
        summary["ModelPackageGroupName"] == group for page in pages for summary in page["ModelPackageGroupSummaryList"]
    )


def ensure_group(
    clients: AwsClients, group: str, description: str | None = None, tags: Mapping[str, str] | None = None
) -> bool:
    """Create the group (with ``tags``) if it is missing; True when it was created."""
    if group_exists(clients, group):
        return False
    send(clients.sagemaker, "CreateModelPackageGroup", create_model_package_group_request(group, description, tags))
    return True


def image_by_digest(clients: AwsClients, image: str) -> ImageReference:
    """``image`` named by its digest: as given when it has one, else its ECR tag resolved (DescribeImages)."""
    reference = ImageReference.parse(image, "the training job's image")
    if reference.digest:
        return reference
    ecr = reference.ecr
    if ecr is None or not reference.tag:
        raise InvalidRequestError(
            f"The image {image} has no digest, and sagebert resolves digests only for ECR tags.",
            "Train with the image_digest_uri build_and_push.sh prints (REGISTRY/REPOSITORY@sha256:...).",
        )
    account, region = ecr
    client = clients.ecr if region == clients.region else clients.session.client("ecr", region_name=region)
    try:
        details = client.describe_images(
            registryId=account, repositoryName=reference.repository, imageIds=[{"imageTag": reference.tag}]
        )["imageDetails"]
    except ClientError as exc:
        if is_not_found(exc):
            raise AwsError(
                f"ECR has no image {image} any more, so its digest cannot be named.",
                "Register a job trained with an image that still exists, or push that tag again.",
                code=error_code(exc),
            ) from None
        raise
    return reference.by_digest(details[0]["imageDigest"])


def metrics_document(training_job: str, metrics: Mapping[str, float], source: str) -> dict:
    """The ModelQuality statistics of a package: Model Monitor's binary-classification layout
    (what SageMaker Studio shows), plus every metric under ``sagebert``."""
    shown = {
        name.split(":", 1)[1]: {"value": value}
        for name, value in metrics.items()
        if name in ("eval:accuracy", "eval:precision", "eval:recall", "eval:f1")
    }
    return {
        "version": 0.0,
        "binary_classification_metrics": shown,
        "sagebert": {"training_job": training_job, "metrics": dict(metrics), "source": source},
    }


def metrics_location(model_data: str) -> S3Location:
    """Where the metrics document of a model goes: next to its model.tar.gz."""
    return S3Location.parse(model_data, "model artifact").parent().child(METRICS_DOCUMENT)


def register(
    clients: AwsClients, spec: PackageSpec, document: dict, group_description: str | None = None
) -> tuple[str, bool]:
    """Upload the metrics document, create the group if missing, create the package version.

    The request is checked before anything is written; if a step fails, what this call wrote
    (the document, a group it created) is removed again. Returns (package ARN, group created).
    """
    request = create_model_package_request(spec)
    validate_request("CreateModelPackage", request)
    location = S3Location.parse(spec.metrics_uri)
    put_json(clients, location, document, kms_key=spec.kms_key)
    created_group = False
    try:
        created_group = ensure_group(clients, spec.group, group_description, spec.tags)
        arn = send(clients.sagemaker, "CreateModelPackage", request)["ModelPackageArn"]
    except Exception:
        delete_object(clients, location)
        if created_group:
            clients.sagemaker.delete_model_package_group(ModelPackageGroupName=spec.group)
        raise
    return arn, created_group


def describe_package(clients: AwsClients, arn: str) -> dict:
    call = lambda: clients.sagemaker.describe_model_package(ModelPackageName=arn)  # noqa: E731
    return described(
        clients, "model package", arn, "aws sagemaker list-model-packages --model-package-group-name GROUP", call
    )


def package_metrics(description: Mapping) -> dict[str, float]:
    """The final metrics a package was registered with (its customer metadata)."""
    return metrics_from_tags(description.get("CustomerMetadataProperties") or {})
