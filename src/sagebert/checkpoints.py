"""Checkpoints for resuming a training job exactly where it stopped.

A checkpoint is a directory ``step-<global step>-<fingerprint>`` in /opt/ml/checkpoints (CheckpointConfig's
LocalPath), which SageMaker syncs with CheckpointConfig.S3Uri and restores at the start of a
resumed job (managed spot interruptions included). It holds:

    model.safetensors      the weights                              (written by global rank 0)
    optimizer.pt           AdamW state                              (rank 0)
    scheduler.pt           the learning-rate schedule               (rank 0)
    trainer_state.json     epoch, position in the epoch's data order, step, history, fingerprint (rank 0)
    rng-rank<r>.pt         every process's random-number generators (each rank its own)
    manifest.json          size and sha256 of every file above      (rank 0, LAST)

Every process writes only its own file names, so the hosts of a multi-instance job, whose
checkpoint folders SageMaker merges under one S3 prefix, never overwrite each other. Files are
written into ``.tmp-step-N`` and the folder is renamed once complete; a checkpoint without a
manifest, or whose files do not match it, is skipped with a warning on resume, and the previous
one is used. The fingerprint (seed, batch sizes, data, number of processes, ...) names the job's
configuration: checkpoints of another configuration in the same place are never resumed, never
overwritten and never deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step-(\d+)-([0-9a-f]+)$")
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
STATE = "trainer_state.json"
FORMAT_VERSION = 1


def step_dir_name(step: int, fingerprint: str) -> str:
    return f"step-{step:07d}-{fingerprint}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(values: dict) -> str:
    """A short hash of what must not change for a checkpoint to be resumed exactly."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def rng_state() -> dict:
    """Every generator the training loop may draw from, as plain tensors and lists."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    state = json.loads((path / STATE).read_text())
    if state.get("fingerprint") != expected_fingerprint:
        raise ValueError(
            "it belongs to a job with other settings (seed, batch size, data, epochs or number of processes)"
        )
    if state.get("world_size") != world_size:
        raise ValueError(f"it was written by {state.get('world_size')} processes, this job has {world_size}")
    return state


def find_latest(directory: Path, expected_fingerprint: str, world_size: int) -> Found | None:
    """The newest valid checkpoint of this configuration; corrupt or partial ones are skipped with a warning."""
    others = len(list_step_dirs(directory)) - len(list_step_dirs(directory, expected_fingerprint))
    if others:
        log.warning(
            "%d checkpoint(s) in %s belong to a job with other settings (seed, batch size, data, epochs or "
            "number of processes): left as they are, not resumed",
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
        self.last_saved: tuple[int, int] | None = None  # (step, epoch) of the newest checkpoint
        self.seconds_spent: list[float] = []

    @property
    def writes_shared_files(self) -> bool:
        return self.rank == 0

    @property
    def manages_folder(self) -> bool:
        """One process per host creates, renames and rotates that host's folders."""
        return self.local_rank == 0

    def clear_leftovers(self) -> None:
        """Remove half-written folders a killed job left behind (this host's)."""
        if self.manages_folder and self.directory.is_dir():
            for path in self.directory.iterdir():
                if path.name.startswith(TMP_PREFIX):
                    shutil.rmtree(path, ignore_errors=True)
                    log.warning("removed the unfinished checkpoint %s", path.name)

    def save(self, step: int, shared: dict[str, Any], barrier, gather) -> Path:
        """Write checkpoint ``step``. ``shared`` (rank 0's payload): model, optimizer, scheduler, state.

        ``barrier()`` waits for every process; ``gather(obj)`` returns every process's obj.
        """
        started = time.monotonic()
        final = self.directory / step_dir_name(step, self.fingerprint)
        tmp = self.directory / f"{TMP_PREFIX}{final.name}"
        if self.manages_folder:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        written: dict[str, Path] = {}
        rng_file = tmp / f"rng-rank{self.rank}.pt"
        torch.save(rng_state(), rng_file)
        written[rng_file.name] = rng_file
        if self.writes_shared_files:
            from safetensors.torch import save_model

            save_model(shared["model"], str(tmp / "model.safetensors"))
            torch.save(shared["optimizer"], tmp / "optimizer.pt")
            torch.save(shared["scheduler"], tmp / "scheduler.pt")
            state = {
                **shared["state"],
                "fingerprint": self.fingerprint,
                "world_size": self.world_size,
                "format_version": FORMAT_VERSION,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (tmp / STATE).write_text(json.dumps(state, indent=2))
            for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", STATE):
                written[name] = tmp / name
        digests = {name: {"size": path.stat().st_size, "sha256": sha256_of(path)} for name, path in written.items()}
        for path in written.values():
            _fsync(path)
        every = gather(digests)
        if self.writes_shared_files:
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


def load_checkpoint(
    found: Found, rank: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict:
    """Restore the model, optimizer, scheduler and this rank's generators; return the trainer state."""
    from safetensors.torch import load_model

    load_model(model, str(found.path / "model.safetensors"))
    optimizer.load_state_dict(torch.load(found.path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(found.path / "scheduler.pt", weights_only=True))
    rng_file = found.path / f"rng-rank{rank}.pt"
    if rng_file.exists():
        set_rng_state(torch.load(rng_file, weights_only=True))
    else:
        log.warning(
            "checkpoint %s has no random-number state for rank %d: dropout will differ from an uninterrupted run",
            found.path.name,
            rank,
        )
    return found.state
