"""Two training containers, algo-1 and algo-2, on a private Docker network: data-parallel
training through the toolkit's torchrun runner, one model, metrics over the whole test set."""

import json
import re
import subprocess
import uuid

import pytest

from support import TrainingContainer, docker_run, make_opt_ml

HP = {"epochs": 2, "learning_rate": 1e-3, "log_interval": 10, "seed": 3}
HOSTS = ["algo-1", "algo-2"]


@pytest.fixture
def network():
    name = f"sagebert-net-{uuid.uuid4().hex[:6]}"
    subprocess.run(["docker", "network", "create", name], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "network", "rm", name], capture_output=True)


def test_two_hosts_train_one_model_like_one_host_with_the_same_global_batch(image, tiny_bert, tmp_path, network):
    trees = {
        host: make_opt_ml(
            tmp_path / host,
            train_rows=640,
            test_rows=96,
            pretrained=tiny_bert,
            hyperparameters={**HP, "train_batch_size": 8},
            hosts=HOSTS,
            current_host=host,
        )
        for host in HOSTS
    }
    containers = {host: TrainingContainer(image, trees[host], hostname=host, network=network) for host in HOSTS}
    try:
        codes = {host: c.wait() for host, c in containers.items()}
        logs = {host: c.logs() for host, c in containers.items()}
    finally:
        for c in containers.values():
            c.remove()
    assert codes == {"algo-1": 0, "algo-2": 0}, logs["algo-1"][-3000:] + logs["algo-2"][-3000:]
    assert (
        "torchrun --nnodes 2 --nproc_per_node 1 --master_addr algo-1 --master_port 7777 --node_rank 0" in logs["algo-1"]
    )
    assert "--node_rank 1" in logs["algo-2"]
    assert "processes: 2" in logs["algo-1"]

    # One model: only rank 0 (on algo-1) writes it; metrics cover the WHOLE test channel.
    assert (trees["algo-1"] / "model" / "model.safetensors").exists()
    assert not any((trees["algo-2"] / "model").iterdir())
    distributed = json.loads((trees["algo-1"] / "model" / "metrics.json").read_text())
    assert distributed["examples"] == 96

    # The same global batch (2 x 8) on one host.
    single = make_opt_ml(
        tmp_path / "single",
        train_rows=640,
        test_rows=96,
        pretrained=tiny_bert,
        hyperparameters={**HP, "train_batch_size": 16},
    )
    run = docker_run(image, "train", opt_ml=single)
    assert run.returncode == 0, run.output[-2000:]
    one_host = json.loads((single / "model" / "metrics.json").read_text())
    assert distributed["optimizer_steps"] == one_host["optimizer_steps"] == 80
    final_train_loss = lambda log: float(re.findall(r"epoch=2 step=\d+ train_loss=([0-9.]+) eval_loss", log)[-1])  # noqa: E731
    assert final_train_loss(logs["algo-1"]) == pytest.approx(final_train_loss(run.output), abs=0.05)
    assert distributed["loss"] == pytest.approx(one_host["loss"], abs=0.05)


def test_a_two_process_job_stopped_by_sigterm_checkpoints_and_resumes_at_that_step(image, tiny_bert, tmp_path):
    """docker stop -t 120, as StopTrainingJob: SIGTERM reaches both workers, not torchrun's agent
    (which would stop them with only 30 s to spare); they checkpoint the step they are at."""
    hyperparameters = {
        "epochs": 1,
        "train_batch_size": 8,
        "processes_per_host": 2,
        "log_interval": 1,
        "learning_rate": 1e-3,
        "checkpoint_steps": 5,
        "checkpoint_minutes": 0,
    }
    base = make_opt_ml(
        tmp_path / "opt_ml", train_rows=640, test_rows=64, pretrained=tiny_bert, hyperparameters=hyperparameters
    )
    steps = 40  # 640 rows / 8 per batch / 2 processes
    container = TrainingContainer(image, base)
    try:
        container.wait_for_line(r"checkpoint step-0000005-\S+ written")
        container.stop(grace_seconds=120)
        code, log = container.wait(), container.logs()
    finally:
        container.remove()
    assert code not in (0, 137), log[-3000:]  # it exited by itself, before any SIGKILL
    assert "forwarding it to 2 training process(es)" in log
    assert "death signal" not in log  # torchrun's agent was not told to stop its workers
    stopped_at = int(re.search(rf"stopped by SIGTERM at optimizer step (\d+) of {steps}", log).group(1))
    assert 5 <= stopped_at < steps
    assert "Start the job again" in (base / "output" / "failure").read_text()
    (base / "output" / "failure").unlink()

    run = docker_run(image, "train", opt_ml=base)
    assert run.returncode == 0, run.output[-3000:]
    assert f"resumed from step {stopped_at} of {steps}" in run.output
    assert json.loads((base / "model" / "metrics.json").read_text())["optimizer_steps"] == steps
