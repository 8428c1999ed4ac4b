"""`sagebert compare JOB [JOB ...]`: the final metrics of training jobs side by side."""

from __future__ import annotations

from ..aws import endpoints, jobs, sources
from ..aws.clients import AwsClients
from ..aws.gate import comparison_table
from .output import OK, say


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
    labels, columns, notes = [], [], []
    if args.endpoint:
        label, metrics, where = sources.serving_metrics(clients, endpoints.running(clients, args.endpoint))
        labels.append(f"{args.endpoint} ({label})")
        columns.append(metrics)
        notes.append(f"{args.endpoint}: {where}")
    for name in args.jobs:
        found = jobs.job_metrics(clients, jobs.describe_training_job(clients, name))
        labels.append(name)
        columns.append(found.values)
        notes.append(f"{name}: {found.source}")
    for line in comparison_table(labels, columns):
        say(line)
    for note in notes:
        say(f"  ({note})")
    return OK
