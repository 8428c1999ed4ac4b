"""Checkpoint, interrupt and resume, in-process on the tiny BERT."""

import json
import logging
import shutil
import tarfile

import pytest
import torch

from sagebert.environment import TrainingEnvironment
from sagebert.hyperparameters import load
from sagebert.training import TrainingInterrupted, checkpoints, fingerprint, train
from sagebert.training.loop import LoopState, optimizer_step
from sagebert.training.resume import CheckpointStore
from support import REPO, make_opt_ml, make_tiny_bert

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
def job(tmp_path, tiny_bert, monkeypatch):
    made = []
    monkeypatch.setenv("SAGEBERT_SCRATCH_DIR", str(tmp_path / "scratch"))

    def build(pretrained=tiny_bert, **hyperparameters):
        made.append(1)
        base = make_opt_ml(
            tmp_path / f"job{len(made)}",
            train_rows=160,
            test_rows=48,
            pretrained=pretrained,
            hyperparameters={**HP, **hyperparameters},
        )
        return TrainingEnvironment.read(base)

    return build


def stop_after(steps):
    """A should_stop that turns true at the ``steps``-th optimizer step (the loop asks once per step), like a SIGTERM."""
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) >= steps

    return should_stop


def step_dir(env, step):
    """The checkpoint folder of ``step`` (its name ends with the configuration's fingerprint)."""
    [path] = env.checkpoint_dir.glob(f"step-{step:07d}-*")
    return path


def run_until_stopped(env, steps):
    with pytest.raises(TrainingInterrupted) as info:
        train(load(env.hyperparameters), env, stop_after(steps))
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
    run_until_stopped(env, 1)
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
    assert (
        "2 checkpoint(s)" in caplog.text
        and "belong to a job with other code, base model, data or settings" in caplog.text
    )
    assert "resumed from" not in caplog.text and result.global_step == 20
    assert set(foreign) <= {p.name for p in env.checkpoint_dir.iterdir()}  # left as they were


def test_a_checkpoint_written_by_other_code_is_not_resumed(job, caplog, monkeypatch):
    env = job()
    run_until_stopped(env, 4)
    monkeypatch.setattr(fingerprint, "code_digest", lambda: "the source after an edit")
    caplog.set_level(logging.INFO)
    assert train(load(env.hyperparameters), env).global_step == 20
    assert "resumed from" not in caplog.text and "belong to a job with other code" in caplog.text


def test_the_code_digest_changes_with_any_source_file(tmp_path):
    package = shutil.copytree(REPO / "src" / "sagebert", tmp_path / "sagebert")
    before = fingerprint.source_digest(package)
    assert before == fingerprint.source_digest(package)
    with open(package / "training" / "loop.py", "a") as handle:
        handle.write("\n# a change\n")
    assert fingerprint.source_digest(package) != before


def test_a_base_model_with_other_content_at_the_same_path_is_not_resumed(job, tmp_path, caplog):
    base_model = shutil.copytree(make_tiny_bert(tmp_path / "base"), tmp_path / "base-copy")
    env = job(pretrained=base_model)
    run_until_stopped(env, 4)
    channel = env.paths.channel_dir("pretrained")
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(1)  # the same architecture and path, other weights
    other = AutoModelForSequenceClassification.from_config(
        AutoModelForSequenceClassification.from_pretrained(channel).config
    )
    other.save_pretrained(channel)
    caplog.set_level(logging.INFO)
    train(load(env.hyperparameters), env)
    assert "resumed from" not in caplog.text and "belong to a job with other code, base model" in caplog.text


