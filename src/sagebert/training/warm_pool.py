"""Reuse across the jobs of a SageMaker warm pool (``train/tune --keep-alive``).

A job that lands on an instance a warm pool kept finds the persistent cache directory SageMaker
gives warm pools (/opt/ml/sagemaker/warmpoolcache, named by SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY)
as the previous job left it. Two things are kept there, each under a name made of the digests the
job already computes for its checkpoint fingerprint (training.fingerprint), so a later job reuses
only what is identical:

- a base model archive of the `pretrained` channel, unpacked, named by the archive's sha256;
- the tokenized training and evaluation data, named by the data's digest, the base model's
  digest, max_length and the tokenizer library's version.

Outside a warm pool (no such directory) nothing is kept. Entries appear atomically (written, then
renamed), so a job stopped half-way leaves none half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("sagebert.training")

CACHE_DIR_ENV = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"
DEFAULT_CACHE_DIR = Path("/opt/ml/sagemaker/warmpoolcache")


def cache_dir() -> Path | None:
    """The warm pool's persistent cache directory, or None outside a warm pool."""
    named = os.environ.get(CACHE_DIR_ENV)
    directory = Path(named) if named else DEFAULT_CACHE_DIR
    return directory if directory.is_dir() and os.access(directory, os.W_OK) else None


def tokenized_key(data_digest: str, base_model_digest: str, max_length: int) -> str:
    """The cache name of tokenized data: what it was made from and how."""
    import tokenizers
    import transformers

    parts = {
        "data": data_digest,
        "base_model": base_model_digest,
        "max_length": max_length,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cached_json(directory: Path | None, name: str, make: Callable[[], Any]) -> Any:
    """``make()``'s JSON-able result, read from ``directory/name`` when an earlier job wrote it there
    (``directory`` None: no cache, always made)."""
    if directory is None:
        return make()
    path = directory / "tokenized" / f"{name}.json"
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # a damaged entry is remade, never trusted
            log.warning("warm pool cache: %s unreadable (%s); tokenizing again", path.name, exc)
        else:
            log.info("warm pool cache: reusing %s", path.name)
            return found
    made = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".partial-", delete=False) as handle:
        json.dump(made, handle)
    os.replace(handle.name, path)
    return made
