"""Application Auto Scaling calls for an endpoint variant: read, apply, remove and restore."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .build.scaling import (
    ScalingSpec,
    put_scaling_policy_request,
    register_scalable_target_request,
    restore_requests,
    target_key,
)
from .clients import AwsClients, send
from .errors import is_not_found


@dataclass(frozen=True)
class Scaling:
    """A variant's scalable target and its policies, as DescribeScalableTargets/Policies return them."""

    target: Mapping
    policies: tuple[Mapping, ...] = ()

    @property
    def minimum(self) -> int:
        return self.target["MinCapacity"]

    @property
    def maximum(self) -> int:
        return self.target["MaxCapacity"]

    def describe(self) -> str:
        names = ", ".join(policy["PolicyName"] for policy in self.policies) or "no policy"
        return f"{self.minimum}-{self.maximum} instances ({names})"


def current(clients: AwsClients, endpoint: str, variant: str) -> Scaling | None:
    """The variant's registration, or None when it is not autoscaled."""
    key = target_key(endpoint, variant)
    targets = clients.autoscaling.describe_scalable_targets(
        ServiceNamespace=key["ServiceNamespace"],
        ResourceIds=[key["ResourceId"]],
        ScalableDimension=key["ScalableDimension"],
    )["ScalableTargets"]
    if not targets:
        return None
    policies: list[Mapping] = []
    pages = clients.autoscaling.get_paginator("describe_scaling_policies").paginate(**key)
    for page in pages:
        policies.extend(page["ScalingPolicies"])
    return Scaling(targets[0], tuple(policies))


def apply(clients: AwsClients, endpoint: str, variant: str, spec: ScalingSpec) -> tuple[dict, dict]:
    """Register the target and put the target-tracking policy; return both requests as sent."""
    register = register_scalable_target_request(endpoint, variant, spec)
    policy = put_scaling_policy_request(endpoint, variant, spec)
    send(clients.autoscaling, "RegisterScalableTarget", register)
    send(clients.autoscaling, "PutScalingPolicy", policy)
    return register, policy


def remove(clients: AwsClients, scaling: Scaling) -> None:
    """Delete the policies, then deregister the target (the order Application Auto Scaling needs)."""
    key = {name: scaling.target[name] for name in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    for policy in scaling.policies:
        try:
            clients.autoscaling.delete_scaling_policy(PolicyName=policy["PolicyName"], **key)
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    try:
        clients.autoscaling.deregister_scalable_target(**key)
    except ClientError as exc:
        if not is_not_found(exc):
            raise


def restore(clients: AwsClients, scaling: Scaling) -> None:
    """Register the target and put its policies back exactly as they were described."""
    register, policies = restore_requests(scaling.target, list(scaling.policies))
    send(clients.autoscaling, "RegisterScalableTarget", register)
    for policy in policies:
        send(clients.autoscaling, "PutScalingPolicy", policy)
