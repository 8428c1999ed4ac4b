"""The CUDA 12 lock (VARIANT=gpu-cu12) stays the CPU lock with another torch: the same version of
every other package, only torch's CUDA 12 libraries added, every requirement hash-pinned."""

import re

from support import REPO

REQUIREMENTS = REPO / "requirements"


def pins(lock: str) -> dict[str, str]:
    text = (REQUIREMENTS / lock).read_text()
    return dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M))


def test_the_cuda_12_lock_differs_from_the_cpu_lock_only_in_torch_and_its_cuda_libraries():
    cpu, cu12 = pins("image-cpu.lock"), pins("image-gpu-cu12.lock")
    assert cu12["torch"] == "2.10.0" and cpu["torch"].endswith("+cpu")
    assert {name: version for name, version in cu12.items() if name in cpu and name != "torch"} == {
        name: version for name, version in cpu.items() if name != "torch"
    }
    added = set(cu12) - set(cpu)
    assert added and all(re.fullmatch(r"nvidia-.*-cu12|cuda-bindings|cuda-pathfinder|triton", name) for name in added)


def test_every_requirement_of_the_cuda_12_lock_carries_a_hash():
    text = (REQUIREMENTS / "image-gpu-cu12.lock").read_text()
    requirements = re.split(r"\n(?=[A-Za-z0-9])", text[text.index("\n", text.index("-o image-gpu-cu12.lock")) + 1 :])
    assert len(requirements) == len(pins("image-gpu-cu12.lock"))
    assert all("--hash=sha256:" in requirement for requirement in requirements)
