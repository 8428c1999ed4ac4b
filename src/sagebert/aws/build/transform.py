"""CreateTransformJob: batch scoring of JSON Lines or CSV files in S3 with a sagebert model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ... import contract
from ..validation import InvalidRequestError
from .common import EncryptionSpec, S3Location, check_name, tag_list

# What the sagebert container answers on GET /execution-parameters (sagebert.serving.app; the
# README's serving table): SageMaker asks it for what the request leaves unset.
CONTAINER_BATCH_STRATEGY = "MultiRecord"  # the container says MULTI_RECORD
CONTAINER_MAX_PAYLOAD_MB = 6  # SAGEMAKER_MAX_PAYLOAD_IN_MB's default
# CreateTransformJob: MaxPayloadInMB at most 100, and MaxConcurrentTransforms x MaxPayloadInMB too.
TRANSFORM_BUDGET_MB = 100
FORMATS = {"jsonlines": contract.JSONLINES, "csv": contract.CSV}


@dataclass(frozen=True)
class TransformSpec:
    """A batch transform over every file under ``input``, one answer line per input line."""

    name: str
    model_name: str
    input: str
    output: str
    data_format: str = "jsonlines"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    max_payload_mb: int = CONTAINER_MAX_PAYLOAD_MB
    max_concurrent_transforms: int | None = None
    join_input: bool = False
    invocation_timeout: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    transform_ami: str | None = None  # TransformAmiVersion: a GPU host's driver (aws/build/gpu.py)
    encryption: EncryptionSpec = field(default_factory=EncryptionSpec)


def create_transform_job_request(spec: TransformSpec) -> dict:
    """The CreateTransformJob request: SplitType Line + MultiRecord, so the container gets as many
    whole lines per request as fit in MaxPayloadInMB and answers one line per line, in order;
    AssembleWith Line puts the answers back together. With ``join_input`` every output line is
    joined with its input record (DataProcessing JoinSource=Input): for JSON Lines the answer goes
    into the input object under ``SageMakerOutput``, for CSV it is appended to the input row.

    MaxConcurrentTransforms is sent only when given: otherwise SageMaker asks the container's
    GET /execution-parameters, which answers from the workers and threads it really has.
    """
    check_name("transform job", spec.name)
    check_name("model", spec.model_name)
    content_type = FORMATS.get(spec.data_format)
    if content_type is None:
        raise InvalidRequestError(f"Unknown --format {spec.data_format!r}.", "Use jsonlines or csv.")
    if not 1 <= spec.max_payload_mb <= TRANSFORM_BUDGET_MB:
        raise InvalidRequestError(
            f"--max-payload-mb is {spec.max_payload_mb}; SageMaker allows 1 to {TRANSFORM_BUDGET_MB}.",
            "Pass a value in that range (the container's own limit is SAGEMAKER_MAX_PAYLOAD_IN_MB, default 6).",
        )
    if spec.max_concurrent_transforms is not None:
        budget = spec.max_concurrent_transforms * spec.max_payload_mb
        if spec.max_concurrent_transforms < 1 or budget > TRANSFORM_BUDGET_MB:
            raise InvalidRequestError(
                f"--max-concurrent-transforms {spec.max_concurrent_transforms} x --max-payload-mb "
                f"{spec.max_payload_mb} = {budget} MB; SageMaker allows at most {TRANSFORM_BUDGET_MB} MB.",
                f"Lower one of them (at most {TRANSFORM_BUDGET_MB // spec.max_payload_mb} concurrent transforms "
                f"at {spec.max_payload_mb} MB), or drop --max-concurrent-transforms to let the container decide.",
            )
    source = S3Location.parse(spec.input, "--input location")
    request: dict = {
        "TransformJobName": spec.name,
        "ModelName": spec.model_name,
        "BatchStrategy": CONTAINER_BATCH_STRATEGY,
        "MaxPayloadInMB": spec.max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source.uri}},
            "ContentType": content_type,
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": S3Location.parse(spec.output, "--output location").as_prefix().uri,
            "Accept": content_type,
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": spec.instance_type, "InstanceCount": spec.instance_count},
    }
    if spec.transform_ami:
        request["TransformResources"]["TransformAmiVersion"] = spec.transform_ami
    if spec.encryption.kms_key:
        request["TransformOutput"]["KmsKeyId"] = spec.encryption.kms_key
    if spec.encryption.volume:
        request["TransformResources"]["VolumeKmsKeyId"] = spec.encryption.volume
    if spec.max_concurrent_transforms is not None:
        request["MaxConcurrentTransforms"] = spec.max_concurrent_transforms
    if spec.join_input:
        request["DataProcessing"] = {"JoinSource": "Input"}
    if spec.invocation_timeout is not None:
        if not 1 <= spec.invocation_timeout <= 3600:
            raise InvalidRequestError(
                f"--invocation-timeout is {spec.invocation_timeout}; SageMaker allows 1 to 3600 seconds.",
                "Pass a value in that range.",
            )
        request["ModelClientConfig"] = {"InvocationsTimeoutInSeconds": spec.invocation_timeout}
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    if spec.tags:
        request["Tags"] = tag_list(spec.tags)
    return request
