"""The sagemaker-training toolkit's framework module for this image.

The toolkit's ``train`` (PID 1 of a training container) reads /opt/ml, sets the SM_* variables
and calls ``main()`` here (ENV SAGEMAKER_TRAINING_MODULE=sagebert.container.training_module:main).
``main()`` hands the job to the toolkit's own runners: one plain process, or torchrun
(the toolkit's TorchDistributed runner) when the job has several hosts or several processes per
host. The program they run is /opt/sagebert/program/train.py, which the toolkit copies into
/opt/ml/code; hyperparameters reach it as command-line arguments.

The toolkit does not pass SIGTERM on to the program (sagemaker-training-toolkit issue #125), so
``main()`` forwards it to every descendant: `docker stop`, StopTrainingJob, MaxRuntime and spot
interruptions then reach the training loop, which checkpoints and exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("sagebert.container")

PROGRAM_DIR = Path(os.environ.get("SAGEBERT_PROGRAM_DIR", "/opt/sagebert/program"))
PROGRAM = "train.py"
PROCESSES_PER_HOST = "processes_per_host"


def processes_per_host(hyperparameters: dict, num_gpus: int) -> int:
    """The ``processes_per_host`` hyperparameter; 0 or absent = one per GPU, else one.

    A value that does not parse is left for the training program to reject with its message.
    """
    value = hyperparameters.get(PROCESSES_PER_HOST, 0)
    try:
        requested = int(json.loads(value) if isinstance(value, str) else value)
    except (TypeError, ValueError):
        requested = 0
    if requested > 0:
        return requested
    return max(int(num_gpus), 1)


def _forward_sigterm_to_children() -> None:
    import psutil

    def forward(signum, _frame):
        children = psutil.Process().children(recursive=True)
        log.warning("received signal %d: forwarding it to %d training process(es)", signum, len(children))
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)


def _interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def main() -> None:
    """Run the training program through the toolkit's runner (called by the toolkit's ``train``)."""
    from sagemaker_training import entry_point, environment, runner

    env = environment.Environment()
    _forward_sigterm_to_children()
    per_host = processes_per_host(env.hyperparameters, env.num_gpus)
    distributed = len(env.hosts) > 1 or per_host > 1
    if distributed:
        # gloo (CPU) picks its interface from this variable; the toolkit sets NCCL's itself.
        if _interface_exists(env.network_interface_name):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", env.network_interface_name)
        log.info(
            "data-parallel training: %d host(s) x %d process(es), master %s",
            len(env.hosts),
            per_host,
            env.master_hostname,
        )
    # capture_error=True: entry_point.run passes (wait, capture_error) positionally and the
    # TorchDistributed runner takes them in the opposite order; only True/True means the same to both.
    entry_point.run(
        uri=str(PROGRAM_DIR),
        user_entry_point=PROGRAM,
        args=env.to_cmd_args(),
        env_vars=env.to_env_vars(),
        capture_error=True,
        runner_type=runner.TorchDistributedRunnerType if distributed else runner.ProcessRunnerType,
        extra_opts={"sagemaker_mpi_num_of_processes_per_host": per_host},
    )
