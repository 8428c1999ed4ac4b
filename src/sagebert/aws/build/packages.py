"""The model registry: a ModelPackageGroup per model line, a versioned ModelPackage per trained model.

A package names its image by digest (what was trained and tested is what is served, even if the
tag moves), the content types and instance types the sagebert server supports, the model's
metrics (ModelQuality statistics: the job's metrics as JSON in S3), and the training job and its
final metrics as customer metadata, which the metric gate reads back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ... import contract
from ..gate import EVAL_DATA_TAG, metric_tags
from ..validation import InvalidRequestError
from .common import TRAINING_JOB_TAG, ImageReference, check_kms_key, check_name, tag_list

APPROVAL_STATUSES = {"approved": "Approved", "pending": "PendingManualApproval", "rejected": "Rejected"}
# What the sagebert server reads and answers (sagebert.codecs).
REQUEST_TYPES = contract.REQUEST_TYPES
RESPONSE_TYPES = contract.RESPONSE_TYPES
REALTIME_INSTANCE_TYPES = (
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.g4dn.xlarge",
    "ml.g5.xlarge",
)
TRANSFORM_INSTANCE_TYPES = ("ml.m5.xlarge", "ml.c5.xlarge", "ml.c5.2xlarge", "ml.g4dn.xlarge")


@dataclass(frozen=True)
class PackageSpec:
    """A trained model as a registry entry."""

    group: str
    image: ImageReference  # by digest
    model_data: str
    training_job: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_uri: str | None = None
    metrics_digest: str | None = None
    eval_data: str | None = None  # the sha256 of the test data the metrics were measured on, when known
    approval: str = "pending"
    description: str | None = None
    realtime_instance_types: Sequence[str] = REALTIME_INSTANCE_TYPES
    transform_instance_types: Sequence[str] = TRANSFORM_INSTANCE_TYPES
    tags: Mapping[str, str] = field(default_factory=dict)
    kms_key: str | None = None  # SecurityConfig: encrypts the package's metadata at rest


def create_model_package_group_request(group: str, description: str | None = None, tags=None) -> dict:
    """CreateModelPackageGroup."""
    check_name("model package group", group)
    request: dict = {"ModelPackageGroupName": group}
    if description:
        request["ModelPackageGroupDescription"] = description
    if tags:
        request["Tags"] = tag_list(tags)
    return request


def package_metadata(training_job: str, metrics: Mapping[str, float], eval_data: str | None = None) -> dict[str, str]:
    """CustomerMetadataProperties: the training job, its final metrics and (when known) its test
    data's digest, keyed as the model tags are, so the gate can compare a package like a model."""
    return {TRAINING_JOB_TAG: training_job, **metric_tags(metrics), **({EVAL_DATA_TAG: eval_data} if eval_data else {})}


def create_model_package_request(spec: PackageSpec) -> dict:
    """CreateModelPackage: a new version in ``spec.group``."""
    check_name("model package group", spec.group)
    if not spec.image.digest:
        raise InvalidRequestError(
            f"The image {spec.image.uri} is not named by digest.", "Register a model whose image has a digest."
        )
    status = APPROVAL_STATUSES.get(spec.approval)
    if status is None:
        raise InvalidRequestError(f"Unknown --approval {spec.approval!r}.", "Use approved, pending or rejected.")
    container = {"Image": spec.image.uri, "ImageDigest": spec.image.digest, "ModelDataUrl": spec.model_data}
    request: dict = {
        "ModelPackageGroupName": spec.group,
        "InferenceSpecification": {
            "Containers": [container],
            "SupportedContentTypes": list(REQUEST_TYPES),
            "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": list(spec.realtime_instance_types),
            "SupportedTransformInstanceTypes": list(spec.transform_instance_types),
        },
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": package_metadata(spec.training_job, spec.metrics, spec.eval_data),
    }
    if spec.metrics_uri:
        statistics = {"ContentType": contract.JSON, "S3Uri": spec.metrics_uri}
        if spec.metrics_digest:
            statistics["ContentDigest"] = spec.metrics_digest
        request["ModelMetrics"] = {"ModelQuality": {"Statistics": statistics}}
    if spec.description:
        request["ModelPackageDescription"] = spec.description
    if spec.kms_key:
        request["SecurityConfig"] = {"KmsKeyId": check_kms_key(spec.kms_key)}
    if spec.tags:
        request["Tags"] = tag_list(spec.tags)
    return request


def require_approved(description: Mapping) -> None:
    """Deploy only Approved packages; say how to approve one that is not."""
    arn = description.get("ModelPackageArn")
    status = description.get("ModelApprovalStatus") or "not reviewed"
    if status != "Approved":
        raise InvalidRequestError(
            f"Model package {arn} is {status}; only Approved packages are deployed.",
            f"Review it, then: aws sagemaker update-model-package --model-package-arn {arn} "
            "--model-approval-status Approved (or approve it in SageMaker Studio > Models).",
        )
