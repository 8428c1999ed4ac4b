"""Checkpoint, interrupt and resume, in-process on the tiny BERT."""

import json
import logging

import pytest

from sagebert import checkpoints
from sagebert.environment import TrainingEnvironment
from sagebert.hyperparameters import load
from sagebert.training import Trainer, TrainingInterrupted, train
from support import make_opt_ml

HP = {
    "epochs": 2,
    "train_batch_size": 16,
    "eval_batch_size": 32,
    "log_interval": 100,
    "learning_rate": 1e-3,
    "checkpoint_steps": 3,
    "checkpoint_minutes": 0,
    "keep_checkpoints": 3,
}


@pytest.fixture
def job(tmp_path, tiny_bert):
    made = []

    def build(**hyperparameters):
        made.append(1)
        base = make_opt_ml(
            tmp_path / f"job{len(made)}",
            train_rows=160,
            test_rows=48,
            pretrained=tiny_bert,
            hyperparameters={**HP, **hyperparameters},
        )
        return TrainingEnvironment.read(base)

    return build


def stop_after(steps):
    """A should_stop that turns true once ``steps`` optimizer steps were taken (like a SIGTERM)."""
    holder = {}

    def should_stop():
        return holder["trainer"].state.global_step >= steps

    return holder, should_stop


def step_dir(env, step):
    """The checkpoint folder of ``step`` (its name ends with the configuration's fingerprint)."""
    [path] = env.checkpoint_dir.glob(f"step-{step:07d}-*")
    return path


def run_until_stopped(env, steps):
    holder, should_stop = stop_after(steps)
    trainer = Trainer(load(env.hyperparameters), env, should_stop)
    holder["trainer"] = trainer
    with pytest.raises(TrainingInterrupted) as info:
        trainer.run()
    return info.value


def test_an_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(job, caplog):
    reference = train(load(job().hyperparameters), job())
    env = job()
    stopped = run_until_stopped(env, 7)  # mid-epoch 1 (10 steps per epoch), between periodic checkpoints
    assert stopped.step == 7 and stopped.checkpoint == step_dir(env, 7)
    caplog.set_level(logging.INFO)
    resumed = train(load(env.hyperparameters), env)
    assert "resumed from step 7 of 20 (epoch 1, 7 batches into it)" in caplog.text
    assert resumed.global_step == reference.global_step == 20
    assert resumed.metrics["loss"] == pytest.approx(reference.metrics["loss"], abs=1e-6)
    assert resumed.metrics["confusion_matrix"] == reference.metrics["confusion_matrix"]
    assert [h["train_loss"] for h in resumed.history] == pytest.approx(
        [h["train_loss"] for h in reference.history], abs=1e-6
    )


def test_a_corrupt_newest_checkpoint_is_skipped_for_the_previous_one(job, caplog):
    env = job()
    run_until_stopped(env, 8)  # periodic checkpoints at 3 and 6, the stop's at 8
    torn = step_dir(env, 8)
    weights = torn / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a torn write
    caplog.set_level(logging.INFO)
    result = train(load(env.hyperparameters), env)
    assert f"skipping checkpoint {torn.name}: model.safetensors has 1000 bytes" in caplog.text
    assert "resumed from step 6 of 20" in caplog.text and result.global_step == 20


def test_unfinished_checkpoints_are_never_resumed(job, caplog):
    env = job()
    run_until_stopped(env, 4)
    unfinished = step_dir(env, 4)
    (unfinished / checkpoints.MANIFEST).unlink()  # died before the manifest
    leftover = env.checkpoint_dir / (".tmp-" + unfinished.name.replace("0000004", "0000005"))
    leftover.mkdir()  # died before the rename
    caplog.set_level(logging.INFO)
    Trainer(load(env.hyperparameters), env)
    assert f"skipping checkpoint {unfinished.name}: no manifest" in caplog.text
    assert "resumed from step 3 of 20" in caplog.text
    assert not leftover.exists()


def test_a_checkpoint_of_other_settings_is_neither_resumed_nor_deleted(job, caplog):
    env = job()
    run_until_stopped(env, 4)
    foreign = sorted(p.name for p in env.checkpoint_dir.iterdir())
    config = env.paths.hyperparameters_file
    config.write_text(json.dumps({**json.loads(config.read_text()), "seed": "7"}))
    env = TrainingEnvironment.read(env.paths.base)
    caplog.set_level(logging.INFO)
    result = train(load(env.hyperparameters), env)
    assert "2 checkpoint(s)" in caplog.text and "belong to a job with other settings" in caplog.text
    assert "resumed from" not in caplog.text and result.global_step == 20
    assert set(foreign) <= {p.name for p in env.checkpoint_dir.iterdir()}  # left as they were


def test_only_the_newest_checkpoints_are_kept(job):
    env = job(keep_checkpoints=2)
    train(load(env.hyperparameters), env)
    names = sorted(p.name.rsplit("-", 1)[0] for p in env.checkpoint_dir.iterdir())
    assert names == ["step-0000018", "step-0000020"]
    manifest = json.loads((step_dir(env, 20) / checkpoints.MANIFEST).read_text())
    assert set(manifest["files"]) == {
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "trainer_state.json",
        "rng-rank0.pt",
    }


def test_a_finished_run_resumed_again_rewrites_the_same_model(job, caplog):
    env = job()
    first = train(load(env.hyperparameters), env)
    caplog.set_level(logging.INFO)
    again = train(load(env.hyperparameters), env)
    assert "resumed from step 20 of 20" in caplog.text
    assert again.metrics["loss"] == first.metrics["loss"] and again.global_step == 20


def test_checkpointing_can_be_turned_off(job):
    env = job(keep_checkpoints=0)
    train(load(env.hyperparameters), env)
    assert not any(env.checkpoint_dir.iterdir())


def test_sigterm_checkpoints_then_exits_143_with_a_reason_that_says_how_to_resume(job, monkeypatch):
    import os
    import signal

    from sagebert.container.train_entry import main
    from sagebert.training import Trainer as RealTrainer

    env = job(checkpoint_steps=0)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(env.paths.base))
    due = RealTrainer._checkpoint_due

    def signal_at_step_3(self):
        if self.state.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, through the real handler
        return due(self)

    monkeypatch.setattr(RealTrainer, "_checkpoint_due", signal_at_step_3)
    original = signal.getsignal(signal.SIGTERM)
    assert main([]) == 143
    assert signal.getsignal(signal.SIGTERM) is original
    reason = env.paths.failure_file.read_text()
    # The signal arrives after step 3's stop check: the loop stops at the next step boundary.
    assert "stopped by SIGTERM at optimizer step 4 of 20" in reason and "same checkpoint location" in reason
    assert step_dir(env, 4).exists() and not (env.paths.model_dir / "model.safetensors").exists()
