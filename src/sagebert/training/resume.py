"""Saving and restoring the whole training state, so that a stopped job continues exactly.

The state itself — model, optimizer, fp16's GradScaler, every process's random-number
generators, and the learning-rate schedule (registered for checkpointing) — is what accelerate's
``Accelerator.save_state``/``load_state`` write and read. The folder around it is
checkpoints.py's: the fingerprint in its name, the manifest, the atomic rename and the rotation.
The loop's position and history go in its trainer_state.json.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ..hyperparameters import Hyperparameters
from . import checkpoints
from . import fingerprint as fingerprints
from .batches import Datasets
from .loop import LoopState

log = logging.getLogger("sagebert.training")


def job_fingerprint(
    accelerator: Any, hp: Hyperparameters, precision: str, datasets: Datasets, base_model_digest: str
) -> str:
    """The fingerprint every process of the job agrees on (each contributes its data and base model)."""
    part = fingerprints.process_part(datasets.train, datasets.evaluation, base_model_digest)
    parts = [part]
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        parts = gather_object(parts)
    return fingerprints.fingerprint(hp, precision, parts)


class CheckpointStore:
    """The checkpoint store of one job in ``directory``: resume from the newest valid checkpoint, save
    when due. The loop sees it as ``loop.CheckpointStore``; checkpoints.py's CheckpointWriter writes
    its folders."""

    def __init__(
        self, accelerator: Any, scheduler: Any, directory: Path, hp: Hyperparameters, fingerprint: str, total_steps: int
    ):
        # The schedule stays outside prepare() (job.py says why), so accelerate saves it only if registered.
        accelerator.register_for_checkpointing(scheduler)
        # accelerate logs a line per file it saves or loads; the job log keeps ours, one per checkpoint.
        logging.getLogger("accelerate").setLevel(logging.WARNING)
        self.accelerator, self.hp, self.total_steps = accelerator, hp, total_steps
        self.rank, self.world_size = accelerator.process_index, accelerator.num_processes
        self.writer = checkpoints.CheckpointWriter(
            directory, hp.keep_checkpoints, self.rank, accelerator.local_process_index, self.world_size, fingerprint
        )
        self.last_saved: tuple[int, int] | None = None  # (step, epoch) of the newest checkpoint

    @property
    def seconds_spent(self) -> list[float]:
        return self.writer.seconds_spent

    def resume(self) -> LoopState:
        """Restore the newest valid checkpoint of this job (rank 0 chooses, every process loads it);
        a fresh LoopState if there is none."""
        writer, accelerator = self.writer, self.accelerator
        writer.clear_leftovers()
        accelerator.wait_for_everyone()
        found = (
            checkpoints.find_latest(writer.directory, writer.fingerprint, self.world_size) if self.rank == 0 else None
        )
        chosen = [found.step if found else None]
        if self.world_size > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(chosen, from_process=0)
        if chosen[0] is None:
            if accelerator.is_main_process and checkpoints.list_step_dirs(writer.directory, writer.fingerprint):
                log.warning("no usable checkpoint in %s: training from the start", writer.directory)
            return LoopState()
        path = writer.path(chosen[0])
        accelerator.load_state(str(path))
        state = LoopState.from_checkpoint(checkpoints.read_state(path)["loop"], self.rank)
        self.last_saved = (state.global_step, state.epoch)
        log.info(
            "resumed from step %d of %d (epoch %d, %d batches into it) using checkpoint %s",
            state.global_step,
            self.total_steps,
            state.epoch,
            state.batch_in_epoch,
            path,
        )
        return state

    def due(self, step: int) -> bool:
        """Whether ``checkpoint_steps`` or ``checkpoint_minutes`` asks for a checkpoint after ``step``."""
        hp = self.hp
        if hp.checkpoint_steps and step % hp.checkpoint_steps == 0:
            return True
        return (
            bool(hp.checkpoint_minutes) and time.monotonic() - self.writer.last_saved_at >= hp.checkpoint_minutes * 60
        )

    def save(self, state: LoopState) -> Path:
        """Checkpoint ``state`` (every process takes part); the folder's path."""
        writer, accelerator = self.writer, self.accelerator
        if self.last_saved == (state.global_step, state.epoch):
            return writer.path(state.global_step)
        if self.world_size > 1:
            from accelerate.utils import gather_object

            sums = gather_object([state.epoch_loss_sum])
            gather = lambda obj: gather_object([obj])  # noqa: E731
        else:
            sums, gather = [state.epoch_loss_sum], lambda obj: [obj]
        trainer_state = {"loop": state.to_checkpoint(sums), "total_steps": self.total_steps} if self.rank == 0 else None
        path = writer.save(
            state.global_step,
            lambda folder: accelerator.save_state(str(folder)),
            trainer_state,
            accelerator.wait_for_everyone,
            gather,
        )
        self.last_saved = (state.global_step, state.epoch)
        if accelerator.is_main_process:
            log.info("checkpoint %s written in %.2f s", path.name, writer.seconds_spent[-1])
        return path
