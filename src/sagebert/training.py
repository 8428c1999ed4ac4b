"""Fine-tuning: data → model → loop → evaluation every epoch → artifacts.

The data order is explicit and reproducible: each epoch's batches are length-grouped (similar
lengths together, so dynamic padding pads little) with a generator seeded by ``seed`` and the
epoch, then dealt round-robin to the processes of a data-parallel run. Accelerate supplies the
device, mixed precision, DistributedDataParallel and cross-process gathering.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoints, modeling
from . import data as data_io
from .environment import PRETRAINED_CHANNEL, TESTING_CHANNEL, TRAINING_CHANNEL, TrainingEnvironment
from .errors import SagebertError
from .hyperparameters import Hyperparameters
from .metric_lines import format_metric_line
from .metrics import classification_metrics

log = logging.getLogger(__name__)

HISTORY_JSON = "metrics_history.json"
HISTORY_CSV = "metrics_history.csv"
CURVES_PNG = "training_curves.png"


@dataclass
class Datasets:
    """The labelled texts to train on and to evaluate on, and where the latter came from."""

    train: data_io.LabelledTexts
    evaluation: data_io.LabelledTexts


def load_datasets(env: TrainingEnvironment, hp: Hyperparameters) -> Datasets:
    """Read the `training` channel and the `testing` channel (or hold out a stratified share)."""
    columns = data_io.ColumnChoice(hp.text_column, hp.label_column)
    read = lambda channel, directory: data_io.read_channel(  # noqa: E731
        directory,
        channel=channel,
        label_names=hp.label_names,
        columns=columns,
        content_type=env.channel_content_type(channel),
        clean=hp.clean_text,
    )
    train = read(TRAINING_CHANNEL, env.channel(TRAINING_CHANNEL, required=True))
    data_io.require_classes(train, hp.label_names)
    testing_dir = env.channel(TESTING_CHANNEL)
    if testing_dir is not None:
        evaluation = read(TESTING_CHANNEL, testing_dir)
    else:
        train_idx, held_idx = data_io.stratified_split(train.labels, hp.validation_fraction, hp.seed)
        log.info(
            "no '%s' channel: holding out a stratified %.0f%% of the training data (%d rows) for evaluation",
            TESTING_CHANNEL,
            100 * hp.validation_fraction,
            len(held_idx),
        )
        train, evaluation = (train.subset(train_idx), train.subset(held_idx, f"{train.source} (held out)"))
        data_io.require_classes(train, hp.label_names)
    train = data_io.shuffled_head(train, hp.max_train_samples, hp.seed)
    if hp.max_eval_samples:
        evaluation = evaluation.subset(range(min(hp.max_eval_samples, len(evaluation))))
    data_io.report_conflicts(train, hp.label_names)
    shared = data_io.overlap(train.texts, evaluation.texts)
    if shared:
        log.warning("%d distinct texts appear in both the training and the evaluation data", shared)
    return Datasets(train, evaluation)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Every batch of one epoch, in order: length-grouped, shuffled by (seed, epoch)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator()
    generator.manual_seed(seed * 100_003 + epoch)
    order = get_length_grouped_indices(list(lengths), batch_size, generator=generator)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This process's batches: every ``world_size``-th, after dropping the tail that cannot be dealt evenly."""
    usable = len(batches) - len(batches) % world_size if world_size > 1 else len(batches)
    return batches[rank:usable:world_size]


def optimizer_steps_per_epoch(batches_per_process: int, accumulation: int) -> int:
    return math.ceil(batches_per_process / accumulation)


def _resolve_precision(requested: str) -> str:
    if requested != "auto":
        if requested == "fp16" and not torch.cuda.is_available():
            from .errors import HyperparameterError

            raise HyperparameterError(
                "mixed_precision is fp16 but this instance has no GPU.",
                "Use mixed_precision=bf16 or auto on CPU instances.",
            )
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 (or AMX): bf16 autocast trains about 1.4x faster there (BENCHMARKS.md); elsewhere
    bf16 is emulated and slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class LoopState:
    """Where training stands: enough to continue exactly from here."""

    epoch: int = 1  # the epoch in progress (1-based)
    batch_in_epoch: int = 0  # batches of this epoch already consumed by this process
    global_step: int = 0  # optimizer steps taken
    epoch_loss_sum: float = 0.0  # this process's summed batch losses in the current epoch
    epoch_loss_batches: int = 0
    history: list[dict] = field(default_factory=list)  # one row per finished epoch


