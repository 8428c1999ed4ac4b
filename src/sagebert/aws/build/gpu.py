"""Which host AMI a GPU instance needs for the image's CUDA line, for endpoints and batch transform.

SageMaker hosts run an NVIDIA driver chosen by the AMI: endpoints take ``InferenceAmiVersion``
(ProductionVariant), batch transform ``TransformAmiVersion`` (TransformResources). A CUDA build of
torch starts only on a driver at least as new as its CUDA line needs (CUDA 13.x: 580; CUDA 12.x:
525, thanks to CUDA's minor-version compatibility). The AMI names and their driver versions are
read from the installed botocore service model's documentation of those two fields, so they move
with the API rather than being copied here.
"""

from __future__ import annotations

import re
from functools import cache

from ..validation import InvalidRequestError, service_model

# The CUDA line of the image's GPU variant: torch in requirements/image-gpu.lock is built for it
# (tests/unit/test_gpu_hosts.py checks the two agree).
GPU_IMAGE_CUDA = "13.0"
CUDA_LINES = ("13.0", "12.x", "none")
# The oldest driver each CUDA major version runs on (NVIDIA's CUDA compatibility tables:
# minor-version compatibility within a major line).
MINIMUM_DRIVER = {"13": 580, "12": 525}
# Instance families with NVIDIA GPUs: ml.g4dn, g5, g6, g6e, gr6, p3, p4d, p5, p5e, p6...
_GPU_FAMILY = re.compile(r"^ml\.(g|gr|p)\d")
_AMI_ENTRY = re.compile(r"<dt>\s*(?:<p>)?\s*([a-z0-9-]+)\s*(?:</p>)?\s*</dt>(.*?)(?=<dt>|</dl>)", re.S)
_DRIVER = re.compile(r"NVIDIA driver version:\s*(\d+)")


def cuda_from_labels(labels: dict[str, str] | None) -> str | None:
    """The image's CUDA line from its labels: ``sagebert.cuda`` when set, else what its
    ``sagebert.variant`` (the Dockerfile's VARIANT) implies; None when they say nothing."""
    labels = labels or {}
    if labels.get("sagebert.cuda") in CUDA_LINES:
        return labels["sagebert.cuda"]
    return {"gpu": GPU_IMAGE_CUDA, "cpu": "none"}.get(labels.get("sagebert.variant", ""))


def is_gpu_instance(instance_type: str | None) -> bool:
    """Whether ``instance_type`` (``ml.g5.xlarge``) has NVIDIA GPUs."""
    return bool(instance_type and _GPU_FAMILY.match(instance_type))


@cache
def documented_amis(shape: str, member: str) -> dict[str, int | None]:
    """AMI name → NVIDIA driver (None: not a GPU AMI), as the service model documents ``member``."""
    documentation = service_model().shape_for(shape).members[member].documentation
    return {
        name: int(driver.group(1)) if (driver := _DRIVER.search(body)) else None
        for name, body in _AMI_ENTRY.findall(documentation)
    }


def inference_amis() -> dict[str, int | None]:
    """ProductionVariant InferenceAmiVersion's values and their drivers."""
    return documented_amis("ProductionVariant", "InferenceAmiVersion")


def transform_amis() -> dict[str, int | None]:
    """TransformResources TransformAmiVersion's values and their drivers."""
    return documented_amis("TransformResources", "TransformAmiVersion")


def needed_driver(image_cuda: str) -> int | None:
    """The oldest NVIDIA driver the image runs on; None for a CPU image."""
    if image_cuda not in CUDA_LINES:
        raise InvalidRequestError(
            f"--image-cuda {image_cuda} is not a CUDA line sagebert knows.", f"Pass one of {', '.join(CUDA_LINES)}."
        )
    return None if image_cuda == "none" else MINIMUM_DRIVER[image_cuda.split(".")[0]]


