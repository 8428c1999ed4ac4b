"""PutMetricAlarm: the CloudWatch alarms that roll a blue/green update back.

Two alarms per endpoint variant, on the metrics SageMaker publishes in the AWS/SageMaker namespace
(dimensions EndpointName and VariantName): Invocation5XXErrors (the container answered 5xx) and
ModelLatency at p99 (ModelLatency is in microseconds; the option is in milliseconds). Their names
are fixed per endpoint, so `update` finds and refreshes them and `delete` removes exactly them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..validation import InvalidRequestError
from .common import ENDPOINT_TAG, tag_list

NAMESPACE = "AWS/SageMaker"
ALARM_PREFIX = "sagebert-"
DEFAULT_5XX_THRESHOLD = 1  # errors per minute
DEFAULT_LATENCY_P99_MS = 1000
PERIOD_SECONDS = 60
MICROSECONDS_PER_MS = 1000


def alarm_names(endpoint: str) -> tuple[str, str]:
    """(the 5xx alarm, the p99 latency alarm) of ``endpoint``."""
    return f"{ALARM_PREFIX}{endpoint}-invocation-5xx", f"{ALARM_PREFIX}{endpoint}-model-latency-p99"


def put_metric_alarm_requests(
    endpoint: str,
    variant: str,
    *,
    five_xx_threshold: int = DEFAULT_5XX_THRESHOLD,
    latency_p99_ms: float = DEFAULT_LATENCY_P99_MS,
    tags: Mapping[str, str] | None = None,
) -> list[dict]:
    """The two PutMetricAlarm requests: any minute with ``five_xx_threshold`` or more 5xx answers,
    or two minutes in a row whose p99 ModelLatency is above ``latency_p99_ms``. Missing data (no
    traffic) is not breaching, so a quiet endpoint never rolls back."""
    if five_xx_threshold < 1:
        raise InvalidRequestError(
            f"--alarm-5xx-threshold {five_xx_threshold}: an alarm at 0 errors would fire on every minute.",
            "Give 1 or more (errors per minute).",
        )
    if not latency_p99_ms > 0:
        raise InvalidRequestError(
            f"--alarm-latency-p99-ms {latency_p99_ms}: a latency limit must be above 0.", "Give e.g. 1000."
        )
    five_xx, latency = alarm_names(endpoint)
    common = {
        "Namespace": NAMESPACE,
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
        "Period": PERIOD_SECONDS,
        "TreatMissingData": "notBreaching",
        "Tags": tag_list({**(tags or {}), ENDPOINT_TAG: endpoint}),
    }
    return [
        {
            "AlarmName": five_xx,
            "AlarmDescription": f"{endpoint}/{variant}: {five_xx_threshold}+ 5xx answers in a minute (rolls "
            "a sagebert update back)",
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Sum",
            "EvaluationPeriods": 1,
            "Threshold": float(five_xx_threshold),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            **common,
        },
        {
            "AlarmName": latency,
            "AlarmDescription": f"{endpoint}/{variant}: p99 model latency above {latency_p99_ms:g} ms for 2 "
            "minutes (rolls a sagebert update back)",
            "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99",
            "EvaluationPeriods": 2,
            "DatapointsToAlarm": 2,
            "Threshold": float(latency_p99_ms * MICROSECONDS_PER_MS),
            "ComparisonOperator": "GreaterThanThreshold",
            **common,
        },
    ]
