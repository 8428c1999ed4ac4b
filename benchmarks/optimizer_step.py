"""The cost of one AdamW step over the baked-in model's weights: torch's CPU default against fused.

    .venv/bin/python benchmarks/optimizer_step.py [--steps 20]

Every parameter of all-MiniLM-L6-v2 (22.7 M) gets a small random gradient; each implementation
takes 3 steps to warm up, then --steps timed steps, twice in alternation. Prints ms per step.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine

from sagebert.modeling import baked_in_model_dir, quiet_transformers

IMPLEMENTATIONS = {"default (for-loop on CPU)": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def ms_per_step(parameters: list[torch.nn.Parameter], options: dict, steps: int) -> float:
    optimizer = torch.optim.AdamW(parameters, lr=5e-5, weight_decay=0.01, **options)
    for _ in range(3):
        optimizer.step()
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - started) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from transformers import AutoModel

    quiet_transformers()
    model = AutoModel.from_pretrained(baked_in_model_dir())
    parameters = list(model.parameters())
    generator = torch.Generator().manual_seed(0)
    for parameter in parameters:
        parameter.grad = torch.randn(parameter.shape, generator=generator) * 1e-3
    print(f"AdamW step on {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    times: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(2):
        for name, options in IMPLEMENTATIONS.items():
            times[name].append(ms_per_step(parameters, options, args.steps))
    print("\n| AdamW | ms per step (two rounds) |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {' / '.join(f'{v:.0f}' for v in values)} |")


if __name__ == "__main__":
    main()
