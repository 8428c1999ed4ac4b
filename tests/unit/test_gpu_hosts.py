"""Which host AMI a GPU instance gets for the image's CUDA line (sagebert.aws.build.gpu): instance
types x CUDA lines x AMIs, read against the installed botocore service model. No AWS."""

from __future__ import annotations

import re
from argparse import Namespace

import pytest

from sagebert.aws.build import gpu
from sagebert.aws.build.hosting import Running, VariantSpec
from sagebert.aws.validation import InvalidRequestError, shape_limits
from sagebert.cli.update import next_inference_ami
from support import REPO

GPU_TYPES = (
    "ml.g4dn.xlarge",
    "ml.g5.2xlarge",
    "ml.g6.xlarge",
    "ml.g6e.xlarge",
    "ml.p3.2xlarge",
    "ml.p4d.24xlarge",
    "ml.p5.48xlarge",
)
CPU_TYPES = ("ml.m5.xlarge", "ml.c5.2xlarge", "ml.c7i.large", "ml.inf2.xlarge", "ml.trn1.2xlarge", "ml.t2.medium")
CUDA_13_AMI = "al2023-ami-sagemaker-inference-gpu-4-1"


def test_the_default_cuda_line_is_the_one_the_gpu_lock_builds_torch_for():
    lock = (REPO / "requirements" / "image-gpu.lock").read_text()
    toolkit = re.search(r"^cuda-toolkit==(\d+)\.(\d+)\.", lock, re.M)
    assert toolkit, "requirements/image-gpu.lock pins no cuda-toolkit"
    assert f"{toolkit.group(1)}.{toolkit.group(2)}" == gpu.GPU_IMAGE_CUDA


def test_the_amis_and_drivers_are_read_from_the_service_model():
    inference = gpu.inference_amis()
    assert inference[CUDA_13_AMI] == 580
    assert inference["al2-ami-sagemaker-inference-gpu-3-1"] == 550
    assert inference["al2-ami-sagemaker-inference-neuron-2"] is None  # not an NVIDIA host
    assert set(inference) == set(shape_limits("ProductionVariantInferenceAmiVersion")["enum"])
    assert gpu.transform_amis() == {"al2-ami-sagemaker-batch-gpu-470": 470, "al2-ami-sagemaker-batch-gpu-535": 535}


@pytest.mark.parametrize("instance_type", GPU_TYPES)
@pytest.mark.parametrize(
    ("cuda", "ami"),
    [("13.0", CUDA_13_AMI), ("12.x", "al2-ami-sagemaker-inference-gpu-2-1"), ("none", None)],
)
def test_a_gpu_instance_gets_the_oldest_ami_whose_driver_runs_the_image(instance_type, cuda, ami):
    assert gpu.inference_ami(instance_type, cuda) == ami


@pytest.mark.parametrize("instance_type", (*CPU_TYPES, None))
@pytest.mark.parametrize("cuda", gpu.CUDA_LINES)
def test_a_cpu_instance_or_serverless_variant_gets_no_ami(instance_type, cuda):
    assert gpu.inference_ami(instance_type, cuda) is None


@pytest.mark.parametrize("instance_type", GPU_TYPES)
@pytest.mark.parametrize("ami", sorted(gpu.inference_amis()))
def test_a_given_ami_is_kept_only_if_its_driver_runs_a_cuda_13_image(instance_type, ami):
    if gpu.inference_amis()[ami] and gpu.inference_amis()[ami] >= 580:
        assert gpu.inference_ami(instance_type, "13.0", ami) == ami
    else:
        with pytest.raises(
            InvalidRequestError, match=f"needs 580 or newer.*Pass --inference-ami-version {CUDA_13_AMI}"
        ):
            gpu.inference_ami(instance_type, "13.0", ami)


def test_a_cuda_12_image_runs_on_every_nvidia_ami():
    for ami, driver in gpu.inference_amis().items():
        if driver:
            assert gpu.inference_ami("ml.g5.xlarge", "12.x", ami) == ami


def test_an_ami_sagemaker_does_not_offer_is_refused_with_the_list():
    with pytest.raises(InvalidRequestError, match=f"not one SageMaker offers.*{CUDA_13_AMI}"):
        gpu.inference_ami("ml.g5.xlarge", "13.0", "al2-ami-sagemaker-inference-gpu-9")


def test_an_ami_for_a_cpu_instance_is_refused():
    with pytest.raises(InvalidRequestError, match="ml.m5.xlarge has no GPU"):
        gpu.inference_ami("ml.m5.xlarge", "13.0", CUDA_13_AMI)