def _pick(amis: dict[str, int | None], needed: int) -> str | None:
    """The AMI with the oldest driver that is new enough (the later name on a tie: a newer revision)."""
    fitting = [
        (driver, index, name) for index, (name, driver) in enumerate(amis.items()) if driver and driver >= needed
    ]
    return max(fitting, key=lambda item: (-item[0], item[1]))[2] if fitting else None


def _check_given(given: str, amis: dict[str, int | None], option: str, needed: int | None, why: str) -> None:
    if given not in amis:
        raise InvalidRequestError(f"{option} {given} is not one SageMaker offers.", f"Pass one of {', '.join(amis)}.")
    driver = amis[given]
    if needed is not None and (driver is None or driver < needed):
        has = f"NVIDIA driver {driver}" if driver else "no NVIDIA driver"
        better = _pick(amis, needed)
        raise InvalidRequestError(
            f"{option} {given} has {has}; {why} needs {needed} or newer.",
            f"Pass {option} {better}, or leave it out and sagebert picks it." if better else f"Drop {option}.",
        )


def inference_ami(instance_type: str | None, image_cuda: str, given: str | None = None) -> str | None:
    """The InferenceAmiVersion a variant on ``instance_type`` needs for an image of ``image_cuda``
    (``13.0``, ``12.x``, ``none``); ``given`` (--inference-ami-version) is checked, not replaced.

    None: leave SageMaker's default (a CPU instance type, or a CPU image with nothing given).
    """
    needed = needed_driver(image_cuda)
    amis = inference_amis()
    if not is_gpu_instance(instance_type):
        if given:
            raise InvalidRequestError(
                f"--inference-ami-version {given} picks a GPU host's driver, and {instance_type or 'serverless'} "
                "has no GPU.",
                "Drop --inference-ami-version, or deploy to a GPU instance type (ml.g5.xlarge...).",
            )
        return None
    why = f"the image's CUDA {image_cuda}"
    if given:
        _check_given(given, amis, "--inference-ami-version", needed, why)
        return given
    if needed is None:
        return None
    chosen = _pick(amis, needed)
    if chosen is None:
        raise InvalidRequestError(
            f"No InferenceAmiVersion this botocore knows has an NVIDIA driver {needed} or newer, which {why} needs.",
            "Upgrade boto3/botocore, or pass --image-cuda with the CUDA line of a build that older drivers run.",
        )
    return chosen


def transform_ami(instance_type: str, image_cuda: str, given: str | None = None) -> str | None:
    """The TransformAmiVersion a GPU batch transform needs; refuses one whose hosts' drivers are all
    too old for the image (batch transform offers fewer AMIs than endpoints)."""
    needed = needed_driver(image_cuda)
    amis = transform_amis()
    if not is_gpu_instance(instance_type):
        if given:
            raise InvalidRequestError(
                f"--transform-ami-version {given} picks a GPU host's driver, and {instance_type} has no GPU.",
                "Drop --transform-ami-version, or transform on a GPU instance type.",
            )
        return None
    why = f"the image's CUDA {image_cuda}"
    if needed is not None and _pick(amis, needed) is None:
        newest = max((driver for driver in amis.values() if driver), default=None)
        raise InvalidRequestError(
            f"Batch transform cannot run this image on {instance_type}: {why} needs NVIDIA driver {needed} or newer, "
            f"and the newest a transform host offers is {newest} ({', '.join(amis)}).",
            "Transform on a CPU instance type (--instance-type ml.m5.xlarge), or deploy to a GPU endpoint "
            f"(its {_pick(inference_amis(), needed) or 'newest'} AMI has the driver) and invoke it; a CUDA 12 build "
            "(--image-cuda 12.x) runs on al2-ami-sagemaker-batch-gpu-535.",
        )
    if given:
        _check_given(given, amis, "--transform-ami-version", needed, why)
        return given
    return None if needed is None else _pick(amis, needed)
