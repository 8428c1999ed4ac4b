"""Waiting with progress: a training job's status transitions and logs, an endpoint's status,
a tuning job's trials, a transform job's status.

All are generators of events (status changes, log lines, trial changes, the final description)
so the CLI can show them as they happen; none prints. Polling intervals and ``sleep`` are
parameters, so tests run them without waiting.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .build.training import TRAINING_LOG_GROUP
from .clients import AwsClients
from .jobs import tuning_trials

TRAINING_DONE = ("Completed", "Failed", "Stopped")
TUNING_DONE = ("Completed", "Failed", "Stopped")
TRANSFORM_DONE = ("Completed", "Failed", "Stopped")
ENDPOINT_DONE = ("InService", "Failed", "OutOfService", "UpdateRollbackFailed")


@dataclass(frozen=True)
class StatusChange:
    """A job's SecondaryStatus (or an endpoint's EndpointStatus) changed, or its message did."""

    status: str
    message: str = ""
    elapsed: float | None = None


@dataclass(frozen=True)
class LogLine:
    """One line a training host wrote to stdout/stderr."""

    host: str
    message: str
    timestamp: int


@dataclass(frozen=True)
class Finished:
    """The last description of the job or endpoint, once it stopped changing."""

    description: dict


def host_of(stream_name: str) -> str:
    """``<job>/algo-2-1700000000`` → ``algo-2`` (the stream's host)."""
    tail = stream_name.split("/", 1)[-1]
    match = re.match(r"(algo-\d+)", tail)
    return match.group(1) if match else tail


class TrainingLogReader:
    """Reads new lines from every CloudWatch stream ``<job>/...`` of a training job.

    Each host writes its own stream (``<job>/algo-N-<epoch>``); a host restarted after a spot
    interruption starts a new one. Streams are rediscovered on every read and each is followed
    from its own position, so no host's lines are missed or repeated.
    """

    def __init__(self, logs_client, job_name: str):
        self._logs = logs_client
        self._prefix = f"{job_name}/"
        self._tokens: dict[str, str] = {}

    def _streams(self) -> list[str]:
        names: list[str] = []
        try:
            pages = self._logs.get_paginator("describe_log_streams").paginate(
                logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=self._prefix
            )
            for page in pages:
                names.extend(stream["logStreamName"] for stream in page["logStreams"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return []  # no host has written anything yet
            raise
        return names

    def _read_stream(self, stream: str) -> list[dict]:
        events: list[dict] = []
        while True:
            request = {"logGroupName": TRAINING_LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            token = self._tokens.get(stream)
            if token:
                request["nextToken"] = token
            page = self._logs.get_log_events(**request)
            self._tokens[stream] = page["nextForwardToken"]
            events.extend({**event, "stream": stream} for event in page["events"])
            if not page["events"] or page["nextForwardToken"] == token:
                return events

    def read_new(self) -> list[LogLine]:
        """Every line written since the last call, all hosts interleaved by time."""
        events = [event for stream in self._streams() for event in self._read_stream(stream)]
        events.sort(key=lambda event: event["timestamp"])
        return [
            LogLine(host_of(event["stream"]), event["message"].rstrip("\n"), event["timestamp"]) for event in events
        ]


def follow_training_job(
    clients: AwsClients,
    job_name: str,
    *,
    poll_interval: float = 30,
    logs: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[StatusChange | LogLine | Finished]:
    """Poll DescribeTrainingJob until the job ends, yielding its status transitions and log lines."""
    reader = TrainingLogReader(clients.logs, job_name) if logs else None
    shown: list[tuple[str, str]] = []
    while True:
        job = clients.sagemaker.describe_training_job(TrainingJobName=job_name)
        transitions = [(t["Status"], t.get("StatusMessage", "")) for t in job.get("SecondaryStatusTransitions", [])]
        if not transitions:
            transitions = [(job.get("SecondaryStatus") or job["TrainingJobStatus"], "")]
        for index, transition in enumerate(transitions):
            if index >= len(shown) or shown[index] != transition:
                yield StatusChange(*transition)
        shown = transitions
        done = job["TrainingJobStatus"] in TRAINING_DONE
        if reader is not None:
            if done:
                sleep(min(poll_interval, 5))  # CloudWatch receives the last lines a few seconds late
            yield from reader.read_new()
        if done:
            yield Finished(job)
            return
        sleep(poll_interval)


def wait_for_endpoint(
    clients: AwsClients,
    endpoint: str,
    *,
    poll_interval: float = 30,
    timeout: float = 3600,
    heartbeat: float = 60,
    before: dict | None = None,
    expected_config: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[StatusChange | Finished]:
    """Poll DescribeEndpoint until it settles (InService, Failed, ...), yielding status changes.

    After an UpdateEndpoint (``before``: the description before it, ``expected_config``: the
    config asked for), DescribeEndpoint may for a moment still show the old config InService with
    the old LastModifiedTime: the update has not shown up yet, which is not a rollback. Waiting
    goes on until the update is seen to start (another status, the new config, or a new
    LastModifiedTime). A StatusChange is also yielded every ``heartbeat`` seconds while nothing
    changes, so a long Creating/Updating shows it is alive. Raises TimeoutError after ``timeout``.
    """
    start = clock()
    last_status, last_shown = None, start
    started = before is None
    while True:
        description = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
        status = description["EndpointStatus"]
        now = clock()
        if not started:
            started = (
                status != "InService"
                or description.get("EndpointConfigName") == expected_config
                or description.get("LastModifiedTime") != before.get("LastModifiedTime")
            )
        if started and (status != last_status or now - last_shown >= heartbeat):
            yield StatusChange(status, description.get("FailureReason", ""), now - start)
            last_status, last_shown = status, now
        if started and status in ENDPOINT_DONE:
            yield Finished(description)
            return
        if now - start >= timeout:
            raise TimeoutError(f"endpoint {endpoint} is still {status} after {int(now - start)} s")
        sleep(poll_interval)


@dataclass(frozen=True)
class TrialChange:
    """A tuning job's trial appeared or changed status or objective."""

    name: str
    status: str
    objective: float | None


def _objective(trial: dict) -> float | None:
    final = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return final.get("Value")


def follow_tuning_job(
    clients: AwsClients,
    name: str,
    *,
    poll_interval: float = 60,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[TrialChange | StatusChange | Finished]:
    """Poll the tuning job and its trials until it ends, yielding what changed."""
    seen: dict[str, tuple[str, float | None]] = {}
    last_status = None
    while True:
        job = clients.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        for trial in reversed(tuning_trials(clients, name)):
            state = (trial["TrainingJobStatus"], _objective(trial))
            if seen.get(trial["TrainingJobName"]) != state:
                seen[trial["TrainingJobName"]] = state
                yield TrialChange(trial["TrainingJobName"], *state)
        status = job["HyperParameterTuningJobStatus"]
        if status != last_status:
            yield StatusChange(status, job.get("FailureReason", ""))
            last_status = status
        if status in TUNING_DONE:
            yield Finished(job)
            return
        sleep(poll_interval)


def follow_transform_job(
    clients: AwsClients,
    name: str,
    *,
    poll_interval: float = 30,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[StatusChange | Finished]:
    """Poll DescribeTransformJob until it ends, yielding each status."""
    start, last_status = clock(), None
    while True:
        job = clients.sagemaker.describe_transform_job(TransformJobName=name)
        status = job["TransformJobStatus"]
        if status != last_status:
            yield StatusChange(status, job.get("FailureReason", ""), clock() - start)
            last_status = status
        if status in TRANSFORM_DONE:
            yield Finished(job)
            return
        sleep(poll_interval)


# ---- why an endpoint failed -------------------------------------------------------------------------
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints/{endpoint}"  # one stream per {variant}/{instance id}
# What the container logs when it cannot serve (serving.app, container.serve): the reason /ping gave.
_CONTAINER_REASONS = ("loading the model failed", "cannot start the server", "warm-up prediction failed")
# FailureReason phrases SageMaker uses, and what usually causes them.
USUAL_CAUSES = (
    (
        "did not pass the ping health check",
        "the container did not answer GET /ping with 200 in time: its own reason is in its log (below); if it was "
        "only slow to load, raise --startup-timeout",
    ),
    (
        "model data",
        "SageMaker could not fetch or unpack the model data: check that the S3 object exists in the endpoint's "
        "region and that the execution role may s3:GetObject it (and kms:Decrypt its key)",
    ),
    (
        "for endpoint usage",
        "an account quota: request an increase in Service Quotas, or pick another instance type",
    ),
    (
        "image",
        "SageMaker could not pull or start the image: check that it exists in ECR in the endpoint's region and "
        "that the execution role may pull it",
    ),
)


@dataclass(frozen=True)
class EndpointDiagnosis:
    """What is known about why an endpoint failed: SageMaker's FailureReason, the usual cause of
    such a reason, the container's own reason from its log, and the log's last lines."""

    failure_reason: str
    usual_cause: str
    container_reason: str
    log_group: str
    tail: tuple[LogLine, ...]


def endpoint_log_tail(logs_client, endpoint: str, lines: int = 20, streams: int = 4) -> list[LogLine]:
    """The last ``lines`` lines of the endpoint's most recently written CloudWatch streams (the
    instances that failed last), oldest first; host = the stream's ``variant/instance``."""
    group = ENDPOINT_LOG_GROUP.format(endpoint=endpoint)
    try:
        found = logs_client.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", descending=True, limit=streams
        )["logStreams"]
        events = [
            {**event, "stream": stream["logStreamName"]}
            for stream in found
            for event in logs_client.get_log_events(
                logGroupName=group, logStreamName=stream["logStreamName"], limit=lines, startFromHead=False
            )["events"]
        ]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []  # no instance started far enough to log anything
        raise
    events.sort(key=lambda event: event["timestamp"])
    return [LogLine(event["stream"], event["message"].rstrip("\n"), event["timestamp"]) for event in events[-lines:]]


def _error_message(line: str) -> str | None:
    """The message of an ERROR line the container wrote (plain text or JSON log format), else None."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level = str(record.get("level") or record.get("levelname") or "").upper()
            return str(record.get("message") or "") if level in ("ERROR", "CRITICAL") else None
    match = re.search(r"\b(?:ERROR|CRITICAL) [\w.]+: (.*)", stripped)
    return match.group(1) if match else None


def container_reason(tail: list[LogLine]) -> str:
    """The container's own last word on why it could not serve: the last line naming a reason
    /ping reports (model load, server start, warm-up), else the last ERROR line; empty if none."""
    errors = [message for line in tail if (message := _error_message(line.message))]
    named = [message for message in errors if any(reason in message for reason in _CONTAINER_REASONS)]
    return (named or errors or [""])[-1]


def diagnose_endpoint(
    clients: AwsClients, endpoint: str, description: dict | None, lines: int = 20
) -> EndpointDiagnosis:
    """Why ``endpoint`` failed (or rolled back, or is not ready), from its description and its log."""
    reason = (description or {}).get("FailureReason") or ""
    cause = next((text for phrase, text in USUAL_CAUSES if phrase in reason.lower()), "")
    tail = endpoint_log_tail(clients.logs, endpoint, lines)
    return EndpointDiagnosis(
        reason, cause, container_reason(tail), ENDPOINT_LOG_GROUP.format(endpoint=endpoint), tuple(tail)
    )
