"""What every request shares: S3 locations, resource names, tags and image references."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ..validation import InvalidRequestError, matches_pattern, shape_limits

# Tags that let `update`, `rollback`, `delete` and the metric gate find what sagebert made.
ENDPOINT_TAG = "sagebert:endpoint"
TRAINING_JOB_TAG = "sagebert:training-job"
PREVIOUS_CONFIG_TAG = "sagebert:previous-endpoint-config"
TRANSFORM_JOB_TAG = "sagebert:transform-job"

_NAME_SHAPES = {
    "training job": "TrainingJobName",
    "endpoint": "EndpointName",
    "endpoint config": "EndpointConfigName",
    "model": "ModelName",
    "variant": "VariantName",
    "tuning job": "HyperParameterTuningJobName",
    "transform job": "TransformJobName",
    "model package group": "EntityName",
}
_STAMP_FORMAT = "%Y%m%d-%H%M%S"
_SUFFIX_LENGTH = len("-20260101-000000-abcd")
# docker's reference grammar (distribution/reference): [registry[:port]/]path[:tag][@digest]
_DOMAIN = (
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*"
)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"(?P<registry>{_DOMAIN}(?::[0-9]+)?)/(?P<repository>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
ECR_HOST = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
IMAGE_URI_MAX = 255  # AlgorithmImage / ContainerImage


# ---- S3 locations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or key prefix) in it."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str, what: str = "S3 location") -> S3Location:
        """``s3://bucket/key`` → S3Location; a SagebertError naming ``what`` if it is not one."""
        match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?", uri or "")
        if not match:
            raise InvalidRequestError(
                f"The {what} {uri!r} is not an S3 URI.",
                "Write it as s3://BUCKET/PREFIX (bucket names are lower-case letters, digits, dots and hyphens).",
            )
        return cls(match.group(1), match.group(2) or "")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_prefix(self) -> S3Location:
        """The same location as a "folder": empty or ending in ``/``."""
        key = self.key.strip("/")
        return S3Location(self.bucket, key + "/" if key else "")

    def child(self, *parts: str) -> S3Location:
        """A location below this one (``child("training", "")`` → ``.../training/``)."""
        return S3Location(self.bucket, self.as_prefix().key + "/".join(parts))

    def parent(self) -> S3Location:
        """The folder that holds this location (the bucket root for a top-level one)."""
        key = self.key.strip("/")
        return S3Location(self.bucket, key.rsplit("/", 1)[0] + "/" if "/" in key else "")


# ---- names ------------------------------------------------------------------------------------------
def name_stem(text: str, fallback: str = "sagebert") -> str:
    """``text`` made safe for SageMaker names: letters, digits and single hyphens, no edge hyphens."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", text or "").strip("-")
    return stem or fallback


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid SageMaker ``kind`` name ("training job", "endpoint", …)."""
    limits = shape_limits(_NAME_SHAPES[kind])
    maximum = limits["max"]
    if value and len(value) <= maximum and re.fullmatch(limits["pattern"], value):
        return value
    suggestion = name_stem(value)[:maximum].strip("-")
    raise InvalidRequestError(
        f"{value!r} is not a valid SageMaker {kind} name: use 1-{maximum} letters, digits and hyphens, "
        "starting and ending with a letter or digit (no underscores, dots or spaces).",
        f"Use e.g. {suggestion!r}.",
    )


def unique_name(stem: str, now: datetime | None = None, token: str | None = None, max_length: int = 63) -> str:
    """``<stem>-YYYYmmdd-HHMMSS-xxxx``: unique per account and region, at most ``max_length`` characters.

    The random part keeps two runs started in the same second (two CI jobs) apart.
    """
    now = now or datetime.now(UTC)
    token = token or secrets.token_hex(2)
    stem = name_stem(stem)[: max_length - _SUFFIX_LENGTH].rstrip("-")
    return f"{stem}-{now.strftime(_STAMP_FORMAT)}-{token}"


