"""The sagemaker-training toolkit's framework module for this image: the launcher, one per host.

The toolkit's ``train`` (PID 1 of a training container) reads /opt/ml, sets the SM_* variables
and calls ``main()`` here (ENV SAGEMAKER_TRAINING_MODULE=sagebert.container.training_module:main).
``main()`` hands the job to the toolkit's own runners: one plain process, or torchrun
(the toolkit's TorchDistributed runner) when the job has several hosts or several processes per
host. The program they run is /opt/sagebert/program/train.py, which the toolkit copies into
/opt/ml/code. It gets no command-line arguments: the toolkit's default would repeat the
hyperparameters as ``--name str(value)``, a second copy in another encoding; the program reads
them from hyperparameters.json, their one source, as the launcher does here.

Around that, the launcher:
- forwards SIGTERM to the training processes, and only to them: the toolkit does not pass
  signals on (sagemaker-training-toolkit issue #125), and torchrun's agent, if signalled, would
  kill its workers 30 s later while they may need longer to checkpoint inside SageMaker's 120 s;
  the toolkit's S3 sync process is left alone too;
- parses the hyperparameters (sagebert.hyperparameters.load) before anything starts, so a bad
  value fails the job at once, with the same reason the program would give;
- waits for the other hosts' names to resolve only when there are other hosts, saying what it
  waits for, and fails with a reason after SAGEBERT_HOST_WAIT_SECONDS (the toolkit's own wait is
  silent and 15 minutes long, and it waits for this container's own name even when alone);
- gives the job a scratch folder (pretrained archives are unpacked there) and removes it at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..environment import SageMakerPaths, TrainingEnvironment, base_dir
from ..errors import SagebertError, write_failure_file
from ..hyperparameters import Hyperparameters
from ..hyperparameters import load as load_hyperparameters
from ..modeling import SCRATCH_DIR_ENV

log = logging.getLogger("sagebert.container")

PROGRAM_DIR = Path(os.environ.get("SAGEBERT_PROGRAM_DIR", "/opt/sagebert/program"))
PROGRAM = "train.py"
HOST_WAIT_ENV = "SAGEBERT_HOST_WAIT_SECONDS"
DEFAULT_HOST_WAIT_SECONDS = 600
# torchrun's agent gives its workers this long to exit once it stops them (e.g. after one failed);
# its default, 30 s, is shorter than a checkpoint of a large model may take.
AGENT_SHUTDOWN_TIMEOUT_ENV = "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"
AGENT_SHUTDOWN_TIMEOUT_SECONDS = 110


def processes_per_host(hyperparameters: Hyperparameters, num_gpus: int) -> int:
    """Training processes on this host: the ``processes_per_host`` hyperparameter, or for 0 one per
    GPU (one on a host without GPUs)."""
    if hyperparameters.processes_per_host > 0:
        return hyperparameters.processes_per_host
    return max(int(num_gpus), 1)


def is_training_process(cmdline: Sequence[str]) -> bool:
    """Whether a process runs the training program itself (not torchrun's agent, which also names it)."""
    names = [Path(arg).name for arg in cmdline]
    agent = "torchrun" in names[:2] or "torch.distributed.run" in cmdline[:3]
    return PROGRAM in names and not agent


def _forward_sigterm_to_training_processes(stopping: threading.Event) -> None:
    import psutil

    def forward(signum, _frame):
        stopping.set()
        targets = []
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if is_training_process(process.cmdline()):
                    targets.append(process)
        log.warning("received signal %d: forwarding it to %d training process(es)", signum, len(targets))
        for process in targets:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)


class HostsUnresolved(SagebertError):
    """Other hosts of a multi-host job never became reachable by name."""


def host_wait_seconds(environ=os.environ) -> float:
    """How long to wait for the other hosts' names (SAGEBERT_HOST_WAIT_SECONDS, default 600)."""
    value = environ.get(HOST_WAIT_ENV, "")
    try:
        seconds = float(value) if value else DEFAULT_HOST_WAIT_SECONDS
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise SagebertError(
            f"{HOST_WAIT_ENV} is {value!r}; it must be a number of seconds.",
            f"Set {HOST_WAIT_ENV} to e.g. 600, or leave it unset.",
        )
    return seconds


