"""Training benchmark: the reference recipe against sagebert's defaults, side by side in one run.

    .venv/bin/python benchmarks/training_vs_reference.py --image sagebert:dev [--build]

Both train the baked-in base model (all-MiniLM-L6-v2) on the bundled split (5,709 tweets) in the
same image on this machine, one after the other, for the same number of epochs (default 2):
  (a) reference: benchmarks/reference_training.py (pad to 64, batch 64, constant lr 2e-5,
      float32, plain loop), run with `docker run --entrypoint python`;
  (b) sagebert: `docker run IMAGE train` with the image's default hyperparameters.
For each epoch: training samples/s and seconds, evaluation seconds, accuracy / F1 on all 1,904
test rows. For each run: wall time and peak memory (the container's anonymous memory, sampled
every 0.5 s, i.e. the RSS of its processes without page cache; and the kernel's memory.peak,
which includes page cache: memory.peak on cgroup v2, memory.max_usage_in_bytes on v1). With --build: also an uncached `container/build-image.sh` (its time)
and the image size.
With --seeds: sagebert again with other seeds (the default is 42), to show the seed's share.
Writes benchmarks/results/training_vs_reference.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from pathlib import Path

from common import REPO, machine
from training import opt_ml

DATA = REPO / "local_test" / "data"


class MemorySampler:
    """Samples a running container's memory cgroup (v1 or v2) from the host until the container is gone."""

    # (directory pattern, anonymous-memory key in memory.stat, the kernel's high-water mark file)
    LAYOUTS = (
        ("/sys/fs/cgroup/docker/{id}", "anon", "memory.peak"),
        ("/sys/fs/cgroup/system.slice/docker-{id}.scope", "anon", "memory.peak"),
        ("/sys/fs/cgroup/memory/docker/{id}", "total_rss", "memory.max_usage_in_bytes"),
    )

    def __init__(self, container_id: str, every: float = 0.5):
        self.peak_anon = 0
        self.kernel_peak = 0
        self.layout = next(
            (
                (Path(d.format(id=container_id)), key, peak)
                for d, key, peak in self.LAYOUTS
                if Path(d.format(id=container_id), "memory.stat").exists()
            ),
            None,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        if not self.layout:
            return
        directory, anon_key, peak_name = self.layout
        while not self._stop.wait(every):
            try:
                stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
                self.peak_anon = max(self.peak_anon, int(stat[anon_key]))
                self.kernel_peak = max(self.kernel_peak, int((directory / peak_name).read_text()))
            except (OSError, ValueError, KeyError):
                return  # the container has exited and its cgroup is gone

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        if not self.layout:
            return {"peak_anon_mib": None, "memory_peak_mib": None}
        return {"peak_anon_mib": round(self.peak_anon / 2**20), "memory_peak_mib": round(self.kernel_peak / 2**20)}


def run_container(args: list[str]) -> tuple[str, float, dict]:
    """`docker run -d` ARGS, wait for it, and return its log, wall seconds and peak memory."""
    started = time.monotonic()
    container_id = subprocess.run(
        ["docker", "run", "-d", *args], check=True, capture_output=True, text=True
    ).stdout.strip()
    sampler = MemorySampler(container_id)
    status = int(
        subprocess.run(["docker", "wait", container_id], check=True, capture_output=True, text=True).stdout.strip()
    )
    wall = time.monotonic() - started
    memory = sampler.stop()
    logs = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True)
    subprocess.run(["docker", "rm", "-f", container_id], capture_output=True)
    log = logs.stdout + logs.stderr
    if status != 0:
        raise RuntimeError(f"docker run {' '.join(args)} exited {status}:\n{log[-3000:]}")
    return log, wall, memory


