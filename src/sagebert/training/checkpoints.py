"""Checkpoint folders: naming, the manifest, validation, the atomic rename and rotation.

A checkpoint is a directory ``step-<global step>-<fingerprint>`` in /opt/ml/checkpoints (CheckpointConfig's
LocalPath), which SageMaker syncs with CheckpointConfig.S3Uri and restores at the start of a
resumed job (managed spot interruptions included). It holds what accelerate's
``Accelerator.save_state`` writes, and two files of ours:

    model.safetensors          the weights                                      (global rank 0)
    optimizer.bin              AdamW state                                      (rank 0)
    custom_checkpoint_0.pkl    the learning-rate schedule                       (rank 0)
    scaler.pt                  fp16's GradScaler, fp16 jobs only                (every rank, the same bytes)
    random_states_<r>.pkl      process r's random-number generators             (rank r)
    trainer_state.json         epoch, position in the epoch's data order, step, history, fingerprint (rank 0)
    manifest.json              size and sha256 of every file above              (rank 0, LAST)

Processes write their own file names (accelerate writes scaler.pt from every process, the same
state everywhere since DDP's averaged gradients overflow alike), so the hosts of a multi-instance
job, whose checkpoint folders SageMaker merges under one S3 prefix, never overwrite each other's
data. Files are written into ``.tmp-step-N-...`` and the folder is renamed once complete; a checkpoint
without a manifest, or whose files do not match it, is skipped with a warning on resume, and the
previous one is used. The fingerprint names the job's configuration (code, base model, data,
hyperparameters, number of processes): checkpoints of another configuration in the same place are
never resumed, never overwritten and never deleted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import sha256_of

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step-(\d+)-([0-9a-f]+)$")
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
STATE = "trainer_state.json"
_RANDOM_STATES = re.compile(r"^random_states_(\d+)\.pkl$")  # accelerate's name for process r's generators


def step_dir_name(step: int, fingerprint: str) -> str:
    return f"step-{step:07d}-{fingerprint}"


def owner(name: str) -> int:
    """The rank that digests a checkpoint file: its writer (rank 0 for the shared files)."""
    match = _RANDOM_STATES.match(name)
    return int(match.group(1)) if match else 0


@dataclass
class Found:
    """A checkpoint on disk that passed validation."""

    path: Path
    step: int
    state: dict


def list_step_dirs(directory: Path, fingerprint: str | None = None) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint folder (of one configuration, if given), newest first."""
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if p.is_dir() and (m := STEP_DIR.match(p.name)) and fingerprint in (None, m.group(2))
    ]
    return sorted(found, reverse=True)


def read_state(path: Path) -> dict:
    """The trainer state (loop position, history, fingerprint) of a checkpoint folder."""
    return json.loads((path / STATE).read_text())


def validate(path: Path, expected_fingerprint: str, world_size: int, *, verify_hashes: bool = True) -> dict:
    """The checkpoint's trainer state if it is complete and belongs to this job; ValueError saying why not."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise ValueError("no manifest (the checkpoint was not finished)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise ValueError(f"unreadable manifest ({exc})") from None
    for name, meta in manifest.get("files", {}).items():
        file = path / name
        if not file.exists():
            raise ValueError(f"{name} is missing")
        if file.stat().st_size != meta["size"]:
            raise ValueError(f"{name} has {file.stat().st_size} bytes, the manifest says {meta['size']}")
        if verify_hashes and sha256_of(file) != meta["sha256"]:
            raise ValueError(f"{name} does not match its sha256")
    state = read_state(path)
    if state.get("fingerprint") != expected_fingerprint:
        raise ValueError("it belongs to a job with other code, base model, data or settings")
    if state.get("world_size") != world_size:
        raise ValueError(f"it was written by {state.get('world_size')} processes, this job has {world_size}")
    return state


def find_latest(directory: Path, expected_fingerprint: str, world_size: int) -> Found | None:
    """The newest valid checkpoint of this configuration; corrupt or partial ones are skipped with a warning."""
    others = len(list_step_dirs(directory)) - len(list_step_dirs(directory, expected_fingerprint))
    if others:
        log.warning(
            "%d checkpoint(s) in %s belong to a job with other code, base model, data or settings "
            "(seed, batch size, epochs, number of processes, ...): left as they are, not resumed",
            others,
            directory,
        )
    for step, path in list_step_dirs(directory, expected_fingerprint):
        try:
            state = validate(path, expected_fingerprint, world_size)
        except (ValueError, OSError, KeyError) as exc:
            log.warning("skipping checkpoint %s: %s", path.name, exc)
            continue
        return Found(path, step, state)
    return None


class CheckpointWriter:
    """Writes, renames and rotates checkpoints for one process of a (possibly distributed) job."""

    def __init__(self, directory: Path, keep: int, rank: int, local_rank: int, world_size: int, fingerprint: str):
        self.directory = directory
        self.keep = keep
        self.rank, self.local_rank, self.world_size = rank, local_rank, world_size
        self.fingerprint = fingerprint
        self.last_saved_at = time.monotonic()
        self.seconds_spent: list[float] = []

    @property
    def manages_folder(self) -> bool:
        """One process per host creates, renames and rotates that host's folders."""
        return self.local_rank == 0

    def path(self, step: int) -> Path:
        return self.directory / step_dir_name(step, self.fingerprint)

    def clear_leftovers(self) -> None:
        """Remove half-written folders a killed job left behind (this host's)."""
        if self.manages_folder and self.directory.is_dir():
            for path in self.directory.iterdir():
                if path.name.startswith(TMP_PREFIX):
                    shutil.rmtree(path, ignore_errors=True)
                    log.warning("removed the unfinished checkpoint %s", path.name)

    def save(
        self,
        step: int,
        write_state: Callable[[Path], Any],
        trainer_state: dict | None,
        barrier: Callable[[], Any],
        gather: Callable[[Any], list],
    ) -> Path:
        """Write checkpoint ``step``; every process calls this.

        ``write_state(folder)`` writes this process's state files (accelerate's save_state);
        ``trainer_state`` is rank 0's loop state (None elsewhere); ``barrier()`` waits for every
        process; ``gather(obj)`` returns every process's obj.
        """
        started = time.monotonic()
        final = self.path(step)
        tmp = self.directory / f"{TMP_PREFIX}{final.name}"
        if self.manages_folder:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        write_state(tmp)
        if trainer_state is not None:
            state = {
                **trainer_state,
                "fingerprint": self.fingerprint,
                "world_size": self.world_size,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (tmp / STATE).write_text(json.dumps(state, indent=2))
        barrier()  # every file is complete before any is digested
        mine = sorted(p for p in tmp.iterdir() if owner(p.name) == self.rank)
        for path in mine:
            _fsync(path)
        digests = {p.name: {"size": p.stat().st_size, "sha256": sha256_of(p)} for p in mine}
        every = gather(digests)
        if self.rank == 0:
            files = {name: meta for part in every for name, meta in part.items()}
            manifest = tmp / MANIFEST
            manifest.write_text(json.dumps({"step": step, "files": files}, indent=2))
            _fsync(manifest)
        barrier()
        if self.manages_folder:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            _fsync(self.directory)
            self._rotate(current=step)
        barrier()
        self.last_saved_at = time.monotonic()
        self.seconds_spent.append(self.last_saved_at - started)
        return final

    def _rotate(self, current: int) -> None:
        """Delete this configuration's checkpoints older than the newest ``keep``."""
        older = [path for step, path in list_step_dirs(self.directory, self.fingerprint) if step <= current]
        for path in older[self.keep :]:
            shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
