"""Recipe search: choose the training defaults on a validation hold-out, then measure the winner on test.

    .venv/bin/python benchmarks/recipe_search.py --image sagebert:dev
    .venv/bin/python benchmarks/recipe_search.py --local \\
        --grid "pooling=cls,mean learning_rate=5e-5,1e-4" --search-seed 1 --test-seeds 1,2,3

Stage 1, validation: every candidate of the grid (the product of its name=value,value... parts,
over the image's defaults) trains on the bundled training split ONLY, once per --search-seed:
without a testing channel sagebert holds out a stratified 20 % of it (drawn by the seed, so every
candidate sees the same hold-outs) and evaluates on that. Candidates are ranked by their mean
validation accuracy after the last epoch, then F1. The test split is never looked at here.
(A learning-rate sweep, as benchmarks/lr_sweep.sh did: --grid "learning_rate=5e-5,8e-5,1.2e-4"
--search-seed 1,2 --test-seeds "".)
Stage 2, test: the winner (or --recipe, skipping stage 1) trains on the whole training split once
per --test-seeds seed and is evaluated on all 1,904 test tweets: per seed and the mean.
--image runs `docker run IMAGE train`; --local runs the same training program in this checkout's
virtual environment (no image build; the figures match the image's only if the locks do).
Epoch seconds are the training log's "epoch N timing" (optimizer steps only, evaluation
excluded). Writes benchmarks/results/recipe_search.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine

DATA = REPO / "local_test" / "data"
DEFAULT_GRID = "pooling=cls,mean learning_rate=5e-5,1e-4"
EPOCH_TIMING = re.compile(r"epoch (\d+) timing: trained on (\d+) examples in ([0-9.]+) s")


def parse_grid(text: str) -> list[dict[str, str]]:
    """``"a=1,2 b=x"`` → ``[{a: 1, b: x}, {a: 2, b: x}]``."""
    axes = []
    for part in text.split():
        name, _, values = part.partition("=")
        axes.append([(name, v) for v in values.split(",")])
    return [dict(combination) for combination in itertools.product(*axes)]


def opt_ml(hyperparameters: dict[str, str], with_test: bool) -> Path:
    """A fresh /opt/ml tree: the training channel, and the testing channel when ``with_test``."""
    base = Path(tempfile.mkdtemp(prefix="sagebert-recipe-"))
    (base / "input" / "config").mkdir(parents=True)
    channels = ["training", "testing"] if with_test else ["training"]
    for channel in channels:
        shutil.copytree(DATA / channel, base / "input" / "data" / channel)
    for sub in ("model", "output/data", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    configs = {
        "hyperparameters.json": hyperparameters,
        "inputdataconfig.json": {c: {"TrainingInputMode": "File"} for c in channels},
        "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"},
    }
    for name, content in configs.items():
        (base / "input" / "config" / name).write_text(json.dumps(content))
    return base


def train(runner: str, hyperparameters: dict[str, str], with_test: bool) -> dict:
    """One training job; its final metrics, per-epoch accuracy and epoch seconds."""
    base = opt_ml({"keep_checkpoints": "0", **hyperparameters}, with_test)
    if runner == "local":
        command = [sys.executable, "-m", "sagebert.container.train_entry"]
        env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "TOKENIZERS_PARALLELISM": "false"}
    else:
        command = ["docker", "run", "--rm", "--hostname", "algo-1", "-v", f"{base}:/opt/ml", runner, "train"]
        env = None
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    log = done.stdout + done.stderr
    try:
        if done.returncode != 0:
            raise RuntimeError(f"training failed ({hyperparameters}):\n{log[-3000:]}")
        metrics = json.loads((base / "model" / "metrics.json").read_text())
        history = json.loads((base / "output" / "data" / "metrics_history.json").read_text())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "f1": round(metrics["f1"], 4),
        "epoch_accuracy": [round(row["eval_accuracy"], 4) for row in history],
        "epoch_seconds": [float(m.group(3)) for m in EPOCH_TIMING.finditer(log)],
        "wall_seconds": round(wall, 1),
    }


def describe(recipe: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in recipe.items()) or "the defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--image", help="train with `docker run IMAGE train`")
    where.add_argument("--local", action="store_true", help="train in this checkout's virtual environment")
    parser.add_argument(
        "--grid",
        action="append",
        help=f"name=value,value ... (the product of the parts; repeatable; default {DEFAULT_GRID!r})",
    )
    parser.add_argument(
        "--search-seed",
        default="1",
        help="seed(s) of the validation runs (each draws its hold-out); ranked by the mean",
    )
    parser.add_argument("--recipe", help="name=value ... : skip the search and test this recipe")
    parser.add_argument("--test-seeds", default="1,2,3", help="seeds of the test runs; empty: no test stage")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "recipe_search.json")
    args = parser.parse_args()
    runner = "local" if args.local else args.image
    print(f"recipe search on {machine()}, {'local .venv' if args.local else 'image ' + args.image}", flush=True)

    search = []
    if args.recipe is not None:
        winner = dict(part.split("=", 1) for part in args.recipe.split())
    else:
        candidates = [c for grid in args.grid or [DEFAULT_GRID] for c in parse_grid(grid)]
        for candidate in candidates:
            runs = []
            for seed in args.search_seed.split(","):
                runs.append({"seed": seed, **train(runner, {**candidate, "seed": seed}, with_test=False)})
                print(f"  validation {describe(candidate)} seed {seed}: {runs[-1]}", flush=True)
            accuracy, f1 = (round(statistics.mean(r[key] for r in runs), 4) for key in ("accuracy", "f1"))
            search.append({"recipe": candidate, "accuracy": accuracy, "f1": f1, "runs": runs})
        winner = max(search, key=lambda r: (r["accuracy"], r["f1"]))["recipe"]
    tests = []
    for seed in filter(None, args.test_seeds.split(",")):
        result = train(runner, {**winner, "seed": seed}, with_test=True)
        tests.append({"seed": seed, **result})
        print(f"  test {describe(winner)} seed {seed}: {result}", flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "runner": runner}
    report |= {"search_seed": args.search_seed, "search": search, "winner": winner, "test": tests}
    args.output.write_text(json.dumps(report, indent=2))
    if search:
        print("\n| candidate | seed | validation accuracy (epochs) | validation F1 | epoch s |\n|---|---|---|---|---|")
        for r in sorted(search, key=lambda r: (r["accuracy"], r["f1"]), reverse=True):
            for run in r["runs"]:
                epochs = " / ".join(f"{a:.4f}" for a in run["epoch_accuracy"])
                seconds = " / ".join(f"{s:.1f}" for s in run["epoch_seconds"])
                print(f"| {describe(r['recipe'])} | {run['seed']} | {epochs} | {run['f1']:.4f} | {seconds} |")
            if len(r["runs"]) > 1:
                print(f"| {describe(r['recipe'])} | mean | {r['accuracy']:.4f} | {r['f1']:.4f} | |")
    if tests:
        print(
            f"\nwinner: {describe(winner)}\n\n| seed | test accuracy (epochs) | test F1 | epoch s |\n|---|---|---|---|"
        )
        for r in tests:
            epochs = " / ".join(f"{a:.4f}" for a in r["epoch_accuracy"])
            seconds = " / ".join(f"{s:.1f}" for s in r["epoch_seconds"])
            print(f"| {r['seed']} | {epochs} | {r['f1']:.4f} | {seconds} |")
        mean = statistics.mean(r["accuracy"] for r in tests)
        print(f"| mean | {mean:.4f} | {statistics.mean(r['f1'] for r in tests):.4f} | |")


if __name__ == "__main__":
    main()