def test_an_unknown_cuda_line_is_refused():
    with pytest.raises(InvalidRequestError, match="Pass one of 13.0, 12.x, none"):
        gpu.inference_ami("ml.g5.xlarge", "11.8")


@pytest.mark.parametrize("instance_type", GPU_TYPES)
def test_a_gpu_transform_of_a_cuda_13_image_is_refused_with_the_reason_and_the_way_out(instance_type):
    with pytest.raises(InvalidRequestError) as refused:
        gpu.transform_ami(instance_type, "13.0")
    message = str(refused.value)
    assert "needs NVIDIA driver 580 or newer" in message and "the newest a transform host offers is 535" in message
    assert "--instance-type ml.m5.xlarge" in message and CUDA_13_AMI in message
    with pytest.raises(InvalidRequestError):  # naming an AMI does not make the driver newer
        gpu.transform_ami(instance_type, "13.0", "al2-ami-sagemaker-batch-gpu-535")


@pytest.mark.parametrize("instance_type", GPU_TYPES)
def test_a_gpu_transform_of_a_cuda_12_image_runs_on_the_535_driver(instance_type):
    assert gpu.transform_ami(instance_type, "12.x") == "al2-ami-sagemaker-batch-gpu-535"
    assert (
        gpu.transform_ami(instance_type, "12.x", "al2-ami-sagemaker-batch-gpu-535") == "al2-ami-sagemaker-batch-gpu-535"
    )
    with pytest.raises(InvalidRequestError, match="has NVIDIA driver 470; .* needs 525"):
        gpu.transform_ami(instance_type, "12.x", "al2-ami-sagemaker-batch-gpu-470")


@pytest.mark.parametrize("instance_type", CPU_TYPES)
@pytest.mark.parametrize("cuda", gpu.CUDA_LINES)
def test_a_cpu_transform_needs_no_ami_and_takes_none(instance_type, cuda):
    assert gpu.transform_ami(instance_type, cuda) is None
    with pytest.raises(InvalidRequestError, match="has no GPU"):
        gpu.transform_ami(instance_type, cuda, "al2-ami-sagemaker-batch-gpu-535")


def test_a_transform_ami_not_in_the_api_list_is_refused():
    with pytest.raises(InvalidRequestError, match="not one SageMaker offers"):
        gpu.transform_ami("ml.g5.xlarge", "12.x", "al2-ami-sagemaker-batch-gpu-580")


def _running_on(instance_type: str, ami: str | None) -> Running:
    variant = {"VariantName": "AllTraffic", "InstanceType": instance_type, "InitialInstanceCount": 1}
    if ami:
        variant["InferenceAmiVersion"] = ami
    return Running({"EndpointName": "ep"}, {"ProductionVariants": [variant]}, variant, {})


@pytest.mark.parametrize(
    ("running", "given_type", "given_ami", "cuda", "expected"),
    [
        (
            ("ml.g5.xlarge", "al2-ami-sagemaker-inference-gpu-3-1"),
            None,
            None,
            "12.x",
            "al2-ami-sagemaker-inference-gpu-3-1",
        ),
        (("ml.g5.xlarge", "al2-ami-sagemaker-inference-gpu-3-1"), None, None, "13.0", CUDA_13_AMI),
        (("ml.g5.xlarge", None), None, None, "13.0", CUDA_13_AMI),
        (("ml.g5.xlarge", CUDA_13_AMI), "ml.m5.xlarge", None, "13.0", None),
        (("ml.m5.xlarge", None), "ml.g6.xlarge", None, "13.0", CUDA_13_AMI),
        (
            ("ml.g5.xlarge", CUDA_13_AMI),
            None,
            "al2-ami-sagemaker-inference-gpu-3-1",
            "12.x",
            "al2-ami-sagemaker-inference-gpu-3-1",
        ),
    ],
)
def test_an_update_keeps_the_running_ami_while_it_fits_else_takes_the_one_needed(
    running, given_type, given_ami, cuda, expected
):
    current = _running_on(*running)
    args = Namespace(instance_type=given_type, inference_ami_version=given_ami)
    variant = VariantSpec(instance_type=given_type or running[0])

    assert next_inference_ami(args, current, variant, cuda) == expected


@pytest.mark.parametrize(
    ("labels", "line"),
    [
        ({"sagebert.variant": "gpu"}, gpu.GPU_IMAGE_CUDA),
        ({"sagebert.variant": "cpu"}, "none"),
        ({"sagebert.variant": "gpu", "sagebert.cuda": "12.x"}, "12.x"),
        ({"sagebert.variant": "tpu"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_cuda_line_follows_the_images_labels(labels, line):
    assert gpu.cuda_from_labels(labels) == line
