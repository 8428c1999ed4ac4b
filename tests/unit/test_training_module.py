"""The launcher's own logic: whom SIGTERM reaches, and the bounded wait for other hosts."""

import logging

import pytest

from sagebert.container.training_module import (
    HostsUnresolved,
    host_wait_seconds,
    is_training_process,
    processes_per_host,
    wait_for_hosts,
)
from sagebert.errors import SagebertError
from sagebert.hyperparameters import Hyperparameters, load

# Command lines as `ps` shows them in the image (the toolkit's runners, torchrun, the S3 sync fork).
SINGLE = ["/opt/venv/bin/python3.11", "--", "train.py", "--epochs", "1"]
AGENT = ["/opt/venv/bin/python3.11", "/opt/venv/bin/torchrun", "--nnodes", "1", "--nproc_per_node", "2", "train.py"]
AGENT_AS_MODULE = ["python", "-m", "torch.distributed.run", "--nproc_per_node", "2", "train.py"]
WORKER = ["/opt/venv/bin/python3.11", "-u", "train.py", "--processes_per_host", "2"]
TOOLKIT = ["/opt/venv/bin/python3.11", "/opt/venv/bin/train"]  # PID 1 and its S3-sync fork


@pytest.mark.parametrize(
    "cmdline, signalled",
    [(SINGLE, True), (WORKER, True), (AGENT, False), (AGENT_AS_MODULE, False), (TOOLKIT, False), ([], False)],
)
def test_sigterm_goes_to_the_training_program_only(cmdline, signalled):
    assert is_training_process(cmdline) is signalled


def test_processes_per_host_defaults_to_one_per_gpu_or_one():
    assert processes_per_host(Hyperparameters(), 0) == 1 and processes_per_host(Hyperparameters(), 4) == 4
    assert processes_per_host(load({"processes_per_host": "2"}), 0) == 2


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def resolver(resolvable_after: dict, time: FakeTime):
    def resolve(host):
        if time.now < resolvable_after.get(host, float("inf")):
            raise OSError(f"unknown host {host}")
        return "10.0.0.1"

    return resolve


def test_the_wait_ends_when_every_host_resolves_and_says_what_it_waits_for(caplog):
    time = FakeTime()
    caplog.set_level(logging.INFO)
    resolve = resolver({"algo-1": 0, "algo-2": 45}, time)
    wait_for_hosts(["algo-1", "algo-2"], 600, resolve=resolve, clock=time.clock, sleep=time.sleep)
    assert 45 <= time.now < 47
    assert "waiting for the host name(s) algo-1, algo-2 to resolve (up to 600 s" in caplog.text
    assert "still waiting for algo-2" in caplog.text and "all 2 host names resolve" in caplog.text


def test_the_wait_is_bounded_and_names_the_hosts_that_never_resolved():
    time = FakeTime()
    resolve = resolver({"algo-1": 0}, time)
    with pytest.raises(HostsUnresolved) as info:
        wait_for_hosts(["algo-1", "algo-2", "algo-3"], 20, resolve=resolve, clock=time.clock, sleep=time.sleep)
    assert 20 <= time.now <= 21
    assert "algo-2, algo-3 of this 3-host job (resourceconfig.json) did not resolve: 20 s passed" in str(info.value)
    assert "--hostname" in str(info.value) and len(str(info.value)) <= 1024


def test_a_stop_ends_the_wait():
    time = FakeTime()
    with pytest.raises(HostsUnresolved, match="the job was stopped"):
        wait_for_hosts(
            ["algo-2"],
            600,
            should_stop=lambda: time.now > 5,
            resolve=resolver({}, time),
            clock=time.clock,
            sleep=time.sleep,
        )
    assert time.now < 10


def test_the_wait_is_configurable():
    assert host_wait_seconds({}) == 600
    assert host_wait_seconds({"SAGEBERT_HOST_WAIT_SECONDS": "5"}) == 5
    with pytest.raises(SagebertError, match="SAGEBERT_HOST_WAIT_SECONDS is 'soon'"):
        host_wait_seconds({"SAGEBERT_HOST_WAIT_SECONDS": "soon"})
