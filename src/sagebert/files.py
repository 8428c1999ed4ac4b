"""Files that come from outside the container: a channel's files, their digests, and model archives.

A channel is the user's data, but not always a well-meaning one: a symbolic link in it could make
training read (and quote in an error) a file of the container, and a tar member could write
outside the folder it is unpacked into. Everything here stays inside the folder it is given and
reads only regular files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from .errors import DataError

_BLOCK = 1 << 20
# What one model archive may unpack to: 16 GiB is ten times bert-large's weights. A gzip bomb (1 GiB
# of zeros is 1 MB packed) is refused by its headers' sizes before anything is written, instead
# of filling the disk and failing with "No space left on device".
MAX_UNPACKED_BYTES = 16 << 30
MAX_UNPACKED_MEMBERS = 100_000  # files and folders; tarfile keeps every header it reads in memory


class UnsafeFileError(DataError):
    """A channel holds a link out of it, a special file, or an archive member that is not a plain file."""


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def regular_files(root: Path, what: str) -> list[Path]:
    """Every regular file under ``root``, sorted; ``what`` names the folder in errors (e.g. "channel 'training'").

    A symbolic link is followed only when it points to a file inside ``root`` (linked folders are
    not descended into); a link that leads out of ``root`` or nowhere, a FIFO, socket or device
    fails with an UnsafeFileError that names the entry, never what it points to.
    """
    inside = root.resolve()
    found = []
    for directory, subdirectories, names in os.walk(root, followlinks=False):
        for name in sorted(subdirectories + names):
            path = Path(directory, name)
            relative = path.relative_to(root)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                target = path.resolve()
                if not target.is_relative_to(inside) or not target.exists():
                    raise UnsafeFileError(
                        f"{relative} in {what} is a symbolic link that points outside it (or nowhere); "
                        "links out of a channel are never followed.",
                        "Put the file itself in the channel instead of a link to it.",
                    )
                if target.is_file():
                    found.append(path)
            elif stat.S_ISREG(mode):
                found.append(path)
            elif not stat.S_ISDIR(mode):
                raise UnsafeFileError(
                    f"{relative} in {what} is not a regular file (a FIFO, socket or device).",
                    "Keep only data files in the channel.",
                )
    return sorted(found)


def directory_digest(root: Path) -> str:
    """The sha256 of a folder's content: every file's relative path and bytes, in path order.

    Links to files are digested as the files they point to (Hugging Face's cache is made of
    them); the caller decides beforehand whether a folder's links may be followed.
    """
    digest = hashlib.sha256()
    for directory, subdirectories, names in sorted(os.walk(root)):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory, name)
            if path.is_file():
                digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def _member_path(member: tarfile.TarInfo, archive_name: str) -> PurePosixPath | None:
    """The member's path relative to the extraction folder; None for the root itself; an error if unsafe."""
    path = PurePosixPath(member.name)
    parts = [part for part in path.parts if part not in ("", ".")]
    kind = "regular file" if member.isreg() else "folder" if member.isdir() else None
    if kind is None or path.is_absolute() or ".." in parts or "\0" in member.name:
        what = "a link" if member.issym() or member.islnk() else "a device or FIFO" if kind is None else "a path"
        raise UnsafeFileError(
            f"{archive_name} holds {what} that cannot be unpacked safely: {member.name!r} "
            "(only plain files and folders with relative paths inside the archive are accepted).",
            "Pack the model folder's files themselves, e.g. tar -czf model.tar.gz -C MODEL_DIR .",
        )
    return PurePosixPath(*parts) if parts else None


def extract_tar(archive: Path, target: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> None:
    """Unpack ``archive`` into the new folder ``target``: plain files and folders only, at most
    ``max_bytes`` in all and what the disk has free (checked before anything is written).

    The same on every Python (tarfile's extraction filters only exist from 3.11.4 and 3.12): every
    member is checked before anything is written, files are written by us with default
    permissions, and no owner, mode, time or link from the archive is applied.
    """
    with tarfile.open(archive) as tar:
        members, size = [], 0
        for member in tar:
            members.append((member, _member_path(member, archive.name)))
            size += member.size if member.isreg() else 0
            if size > max_bytes or len(members) > MAX_UNPACKED_MEMBERS:
                raise UnsafeFileError(
                    f"{archive.name} unpacks to more than {_gib(max_bytes)} or {MAX_UNPACKED_MEMBERS} files "
                    "(the cap on what one archive may unpack to).",
                    "Pack only the model folder's files (config.json, the weights, the tokenizer files).",
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if size > free:
            raise UnsafeFileError(
                f"{archive.name} unpacks to {_gib(size)} but {target.parent} has {_gib(free)} free.",
                "Give the training job a larger volume (VolumeSizeInGB), or a smaller model.",
            )
        target.mkdir()
        for member, relative in members:
            if relative is None:
                continue
            destination = target.joinpath(*relative.parts)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            with source, open(destination, "wb") as handle:
                shutil.copyfileobj(source, handle, _BLOCK)


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing) for the ``with`` block: processes of
    one host take turns."""
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_trees(paths: Iterable[Path]) -> None:
    """Remove folders that may or may not exist."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
