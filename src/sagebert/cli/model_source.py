"""The model a command deploys, updates to, transforms with or registers, from its options."""

from __future__ import annotations

from ..aws import sources
from ..aws.clients import AwsClients


def from_args(args, clients: AwsClients) -> sources.ModelSource | None:
    """The one of --training-job, --tuning-job, --model-package, --model-data, --multi-model given."""
    if getattr(args, "training_job", None):
        return sources.from_training_job(clients, args.training_job)
    if getattr(args, "tuning_job", None):
        return sources.from_tuning_job(clients, args.tuning_job)
    if getattr(args, "model_package", None):
        return sources.from_model_package(clients, args.model_package)
    if getattr(args, "multi_model", None):
        return sources.from_model_data(args.multi_model, multi_model=True)
    if getattr(args, "model_data", None):
        return sources.from_model_data(args.model_data)
    return None
