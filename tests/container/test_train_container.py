"""`docker run IMAGE train` on a SageMaker-like /opt/ml tree: the real image, the real toolkit."""

import json
import re
import subprocess

import pytest

from sagebert.metric_lines import METRIC_DEFINITIONS
from sagebert.modeling import load_model_dir
from support import docker_run, make_opt_ml, write_csv


def test_train_writes_a_servable_model(trained_in_container):
    base, run = trained_in_container
    assert run.returncode == 0, run.output[-3000:]
    assert "sagemaker-training-toolkit" in run.output and "Reporting training SUCCESS" in run.output
    assert (base / "output" / "success").exists() and not (base / "output" / "failure").exists()
    loaded = load_model_dir(base / "model")
    assert loaded.label_names == ["Not a disaster", "Real disaster"]
    assert (base / "model" / "model.safetensors").stat().st_size > 0


def test_hyperparameters_reach_the_program_through_the_toolkit(trained_in_container):
    base, run = trained_in_container
    assert "train.py --clean_text True --epochs 2" in run.output  # the toolkit's command line
    recorded = json.loads((base / "model" / "sagebert.json").read_text())["hyperparameters"]
    assert recorded["clean_text"] is True and recorded["epochs"] == 2 and recorded["train_batch_size"] == 16
    assert recorded["label_names"] == ["Not a disaster", "Real disaster"]


def test_metrics_cover_the_whole_test_channel_every_epoch(trained_in_container):
    base, run = trained_in_container
    metrics = json.loads((base / "model" / "metrics.json").read_text())
    assert metrics["examples"] == 96 and metrics["epochs"] == 2
    history = json.loads((base / "output" / "data" / "metrics_history.json").read_text())
    assert [h["metrics"]["examples"] for h in history] == [96, 96]
    assert (base / "output" / "data" / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    epoch_lines = [line for line in run.output.splitlines() if "eval_accuracy=" in line]
    assert len(epoch_lines) == 2
    for definition in METRIC_DEFINITIONS:
        if definition["Name"].startswith("eval:"):
            assert re.search(definition["Regex"], epoch_lines[-1]), definition
    assert float(re.search(r"eval_accuracy=([0-9.]+)", epoch_lines[-1]).group(1)) == pytest.approx(
        metrics["accuracy"], abs=1e-4
    )


@pytest.mark.parametrize(
    "case, expected",
    [
        ("bad_labels", "label outside the label set"),
        ("bad_hyperparameter", "hyperparameter 'epochs' is 'two'"),
        ("no_training_channel", "The required 'training' channel is missing"),
        ("empty_file", "is empty"),
    ],
)
def test_bad_input_fails_with_a_reason_and_a_non_zero_exit(image, tmp_path, tiny_bert, case, expected):
    hyperparameters = {"epochs": "two"} if case == "bad_hyperparameter" else {"epochs": 1}
    base = make_opt_ml(
        tmp_path / "opt_ml", train_rows=40, test_rows=20, pretrained=tiny_bert, hyperparameters=hyperparameters
    )
    train_csv = base / "input" / "data" / "training" / "train.csv"
    if case == "bad_labels":
        write_csv(train_csv, ["label", "sentence"], [["0", "calm"], ["3", "fire"], ["1", "flood"]])
    elif case == "no_training_channel":
        train_csv.unlink()
        train_csv.parent.rmdir()
        config = base / "input" / "config" / "inputdataconfig.json"
        config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "training"}))
    elif case == "empty_file":
        train_csv.write_bytes(b"")
    run = docker_run(image, "train", opt_ml=base)
    assert run.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert expected in reason and "Fix:" in reason
    assert "Traceback" not in reason and len(reason.strip()) <= 1024
    assert not (base / "output" / "success").exists()


def test_image_metadata_and_hygiene(image):
    inspect = json.loads(
        subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True).stdout
    )[0]
    config = inspect["Config"]
    assert config["Entrypoint"] == ["/usr/local/bin/sagebert-entrypoint"]  # exec form
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    probe = docker_run(
        image,
        "sh",
        "-c",
        "command -v gcc cc || echo no-compiler; pip config list; ls /build 2>&1; "
        "python -c 'import sagebert, torch; print(torch.__version__)'",
    )
    assert "no-compiler" in probe.output and "/build" in probe.output and "No such file" in probe.output
    assert "cert" not in probe.output.lower()
    assert "+cpu" in probe.output
    history = subprocess.run(["docker", "history", "--no-trunc", image], capture_output=True, text=True).stdout
    assert "PIP_CERT" not in history and "ca-certificates.crt" not in history


def test_no_arguments_prints_usage(image):
    run = docker_run(image)
    assert run.returncode == 64 and "usage: docker run IMAGE train|serve" in run.output
