"""At container start (`serve`, `train`): can this host's NVIDIA driver run the CUDA that torch
was built for?

A CUDA build of torch on a host whose driver is too old does not fail: ``torch.cuda.is_available()``
turns False with a warning and the model runs on the CPU, many times slower, on a GPU instance.
So the driver is checked first, and a mismatch is a failure whose reason names both versions and
the SageMaker AMI that has a driver new enough: `/ping` answers 503 with it, `train` writes it to
/opt/ml/output/failure.

How the driver is asked: ``cuDriverGetVersion`` of libcuda (through ctypes), which answers the
very question — the newest CUDA version the driver supports, e.g. 12020 for driver 535 — and needs
no ``cuInit``, so it starts no CUDA context in gunicorn's master before the workers fork. libcuda
is mounted into every container that may use a GPU (the NVIDIA runtime's ``compute``
capability, which CUDA itself needs); ``nvidia-smi`` and NVML come only with the ``utility``
capability, and /proc/driver/nvidia may be masked. The driver's own version number, for the
message, is read from /proc/driver/nvidia/version where it is visible.

What "new enough" means (CUDA's minor-version compatibility): a runtime of CUDA X.y runs on any
driver that supports X.0 or later (CUDA 11: driver >= 450, 12: >= 525, 13: >= 580), except for
PTX that must be compiled just in time for a newer architecture and for features newer than the
driver's CUDA; so a driver of the same major line but an older minor passes with a warning.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sagebert.driver")

# The oldest Linux driver of each CUDA major line (CUDA's release notes, "CUDA Toolkit and
# Minimum Required Driver Version for CUDA Minor Version Compatibility").
MINIMUM_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# SageMaker's GPU AMIs (InferenceAmiVersion, TransformAmiVersion) and their drivers, per CUDA line.
INFERENCE_AMI = {
    11: "the default (driver 470)",
    12: "al2-ami-sagemaker-inference-gpu-3-1 (driver 550) or al2-ami-sagemaker-inference-gpu-2-1 (driver 535)",
    13: "al2023-ami-sagemaker-inference-gpu-4-1 (driver 580)",
}
TRANSFORM_AMI = {
    11: "al2-ami-sagemaker-batch-gpu-470",
    12: "al2-ami-sagemaker-batch-gpu-535",
    13: None,  # no batch transform AMI has a driver >= 580
}
PROC_VERSION = Path("/proc/driver/nvidia/version")


@dataclass(frozen=True)
class DriverCheck:
    """The outcome: ``ok`` False means the container must not serve or train; ``message`` is
    the one log line (or the failure reason)."""

    ok: bool
    message: str
    warning: bool = False  # ok, but under minor-version compatibility's caveats


def _cuda(version: int) -> str:
    """cuDriverGetVersion's integer (12020) as CUDA writes it (12.2)."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _where_to_run(major: int, batch_transform: bool, training: bool) -> str:
    if training:
        return (
            f"Train on an instance type whose driver supports CUDA {major} "
            f"(>= {MINIMUM_DRIVER.get(major, '?')}), or use the CPU image."
        )
    if batch_transform:
        ami = TRANSFORM_AMI.get(major)
        if ami is None:
            return (
                f"No batch transform AMI has a driver for CUDA {major}: run the transform on a CPU "
                "instance type, or build the image for CUDA 12 (VARIANT=gpu-cu12) and set "
                "TransformAmiVersion al2-ami-sagemaker-batch-gpu-535."
            )
        return f"Set TransformAmiVersion {ami} (sagebert transform --transform-ami-version {ami})."
    ami = INFERENCE_AMI.get(major, "one whose driver supports CUDA " + str(major))
    first = ami.split(" ")[0]
    return f"Deploy with InferenceAmiVersion {ami} (sagebert deploy --inference-ami-version {first})."


