"""Following a training, transform or tuning job and waiting for an endpoint, shown as they
happen: what the commands that start them and `sagebert status` share."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from botocore.exceptions import ClientError

from ..aws import endpoints, jobs, storage, watch
from ..aws.build.common import S3Location
from ..aws.build.training import spot_saving_percent
from ..aws.build.tuning import best_summary
from ..aws.clients import AwsClients
from ..aws.gate import final_metrics, metric_goal, render
from .output import FAILED, INTERRUPTED, OK, duration, fail, say, warn


def print_training_summary(job: dict) -> None:
    for name, value in final_metrics(job).items():
        say(f"  {name:<28} {value:.4f}")
    training, billable = job.get("TrainingTimeInSeconds"), job.get("BillableTimeInSeconds")
    count = job.get("ResourceConfig", {}).get("InstanceCount", 1)
    if training:
        say(f"  training time      {training} s ({duration(training)})")
    if billable is not None:
        per_instance = f" x {count} instances = {billable * count} instance-seconds" if count > 1 else ""
        say(f"  billable time      {billable} s{per_instance}")
    saving = spot_saving_percent(job)
    if saving is not None:
        say(f"  spot saving        {saving:.1f}% (billed {billable} s of {training} s trained)")
    artifacts = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if artifacts:
        say(f"  model              {artifacts}")


def follow_job(clients: AwsClients, name: str, poll_interval: float, logs: bool = True) -> int:
    """Show a training job's transitions and logs until it ends; 0 only if it Completed."""
    try:
        for event in watch.follow_training_job(clients, name, poll_interval=poll_interval, logs=logs):
            if isinstance(event, watch.StatusChange):
                say(f"==> {event.status}" + (f": {event.message}" if event.message else ""))
            elif isinstance(event, watch.LogLine):
                say(f"[{event.host}] {event.message}")
            else:
                job = event.description
    except KeyboardInterrupt:
        print(
            f"\nStopped following; the job keeps running. Follow again: sagebert status --training-job {name} "
            f"--follow; stop it: sagebert stop --training-job {name}",
            file=sys.stderr,
        )
        return INTERRUPTED
    status, secondary = job["TrainingJobStatus"], job.get("SecondaryStatus", "")
    if status == "Completed":
        say(f"Training job {name} Completed.")
        print_training_summary(job)
        say(f"Next: sagebert deploy --training-job {name} --endpoint NAME")
        return OK
    print_training_summary(job)
    why = f" ({secondary})" if secondary and secondary != status else ""
    reason = job.get("FailureReason") or "no reason given"
    return fail(f"Training job {name} {status}{why}: {reason}")


@dataclass(frozen=True)
class Settled:
    """How waiting for an endpoint ended: ``in-service``, ``rolled-back``, ``failed``, ``timeout``,
    ``interrupted``, ``not-waiting`` or ``planned`` (a dry run); the last description when there is one."""

    outcome: str
    description: dict | None = None

    @property
    def code(self) -> int:
        return {"in-service": OK, "not-waiting": OK, "planned": OK, "interrupted": INTERRUPTED}.get(
            self.outcome, FAILED
        )


def await_endpoint(
    clients: AwsClients, args, endpoint: str, expected_config: str, before: dict | None = None
) -> Settled:
    """Wait for the endpoint to settle on ``expected_config`` and say how it went.

    ``before`` (the description before an UpdateEndpoint) makes the wait ignore the old config
    still showing InService right after the request (see watch.wait_for_endpoint).
    """
    if clients.dry_run:  # nothing was sent: nothing to wait for
        return Settled("planned")
    if args.no_wait:
        say(f"Not waiting. Check it: sagebert status --endpoint {endpoint}")
        return Settled("not-waiting")
    final, last_reason = None, ""
    try:
        for event in watch.wait_for_endpoint(
            clients,
            endpoint,
            poll_interval=args.poll_interval,
            timeout=args.timeout,
            before=before,
            expected_config=expected_config,
        ):
            if isinstance(event, watch.StatusChange):
                say(f"==> {endpoint}: {event.status} ({duration(event.elapsed)})")
                last_reason = event.message or last_reason
            else:
                final = event.description
    except TimeoutError as exc:
        fail(f"Stopped waiting: {exc}. It continues; check it with sagebert status --endpoint {endpoint}.")
        explain_endpoint(clients, endpoint, {"FailureReason": last_reason})
        return Settled("timeout")
    except KeyboardInterrupt:
        print(f"\nStopped waiting; SageMaker carries on. Check: sagebert status --endpoint {endpoint}", file=sys.stderr)
        return Settled("interrupted")
    status, reason = final["EndpointStatus"], final.get("FailureReason") or "no reason given"
    if status == "UpdateRollbackFailed":
        fail(f"Endpoint {endpoint} is {status}: {reason}. Fix: {endpoints.rollback_failed_fix(endpoint)}")
        return Settled("failed", final)
    if status != "InService":
        fail(f"Endpoint {endpoint} is {status}: {reason}")
        explain_endpoint(clients, endpoint, final)
        return Settled("failed", final)
    if final["EndpointConfigName"] != expected_config:
        fail(f"The update of {endpoint} was rolled back; it still runs {final['EndpointConfigName']}: {reason}")
        explain_endpoint(clients, endpoint, final)
        return Settled("rolled-back", final)
    say(f"Endpoint {endpoint} is InService on {expected_config}.")
    say(f'Try it: sagebert invoke --endpoint {endpoint} "Just happened a terrible car crash"')
    return Settled("in-service", final)