def endpoint_resource_stem(endpoint: str) -> str:
    """The name prefix of the models and configs made for ``endpoint`` (how delete finds them)."""
    return name_stem(endpoint)[: 63 - _SUFFIX_LENGTH].rstrip("-")


# Tag keys starting with aws: are AWS's own (CloudFormation, Service Catalog...); users cannot set them.
RESERVED_TAG_PREFIX = "aws:"
MAX_TAGS = 50  # per resource (TagList)


def check_tags(tags: Mapping[str, str], option: str = "--tag") -> dict[str, str]:
    """Return ``tags`` if every key and value fits the API's Tag shape (TagKey 1-128, TagValue 0-256
    characters of letters, digits, spaces and ``_.:/=+-@``), no key starts with ``aws:`` and there
    are at most 50; else a usage error naming the tag."""
    key_limits, value_limits = shape_limits("TagKey"), shape_limits("TagValue")
    if len(tags) > MAX_TAGS:
        raise InvalidRequestError(
            f"{len(tags)} tags given; a SageMaker resource holds at most {MAX_TAGS}.", "Give fewer."
        )
    allowed = "letters, digits, spaces and _ . : / = + - @"
    for key, value in tags.items():
        if not key_limits["min"] <= len(key) <= key_limits["max"] or not matches_pattern(key_limits["pattern"], key):
            raise InvalidRequestError(
                f"{option} key {key!r} is not a valid tag key: 1-{key_limits['max']} characters of {allowed}.",
                f"Write e.g. {option} team=ml.",
            )
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            raise InvalidRequestError(
                f"{option} key {key!r} starts with {RESERVED_TAG_PREFIX}, which AWS reserves for its own tags.",
                "Choose a key without the aws: prefix.",
            )
        if len(value) > value_limits["max"] or not matches_pattern(value_limits["pattern"], value):
            raise InvalidRequestError(
                f"{option} {key}={value!r}: a tag value is 0-{value_limits['max']} characters of {allowed}.",
                "Shorten the value or drop the other characters.",
            )
    return dict(tags)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"k": "v"}`` → ``[{"Key": "k", "Value": "v"}]``, the API's tag form."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_dict(tags: list[Mapping[str, str]] | None) -> dict[str, str]:
    """The API's tag list → ``{"k": "v"}``."""
    return {tag["Key"]: tag["Value"] for tag in tags or ()}


# ---- private networks and encryption -------------------------------------------------------------
def _ids(values: tuple[str, ...], prefix: str, shape: str, option: str, most: int) -> list[str]:
    limits = shape_limits(shape)
    for value in values:
        if not value.startswith(prefix) or len(value) > limits["max"] or not matches_pattern(limits["pattern"], value):
            raise InvalidRequestError(
                f"{option} {value!r} is not a {prefix}... ID.",
                f"Give IDs as the EC2 console shows them, comma-separated: {option} {prefix}0123456789abcdef0,...",
            )
    if not 1 <= len(values) <= most:
        raise InvalidRequestError(f"{option} names {len(values)} IDs; SageMaker takes 1 to {most}.", f"Give 1-{most}.")
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class NetworkSpec:
    """Where a job or model runs: the VPC subnets and security groups, network isolation (no calls in
    or out of the container), and encryption of the traffic between training hosts."""

    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    isolation: bool = False
    inter_container_encryption: bool = False

    def vpc_config(self) -> dict | None:
        """The VpcConfig: both lists or neither (a usage error otherwise); IDs checked by their shapes."""
        if not self.subnets and not self.security_groups:
            return None
        if not self.subnets or not self.security_groups:
            given, missing = ("--subnets", "--security-groups") if self.subnets else ("--security-groups", "--subnets")
            raise InvalidRequestError(
                f"{given} without {missing}: a VpcConfig needs both.", f"Add {missing} ID,ID (or drop {given})."
            )
        return {
            "SecurityGroupIds": _ids(self.security_groups, "sg-", "SecurityGroupId", "--security-groups", 5),
            "Subnets": _ids(self.subnets, "subnet-", "SubnetId", "--subnets", 16),
        }

    def job_fields(self) -> dict:
        """VpcConfig, EnableNetworkIsolation and EnableInterContainerTrafficEncryption of a training
        job (or of a tuning job's training-job definition), only those asked for."""
        fields: dict = self.model_fields()
        if self.inter_container_encryption:
            fields["EnableInterContainerTrafficEncryption"] = True
        return fields

    def model_fields(self) -> dict:
        """VpcConfig and EnableNetworkIsolation of a CreateModel (only those asked for)."""
        fields: dict = {}
        vpc = self.vpc_config()
        if vpc:
            fields["VpcConfig"] = vpc
        if self.isolation:
            fields["EnableNetworkIsolation"] = True
        return fields


