"""Training benchmark: the cost of checkpointing, and 1 vs 2 processes, side by side in one run.

    .venv/bin/python benchmarks/training.py --image sagebert:dev

Every configuration trains the default model (the baked-in all-MiniLM-L6-v2) for one epoch on the
bundled training split in the image under `docker run ... train`, one after the other, and is
evaluated on the whole test split. Figures come from the training log: the time of the epoch
(first to last optimizer step, evaluation excluded), samples per second, each checkpoint's write
time, and the final metrics.
Writes benchmarks/results/training.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from common import REPO, machine

DATA = REPO / "local_test" / "data"
# float32 unless a configuration says otherwise, so that every row compares with the baseline.
BASE = {
    "epochs": "1",
    "train_batch_size": "32",
    "log_interval": "20",
    "checkpoint_minutes": "0",
    "mixed_precision": "no",
}
CONFIGS = {
    "no checkpoints (baseline)": {"keep_checkpoints": "0"},
    "checkpoint at the epoch end (default policy)": {"keep_checkpoints": "2"},
    "checkpoint every 20 steps": {"checkpoint_steps": "20", "keep_checkpoints": "2"},
    "2 processes x batch 16": {"keep_checkpoints": "0", "processes_per_host": "2", "train_batch_size": "16"},
    "bf16 autocast (auto on this CPU)": {"keep_checkpoints": "0", "mixed_precision": "bf16"},
}
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def opt_ml(hyperparameters: dict) -> Path:
    base = Path(tempfile.mkdtemp(prefix="sagebert-bench-"))
    (base / "input" / "config").mkdir(parents=True)
    shutil.copytree(DATA, base / "input" / "data")
    channels = {c.name: {"TrainingInputMode": "File"} for c in (base / "input" / "data").iterdir()}
    files = {
        "hyperparameters.json": hyperparameters,
        "inputdataconfig.json": channels,
        "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"},
    }
    for name, content in files.items():
        (base / "input" / "config" / name).write_text(json.dumps(content))
    return base


def timestamp(line: str) -> float:
    return datetime.strptime(STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run(image: str, name: str, overrides: dict) -> dict:
    base = opt_ml({**BASE, **overrides})
    started = time.monotonic()
    done = subprocess.run(
        ["docker", "run", "--rm", "--hostname", "algo-1", "-v", f"{base}:/opt/ml", image, "train"],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    log = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{log[-3000:]}")
    lines = log.splitlines()
    plan = next(line for line in lines if "optimizer steps per epoch" in line)
    first_step = next(line for line in lines if re.search(r"epoch=1 step=\d+ train_loss=[0-9.]+ learning_rate", line))
    first_n = int(re.search(r"step=(\d+)", first_step).group(1))
    epoch_line = next(line for line in lines if "eval_accuracy=" in line)
    steps = int(re.search(r"step=(\d+)", epoch_line).group(1))
    eval_start = next(
        line for line in reversed(lines[: lines.index(epoch_line)]) if STAMP.match(line) and "confusion" not in line
    )
    # Steps 1..first_n include warm-up; time the rest of the epoch (evaluation excluded).
    train_seconds = timestamp(eval_start) - timestamp(first_step)
    examples = int(re.search(r"training on (\d+) examples", plan).group(1))
    per_step_examples = examples / steps
    checkpoint_times = [float(s) for s in re.findall(r"checkpoint step-\S+ written in ([0-9.]+) s", log)]
    metrics = json.loads((base / "model" / "metrics.json").read_text())
    shutil.rmtree(base, ignore_errors=True)
    result = {
        "name": name,
        "optimizer_steps": steps,
        "samples_per_second": round(per_step_examples * (steps - first_n) / train_seconds, 1),
        "epoch_seconds_estimate": round(train_seconds * steps / (steps - first_n), 1),
        "wall_seconds": round(wall, 1),
        "checkpoints": len(checkpoint_times),
        "seconds_per_checkpoint": round(sum(checkpoint_times) / len(checkpoint_times), 2) if checkpoint_times else 0,
        "accuracy": round(metrics["accuracy"], 4),
        "f1": round(metrics["f1"], 4),
        "eval_loss": round(metrics["loss"], 4),
    }
    print(f"  {name}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="sagebert:dev")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "training.json")
    args = parser.parse_args()
    print(f"training benchmark on {machine()}, image {args.image}", flush=True)
    results = [run(args.image, name, CONFIGS[name]) for name in args.configs.split(",")]
    baseline = results[0]
    for r in results:
        spent = r["checkpoints"] * r["seconds_per_checkpoint"]
        r["checkpoint_share_of_epoch_pct"] = round(100 * spent / r["epoch_seconds_estimate"], 2)
        r["speed_vs_baseline"] = round(r["samples_per_second"] / baseline["samples_per_second"], 2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2)
    )
    print(
        "\n| configuration | samples/s | vs baseline | epoch s | checkpoints | s per checkpoint | "
        "checkpoint % of epoch | accuracy | F1 |\n|---|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['name']} | {r['samples_per_second']} | {r['speed_vs_baseline']}x | {r['epoch_seconds_estimate']} | "
            f"{r['checkpoints']} | {r['seconds_per_checkpoint']} | {r['checkpoint_share_of_epoch_pct']} | "
            f"{r['accuracy']} | {r['f1']} |"
        )


if __name__ == "__main__":
    main()