def follow_transform(clients: AwsClients, name: str, poll_interval: float) -> int:
    """Show the job's status until it ends; 0 only if it Completed."""
    try:
        for event in watch.follow_transform_job(clients, name, poll_interval=poll_interval):
            if isinstance(event, watch.StatusChange):
                say(f"==> {name}: {event.status} ({duration(event.elapsed)})")
            else:
                job = event.description
    except KeyboardInterrupt:
        print(f"\nStopped waiting; the job keeps running: sagebert status --transform-job {name}", file=sys.stderr)
        return INTERRUPTED
    status = job["TransformJobStatus"]
    output = job["TransformOutput"]["S3OutputPath"]
    if status != "Completed":
        return fail(f"Transform job {name} {status}: {job.get('FailureReason') or 'no reason given'}")
    location = S3Location.parse(output)
    outputs = [key for key in storage.list_keys(clients, location) if key.endswith(".out")]
    say(f"Transform job {name} Completed: {len(outputs)} answer file(s) under {output}")
    for key in outputs:
        say(f"  s3://{location.bucket}/{key}")
    return OK


def trial_rows(trials: list[dict], metric: str) -> list[str]:
    """The trials as a table, best objective first."""
    reverse = metric_goal(metric) == "Maximize"

    def objective(trial: dict) -> float | None:
        return (trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")

    scored = sorted((t for t in trials if objective(t) is not None), key=objective, reverse=reverse)
    unscored = [t for t in trials if objective(t) is None]
    rows = []
    for trial in scored + unscored:
        value = objective(trial)
        tuned = ", ".join(f"{k}={v}" for k, v in sorted((trial.get("TunedHyperParameters") or {}).items()))
        rows.append(
            [trial["TrainingJobName"], trial["TrainingJobStatus"], "-" if value is None else f"{value:.4f}", tuned]
        )
    return render(["trial", "status", metric, "hyperparameters"], rows)


def print_trials(clients: AwsClients, job: dict) -> None:
    metric = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    for line in trial_rows(jobs.tuning_trials(clients, job["HyperParameterTuningJobName"]), metric):
        say(f"  {line}")
    summary = best_summary(job)
    best = summary.get("TrainingJobName")
    if best:
        value = (summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        shown = f" ({metric} {value:.4f})" if value is not None else ""
        say(
            f"Best: {best}{shown}. Deploy it: sagebert deploy --tuning-job {job['HyperParameterTuningJobName']} --endpoint NAME"
        )


def follow_tuning(clients: AwsClients, name: str, poll_interval: float) -> int:
    """Show trials as they start, end and report their objective; then the table and the best job."""
    try:
        for event in watch.follow_tuning_job(clients, name, poll_interval=poll_interval):
            if isinstance(event, watch.TrialChange):
                value = "" if event.objective is None else f"  objective {event.objective:.4f}"
                say(f"  trial {event.name:<40} {event.status}{value}")
            elif isinstance(event, watch.StatusChange):
                say(f"==> {name}: {event.status}" + (f": {event.message}" if event.message else ""))
            else:
                job = event.description
    except KeyboardInterrupt:
        print(
            f"\nStopped following; the tuning job keeps running: sagebert status --tuning-job {name}", file=sys.stderr
        )
        return INTERRUPTED
    print_trials(clients, job)
    status = job["HyperParameterTuningJobStatus"]
    if status == "Failed":
        return fail(f"Tuning job {name} Failed: {job.get('FailureReason') or 'no reason given'}")
    return OK if best_summary(job).get("TrainingJobName") else FAILED


def explain_endpoint(clients: AwsClients, endpoint: str, description: dict | None) -> None:
    """Say on stderr why an endpoint failed, as far as SageMaker and the container's log tell:
    the usual cause of its FailureReason, the container's own reason, the log's last lines."""
    try:
        found = watch.diagnose_endpoint(clients, endpoint, description)
    except ClientError as exc:  # most often no permission to read the logs: the failure itself is already said
        code = exc.response.get("Error", {}).get("Code", "error")
        warn(f"cannot read the endpoint's CloudWatch log ({code}); grant logs:DescribeLogStreams and logs:GetLogEvents")
        return
    lines = []
    if found.usual_cause:
        lines.append(f"  usual cause        {found.usual_cause}")
    if found.container_reason:
        lines.append(f"  container says     {found.container_reason}")
    if found.tail:
        lines.append(f"  last {len(found.tail)} log lines of {found.log_group}:")
        lines += [f"    [{line.host}] {line.message}" for line in found.tail]
    else:
        lines.append(f"  no log lines in {found.log_group} (no instance started the container)")
    print("\n".join(lines), file=sys.stderr, flush=True)