def reference(image: str, epochs: int) -> dict:
    model_dir = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "python",
            image,
            "-c",
            "from sagebert.modeling import baked_in_model_dir; print(baked_in_model_dir())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    log, wall, memory = run_container(
        [
            "--entrypoint",
            "python",
            "-v",
            f"{REPO / 'benchmarks'}:/bench:ro",
            "-v",
            f"{DATA}:/data:ro",
            image,
            "/bench/reference_training.py",
            "/data/training/train.csv",
            "/data/testing/test.csv",
            model_dir,
            "--epochs",
            str(epochs),
        ]
    )
    history = [json.loads(line.split("REFERENCE ", 1)[1]) for line in log.splitlines() if line.startswith("REFERENCE ")]
    return {
        "name": "reference recipe (pad 64, batch 64, lr 2e-5, fp32)",
        "wall_seconds": round(wall, 1),
        **memory,
        "epochs": history,
    }


def sagebert(image: str, epochs: int, seed: int | None = None) -> dict:
    base = opt_ml({"epochs": str(epochs), **({"seed": str(seed)} if seed is not None else {})})
    try:
        log, wall, memory = run_container(["--hostname", "algo-1", "-v", f"{base}:/opt/ml", image, "train"])
        rows = json.loads((base / "output" / "data" / "metrics_history.json").read_text())
        hyperparameters = json.loads((base / "model" / "sagebert.json").read_text()).get("hyperparameters", {})
    finally:
        subprocess.run(["rm", "-rf", str(base)])
    precision = next(
        (line.split("precision: ")[1].split(";")[0] for line in log.splitlines() if "precision: " in line), "?"
    )
    history = [
        {
            "epoch": r["epoch"],
            "train_seconds": r["train_seconds"],
            "eval_seconds": r["eval_seconds"],
            "samples_per_second": None,
            "train_loss": round(r["train_loss"], 4),
            "accuracy": round(r["eval_accuracy"], 4),
            "f1": round(r["eval_f1"], 4),
        }
        for r in rows
    ]
    examples = int(
        next(line.split("training on ")[1].split()[0] for line in log.splitlines() if "training on " in line)
    )
    for row in history:
        row["samples_per_second"] = round(examples / row["train_seconds"], 1)
    batch = hyperparameters.get("train_batch_size", "?")
    name = f"sagebert defaults (dynamic padding, batch {batch}, {precision})"
    return {
        "name": name if seed is None else f"{name}, seed {seed}",
        "wall_seconds": round(wall, 1),
        **memory,
        "epochs": history,
    }


def build(tag: str) -> dict:
    started = time.monotonic()
    subprocess.run(
        ["container/build-image.sh", tag],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILD_ARGS": "--no-cache"},
    )
    return {"uncached_build_seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="sagebert:dev")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--build", action="store_true", help="time an uncached build of --image first")
    parser.add_argument(
        "--seeds",
        default="",
        help="also train sagebert with these seeds (comma-separated), "
        "to show how much accuracy moves with the seed alone",
    )
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "training_vs_reference.json")
    args = parser.parse_args()
    print(f"training benchmark (reference recipe vs sagebert) on {machine()}, image {args.image}", flush=True)
    image_facts = build(args.image) if args.build else {}
    size = int(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Size}}", args.image], check=True, capture_output=True, text=True
        ).stdout
    )
    image_facts["image_size_mb"] = round(size / 1e6)
    results = [reference(args.image, args.epochs), sagebert(args.image, args.epochs)]
    results += [sagebert(args.image, args.epochs, int(seed)) for seed in args.seeds.split(",") if seed]
    for r in results:
        print(f"  {r['name']}: {r}", flush=True)
    ref_epochs = results[0]["epochs"]
    ref_speed = sum(e["samples_per_second"] for e in ref_epochs) / len(ref_epochs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "image": image_facts, "results": results},
            indent=2,
        )
    )
    print(f"\nimage: {image_facts}")
    print(
        "\n| run | epoch | samples/s | vs reference | train s | eval s | accuracy | F1 |\n|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        for e in r["epochs"]:
            print(
                f"| {r['name']} | {e['epoch']} | {e['samples_per_second']} | "
                f"{e['samples_per_second'] / ref_speed:.2f}x | {e['train_seconds']} | {e['eval_seconds']} | "
                f"{e['accuracy']} | {e['f1']} |"
            )
    print("\n| run | wall s | peak anonymous memory MiB | memory.peak MiB |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['wall_seconds']} | {r['peak_anon_mib']} | {r['memory_peak_mib']} |")


if __name__ == "__main__":
    main()
