"""The image: its size in total and per layer, where the bytes go, and what its packaging costs at
start-up, for several images side by side in one run; and the trace of what `train` and `serve`
import, from which the build compiles bytecode (container/bytecode-modules.txt).

    .venv/bin/python benchmarks/image.py sizes sagebert:before sagebert:dev
    .venv/bin/python benchmarks/image.py starts sagebert:before sagebert:dev --model-dir DIR --rounds 3
    .venv/bin/python benchmarks/image.py imports sagebert:dev --output container/bytecode-modules.txt

sizes: `docker image inspect` (.Size, what `docker images` shows, in decimal GB), every layer from
`docker history --no-trunc --human=false`, and `du` inside the image for the parts that decide
the size. starts: for each round, each image in turn (so that the shared CPU's noise falls on all
of them alike): `serve` from `docker run` to the first 200 on /ping; multi-model `serve` to /ping
200 and then to the first prediction of a freshly loaded model; a 64-tweet, one-epoch `train` job
from `docker run` to its exit; each also as the CPU seconds the container had used by then (its
cgroup's count), which other load on a shared machine hardly moves. imports: runs `train` (one process, then two through torchrun),
`serve` (JSON, CSV, JSON Lines and a bad request) and multi-model `serve` (load, invoke, list,
unload) with PYTHONPYCACHEPREFIX set, so that Python writes a cache file for every module it
imports from source, then lists those modules. Writes benchmarks/results/image-<command>.json
(the trace to --output) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from common import REPO, Container, machine, median, post_json

RESULTS = REPO / "benchmarks" / "results"
DATA = REPO / "local_test" / "data"
TRACE_DIR = "/tmp/pyc-trace"
TRACE_ENV = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": TRACE_DIR}
# sagebert's own modules are compiled whole in their own layer; the trace lists the rest.
OWN_PACKAGE = "site-packages/sagebert/"
# Paths inside the image whose size `sizes` reports (what is absent in an image is left out).
CONTENTS = {
    "Java runtime": "/opt/java /usr/lib/jvm",
    "Python environment (/opt/venv)": "/opt/venv",
    "bytecode in /opt/venv": "find /opt/venv -name '*.pyc'",
    "test directories in site-packages": "find /opt/venv/lib/python3.11/site-packages -type d -name tests -prune",
    "pip, setuptools, wheel": "/opt/venv/lib/python3.11/site-packages/pip /opt/venv/lib/python3.11/site-packages/setuptools"
    " /opt/venv/lib/python3.11/site-packages/wheel",
    "/usr/share/{doc,man,locale}": "/usr/share/doc /usr/share/man /usr/share/locale",
}


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout


def layers(image: str) -> list[dict]:
    """The image's layers, newest first: size in bytes and the instruction that made it."""
    out = docker("history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", image)
    rows = []
    for line in out.splitlines():
        size, _, created_by = line.partition("\t")
        rows.append({"bytes": int(size), "created_by": " ".join(created_by.split())})
    return rows


def contents(image: str) -> dict[str, float]:
    """MiB on disk inside the image for each entry of CONTENTS, and the largest packages."""
    script = []
    for label, paths in CONTENTS.items():
        listing = paths if paths.startswith("find ") else f"ls -d {paths} 2>/dev/null"
        script.append(
            f"printf '%s\\t' '{label}'; {{ {listing}; }} | tr '\\n' '\\0' | du -ck --files0-from=- 2>/dev/null "
            "| tail -1 | cut -f1"
        )
    script.append(
        "cd /opt/venv/lib/python3.11/site-packages && du -sk $(ls | grep -v dist-info) | sort -rn | head -12 "
        "| awk '{printf \"site-packages/%s\\t%s\\n\", $2, $1}'"
    )
    out = docker("run", "--rm", "--entrypoint", "sh", image, "-c", "; ".join(script))
    sizes = {}
    for line in out.splitlines():
        label, _, kib = line.rpartition("\t")
        if kib.strip().isdigit():
            sizes[label] = round(int(kib) / 1024, 1)
    return sizes


def sizes(images: list[str]) -> dict:
    results = []
    for image in images:
        total = int(docker("image", "inspect", "-f", "{{.Size}}", image))
        results.append({"image": image, "bytes": total, "layers": layers(image), "contents": contents(image)})
    for r in results:
        print(f"\n### {r['image']}: {r['bytes'] / 1e9:.3f} GB ({r['bytes'] / 2**20:,.0f} MiB)\n")
        print("| layer MB | made by |\n|---:|---|")
        for layer in r["layers"]:
            if layer["bytes"]:
                print(f"| {layer['bytes'] / 1e6:,.1f} | `{layer['created_by'][:150]}` |")
        print("\n| inside the image | MiB |\n|---|---:|")
        for label, mib in r["contents"].items():
            print(f"| {label} | {mib:,.1f} |")
    return {"images": results}