@pytest.mark.parametrize("change", ["one letter of a text", "one label"])
def test_training_data_with_other_content_at_the_same_path_and_size_is_not_resumed(job, caplog, change):
    import os

    env = job()
    run_until_stopped(env, 4)
    train_csv = env.paths.channel_dir("training") / "train.csv"
    before, stat = train_csv.read_bytes(), train_csv.stat()
    data = bytearray(before)
    label_at = data.index(b"\n") + 1  # the first row: "label,sentence"
    if change == "one label":
        data[label_at] = ord("1") if data[label_at] == ord("0") else ord("0")
    else:
        at = next(i for i in range(label_at + 2, len(data)) if chr(data[i]).isascii() and chr(data[i]).isalpha())
        data[at] = ord("q") if data[at] != ord("q") else ord("z")
    train_csv.write_bytes(bytes(data))
    os.utime(train_csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time: only the content differs
    assert train_csv.stat().st_size == stat.st_size and train_csv.read_bytes() != before
    caplog.set_level(logging.INFO)
    assert train(load(env.hyperparameters), env).global_step == 20
    assert "resumed from" not in caplog.text and "belong to a job with other code, base model, data" in caplog.text


def test_a_pretrained_model_tar_gz_is_unpacked_once_and_its_job_resumes(job, tiny_bert, tmp_path, caplog):
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "model.tar.gz", "w:gz") as tar:
        for path in sorted(tiny_bert.iterdir()):
            tar.add(path, arcname=path.name)
    env = job(pretrained=archive_dir)
    caplog.set_level(logging.INFO)
    stopped = run_until_stopped(env, 4)
    assert "unpacked model.tar.gz" in caplog.text
    caplog.clear()
    result = train(load(env.hyperparameters), env)
    assert f"resumed from step {stopped.step} of 20" in caplog.text and result.global_step == 20
    assert "unpacked model.tar.gz" not in caplog.text  # the same content: already there
    assert len([p for p in (tmp_path / "scratch").iterdir() if p.is_dir()]) == 1
    recorded = json.loads((env.paths.model_dir / "sagebert.json").read_text())["base_model"]
    assert recorded == "pretrained channel (model.tar.gz)"  # no temporary path in the model's record


