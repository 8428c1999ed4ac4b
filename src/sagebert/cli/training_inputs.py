"""What `train` and `tune` share: the data channels, the role, the output and the hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass

from ..aws import storage
from ..aws.build.common import S3Location, image_region_warning
from ..aws.build.training import channel_uris, job_hyperparameters
from ..aws.clients import AwsClients, role_arn
from ..aws.validation import InvalidRequestError
from .options import given_hyperparameters, pairs_to_dict, tag_values
from .output import warn


@dataclass(frozen=True)
class TrainingInputs:
    """The parts of a job that come from --data, --pretrained, --output, --role and the hyperparameters."""

    channels: dict[str, str]
    output_path: str
    role_arn: str
    hyperparameters: dict[str, str]
    environment: dict[str, str]
    tags: dict[str, str]


def training_inputs(args, clients: AwsClients) -> TrainingInputs:
    """Read and check the inputs: the channels that hold objects, the role's ARN (STS for a name)."""
    hyperparameters, tags = job_hyperparameters(given_hyperparameters(args)), tag_values(args)
    data = S3Location.parse(args.data, "--data location").as_prefix()
    pretrained = S3Location.parse(args.pretrained, "--pretrained location") if args.pretrained else None
    output = S3Location.parse(args.output, "--output location") if args.output else data.parent().child("output", "")
    if pretrained is not None and not storage.has_objects(clients, pretrained.as_prefix()):
        raise InvalidRequestError(
            f"There is nothing under {pretrained.as_prefix().uri} (--pretrained).",
            "Upload the base model's files (config.json, weights, tokenizer) there first.",
        )
    present = storage.data_channels_present(clients, data)
    role = role_arn(clients, args.role)
    return TrainingInputs(
        channels=channel_uris(data, present, pretrained),
        output_path=output.as_prefix().uri,
        role_arn=role,
        hyperparameters=hyperparameters,
        environment=pairs_to_dict(args.env, "--env"),
        tags=tags,
    )


def job_warnings(args, clients: AwsClients, unit: str) -> None:
    """Before a job is created: the spot and region warnings."""
    if args.spot and not args.checkpoint_s3:
        warn(f"--spot without --checkpoint-s3: an interrupted {unit} restarts from the first epoch")
    region_warning = image_region_warning(args.image, clients.region)
    if region_warning:
        warn(region_warning)
