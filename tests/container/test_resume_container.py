"""Interrupt `docker run IMAGE train` (docker stop = SIGTERM, docker kill = SIGKILL) and run it
again on the same /opt/ml/checkpoints: it resumes, in the same data order, and ends like an
uninterrupted run."""

import json
import re
import shutil
import tarfile

import pytest

from support import TrainingContainer, docker_run, make_opt_ml

HP = {
    "epochs": 1,
    "train_batch_size": 8,
    "log_interval": 1,
    "learning_rate": 1e-3,
    "checkpoint_steps": 5,
    "checkpoint_minutes": 0,
    "keep_checkpoints": 3,
}
STEPS = 150  # 1200 examples / 8


def fresh(tmp_path_factory, tiny_bert, name, pretrained=None):
    return make_opt_ml(
        tmp_path_factory.mktemp(name) / "opt_ml",
        train_rows=1200,
        test_rows=64,
        pretrained=pretrained or tiny_bert,
        hyperparameters=HP,
    )


def as_model_tar_gz(model_dir, folder):
    """A `pretrained` channel holding the model as one model.tar.gz (as a training job's output is)."""
    folder.mkdir()
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(image, tiny_bert, tmp_path_factory):
    base = fresh(tmp_path_factory, tiny_bert, "uninterrupted")
    run = docker_run(image, "train", opt_ml=base)
    assert run.returncode == 0, run.output[-2000:]
    return json.loads((base / "model" / "metrics.json").read_text())


def interrupt(image, base, signal_name):
    """Start training, deliver ``signal_name`` once step 12 is logged; the container's log, exit code
    and the paths it left in its own file system."""
    container = TrainingContainer(image, base)
    try:
        container.wait_for_line(r"epoch=1 step=12 ")
        container.signal(signal_name)
        code = container.wait()
        return container.logs(), code, container.added_paths()
    finally:
        container.remove()


def resume(image, base):
    run = docker_run(image, "train", opt_ml=base)
    assert run.returncode == 0, run.output[-3000:]
    step = int(re.search(r"resumed from step (\d+) of (\d+)", run.output).group(1))
    return run, step, json.loads((base / "model" / "metrics.json").read_text())


def test_a_pretrained_model_tar_gz_job_stopped_by_sigterm_resumes_to_the_same_result(
    image, tiny_bert, tmp_path_factory, uninterrupted
):
    # The base model as a model.tar.gz: unpacked afresh by each run, recognised by its content.
    archive = as_model_tar_gz(tiny_bert, tmp_path_factory.mktemp("archive") / "pretrained")
    base = fresh(tmp_path_factory, tiny_bert, "stopped", pretrained=archive)
    log, code, left = interrupt(image, base, "TERM")
    assert code != 0
    assert "unpacked model.tar.gz" in log and not [p for p in left if "sagebert-job-" in p]  # removed at the end
    stopped_at = int(re.search(r"stopped by SIGTERM at optimizer step (\d+) of 150", log).group(1))
    assert 12 < stopped_at < STEPS
    assert "forwarding it to 1 training process(es)" in log  # the toolkit's PID 1 passed the signal on
    assert "base model: pretrained channel (model.tar.gz)" in log
    assert "Start the job again with the same checkpoint location" in (base / "output" / "failure").read_text()
    (base / "output" / "failure").unlink()

    run, resumed_at, metrics = resume(image, base)
    assert resumed_at == stopped_at  # nothing lost: SIGTERM checkpointed the very step it stopped at
    assert f"resumed from step {stopped_at} of {STEPS}" in run.output
    assert metrics["optimizer_steps"] == uninterrupted["optimizer_steps"] == STEPS
    assert metrics["loss"] == pytest.approx(uninterrupted["loss"], abs=1e-4)
    assert metrics["accuracy"] == pytest.approx(uninterrupted["accuracy"], abs=1e-9)


def test_docker_kill_loses_at_most_one_checkpoint_interval(image, tiny_bert, tmp_path_factory, uninterrupted):
    base = fresh(tmp_path_factory, tiny_bert, "killed")
    log, code, _ = interrupt(image, base, "KILL")
    assert code == 137
    last_logged = max(int(s) for s in re.findall(r"epoch=1 step=(\d+) train_loss", log))
    run, resumed_at, metrics = resume(image, base)
    assert resumed_at % 5 == 0 and last_logged - 5 <= resumed_at <= last_logged  # one interval at most
    assert metrics["optimizer_steps"] == uninterrupted["optimizer_steps"]
    assert metrics["loss"] == pytest.approx(uninterrupted["loss"], abs=1e-4)


def test_a_corrupt_newest_checkpoint_is_skipped(image, tiny_bert, tmp_path_factory, uninterrupted):
    base = fresh(tmp_path_factory, tiny_bert, "corrupt")
    interrupt(image, base, "TERM")
    folders = sorted((base / "checkpoints").glob("step-*"))
    newest, previous = folders[-1], folders[-2]
    (newest / "optimizer.bin").write_bytes(b"torn")
    shutil.rmtree(base / "output")
    run, resumed_at, metrics = resume(image, base)
    assert f"skipping checkpoint {newest.name}: optimizer.bin has 4 bytes" in run.output
    assert resumed_at == int(previous.name.split("-")[1])
    assert metrics["optimizer_steps"] == uninterrupted["optimizer_steps"]