def tiny_training_job(hyperparameters: dict | None = None) -> Path:
    """A SageMaker /opt/ml tree: 64 training and 32 test tweets, one epoch, the default base model."""
    base = Path(tempfile.mkdtemp(prefix="sagebert-image-bench-"))
    for channel, name, rows in (("training", "train.csv", 64), ("testing", "test.csv", 32)):
        with open(DATA / channel / name, encoding="utf-8", newline="") as handle:
            lines = list(csv.reader(handle))[: rows + 1]
        target = base / "input" / "data" / channel / name
        target.parent.mkdir(parents=True)
        with open(target, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(lines)
    config = {
        "hyperparameters.json": {"epochs": "1", "train_batch_size": "16", **(hyperparameters or {})},
        "inputdataconfig.json": {c: {"TrainingInputMode": "File"} for c in ("training", "testing")},
        "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"},
    }
    (base / "input" / "config").mkdir(parents=True)
    for name, content in config.items():
        (base / "input" / "config" / name).write_text(json.dumps(content))
    return base


# The container's CPU time so far, in seconds (cgroup v1 or v2).
CPU_SECONDS = (
    "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null | awk '{print $1 / 1e9}' "
    "|| awk '$1 == \"usage_usec\" {print $2 / 1e6}' /sys/fs/cgroup/cpu.stat"
)


def cpu_seconds(name: str) -> float:
    """CPU seconds a running container has used: unlike wall time, hardly moved by other load."""
    return round(float(docker("exec", name, "sh", "-c", CPU_SECONDS).strip()), 2)