def check_kms_key(key: str | None, option: str = "--kms-key") -> str | None:
    """A KMS key as the API takes it (key ID, key ARN, alias/NAME or alias ARN), or None."""
    if key is None:
        return None
    limits = shape_limits("KmsKeyId")
    if not key or len(key) > limits["max"] or not matches_pattern(limits["pattern"], key):
        raise InvalidRequestError(
            f"{option} {key!r} is not a KMS key ID, key ARN, alias/NAME or alias ARN.",
            f"Write e.g. {option} arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab.",
        )
    return key


@dataclass(frozen=True)
class EncryptionSpec:
    """Customer-managed KMS keys: ``kms_key`` for what is written to S3 (model artifacts, transform
    answers, captured data, async answers), ``volume_kms_key`` for the ML storage volumes (default:
    the same key)."""

    kms_key: str | None = None
    volume_kms_key: str | None = None

    def __post_init__(self) -> None:
        check_kms_key(self.kms_key, "--kms-key")
        check_kms_key(self.volume_kms_key, "--volume-kms-key")

    @property
    def volume(self) -> str | None:
        return self.volume_kms_key or self.kms_key


# ---- images -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageReference:
    """``registry/repository[:tag][@sha256:…]``, the form SageMaker pulls images by."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, uri: str, option: str = "--image") -> ImageReference:
        """Check ``uri`` the way SageMaker's API reference defines an image path: a registry host,
        a repository and an optional tag or digest, at most 255 characters."""
        match = IMAGE_REFERENCE.fullmatch(uri or "")
        if not match or len(uri) > IMAGE_URI_MAX:
            why = (
                f"longer than {IMAGE_URI_MAX} characters" if match else "not REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]"
            )
            raise InvalidRequestError(
                f"{option} {uri!r} is not an image URI SageMaker can pull: {why}.",
                "Pass the URI build_and_push.sh printed, e.g. "
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagebert:<tag> (or its image_digest_uri).",
            )
        return cls(match["registry"], match["repository"], match["tag"], match["digest"])

    @property
    def uri(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"

    def by_digest(self, digest: str) -> ImageReference:
        """The same image named by its digest (a tag can move; a digest cannot)."""
        return ImageReference(self.registry, self.repository, None, digest)

    @property
    def ecr(self) -> tuple[str, str] | None:
        """(account, region) when the registry is ECR, else None."""
        match = ECR_HOST.fullmatch(self.registry)
        return (match["account"], match["region"]) if match else None


def image_region_warning(image: str, region: str | None) -> str | None:
    """A warning when an ECR image lives in another region than the one SageMaker runs in."""
    try:
        ecr = ImageReference.parse(image).ecr
    except InvalidRequestError:
        return None
    if ecr and region and ecr[1] != region:
        return (
            f"the image is in {ecr[1]} but SageMaker runs in {region}: push it to {region} "
            "(SageMaker pulls images from its own region)"
        )
    return None
