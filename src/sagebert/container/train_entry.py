"""The training program the sagemaker-training toolkit runs (``python train.py``, no arguments).

It reads the job's configuration (the hyperparameters from hyperparameters.json, their one source,
parsed once and passed down), trains, and writes the model. On an error it writes a short
reason (what went wrong and how to fix it, no traceback) to /opt/ml/output/failure, logs the
traceback, and exits non-zero; the toolkit keeps an existing failure file as it is.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from .. import logs
from ..environment import TrainingEnvironment
from ..errors import HyperparameterError, SagebertError, write_failure_file
from ..hyperparameters import load as load_hyperparameters

log = logging.getLogger("sagebert.train")

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_STOPPED = 143  # 128 + SIGTERM, as a process killed by it would report


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _stop_on_sigterm() -> tuple[threading.Event, object]:
    """SIGTERM (docker stop, StopTrainingJob, MaxRuntime, spot interruption) asks the loop to
    checkpoint at its next optimizer step and stop; SageMaker allows 120 s before SIGKILL.
    Returns the event and the handler it replaced."""
    stop = threading.Event()

    def handler(signum, _frame):
        if not stop.is_set():
            log.warning("received signal %d: checkpointing at the next optimizer step, then stopping", signum)
        stop.set()

    return stop, signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one training job; return the process exit code."""
    stop, previous_handler = _stop_on_sigterm()
    try:
        return _run(stop, argv)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _run(stop: threading.Event, argv: Sequence[str] | None) -> int:
    logs.configure()
    if not _is_main_process():
        logging.getLogger().setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else list(argv)
    env = None
    try:
        if argv:
            # A second source would have to be merged with the file, and the two disagree on encoding.
            raise HyperparameterError(
                f"The training program takes no arguments (got {' '.join(argv)[:200]!r}).",
                "Put hyperparameters in /opt/ml/input/config/hyperparameters.json, as SageMaker does "
                "(local_test/train_local.sh IMAGE name=value writes it).",
            )
        env = TrainingEnvironment.read()
        hyperparameters = load_hyperparameters(env.hyperparameters)
        from ..training import TrainingInterrupted, train  # torch only once the inputs are known to be sound
        from .driver_check import check_this_host

        driver = check_this_host(training=True)
        if not driver.ok:
            raise SagebertError(driver.message)
        try:
            train(hyperparameters, env, stop.is_set)
        except TrainingInterrupted as exc:
            log.warning("%s", exc)
            reason = f"{exc} Start the job again with the same checkpoint location (CheckpointConfig) to resume."
            write_failure_file(env.paths.failure_file, reason)
            return EXIT_STOPPED
        return 0
    except SagebertError as exc:
        reason = str(exc)
        log.error("training failed: %s", reason)
        code = EXIT_USER_ERROR
    except Exception as exc:
        log.exception("training failed with an internal error")
        reason = (
            f"Internal error: {type(exc).__name__}: {exc}. The traceback is in the training log "
            "(CloudWatch log group /aws/sagemaker/TrainingJobs)."
        )
        code = EXIT_INTERNAL_ERROR
    if env is None:
        from ..environment import SageMakerPaths, base_dir

        failure_file = SageMakerPaths(base_dir()).failure_file
    else:
        failure_file = env.paths.failure_file
    write_failure_file(failure_file, reason)
    return code


if __name__ == "__main__":
    sys.exit(main())
