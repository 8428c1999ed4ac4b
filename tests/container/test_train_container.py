"""`docker run IMAGE train` on a SageMaker-like /opt/ml tree: the real image, the real toolkit."""

import io
import json
import re
import tarfile

import pytest

from sagebert.metric_lines import METRIC_DEFINITIONS
from sagebert.modeling import load_model_dir
from sagebert.report import check_baseline
from support import docker_run, make_opt_ml, write_csv


def test_train_writes_a_servable_model(trained_in_container):
    base, run = trained_in_container
    assert run.returncode == 0, run.output[-3000:]
    assert "sagemaker-training-toolkit" in run.output and "Reporting training SUCCESS" in run.output
    assert (base / "output" / "success").exists() and not (base / "output" / "failure").exists()
    loaded = load_model_dir(base / "model")
    assert loaded.label_names == ["Not a disaster", "Real disaster"]
    assert (base / "model" / "model.safetensors").stat().st_size > 0
    # The serving export travels in model.tar.gz (one file, named by the weights' export key).
    assert len(list((base / "model").glob("model.int8-*.onnx"))) == 1
    assert "ONNX int8 export for serving: model.int8-" in run.output


def test_train_writes_the_baseline_report_compares_live_traffic_with(trained_in_container):
    base, run = trained_in_container
    assert run.returncode == 0, run.output[-3000:]
    baseline = check_baseline(json.loads((base / "model" / "baseline.json").read_text()))
    assert sum(baseline["length"]["counts"]) == baseline["rows"] == sum(baseline["labels"].values())
    assert list(baseline["labels"]) == ["Not a disaster", "Real disaster"]


def test_hyperparameters_reach_the_program_from_the_file_alone(trained_in_container):
    base, run = trained_in_container
    # The toolkit's command line: the program is given no second copy of the hyperparameters.
    command = re.search(r"Invoking script with the following command:\s*\n\s*(\S[^\n]*)", run.output)
    assert command and command.group(1).rstrip().endswith("train.py"), command and command.group(1)
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
    # What the promotion gate compares on: the test data's digest and each example's prediction.
    predictions = json.loads((base / "model" / "test_predictions.json").read_text())
    assert predictions["eval_data_sha256"] == metrics["eval_data_sha256"] and len(predictions["predictions"]) == 96
    right = sum(p == y for p, y in zip(predictions["predictions"], predictions["labels"], strict=True))
    assert right / 96 == pytest.approx(metrics["accuracy"])


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
    assert not any((base / "model").iterdir())


def test_a_single_host_job_trains_without_its_host_name(trained_in_container):
    base, run = trained_in_container  # `docker run IMAGE train`, no --hostname algo-1
    assert run.returncode == 0, run.output[-3000:]
    assert "waiting for the host name" not in run.output  # one host: nobody to wait for


def test_a_multi_host_job_whose_hosts_never_resolve_fails_with_a_reason_in_bounded_time(image, tmp_path, tiny_bert):
    base = make_opt_ml(
        tmp_path / "opt_ml", train_rows=40, test_rows=20, pretrained=tiny_bert, hosts=["algo-1", "algo-2"]
    )
    run = docker_run(image, "train", opt_ml=base, extra=("-e", "SAGEBERT_HOST_WAIT_SECONDS=3"), timeout=120)
    assert run.returncode != 0
    assert "waiting for the host name(s) algo-1, algo-2 to resolve (up to 3 s" in run.output
    reason = (base / "output" / "failure").read_text()
    assert "The host name(s) algo-2 of this 2-host job (resourceconfig.json) did not resolve: 3 s passed" in reason
    assert "Fix:" in reason and len(reason.strip()) <= 1024
    assert not any((base / "model").iterdir())


def tar_with_a_link_to(target: str) -> bytes:
    """A model.tar.gz whose vocab.txt is a symbolic link (an archive an attacker could hand over)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        config = tarfile.TarInfo("config.json")
        config.size = 2
        tar.addfile(config, io.BytesIO(b"{}"))
        link = tarfile.TarInfo("vocab.txt")
        link.type, link.linkname = tarfile.SYMTYPE, target
        tar.addfile(link)
    return buffer.getvalue()


HOSTILE = {
    # case: (what to write into the /opt/ml tree, what the failure reason must say)
    "a link out of the channel": (
        lambda base: (base / "input/data/training/passwd.csv").symlink_to("/etc/passwd"),
        "passwd.csv in channel 'training' is a symbolic link that points outside it",
    ),
    "a NUL byte": (
        lambda base: (base / "input/data/training/train.csv").write_bytes(b"label,sentence\n0,calm\n1,fi\0re\n"),
        "train.csv: line 3 holds a NUL byte",
    ),
    "a field over the csv limit": (
        lambda base: (base / "input/data/training/train.csv").write_text(
            "label,sentence\n0,calm\n1," + "a" * 300_000 + "\n"
        ),
        "train.csv, line 3: a field is longer than 131,072 characters, the limit of Python's csv module",
    ),
    "a link in a model.tar.gz": (
        lambda base: (base / "input/data/pretrained/model.tar.gz").write_bytes(tar_with_a_link_to("/etc/passwd")),
        "model.tar.gz holds a link that cannot be unpacked safely: 'vocab.txt'",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_channel_files_fail_with_a_clear_reason_and_leave_the_model_dir_empty(image, tmp_path, tiny_bert, case):
    base = make_opt_ml(
        tmp_path / "opt_ml", train_rows=40, test_rows=20, pretrained=tiny_bert, hyperparameters={"epochs": 1}
    )
    if case == "a link in a model.tar.gz":
        for path in (base / "input" / "data" / "pretrained").iterdir():
            path.unlink()  # the archive alone
    prepare, expected = HOSTILE[case]
    prepare(base)
    run = docker_run(image, "train", opt_ml=base)
    assert run.returncode != 0
    reason = (base / "output" / "failure").read_text()
    assert expected in reason and "Fix:" in reason, reason
    assert "root:" not in reason and "Traceback" not in reason and len(reason.strip()) <= 1024
    assert not any((base / "model").iterdir())