class TrainingInterrupted(Exception):
    """SIGTERM stopped training after a checkpoint was written."""

    def __init__(self, step: int, total: int, checkpoint: Path | None):
        where = (
            f"checkpoint {checkpoint.name} saved in {checkpoint.parent}"
            if checkpoint
            else "no checkpoint (checkpointing is off)"
        )
        super().__init__(f"Training was stopped by SIGTERM at optimizer step {step} of {total}; {where}.")
        self.step, self.total, self.checkpoint = step, total, checkpoint


@dataclass
class TrainingResult:
    """What a finished run produced."""

    metrics: dict
    history: list[dict]
    global_step: int
    total_steps: int
    seconds: float


class Trainer:
    """One fine-tuning run. Build it, then call ``run()``."""

    def __init__(self, hp: Hyperparameters, env: TrainingEnvironment, should_stop: Callable[[], bool] = lambda: False):
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

        self.hp, self.env, self.should_stop = hp, env, should_stop
        self.precision = _resolve_precision(hp.mixed_precision)
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=self.precision)
        self.rank, self.world_size = self.accelerator.process_index, self.accelerator.num_processes
        set_seed(hp.seed)

        self.datasets = load_datasets(env, hp)
        self.base = modeling.resolve_base_model(env.channel(PRETRAINED_CHANNEL), hp.model_name_or_path)
        self.tokenizer, model = modeling.load_for_training(self.base, hp.label_names, hp.max_length)
        self.train_encodings = self._encode(self.datasets.train)
        self.eval_encodings = self._encode(self.datasets.evaluation)
        self.collate = DataCollatorWithPadding(
            self.tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None
        )

        self.batches_per_process = len(
            shard_batches(
                epoch_batches(self.train_lengths, hp.train_batch_size, hp.seed, 1), self.rank, self.world_size
            )
        )
        if self.batches_per_process == 0:
            raise SagebertError(
                f"{len(self.datasets.train)} training examples make fewer batches than there are processes ({self.world_size}).",
                "Add training data, lower train_batch_size, or use fewer instances/processes.",
            )
        self.steps_per_epoch = optimizer_steps_per_epoch(self.batches_per_process, hp.gradient_accumulation_steps)
        self.total_steps = self.steps_per_epoch * hp.epochs
        optimizer = torch.optim.AdamW(_param_groups(model, hp.weight_decay), lr=hp.learning_rate)
        self.scheduler = get_linear_schedule_with_warmup(
            optimizer, int(hp.warmup_ratio * self.total_steps), self.total_steps
        )
        # The scheduler stays outside prepare(): Accelerate would step it once per process.
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.state = LoopState()
        self.checkpointer = self._checkpointer() if hp.keep_checkpoints else None
        if self.checkpointer:
            self._resume()

    # ---- checkpoints ------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        """What must be identical for a checkpoint of an earlier attempt to continue this job."""
        hp = self.hp.to_dict()
        for name in (
            "log_interval",
            "eval_batch_size",
            "max_eval_samples",
            "checkpoint_steps",
            "checkpoint_minutes",
            "keep_checkpoints",
            "processes_per_host",
        ):
            hp.pop(name)
        import hashlib

        data = hashlib.sha256()
        for text, label in zip(self.datasets.train.texts, self.datasets.train.labels, strict=True):
            data.update(f"{label}\t{text}\n".encode())
        return checkpoints.fingerprint(
            {
                "hyperparameters": hp,
                "train_data": data.hexdigest(),
                "base_model": self.base.display_name,
                "world_size": self.world_size,
                "precision": self.precision,
            }
        )

    def _checkpointer(self) -> checkpoints.CheckpointWriter:
        return checkpoints.CheckpointWriter(
            self.env.checkpoint_dir,
            self.hp.keep_checkpoints,
            self.rank,
            self.accelerator.local_process_index,
            self.world_size,
            self._fingerprint(),
        )

    def _resume(self) -> None:
        """Continue from the newest valid checkpoint, if any (rank 0 chooses; every process loads it)."""
        from accelerate.utils import broadcast_object_list

        writer = self.checkpointer
        writer.clear_leftovers()
        self.accelerator.wait_for_everyone()
        found = (
            checkpoints.find_latest(writer.directory, writer.fingerprint, self.world_size) if self.rank == 0 else None
        )
        chosen = [found.step if found else None]
        if self.world_size > 1:
            broadcast_object_list(chosen, from_process=0)
        if chosen[0] is None:
            if self.accelerator.is_main_process and checkpoints.list_step_dirs(writer.directory, writer.fingerprint):
                log.warning("no usable checkpoint in %s: training from the start", writer.directory)
            return
        if found is None:
            path = writer.directory / checkpoints.step_dir_name(chosen[0], writer.fingerprint)
            found = checkpoints.Found(path, chosen[0], json.loads((path / checkpoints.STATE).read_text()))
        state = checkpoints.load_checkpoint(
            found, self.rank, self.accelerator.unwrap_model(self.model), self.optimizer, self.scheduler
        )
        loop = dict(state["loop"])
        sums = loop.pop("epoch_loss_sums")
        self.state = LoopState(**loop, epoch_loss_sum=sums[self.rank])
        writer.last_saved = (self.state.global_step, self.state.epoch)
        log.info(
            "resumed from step %d of %d (epoch %d, %d batches into it) using checkpoint %s",
            self.state.global_step,
            self.total_steps,
            self.state.epoch,
            self.state.batch_in_epoch,
            found.path,
        )

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current state (every process takes part)."""
        from accelerate.utils import gather_object

        if not self.checkpointer:
            return None
        if self.checkpointer.last_saved == (self.state.global_step, self.state.epoch):
            return self.checkpointer.directory / checkpoints.step_dir_name(
                self.state.global_step, self.checkpointer.fingerprint
            )
        sums = [self.state.epoch_loss_sum]
        if self.world_size > 1:
            sums = gather_object(sums)
        loop = {k: v for k, v in self.state.__dict__.items() if k != "epoch_loss_sum"}
        shared = {}
        if self.rank == 0:
            shared = {
                "model": self.accelerator.unwrap_model(self.model),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "state": {"loop": {**loop, "epoch_loss_sums": sums}, "total_steps": self.total_steps},
            }
        gather = (lambda obj: gather_object([obj])) if self.world_size > 1 else (lambda obj: [obj])
        path = self.checkpointer.save(self.state.global_step, shared, self.accelerator.wait_for_everyone, gather)
        self.checkpointer.last_saved = (self.state.global_step, self.state.epoch)
        if self.accelerator.is_main_process:
            log.info("checkpoint %s written in %.2f s", path.name, self.checkpointer.seconds_spent[-1])
        return path

    def _checkpoint_due(self) -> bool:
        if not self.checkpointer:
            return False
        hp = self.hp
        if hp.checkpoint_steps and self.state.global_step % hp.checkpoint_steps == 0:
            return True
        return (
            bool(hp.checkpoint_minutes)
            and time.monotonic() - self.checkpointer.last_saved_at >= hp.checkpoint_minutes * 60
        )

    def _agree(self, *flags: bool) -> list[bool]:
        """The flags OR-ed over every process, so that all stop or checkpoint at the same step."""
        if self.world_size == 1:
            return list(flags)
        tensor = torch.tensor([float(f) for f in flags], device=self.accelerator.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    # ---- data -------------------------------------------------------------------------------
    def _encode(self, texts: data_io.LabelledTexts) -> list[dict]:
        encoded = self.tokenizer(texts.texts, truncation=True, max_length=self.hp.max_length)
        full = self.tokenizer(texts.texts, truncation=False)["input_ids"] if self.accelerator.is_main_process else []
        truncated = sum(len(ids) > self.hp.max_length for ids in full)
        if truncated:
            log.info(
                "%s: %d of %d texts are longer than max_length=%d tokens and were truncated",
                texts.source,
                truncated,
                len(texts),
                self.hp.max_length,
            )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        return [{**{k: encoded[k][i] for k in keys}, "labels": texts.labels[i]} for i in range(len(texts))]

    @property
    def train_lengths(self) -> list[int]:
        return [len(e["input_ids"]) for e in self.train_encodings]

    def _batch(self, encodings: list[dict], indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = self.collate([encodings[i] for i in indices])
        return {k: v.to(self.accelerator.device) for k, v in batch.items()}

    # ---- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict:
        """Loss and metrics over the WHOLE evaluation set, whatever the number of processes."""
        self.model.eval()
        order = sorted(range(len(self.eval_encodings)), key=lambda i: len(self.eval_encodings[i]["input_ids"]))
        mine = order[self.rank :: self.world_size]
        results: list[tuple[int, list[float]]] = []
        with torch.inference_mode():
            for start in range(0, len(mine), self.hp.eval_batch_size):
                indices = mine[start : start + self.hp.eval_batch_size]
                batch = self._batch(self.eval_encodings, indices)
                batch.pop("labels")
                with self.accelerator.autocast():
                    logits = self.model(**batch).logits.float().cpu().tolist()
                results.extend(zip(indices, logits, strict=True))
        if self.world_size > 1:
            from accelerate.utils import gather_object

            results = gather_object(results)
        results.sort()
        logits = torch.tensor([r[1] for r in results], dtype=torch.float32)
        labels = torch.tensor([e["labels"] for e in self.eval_encodings])
        loss = torch.nn.functional.cross_entropy(logits, labels).item()
        metrics = classification_metrics(labels.tolist(), logits.argmax(-1).tolist(), self.hp.label_names)
        metrics["loss"] = loss
        self.model.train()
        return metrics

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainingResult:
        """Train for ``epochs`` (continuing from ``self.state``), evaluating after each."""
        hp, accelerator = self.hp, self.accelerator
        started = time.monotonic()
        if accelerator.is_main_process:
            train_counts = {hp.label_names[k]: v for k, v in self.datasets.train.class_counts().items()}
            log.info(
                "base model: %s (%s); precision: %s; device: %s; processes: %d",
                self.base.display_name,
                self.base.origin,
                self.precision,
                accelerator.device,
                self.world_size,
            )
            log.info(
                "training on %d examples %s, evaluating on %d (%s); %d optimizer steps per epoch, %d in all",
                len(self.datasets.train),
                train_counts,
                len(self.datasets.evaluation),
                self.datasets.evaluation.source,
                self.steps_per_epoch,
                self.total_steps,
            )
        self.model.train()
        while self.state.epoch <= hp.epochs:
            self._run_epoch()
        return TrainingResult(
            self.state.history[-1]["metrics"] if self.state.history else {},
            self.state.history,
            self.state.global_step,
            self.total_steps,
            time.monotonic() - started,
        )

    def _run_epoch(self) -> None:
        hp, accelerator, state = self.hp, self.accelerator, self.state
        batches = shard_batches(
            epoch_batches(self.train_lengths, hp.train_batch_size, hp.seed, state.epoch), self.rank, self.world_size
        )
        window_loss, window_batches, window_examples = 0.0, 0, 0
        window_start = epoch_start = time.monotonic()
        epoch_examples = 0
        accumulation = hp.gradient_accumulation_steps
        while state.batch_in_epoch < len(batches):
            group_start = state.batch_in_epoch
            group = batches[group_start : group_start + accumulation]
            for position, indices in enumerate(group):
                batch = self._batch(self.train_encodings, indices)
                last = position == len(group) - 1
                with nullcontext() if last else accelerator.no_sync(self.model), accelerator.autocast():
                    loss = self.model(**batch).loss
                accelerator.backward(loss / len(group))
                window_loss += loss.item()
                state.epoch_loss_sum += loss.item()
                state.epoch_loss_batches += 1
                window_batches += 1
                window_examples += len(indices)
                epoch_examples += len(indices)
            if hp.max_grad_norm > 0:
                accelerator.clip_grad_norm_(self.model.parameters(), hp.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            state.batch_in_epoch += len(group)
            state.global_step += 1
            if state.global_step % hp.log_interval == 0:
                elapsed = time.monotonic() - window_start
                mean_loss = self._mean_across_processes(window_loss / max(window_batches, 1))
                if accelerator.is_main_process:
                    log.info(
                        format_metric_line(
                            {
                                "epoch": state.epoch,
                                "step": state.global_step,
                                "train_loss": mean_loss,
                                "learning_rate": self.scheduler.get_last_lr()[0],
                                "samples_per_second": window_examples * self.world_size / max(elapsed, 1e-9),
                            }
                        )
                    )
                window_loss, window_batches, window_examples = 0.0, 0, 0
                window_start = time.monotonic()
            stop, due = self._agree(self.should_stop(), self._checkpoint_due())
            if stop or due:
                checkpoint = self.save_checkpoint()
                if stop:
                    raise TrainingInterrupted(state.global_step, self.total_steps, checkpoint)
        train_seconds = time.monotonic() - epoch_start
        self._finish_epoch(
            self._mean_across_processes(state.epoch_loss_sum / max(state.epoch_loss_batches, 1)),
            train_seconds,
            epoch_examples * self.world_size,
        )
        self.save_checkpoint()

    def _mean_across_processes(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], device=self.accelerator.device)
        return self.accelerator.reduce(tensor, reduction="mean").item()

    def _finish_epoch(self, train_loss: float, train_seconds: float, examples: int) -> None:
        """Evaluate, log and record the epoch; ``examples`` were trained in ``train_seconds`` by this run."""
        state = self.state
        eval_start = time.monotonic()
        metrics = self.evaluate()
        eval_seconds = time.monotonic() - eval_start
        row = {
            "epoch": state.epoch,
            "step": state.global_step,
            "train_loss": train_loss,
            "eval_loss": metrics["loss"],
            "eval_accuracy": metrics["accuracy"],
            "eval_precision": metrics["precision"],
            "eval_recall": metrics["recall"],
            "eval_f1": metrics["f1"],
        }
        if self.accelerator.is_main_process:
            log.info(format_metric_line(row))
            log.info(
                "epoch %d confusion matrix (rows: true %s; columns: predicted): %s",
                state.epoch,
                list(self.hp.label_names),
                metrics["confusion_matrix"],
            )
            log.info(
                "epoch %d timing: trained on %d examples in %.1f s (%.1f samples/s); evaluated %d in %.1f s",
                state.epoch,
                examples,
                train_seconds,
                examples / max(train_seconds, 1e-9),
                metrics["examples"],
                eval_seconds,
            )
        state.history.append(
            {
                **row,
                "train_seconds": round(train_seconds, 2),
                "eval_seconds": round(eval_seconds, 2),
                "metrics": metrics,
            }
        )
        state.epoch += 1
        state.batch_in_epoch = 0
        state.epoch_loss_sum, state.epoch_loss_batches = 0.0, 0

    # ---- artifacts --------------------------------------------------------------------------
    def save(self, result: TrainingResult) -> None:
        """Write the model directory and the per-epoch outputs (main process only)."""
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return
        paths = self.env.paths
        final = dict(result.metrics)
        final.update(
            {
                "epochs": len(result.history),
                "optimizer_steps": result.global_step,
                "training_seconds": round(result.seconds, 1),
                "train_examples": len(self.datasets.train),
                "eval_source": self.datasets.evaluation.source,
            }
        )
        modeling.save_model_dir(
            paths.model_dir,
            self.accelerator.unwrap_model(self.model),
            self.tokenizer,
            self.hp.label_names,
            max_length=self.hp.max_length,
            base_model=self.base.display_name,
            hyperparameters=self.hp.to_dict(),
            metrics=final,
        )
        write_history(paths.output_data_dir, result.history)
        log.info("model written to %s; metrics and curves to %s", paths.model_dir, paths.output_data_dir)


def write_history(directory: Path, history: list[dict]) -> None:
    """Per-epoch metrics as JSON and CSV, and the PNG of the curves."""
    from .plots import plot_history

    directory.mkdir(parents=True, exist_ok=True)
    (directory / HISTORY_JSON).write_text(json.dumps(history, indent=2))
    columns = ["epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_precision", "eval_recall", "eval_f1"]
    with open(directory / HISTORY_CSV, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in history:
            writer.writerow([row[c] for c in columns])
    if history:
        plot_history(history, directory / CURVES_PNG)


def train(
    hp: Hyperparameters, env: TrainingEnvironment, should_stop: Callable[[], bool] = lambda: False
) -> TrainingResult:
    """Run a whole training job and write its artifacts; TrainingInterrupted if ``should_stop`` turns true."""
    trainer = Trainer(hp, env, should_stop)
    try:
        result = trainer.run()
        trainer.save(result)
        if trainer.checkpointer and trainer.checkpointer.seconds_spent and trainer.accelerator.is_main_process:
            spent = trainer.checkpointer.seconds_spent
            log.info(
                "checkpoints: %d written, %.2f s each on average, %.1f%% of the training time",
                len(spent),
                sum(spent) / len(spent),
                100 * sum(spent) / max(result.seconds, 1e-9),
            )
        return result
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