def check_driver(
    torch_cuda: str | None,
    driver_cuda: int | None,
    driver_version: str | None = None,
    gpu_devices: int = 0,
    *,
    batch_transform: bool = False,
    training: bool = False,
) -> DriverCheck:
    """Decide whether torch built for CUDA ``torch_cuda`` ("13.0"; None for a CPU build) can run
    on a driver that supports CUDA ``driver_cuda`` (cuDriverGetVersion's 13000; None when no
    libcuda could be loaded), with ``gpu_devices`` NVIDIA device files visible."""
    if torch_cuda is None:
        return DriverCheck(True, "NVIDIA driver check: torch is a CPU build; nothing to check, running on the CPU")
    if driver_cuda is None:
        if gpu_devices:
            return DriverCheck(
                False,
                f"torch is built for CUDA {torch_cuda} and {gpu_devices} NVIDIA GPU(s) are visible, but the "
                "NVIDIA driver library libcuda.so.1 cannot be loaded. Start the container with the NVIDIA "
                "runtime (docker run --gpus all); on SageMaker, pick a GPU AMI (InferenceAmiVersion).",
            )
        return DriverCheck(
            True, f"NVIDIA driver check: torch is built for CUDA {torch_cuda} but no GPU is visible; running on the CPU"
        )
    needed_major, _, needed_minor = torch_cuda.partition(".")
    needed = int(needed_major) * 1000 + int(needed_minor or 0) * 10
    major = int(needed_major)
    driver = f"NVIDIA driver {driver_version or '(version not readable)'}, which supports CUDA {_cuda(driver_cuda)}"
    if driver_cuda // 1000 < major:
        advice = _where_to_run(major, batch_transform, training)
        return DriverCheck(
            False,
            f"torch is built for CUDA {torch_cuda}, which needs an NVIDIA driver >= "
            f"{MINIMUM_DRIVER.get(major, 'for CUDA ' + needed_major)}; this host has {driver}. {advice}",
        )
    if driver_cuda < needed:
        return DriverCheck(
            True,
            f"NVIDIA driver check: torch is built for CUDA {torch_cuda}; this host has {driver}: it runs "
            "under CUDA minor-version compatibility (no just-in-time PTX compilation, no features newer "
            f"than CUDA {_cuda(driver_cuda)})",
            warning=True,
        )
    return DriverCheck(True, f"NVIDIA driver check: torch is built for CUDA {torch_cuda}; this host has {driver}")


def driver_cuda_version(library: str | None = None) -> int | None:
    """libcuda's cuDriverGetVersion, or None when the library is absent or does not answer."""
    name = library or ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        libcuda = ctypes.CDLL(name)
        version = ctypes.c_int(0)
        status = libcuda.cuDriverGetVersion(ctypes.byref(version))
    except (OSError, AttributeError):
        return None
    return version.value if status == 0 and version.value > 0 else None


def driver_version(path: Path = PROC_VERSION) -> str | None:
    """The kernel module's version ("535.183.01") from /proc, where visible."""
    try:
        text = path.read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module(?: for \S+)?\s+([0-9]+(?:\.[0-9]+)+)", text)
    return match.group(1) if match else None


def gpu_device_count(pattern: str = "/dev/nvidia[0-9]*") -> int:
    """NVIDIA GPUs given to this container (their device files), counted without starting CUDA."""
    return len(glob.glob(pattern))


def check_this_host(*, batch_transform: bool = False, training: bool = False) -> DriverCheck:
    """``check_driver`` with this process's torch and this host's driver; logs its one line."""
    import torch

    result = check_driver(
        torch.version.cuda,
        driver_cuda_version() if torch.version.cuda else None,
        driver_version(),
        gpu_device_count(),
        batch_transform=batch_transform,
        training=training,
    )
    if not result.ok:
        log.error("%s", result.message)
    elif result.warning:
        log.warning("%s", result.message)
    else:
        log.info("%s", result.message)
    return result
