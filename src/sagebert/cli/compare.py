"""`sagebert compare JOB [JOB ...]`: the final metrics of training jobs side by side."""

from __future__ import annotations

from ..aws import endpoints, jobs, sources
from ..aws.clients import AwsClients
from ..aws.gate import comparison_table
from .output import OK, say, warn


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="the final metrics of training jobs side by side",
        description=(
            "Each job's final metrics: DescribeTrainingJob's FinalMetricDataList, else the metrics.json in its "
            "model.tar.gz. --endpoint adds the model that endpoint serves."
        ),
    )
    p.add_argument("jobs", nargs="+", metavar="JOB")
    p.add_argument("--endpoint", metavar="NAME", help="also the model this endpoint serves")
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    labels, columns, notes, test_data = [], [], [], []
    if args.endpoint:
        running = endpoints.running(clients, args.endpoint)
        label, serving, where = sources.serving_evidence(clients, running, read_archive=False)
        labels.append(f"{args.endpoint} ({label})")
        columns.append(serving.metrics)
        notes.append(f"{args.endpoint}: {where}")
        test_data.append(serving.eval_data)
    for name in args.jobs:
        found = jobs.job_metrics(clients, jobs.describe_training_job(clients, name))
        labels.append(name)
        columns.append(found.values)
        notes.append(f"{name}: {found.source}")
        test_data.append(found.eval_data)
    for line in comparison_table(labels, columns):
        say(line)
    for digest, note in zip(test_data, notes, strict=True):
        say(f"  ({note}" + (f"; test data sha256 {digest[:12]}...)" if digest else ")"))
    known = {digest for digest in test_data if digest}
    if len(known) > 1:
        # Scores on different test sets say nothing about which model is better (the gate refuses).
        warn("these models were scored on different test data: their eval metrics are not comparable")
    return OK