def train(image: str, opt_ml: Path, env: dict | None = None, name: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of `docker run IMAGE train`; the container is kept when ``name`` is given."""
    command = ["docker", "run", "--hostname", "algo-1", "-v", f"{opt_ml}:/opt/ml"]
    command += ["--name", name] if name else ["--rm"]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    # The entrypoint runs `train` as it would for SageMaker; the shell around it then reads the
    # container's CPU time, which is gone once the container has exited.
    script = f"sagebert-entrypoint train && {CPU_SECONDS}"
    started = time.monotonic()
    done = subprocess.run([*command, image, "sh", "-c", script], capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"train failed in {image}:\n{(done.stdout + done.stderr)[-3000:]}")
    return wall, round(float(done.stdout.strip().splitlines()[-1]), 2)


def multi_model_root(model_dir: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix="sagebert-image-models-"))
    shutil.copytree(model_dir, root / "tweets" / "model")
    return root


def first_multi_model_prediction(container: Container) -> float:
    """Seconds from `docker run` to the first prediction of a model loaded after /ping said 200."""
    container.wait_healthy()
    post_json(container.port, {"model_name": "tweets", "url": "/opt/ml/models/tweets/model"}, "/models")
    post_json(container.port, {"inputs": ["Forest fire near La Ronge"]}, "/models/tweets/invoke")
    return time.monotonic() - container.started


def starts(images: list[str], model_dir: Path, rounds: int) -> dict:
    models = multi_model_root(model_dir)
    keys = ("serve_s", "serve_cpu_s", "mme_ping_s", "mme_first_prediction_s", "mme_cpu_s", "train_s", "train_cpu_s")
    measured = {image: {key: [] for key in keys} for image in images}
    try:
        for round_ in range(rounds):
            for image in images:
                m = measured[image]
                c = Container.start(image, ["serve"], {str(model_dir): "/opt/ml/model"}, {}, "image-bench")
                try:
                    m["serve_s"].append(round(c.wait_healthy(), 2))
                    m["serve_cpu_s"].append(cpu_seconds(c.name))
                finally:
                    c.stop()
                mme = {str(models): "/opt/ml/models:ro"}
                c = Container.start(image, ["serve"], mme, {"SAGEMAKER_MULTI_MODEL": "true"}, "image-bench")
                try:
                    m["mme_first_prediction_s"].append(round(first_multi_model_prediction(c), 2))
                    m["mme_cpu_s"].append(cpu_seconds(c.name))
                    m["mme_ping_s"].append(round(c.cold_start_s, 2))
                finally:
                    c.stop()
                job = tiny_training_job()
                try:
                    wall, cpu = train(image, job)
                    m["train_s"].append(round(wall, 2))
                    m["train_cpu_s"].append(cpu)
                finally:
                    shutil.rmtree(job, ignore_errors=True)
                print(f"  round {round_ + 1} {image}: " + ", ".join(f"{k} {v[-1]}" for k, v in m.items()), flush=True)
    finally:
        shutil.rmtree(models, ignore_errors=True)
    results = [{"image": image, **{k: median(v) for k, v in m.items()}, "runs": m} for image, m in measured.items()]
    print(f"\nmedians of {rounds} rounds; wall seconds (CPU seconds of the container)\n")
    print(
        "| image | serve: docker run → /ping 200 | multi-model: → /ping 200 | → first prediction | "
        "train (64 tweets, 1 epoch): docker run → exit |\n|---|---:|---:|---:|---:|"
    )
    for r in results:
        print(
            f"| {r['image']} | {r['serve_s']} ({r['serve_cpu_s']}) | {r['mme_ping_s']} | "
            f"{r['mme_first_prediction_s']} ({r['mme_cpu_s']}) | {r['train_s']} ({r['train_cpu_s']}) |"
        )
    return {"rounds": rounds, "images": results}


def traced_modules(trace: Path) -> set[str]:
    """Module files (relative to lib/python3.11) whose cache files a PYTHONPYCACHEPREFIX run wrote."""
    found = set()
    for cache in trace.rglob("*.pyc"):
        source = "/" + str(cache.relative_to(trace)).rsplit(".cpython-", 1)[0] + ".py"
        _, marker, relative = source.partition("/lib/python3.11/")
        if marker and not relative.startswith(OWN_PACKAGE):
            found.add(relative)
    return found


def collect_trace(name: str, into: Path) -> set[str]:
    """The modules a stopped container imported; removes the container."""
    target = into / name
    try:
        docker("cp", f"{name}:{TRACE_DIR}", str(target))
    finally:
        docker("rm", "-f", name, check=False)
    return traced_modules(target)


def imports(image: str, model_dir: Path | None, output: Path | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sagebert-image-trace-"))
    per_path = {}
    try:
        for label, hyperparameters in (("train", {}), ("train, 2 processes", {"processes_per_host": "2"})):
            job = tiny_training_job(hyperparameters)
            name = f"image-trace-{uuid.uuid4().hex[:6]}"
            try:
                train(image, job, TRACE_ENV, name)
                per_path[label] = collect_trace(name, workdir)
            finally:
                docker("rm", "-f", name, check=False)
            if model_dir is None:
                model_dir = workdir / "model"
                shutil.copytree(job / "model", model_dir)
            shutil.rmtree(job, ignore_errors=True)
        c = Container.start(image, ["serve"], {str(model_dir): "/opt/ml/model"}, TRACE_ENV, "image-trace")
        c.wait_healthy()
        for body, content_type in REQUESTS:
            post(c.port, "POST", "/invocations", body, content_type)
        per_path["serve"] = stop_and_collect(c.name, workdir)
        models = multi_model_root(model_dir)
        mme = {str(models): "/opt/ml/models:ro"}
        c = Container.start(image, ["serve"], mme, {**TRACE_ENV, "SAGEMAKER_MULTI_MODEL": "true"}, "image-trace")
        first_multi_model_prediction(c)
        post(c.port, "GET", "/models")
        post(c.port, "DELETE", "/models/tweets")
        per_path["multi-model serve"] = stop_and_collect(c.name, workdir)
        shutil.rmtree(models, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    union = sorted(set().union(*per_path.values()))
    for label, modules in per_path.items():
        print(f"  {label}: {len(modules)} modules imported from source")
    print(f"  together: {len(union)}")
    if output:
        header = (
            "# The modules `train` and `serve` import (file paths relative to lib/python3.11/), traced in\n"
            f"# {image} with: .venv/bin/python benchmarks/image.py imports IMAGE --output {shown(output)}\n"
            "# container/compile-bytecode.py compiles these, and only these, to bytecode. Regenerate it\n"
            "# when a lock changes (a module missing here is compiled at every start: slower, not wrong).\n"
        )
        output.write_text(header + "\n".join(union) + "\n")
    return {"image": image, "per_path": {k: len(v) for k, v in per_path.items()}, "modules": union}


# What the trace sends to `serve`: every content type, and a malformed body for the error path.
REQUESTS = (
    (b'{"inputs": ["Forest fire near La Ronge", "what a lovely day"]}', "application/json"),
    (b"Forest fire near La Ronge\nwhat a lovely day\n", "text/csv"),
    (b'{"inputs": "Forest fire near La Ronge"}\n', "application/jsonlines"),
    (b"{not json", "application/json"),
)


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def post(port: int, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> int:
    """One request from this machine; returns the status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=body, headers={"Content-Type": content_type} if body else {})
    response = conn.getresponse()
    response.read()
    return response.status


def stop_and_collect(name: str, into: Path) -> set[str]:
    """SIGTERM a serving container, wait for it to exit, and return what it imported."""
    docker("kill", "--signal", "TERM", name, check=False)
    docker("wait", name, check=False)
    return collect_trace(name, into)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("sizes", "starts", "imports"))
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model-dir", type=Path, help="a trained model directory (starts: required)")
    parser.add_argument("--rounds", type=int, default=3, help="starts: rounds (median reported)")
    parser.add_argument("--output", type=Path, help="imports: write the module list here")
    args = parser.parse_args()
    print(f"image benchmark ({args.command}) on {machine()}", flush=True)
    if args.command == "sizes":
        result = sizes(args.images)
    elif args.command == "starts":
        if not args.model_dir:
            parser.error("starts needs --model-dir (e.g. local_test/test_dir/model after local_test/train_local.sh)")
        result = starts(args.images, args.model_dir.resolve(), args.rounds)
    else:
        if len(args.images) != 1:
            parser.error("imports traces one image")
        model_dir = args.model_dir.resolve() if args.model_dir else None
        result = imports(args.images[0], model_dir, args.output)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), **result}
    (RESULTS / f"image-{args.command}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
