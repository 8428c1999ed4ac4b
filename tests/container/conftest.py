"""Container-test fixtures: the real image, built once per session, run with `docker run`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import REPO, Run, docker_run, docker_usable, make_opt_ml, skip_or_fail

# SAGEBERT_TEST_TAG: the tag the fixture builds (several checkouts on one engine each use their own).
IMAGE_TAG = os.environ.get("SAGEBERT_TEST_TAG", "sagebert:test")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.container)


@pytest.fixture(scope="session")
def image() -> str:
    """The image under test: SAGEBERT_TEST_IMAGE if set, else built from this tree."""
    if not docker_usable():
        skip_or_fail(
            "Docker is not usable (no docker client, or no engine answers `docker info`)",
            "scripts/setup.sh (which .ci/run calls) installs and starts the engine",
        )
    tag = os.environ.get("SAGEBERT_TEST_IMAGE")
    if tag:
        subprocess.run(["docker", "image", "inspect", tag], check=True, capture_output=True)
        return tag
    build = subprocess.run(
        [str(REPO / "container" / "build-image.sh"), IMAGE_TAG], cwd=REPO, capture_output=True, text=True
    )
    if build.returncode != 0:
        pytest.fail("image build failed:\n" + (build.stdout + build.stderr)[-4000:])
    return IMAGE_TAG


@pytest.fixture(scope="session")
def trained_in_container(image, tiny_bert, tmp_path_factory) -> tuple[Path, Run]:
    """An /opt/ml tree after a successful `docker run IMAGE train` with the tiny BERT, run as a user
    would on one machine: without SageMaker's host name (algo-1) that resourceconfig.json names."""
    base = make_opt_ml(
        tmp_path_factory.mktemp("trained") / "opt_ml",
        train_rows=240,
        test_rows=96,
        pretrained=tiny_bert,
        hyperparameters={
            "epochs": 2,
            "train_batch_size": 16,
            "log_interval": 5,
            "learning_rate": 1e-3,
            "clean_text": "True",
            "label_names": "Not a disaster,Real disaster",
            # The head that auto picks for the baked-in (sentence-transformers) base: served below.
            "pooling": "mean",
        },
    )
    return base, docker_run(image, "train", opt_ml=base, hostname=None)
