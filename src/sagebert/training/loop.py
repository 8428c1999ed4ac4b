"""The loop: epochs of optimizer steps, continuing from a ``LoopState``.

Each step: forward and backward over ``gradient_accumulation_steps`` micro-batches (gradients
synchronised across processes on the last one only), clipping, the optimizer step, and the
learning-rate schedule when the step was taken. Every ``log_interval`` steps a progress line;
after every step the processes agree whether to stop (SIGTERM) or checkpoint; at each epoch end
an evaluation, the epoch's lines and a checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..hyperparameters import Hyperparameters
from ..metric_lines import format_metric_line
from .batches import Collator, Plan, TokenizedDataset, epoch_batches, shard_batches

log = logging.getLogger("sagebert.training")


@dataclass
class LoopState:
    """Where training stands: enough to continue exactly from here."""

    epoch: int = 1  # the epoch in progress (1-based)
    batch_in_epoch: int = 0  # batches of this epoch already consumed by this process
    global_step: int = 0  # optimizer steps taken (or skipped by fp16's GradScaler)
    epoch_loss_sum: float = 0.0  # this process's summed batch losses in the current epoch
    epoch_loss_batches: int = 0
    history: list[dict] = field(default_factory=list)  # one row per finished epoch

    def to_checkpoint(self, loss_sums: list[float]) -> dict:
        """The state of every process (``loss_sums``: each rank's epoch_loss_sum) as plain JSON values."""
        values = asdict(self)
        del values["epoch_loss_sum"]
        return {**values, "epoch_loss_sums": loss_sums}

    @classmethod
    def from_checkpoint(cls, values: dict, rank: int) -> LoopState:
        values = dict(values)
        sums = values.pop("epoch_loss_sums")
        return cls(**values, epoch_loss_sum=sums[rank])


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


class CheckpointStore(Protocol):
    """What the loop asks of the checkpoint store (``resume.CheckpointStore``)."""

    def due(self, step: int) -> bool: ...

    def save(self, state: LoopState) -> Path: ...


def optimizer_step(accelerator: Any, optimizer: Any, scheduler: Any) -> bool:
    """Step the optimizer, then the learning-rate schedule only if the step was taken; True if it was.

    With fp16, the GradScaler skips a step whose gradients overflowed (and lowers its scale); the
    schedule must not advance then, or the learning rate runs ahead of the weights.
    """
    optimizer.step()
    taken = not accelerator.optimizer_step_was_skipped
    if taken:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return taken


@dataclass
class _Window:
    """Progress since the last progress line."""

    loss: float = 0.0
    batches: int = 0
    examples: int = 0
    started: float = field(default_factory=time.monotonic)


class TrainingLoop:
    """Runs the epochs left in ``state``; call ``run()``."""

    def __init__(
        self,
        hp: Hyperparameters,
        accelerator: Any,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        train: TokenizedDataset,
        collate: Collator,
        plan: Plan,
        evaluate: Callable[[], dict],
        store: CheckpointStore | None,
        should_stop: Callable[[], bool],
        state: LoopState,
    ):
        self.hp, self.accelerator = hp, accelerator
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train, self.collate, self.plan = train, collate, plan
        self.evaluate, self.store, self.should_stop = evaluate, store, should_stop
        self.state = state
        self.rank, self.world_size = accelerator.process_index, accelerator.num_processes

    def run(self) -> TrainingResult:
        """Train for the epochs left, evaluating after each; TrainingInterrupted if ``should_stop`` turns true."""
        started = time.monotonic()
        self.model.train()
        while self.state.epoch <= self.hp.epochs:
            self._run_epoch()
        history = self.state.history
        return TrainingResult(
            history[-1]["metrics"] if history else {},
            history,
            self.state.global_step,
            self.plan.total_steps,
            time.monotonic() - started,
        )

    def _run_epoch(self) -> None:
        hp, state = self.hp, self.state
        lengths = self.train.lengths
        batches = shard_batches(
            epoch_batches(lengths, hp.train_batch_size, hp.seed, state.epoch), self.rank, self.world_size
        )
        window, epoch_started, epoch_examples = _Window(), time.monotonic(), 0
        while state.batch_in_epoch < len(batches):
            group = batches[state.batch_in_epoch : state.batch_in_epoch + hp.gradient_accumulation_steps]
            losses = self._forward_backward(group)
            if hp.max_grad_norm > 0:
                self.accelerator.clip_grad_norm_(self.model.parameters(), hp.max_grad_norm)
            optimizer_step(self.accelerator, self.optimizer, self.scheduler)
            state.batch_in_epoch += len(group)
            state.global_step += 1
            state.epoch_loss_sum += sum(losses)
            state.epoch_loss_batches += len(losses)
            examples = sum(len(indices) for indices in group)
            epoch_examples += examples
            window.loss, window.batches, window.examples = (
                window.loss + sum(losses),
                window.batches + len(losses),
                window.examples + examples,
            )
            if state.global_step % hp.log_interval == 0:
                self._log_progress(window)
                window = _Window()
            self._stop_or_checkpoint()
        train_seconds = time.monotonic() - epoch_started
        train_loss = self._mean(state.epoch_loss_sum / max(state.epoch_loss_batches, 1))
        self._finish_epoch(train_loss, train_seconds, epoch_examples * self.world_size)
        if self.store:
            self.store.save(state)

    def _forward_backward(self, group: list[list[int]]) -> list[float]:
        """Accumulate the gradients of one optimizer step's micro-batches; their losses."""
        accelerator, losses = self.accelerator, []
        for position, indices in enumerate(group):
            batch = self.collate(self.train, indices)
            last = position == len(group) - 1
            # DDP all-reduces gradients on every backward unless told not to: only the last one needs it.
            with nullcontext() if last else accelerator.no_sync(self.model), accelerator.autocast():
                loss = self.model(**batch).loss
            accelerator.backward(loss / len(group))
            losses.append(loss.item())
        return losses

    def _stop_or_checkpoint(self) -> None:
        state = self.state
        stop, due = self._agree(self.should_stop(), bool(self.store and self.store.due(state.global_step)))
        if not (stop or due):
            return
        checkpoint = self.store.save(state) if self.store else None
        if stop:
            raise TrainingInterrupted(state.global_step, self.plan.total_steps, checkpoint)

    def _log_progress(self, window: _Window) -> None:
        mean_loss = self._mean(window.loss / max(window.batches, 1))
        if self.accelerator.is_main_process:
            elapsed = time.monotonic() - window.started
            log.info(
                format_metric_line(
                    {
                        "epoch": self.state.epoch,
                        "step": self.state.global_step,
                        "train_loss": mean_loss,
                        "learning_rate": self.scheduler.get_last_lr()[0],
                        "samples_per_second": window.examples * self.world_size / max(elapsed, 1e-9),
                    }
                )
            )

    def _finish_epoch(self, train_loss: float, train_seconds: float, examples: int) -> None:
        """Evaluate, log and record the epoch; ``examples`` were trained in ``train_seconds`` by this run."""
        state = self.state
        eval_started = time.monotonic()
        metrics = self.evaluate()
        eval_seconds = time.monotonic() - eval_started
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

    def _agree(self, *flags: bool) -> list[bool]:
        """The flags OR-ed over every process, so that all stop or checkpoint at the same step."""
        if self.world_size == 1:
            return list(flags)
        tensor = torch.tensor([float(f) for f in flags], device=self.accelerator.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def _mean(self, value: float) -> float:
        """``value`` averaged over every process."""
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], device=self.accelerator.device)
        return self.accelerator.reduce(tensor, reduction="mean").item()
