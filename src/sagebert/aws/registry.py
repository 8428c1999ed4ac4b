"""The model registry: model package groups, packages named by image digest, approval."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from .build.common import ImageReference, S3Location
from .build.packages import PackageSpec, create_model_package_group_request, create_model_package_request
from .clients import AwsClients, described, send
from .errors import AwsError, error_code, is_not_found
from .gate import metrics_from_tags
from .storage import delete_object, put_json
from .validation import InvalidRequestError, validate_request

METRICS_DOCUMENT = "sagebert-model-metrics.json"  # written next to the model.tar.gz
# What BatchGetImage may answer with: one image's manifest, or an index of several platforms' ones.
IMAGE_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


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


def image_labels(clients: AwsClients, image: str) -> dict[str, str] | None:
    """The labels of an ECR image (its config's ``Labels``): BatchGetImage for the manifest (the
    linux/amd64 one of an index, what SageMaker runs), GetDownloadUrlForLayer for the config blob,
    then the blob itself. None when the image is not in ECR or any step is refused or fails: the
    labels only refine defaults, so not reading them is never an error."""
    reference = ImageReference.parse(image)
    if reference.ecr is None:
        return None
    account, region = reference.ecr
    client = clients.ecr if region == clients.region else clients.session.client("ecr", region_name=region)
    where = {"registryId": account, "repositoryName": reference.repository}

    def manifest(image_id: dict) -> dict:
        images = client.batch_get_image(**where, imageIds=[image_id], acceptedMediaTypes=list(IMAGE_MEDIA_TYPES))
        return json.loads(images["images"][0]["imageManifest"])

    try:
        found = manifest(
            {"imageDigest": reference.digest} if reference.digest else {"imageTag": reference.tag or "latest"}
        )
        if found.get("manifests"):
            platforms = found["manifests"]
            amd64 = [m for m in platforms if (m.get("platform") or {}).get("architecture") == "amd64"]
            found = manifest({"imageDigest": (amd64 or platforms)[0]["digest"]})
        url = client.get_download_url_for_layer(**where, layerDigest=found["config"]["digest"])["downloadUrl"]
        with urllib.request.urlopen(url, timeout=30) as answer:
            config = json.load(answer)
    except (ClientError, BotoCoreError, OSError, ValueError, KeyError, IndexError):
        return None
    return dict((config.get("config") or {}).get("Labels") or {})


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
