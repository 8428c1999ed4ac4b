"""The NVIDIA driver check at container start, with faked driver and CUDA versions (no GPU here):
the decision, the driver query through a real shared library, and what `serve` and `train` do
with a mismatch."""

import shutil
import subprocess
import types

import pytest

from sagebert.container import driver_check, serve
from sagebert.container.driver_check import check_driver
from sagebert.serving.settings import ServingSettings

DRIVER_535 = 12020  # cuDriverGetVersion of driver 535: CUDA 12.2
DRIVER_470 = 11040
DRIVER_580 = 13000


def test_a_cpu_build_of_torch_passes_and_says_so():
    result = check_driver(None, None)
    assert result.ok and "CPU build" in result.message


def test_a_cuda_build_without_a_gpu_passes_and_says_it_runs_on_the_cpu():
    result = check_driver("13.0", None, gpu_devices=0)
    assert result.ok and "no GPU is visible" in result.message


def test_cuda_13_on_driver_535_fails_naming_both_versions_and_the_ami():
    result = check_driver("13.0", DRIVER_535, "535.183.01", gpu_devices=1)
    assert not result.ok
    for part in ("CUDA 13.0", ">= 580", "535.183.01", "CUDA 12.2", "al2023-ami-sagemaker-inference-gpu-4-1"):
        assert part in result.message, part


def test_cuda_13_in_a_batch_transform_says_no_transform_ami_can_run_it():
    result = check_driver("13.0", DRIVER_535, "535.183.01", gpu_devices=1, batch_transform=True)
    assert not result.ok and "No batch transform AMI" in result.message and "535.183.01" in result.message


def test_cuda_12_on_driver_470_names_the_535_amis_for_endpoints_and_transforms():
    endpoint = check_driver("12.8", DRIVER_470, "470.256.02", gpu_devices=4)
    transform = check_driver("12.8", DRIVER_470, "470.256.02", gpu_devices=4, batch_transform=True)
    assert (
        not endpoint.ok and ">= 525" in endpoint.message and "al2-ami-sagemaker-inference-gpu-3-1" in endpoint.message
    )
    assert not transform.ok and "al2-ami-sagemaker-batch-gpu-535" in transform.message


def test_a_newer_minor_of_the_same_cuda_line_runs_under_minor_version_compatibility_with_a_warning():
    result = check_driver("12.8", DRIVER_535, "535.183.01", gpu_devices=1)
    assert result.ok and result.warning and "minor-version compatibility" in result.message


@pytest.mark.parametrize("driver", [DRIVER_580, 13020])
def test_a_driver_of_the_same_or_a_newer_cuda_passes_without_warning(driver):
    result = check_driver("13.0", driver, "580.65.06", gpu_devices=8)
    assert result.ok and not result.warning and "580.65.06" in result.message


def test_gpus_without_the_driver_library_fail_with_the_fix():
    result = check_driver("13.0", None, gpu_devices=2)
    assert not result.ok and "libcuda.so.1" in result.message and "--gpus" in result.message


def test_training_names_what_to_do_for_a_training_job():
    result = check_driver("13.0", DRIVER_535, "535.183.01", gpu_devices=1, training=True)
    assert not result.ok and "Train on an instance type" in result.message


def test_the_driver_version_is_read_from_proc(tmp_path):
    proc = tmp_path / "version"
    proc.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n"
        "GCC version:  gcc version 11.4.0\n"
    )
    assert driver_check.driver_version(proc) == "535.183.01"
    assert driver_check.driver_version(tmp_path / "absent") is None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build a stand-in libcuda")
def test_the_driver_query_calls_cuDriverGetVersion_of_the_library(tmp_path):
    source = tmp_path / "cuda.c"
    source.write_text("int cuDriverGetVersion(int *version) { *version = 12020; return 0; }\n")
    library = tmp_path / "libcuda.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    assert driver_check.driver_cuda_version(str(library)) == DRIVER_535
    assert driver_check.driver_cuda_version(str(tmp_path / "libabsent.so")) is None


def test_gpu_devices_are_counted_from_their_device_files(tmp_path):
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert driver_check.gpu_device_count(str(tmp_path / "nvidia[0-9]*")) == 2


@pytest.fixture
def host_with_driver_535(monkeypatch):
    """This process's torch claims CUDA 13.0; the host's driver is 535 with one GPU."""
    import torch

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(driver_check, "driver_cuda_version", lambda: DRIVER_535)
    monkeypatch.setattr(driver_check, "driver_version", lambda: "535.183.01")
    monkeypatch.setattr(driver_check, "gpu_device_count", lambda: 1)


def test_serve_on_a_driver_mismatch_answers_ping_503_with_the_reason(host_with_driver_535, monkeypatch, tmp_path):
    started = {}
    monkeypatch.setattr(serve, "run_gunicorn", lambda settings, options, load: started.update(load=load))
    serve.serve_single_model(ServingSettings(model_dir=tmp_path))
    app = started["load"](types.SimpleNamespace())
    response = app.test_client().get("/ping")
    assert response.status_code == 503
    assert "CUDA 13.0" in response.json["reason"] and "535.183.01" in response.json["reason"]
    assert "al2023-ami-sagemaker-inference-gpu-4-1" in response.json["reason"]


def test_train_on_a_driver_mismatch_writes_the_reason_to_the_failure_file(host_with_driver_535, tmp_path, monkeypatch):
    from sagebert.container.train_entry import main as train_main
    from support import make_opt_ml

    base = make_opt_ml(tmp_path / "opt_ml", train_rows=20)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    assert train_main([]) == 2
    reason = (base / "output" / "failure").read_text()
    assert "CUDA 13.0" in reason and "535.183.01" in reason and "Train on an instance type" in reason
