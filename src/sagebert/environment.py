"""SageMaker's container contract in one place: paths under /opt/ml, environment-variable names,
and a snapshot of a training job's configuration read once at start.

Nothing here imports torch, so the deploy tooling can share the names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import contract
from .errors import DataError

# ---- environment-variable names -------------------------------------------------------------
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"  # the toolkits' override of /opt/ml (tests, local runs)
DEFAULT_BASE_DIR = "/opt/ml"

# Serving's variables are read by sagebert.serving.settings; this one is shared with the deploy
# tooling (the transform command reads a model's payload limit).
MAX_PAYLOAD_IN_MB_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"

# ---- channels ---------------------------------------------------------------------------------
TRAINING_CHANNEL = "training"
TESTING_CHANNEL = "testing"
PRETRAINED_CHANNEL = "pretrained"


def base_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The SageMaker root (``/opt/ml`` unless SAGEMAKER_BASE_DIR says otherwise)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR)


@dataclass(frozen=True)
class SageMakerPaths:
    """Every path of the /opt/ml contract, relative to one root."""

    base: Path

    @property
    def config_dir(self) -> Path:
        return self.base / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def checkpoint_config_file(self) -> Path:
        return self.config_dir / "checkpointconfig.json"

    @property
    def data_dir(self) -> Path:
        return self.base / "input" / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def models_dir(self) -> Path:
        """Where multi-model endpoints place the models they load."""
        return self.base / "models"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def default_checkpoint_dir(self) -> Path:
        return self.base / "checkpoints"


def _read_json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc}).",
            "SageMaker writes this file itself; if you wrote it (local tests), fix its syntax.",
        ) from exc


@dataclass(frozen=True)
class TrainingEnvironment:
    """One read of a training container's configuration files and data channels."""

    paths: SageMakerPaths
    # As hyperparameters.json holds them (strings from SageMaker); sagebert.hyperparameters.load
    # parses them, once, into the typed Hyperparameters.
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    input_data_config: dict[str, dict] = field(default_factory=dict)
    checkpoint_dir: Path = Path(contract.CHECKPOINT_LOCAL_PATH)

    @classmethod
    def read(cls, base: Path | str | None = None, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        """Read hyperparameters.json, inputdataconfig.json and checkpointconfig.json (the hosts, in
        resourceconfig.json, are the launcher's business: container/training_module.py)."""
        environ = os.environ if environ is None else environ
        paths = SageMakerPaths(Path(base) if base is not None else base_dir(environ))
        hyperparameters = _read_json(paths.hyperparameters_file) or {}
        if not isinstance(hyperparameters, dict):
            raise DataError(
                f"{paths.hyperparameters_file} must hold a JSON object of strings.",
                'SageMaker writes this file itself; if you wrote it (local tests), make it {"name": "value", ...}.',
            )
        checkpoint_config = _read_json(paths.checkpoint_config_file) or {}
        checkpoint_dir = Path(checkpoint_config.get("LocalPath") or paths.default_checkpoint_dir)
        return cls(
            paths=paths,
            hyperparameters=hyperparameters,
            input_data_config=_read_json(paths.input_data_config_file) or {},
            checkpoint_dir=checkpoint_dir,
        )

    @property
    def channels(self) -> dict[str, Path]:
        """Channel name → directory, for every channel configured or present on disk."""
        names = set(self.input_data_config)
        if self.paths.data_dir.is_dir():
            names.update(p.name for p in self.paths.data_dir.iterdir() if p.is_dir())
        return {name: self.paths.channel_dir(name) for name in sorted(names)}

    def channel(self, name: str, *, required: bool = False) -> Path | None:
        """The directory of channel ``name``; a DataError if ``required`` and it is absent."""
        directory = self.channels.get(name)
        if directory is not None and directory.is_dir():
            return directory
        if directory is not None and name in self.input_data_config:
            raise DataError(
                f"Channel '{name}' is configured but {directory} does not exist.",
                "Check the channel's S3 URI: it must be a prefix that holds at least one object.",
            )
        if required:
            present = ", ".join(self.channels) or "none"
            raise DataError(
                f"The required '{name}' channel is missing (channels present: {present}).",
                f"Add an input channel named '{name}' (InputDataConfig ChannelName='{name}', "
                f"or `sagebert train --data s3://.../` with a '{name}/' prefix under it).",
            )
        return None

    def channel_content_type(self, name: str) -> str | None:
        """The ContentType SageMaker was given for a channel, if any."""
        return (self.input_data_config.get(name) or {}).get("ContentType")
