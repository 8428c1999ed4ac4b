"""Application Auto Scaling of an endpoint variant: a scalable target and a target-tracking policy.

The variant's instance count (``sagemaker:variant:DesiredInstanceCount``) follows the average
number of invocations per instance (``SageMakerVariantInvocationsPerInstance``, per minute) — or,
for an asynchronous endpoint, as AWS's "Autoscale an asynchronous endpoint" prescribes, the
requests queued per instance (``ApproximateBacklogSizePerInstance``), with a minimum of 0
instances allowed: the endpoint scales in to zero when idle and out again once the backlog
exceeds the target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..validation import InvalidRequestError

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
POLICY_NAME = "sagebert-invocations-per-instance"
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"  # AWS/SageMaker, per EndpointName
BACKLOG_POLICY_NAME = "sagebert-backlog-per-instance"
# Copied back when re-registering a target SageMaker dropped (the rest are read-only or AWS-owned).
_POLICY_FIELDS = (
    "PolicyName",
    "PolicyType",
    "StepScalingPolicyConfiguration",
    "TargetTrackingScalingPolicyConfiguration",
)


def resource_id(endpoint: str, variant: str) -> str:
    """``endpoint/<endpoint>/variant/<variant>``, the ResourceId of an endpoint variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


def target_key(endpoint: str, variant: str) -> dict:
    """The three fields that name a variant's scalable target in every call."""
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(endpoint, variant), "ScalableDimension": DIMENSION}


@dataclass(frozen=True)
class ScalingSpec:
    """Keep between ``minimum`` and ``maximum`` instances, aiming at ``target`` invocations per
    instance per minute — or, ``backlog``, at ``target`` queued requests per instance (async)."""

    minimum: int
    maximum: int
    target: float
    scale_in_cooldown: int = 300
    scale_out_cooldown: int = 60
    backlog: bool = False

    def check(self) -> None:
        if self.minimum < (0 if self.backlog else 1):
            raise InvalidRequestError(
                f"--min {self.minimum}: a real-time endpoint on instances keeps at least 1 "
                "(only an asynchronous endpoint scales to 0).",
                "Pass --min 1 or more.",
            )
        if self.maximum < self.minimum:
            raise InvalidRequestError(f"--max {self.maximum} is below --min {self.minimum}.", "Pass --max >= --min.")
        if self.target <= 0:
            raise InvalidRequestError(
                f"--target-invocations {self.target:g} must be positive.",
                "Pass the invocations per instance per minute to aim at (measure one instance's capacity first).",
            )
        for option, value in (
            ("--scale-in-cooldown", self.scale_in_cooldown),
            ("--scale-out-cooldown", self.scale_out_cooldown),
        ):
            if value < 0:
                raise InvalidRequestError(f"{option} is {value}.", f"Pass {option} as seconds, 0 or more.")


def register_scalable_target_request(endpoint: str, variant: str, spec: ScalingSpec) -> dict:
    """RegisterScalableTarget for the variant's instance count."""
    spec.check()
    return {**target_key(endpoint, variant), "MinCapacity": spec.minimum, "MaxCapacity": spec.maximum}


def put_scaling_policy_request(endpoint: str, variant: str, spec: ScalingSpec) -> dict:
    """PutScalingPolicy: target tracking on invocations per instance, or on the backlog per
    instance (a customized CloudWatch metric of the endpoint) for an asynchronous endpoint."""
    spec.check()
    if spec.backlog:
        name, metric = BACKLOG_POLICY_NAME, {"CustomizedMetricSpecification": backlog_metric(endpoint)}
    else:
        name, metric = POLICY_NAME, {"PredefinedMetricSpecification": {"PredefinedMetricType": METRIC}}
    return {
        **target_key(endpoint, variant),
        "PolicyName": name,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(spec.target),
            **metric,
            "ScaleInCooldown": spec.scale_in_cooldown,
            "ScaleOutCooldown": spec.scale_out_cooldown,
        },
    }


def backlog_metric(endpoint: str) -> dict:
    """The CustomizedMetricSpecification of an async endpoint's queued requests per instance."""
    return {
        "MetricName": BACKLOG_METRIC,
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
        "Statistic": "Average",
    }


def tracked_metric(policy: Mapping) -> str | None:
    """The metric a target-tracking policy follows (METRIC or BACKLOG_METRIC), else None."""
    tracking = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    predefined = (tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
    return predefined or (tracking.get("CustomizedMetricSpecification") or {}).get("MetricName")


def restore_requests(target: Mapping, policies: list[Mapping]) -> tuple[dict, list[dict]]:
    """RegisterScalableTarget and PutScalingPolicy requests that recreate a described target and
    its policies (to re-register what an update had to remove)."""
    key = {name: target[name] for name in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    register = {**key, "MinCapacity": target["MinCapacity"], "MaxCapacity": target["MaxCapacity"]}
    if target.get("SuspendedState"):
        register["SuspendedState"] = dict(target["SuspendedState"])
    puts = []
    for policy in policies:
        request = {**key, **{name: policy[name] for name in _POLICY_FIELDS if name in policy}}
        tracking = request.get("TargetTrackingScalingPolicyConfiguration")
        if tracking:  # CloudWatch alarms are the policy's own; AWS recreates them
            request["TargetTrackingScalingPolicyConfiguration"] = {
                name: value for name, value in tracking.items() if name != "Alarms"
            }
        puts.append(request)
    return register, puts