def wait_for_hosts(
    hosts: Sequence[str],
    timeout: float,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    resolve: Callable[[str], object] = socket.gethostbyname,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every name in ``hosts`` resolves; HostsUnresolved after ``timeout`` seconds."""
    started = clock()
    pending = list(hosts)
    log.info(
        "waiting for the host name(s) %s to resolve (up to %.0f s; %s)", ", ".join(pending), timeout, HOST_WAIT_ENV
    )
    last_report = started
    while True:
        pending = [host for host in pending if not _resolves(host, resolve)]
        if not pending:
            log.info("all %d host names resolve", len(hosts))
            return
        waited = clock() - started
        if waited >= timeout or should_stop():
            cause = "the job was stopped" if should_stop() else f"{timeout:.0f} s passed"
            raise HostsUnresolved(
                f"The host name(s) {', '.join(pending)} of this {len(hosts)}-host job (resourceconfig.json) "
                f"did not resolve: {cause} while waiting for them.",
                "On SageMaker, start the job again (its hosts name themselves). With docker run, give each "
                "container its host's name (--hostname and --network-alias on a shared Docker network), or "
                f"list one host in resourceconfig.json; {HOST_WAIT_ENV} sets how long to wait.",
            )
        if clock() - last_report >= 30:
            log.info("still waiting for %s (%.0f s of %.0f s)", ", ".join(pending), waited, timeout)
            last_report = clock()
        sleep(min(1.0, max(timeout - waited, 0.0)))


def _resolves(host: str, resolve: Callable[[str], object]) -> bool:
    try:
        resolve(host)
    except OSError:
        return False
    return True


def _interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def main() -> None:
    """Run the training program through the toolkit's runner (called by the toolkit's ``train``)."""
    from sagemaker_training import environment, errors

    env = environment.Environment()
    stopping = threading.Event()
    _forward_sigterm_to_training_processes(stopping)
    try:
        per_host = processes_per_host(load_hyperparameters(TrainingEnvironment.read().hyperparameters), env.num_gpus)
        if len(env.hosts) > 1:
            wait_for_hosts(env.hosts, host_wait_seconds(), should_stop=stopping.is_set)
    except SagebertError as exc:
        reason = write_failure_file(SageMakerPaths(base_dir()).failure_file, str(exc))
        log.error("training failed: %s", reason)
        raise errors.ClientError(reason) from None  # the toolkit reports the failure, keeping our reason
    distributed = len(env.hosts) > 1 or per_host > 1
    if distributed:
        # gloo (CPU) picks its interface from this variable; the toolkit sets NCCL's itself.
        if _interface_exists(env.network_interface_name):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", env.network_interface_name)
        os.environ.setdefault(AGENT_SHUTDOWN_TIMEOUT_ENV, str(AGENT_SHUTDOWN_TIMEOUT_SECONDS))
        log.info(
            "data-parallel training: %d host(s) x %d process(es), master %s",
            len(env.hosts),
            per_host,
            env.master_hostname,
        )
    scratch = Path(tempfile.mkdtemp(prefix="sagebert-job-"))
    os.environ[SCRATCH_DIR_ENV] = str(scratch)
    try:
        _run_program(env, per_host, distributed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_program(env, per_host: int, distributed: bool) -> None:
    """The toolkit's ``entry_point.run``, without its host-name wait (``main`` waits, when there is reason to)."""
    from sagemaker_training import entry_point, environment, files, process, torch_distributed

    env_vars = env.to_env_vars()
    files.download_and_extract(uri=str(PROGRAM_DIR), path=environment.code_dir)
    entry_point.install(PROGRAM, environment.code_dir, capture_error=True)
    environment.write_env_vars(env_vars)
    # The runners are built here, not with the toolkit's runner.get: that replaces an empty argument
    # list with env.to_cmd_args(), and the program must get none (see the module's docstring).
    if distributed:
        program = torch_distributed.TorchDistributedRunner(
            PROGRAM,
            [],
            env_vars,
            per_host,
            env.master_hostname,
            env.distribution_hosts,
            env.current_host,
            env.network_interface_name,
            instance_type=env.current_instance_type,
        )
    else:
        program = process.ProcessRunner(PROGRAM, [], env_vars, per_host)
    # Keywords: the process runner and the torchrun runner take (wait, capture_error) in opposite orders.
    program.run(wait=True, capture_error=True)