def test_only_the_newest_checkpoints_are_kept(job):
    env = job(keep_checkpoints=2)
    train(load(env.hyperparameters), env)
    names = sorted(p.name.rsplit("-", 1)[0] for p in env.checkpoint_dir.iterdir())
    assert names == ["step-0000018", "step-0000020"]
    manifest = json.loads((step_dir(env, 20) / checkpoints.MANIFEST).read_text())
    assert set(manifest["files"]) == {
        "model.safetensors",
        "optimizer.bin",
        "custom_checkpoint_0.pkl",  # the learning-rate schedule
        "random_states_0.pkl",
        "trainer_state.json",
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

    env = job(checkpoint_steps=0)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(env.paths.base))
    due = CheckpointStore.due

    def signal_at_step_3(self, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, through the real handler
        return due(self, step)

    monkeypatch.setattr(CheckpointStore, "due", signal_at_step_3)
    original = signal.getsignal(signal.SIGTERM)
    assert main([]) == 143
    assert signal.getsignal(signal.SIGTERM) is original
    reason = env.paths.failure_file.read_text()
    # The signal arrives after step 3's stop check: the loop stops at the next step boundary.
    assert "stopped by SIGTERM at optimizer step 4 of 20" in reason and "same checkpoint location" in reason
    assert step_dir(env, 4).exists() and not any(env.paths.model_dir.iterdir())


# ---- fp16: the GradScaler -------------------------------------------------------------------------
# fp16 autocast needs a GPU, which this machine lacks. What fp16 changes in the loop and in the
# checkpoints is the GradScaler, and torch has one for CPU tensors: it is given to accelerate here
# (accelerate creates one only on a GPU), and an infinite loss stands in for an fp16 overflow.


def scaled_parts(tmp_path, name):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    model, optimizer = accelerator.prepare(model, optimizer)
    hp = load({"keep_checkpoints": "2"})
    store = CheckpointStore(accelerator, scheduler, tmp_path / name, hp, "0123456789abcdef", 10)
    return accelerator, model, optimizer, scheduler, store


def backward(accelerator, model, scale=1.0):
    accelerator.backward(model(torch.ones(3, 4)).sum() * scale)


def test_an_overflowing_fp16_step_is_skipped_and_the_schedule_does_not_advance(tmp_path):
    accelerator, model, optimizer, scheduler, _ = scaled_parts(tmp_path, "checkpoints")
    weights = model.weight.detach().clone()
    backward(accelerator, model, float("inf"))
    assert optimizer_step(accelerator, optimizer, scheduler) is False
    assert torch.equal(model.weight, weights)  # the scaler skipped the update
    assert scheduler.last_epoch == 0 and scheduler.get_last_lr() == [0.1]
    assert accelerator.scaler.get_scale() == 2.0**15  # and halved its scale

    backward(accelerator, model)
    assert optimizer_step(accelerator, optimizer, scheduler) is True
    assert not torch.equal(model.weight, weights)
    assert scheduler.last_epoch == 1 and scheduler.get_last_lr() == [0.05]


def test_the_grad_scaler_state_is_checkpointed_and_restored(tmp_path):
    accelerator, model, optimizer, scheduler, store = scaled_parts(tmp_path, "checkpoints")
    backward(accelerator, model, float("inf"))
    optimizer_step(accelerator, optimizer, scheduler)
    backward(accelerator, model)
    optimizer_step(accelerator, optimizer, scheduler)
    saved = store.save(LoopState(global_step=2))
    assert "scaler.pt" in json.loads((saved / checkpoints.MANIFEST).read_text())["files"]

    shutil.copytree(tmp_path / "checkpoints", tmp_path / "restarted")  # as SageMaker restores it
    accelerator, model, optimizer, scheduler, store = scaled_parts(tmp_path, "restarted")
    assert accelerator.scaler.get_scale() == 2.0**16  # a fresh scaler...
    state = store.resume()
    assert accelerator.scaler.get_scale() == 2.0**15  # ...takes the checkpoint's scale
    assert state.global_step == 2 and scheduler.last_epoch == 1


# ---- the fingerprint: what changes the result is in it, what does not is not ------------------------

ANOTHER_VALUE = {
    "epochs": 3,
    "train_batch_size": 8,
    "eval_batch_size": 8,
    "learning_rate": 1e-4,
    "warmup_ratio": 0.2,
    "weight_decay": 0.1,
    "max_grad_norm": 0.5,
    "max_length": 64,
    "seed": 7,
    "gradient_accumulation_steps": 2,
    "model_name_or_path": "bert-base-uncased",
    "pooling": "cls",
    "label_names": "calm,alarm",
    "text_column": "body",
    "label_column": "target",
    "clean_text": "true",
    "validation_fraction": 0.3,
    "max_train_samples": 100,
    "max_eval_samples": 100,
    "log_interval": 7,
    "checkpoint_steps": 7,
    "checkpoint_minutes": 1,
    "keep_checkpoints": 5,
    "processes_per_host": 2,
    "mixed_precision": "bf16",
}
PARTS = [{"data": "d" * 64, "base_model": "b" * 64}]


@pytest.mark.parametrize("name", sorted(ANOTHER_VALUE))
def test_every_hyperparameter_that_changes_the_model_changes_the_fingerprint(name):
    from sagebert.hyperparameters import HYPERPARAMETER_NAMES

    assert set(ANOTHER_VALUE) == set(HYPERPARAMETER_NAMES)  # a new hyperparameter must be placed here
    before = fingerprint.fingerprint(load({}), "no", PARTS)
    after = fingerprint.fingerprint(load({name: str(ANOTHER_VALUE[name])}), "no", PARTS)
    assert (before != after) is (name not in fingerprint.NOT_IN_FINGERPRINT)


def test_code_libraries_precision_processes_data_and_base_model_change_the_fingerprint(monkeypatch):
    hp = load({})
    before = fingerprint.fingerprint(hp, "no", PARTS)
    assert fingerprint.fingerprint(hp, "bf16", PARTS) != before
    assert fingerprint.fingerprint(hp, "no", PARTS * 2) != before
    assert fingerprint.fingerprint(hp, "no", [{**PARTS[0], "data": "e" * 64}]) != before
    assert fingerprint.fingerprint(hp, "no", [{**PARTS[0], "base_model": "c" * 64}]) != before
    version = fingerprint.code_version()
    for library in ("sagebert", "source", "torch", "transformers", "accelerate"):
        changed = {**version, library: "another"}
        monkeypatch.setattr(fingerprint, "code_version", lambda changed=changed: changed)
        assert fingerprint.fingerprint(hp, "no", PARTS) != before, library
