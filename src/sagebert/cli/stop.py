"""`sagebert stop --training-job JOB`: StopTrainingJob, optionally waiting until it has stopped."""

from __future__ import annotations

from ..aws import jobs, watch
from ..aws.clients import AwsClients
from . import options
from .output import INTERRUPTED, OK, say


def register(sub) -> None:
    p = sub.add_parser("stop", help="stop a training job (StopTrainingJob)")
    p.add_argument("--training-job", required=True, metavar="JOB")
    p.add_argument("--wait", action="store_true", help="wait until it has stopped")
    options.waiting(p)
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    jobs.stop_training_job(clients, args.training_job)
    say(f"Stopping training job {args.training_job}: SageMaker sends SIGTERM, then SIGKILL after 120 s.")
    if not args.wait or clients.dry_run:  # a planned job does not exist: nothing to follow
        return OK
    try:
        for event in watch.follow_training_job(
            clients, args.training_job, poll_interval=args.poll_interval, logs=False
        ):
            if isinstance(event, watch.Finished):
                say(f"Training job {args.training_job} is {event.description['TrainingJobStatus']}.")
    except KeyboardInterrupt:
        return INTERRUPTED
    return OK
