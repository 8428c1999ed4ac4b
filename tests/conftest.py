"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import make_tiny_bert, make_tiny_model_dir


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A directory holding a tiny BERT (config, safetensors, tokenizer): a stand-in base model."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_bert, tmp_path_factory) -> Path:
    """A model directory as training writes it (labels, sagebert.json, metrics), from the tiny BERT."""
    return make_tiny_model_dir(tiny_bert, tmp_path_factory.mktemp("tiny-model"))
