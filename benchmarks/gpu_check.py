"""The GPU check: sagebert's own training and serving code, run directly on a GPU machine.

One command, under 8 minutes on one H200, that measures what a team moving to GPU instances asks
first, and exercises every GPU-only code path the CPU tests cannot reach:

- MiniLM (the baked-in base model), 2 epochs on the bundled split, with ``mixed_precision=auto``
  (bf16 on an H200) and ``no``: samples/s, seconds of training per epoch, whole-test accuracy/F1;
- the bert-base ARCHITECTURE (BertConfig's defaults: 12 layers, hidden 768), initialised at
  random, 2 epochs at batch 32 and 64 — for speed only: speed does not depend on the weights, and
  the Hub (bert-base-uncased's weights) cannot be reached from the machine, so its accuracy means
  nothing and is not reported;
- a MiniLM run stopped with SIGTERM after its first GPU checkpoint, resumed to the same step count;
- the trained MiniLM served by the real server (gunicorn + Flask, one worker on the GPU) in fp16
  and fp32: p50/p99 for one tweet, throughput at concurrency 8 with one tweet and with 32 tweets
  per request, accuracy of the served answers on the whole test split, GPU memory.

It runs the training entry (``python -m sagebert.container.train_entry``) against an /opt/ml-like
tree in a temporary folder (SAGEMAKER_BASE_DIR) and the server's own launcher, exactly as the
image would, minus Docker (the GPU machine has none). Every figure goes to RESULTS/gpu_check.json
and a table to RESULTS/gpu_check.md.

Prepare here (needs the package index): ``benchmarks/gpu_prepare.sh`` → .whl/ and .gpu-carry/.
Then, on the GPU machine, from the repository root, carrying .whl and .gpu-carry:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
      && PYTHONPATH=/tmp/site:src python3 benchmarks/gpu_check.py --results "$OUT"

Without a GPU, ``--smoke`` runs the same steps on tiny slices (and a tiny random model instead of
bert-base) to check the script itself; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "local_test" / "data"
TEST_CSV = DATA / "testing" / "test.csv"
DEADLINE_S = 7.5 * 60
TARGETS = {"minilm_2_epochs_train_s": 10.0, "bert_base_2_epochs_train_s": 30.0, "fp16_single_tweet_p50_ms": 3.0}


class Clock:
    """The whole check's time budget: every step gets what is left, never more."""

    def __init__(self, budget_s: float):
        self.deadline = time.monotonic() + budget_s

    def left(self, cap: float) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining < 5:
            raise TimeoutError("the check's time budget is spent")
        return min(cap, remaining)


def log(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- base models -------------------------------------------------------------------------------
def prepare_base_models(carry: Path, work: Path, smoke: bool) -> dict[str, Path]:
    """MiniLM back to float32 from the carried fp16 weights; a random bert-base (or, for --smoke,
    a tiny random BERT) sharing MiniLM's uncased WordPiece vocabulary (bert-base-uncased's)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertForSequenceClassification

    minilm = work / "base-minilm"
    shutil.copytree(carry / "minilm-fp16", minilm)
    weights = load_file(str(minilm / "model.safetensors"))
    save_file(
        {k: v.float() if v.is_floating_point() else v for k, v in weights.items()},
        str(minilm / "model.safetensors"),
        metadata={"format": "pt"},
    )
    bert = work / "base-bert-random"
    bert.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm / name, bert / name)
    config = BertConfig(num_labels=2)  # the defaults are bert-base's architecture
    if smoke:
        config = BertConfig(
            num_labels=2, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
        )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(bert)
    return {"minilm": minilm, "bert-base-random": bert}


# ---- training ----------------------------------------------------------------------------------
def make_opt_ml(base: Path, pretrained: Path, hyperparameters: dict[str, object], checkpoints: Path) -> Path:
    """An /opt/ml tree: the bundled split as channels, the base model as the `pretrained` channel."""
    import shutil

    config = base / "input" / "config"
    config.mkdir(parents=True)
    channels = {}
    for channel in ("training", "testing"):
        shutil.copytree(DATA / channel, base / "input" / "data" / channel)
        channels[channel] = {"TrainingInputMode": "File"}
    shutil.copytree(pretrained, base / "input" / "data" / "pretrained")  # a channel holds files, never links out
    channels["pretrained"] = {"TrainingInputMode": "File"}
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    (config / "checkpointconfig.json").write_text(json.dumps({"LocalPath": str(checkpoints)}))
    for sub in ("model", "output/data"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return base


def start_training(base: Path, log_file: Path) -> subprocess.Popen:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    handle = open(log_file, "w")  # noqa: SIM115 - closed by the caller through the process's end
    return subprocess.Popen(
        [sys.executable, "-m", "sagebert.container.train_entry"], env=env, stdout=handle, stderr=subprocess.STDOUT
    )


TIMING_LINE = re.compile(r"epoch (\d+) timing: trained on (\d+) examples in ([\d.]+) s \(([\d.]+) samples/s\)")


def training_figures(base: Path, log_text: str) -> dict:
    """What a finished job wrote: per-epoch time and throughput, final metrics and step count."""
    history = json.loads((base / "output" / "data" / "metrics_history.json").read_text())
    rows = history if isinstance(history, list) else history.get("epochs", [])
    train_s = [row["train_seconds"] for row in rows]
    throughput = {int(m.group(1)): float(m.group(4)) for m in TIMING_LINE.finditer(log_text)}
    metrics_file = base / "model" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return {
        "epochs": len(rows),
        "train_seconds_per_epoch": train_s,
        "train_seconds_total": round(sum(train_s), 2),
        "samples_per_second": [throughput.get(int(row["epoch"])) for row in rows],
        "final_step": rows[-1].get("step") if rows else None,
        "accuracy": metrics.get("accuracy"),
        "f1": metrics.get("f1"),
    }


def run_training(name: str, work: Path, pretrained: Path, hyperparameters: dict, clock: Clock) -> dict:
    base = make_opt_ml(work / name, pretrained, hyperparameters, work / name / "checkpoints")
    log_file = work / f"{name}.log"
    log(f"training {name}: {hyperparameters}")
    started = time.monotonic()
    process = start_training(base, log_file)
    try:
        code = process.wait(timeout=clock.left(240))
    except subprocess.TimeoutExpired:
        process.kill()
        code = "timeout"
    wall = time.monotonic() - started
    result = {"name": name, "hyperparameters": hyperparameters, "exit_code": code, "wall_seconds": round(wall, 1)}
    if code == 0:
        result.update(training_figures(base, log_file.read_text()))
    else:
        result["log_tail"] = log_file.read_text()[-3000:]
    log(f"  → {json.dumps({k: v for k, v in result.items() if k != 'log_tail'})}")
    return result


def run_resume(
    work: Path, pretrained: Path, hyperparameters: dict, uninterrupted_steps: int | None, clock: Clock
) -> dict:
    """Stop a job with SIGTERM once its first checkpoint exists; start it again as a spot restart
    would (the same /opt/ml tree with fresh model and output folders, the checkpoints kept); it must
    resume and end at the same step count as an uninterrupted run."""
    import shutil

    checkpoints = work / "resume-checkpoints"
    base = make_opt_ml(work / "resume", pretrained, hyperparameters, checkpoints)
    process = start_training(base, work / "resume-1.log")
    checkpoint = None
    limit = time.monotonic() + clock.left(180)
    while process.poll() is None and time.monotonic() < limit and checkpoint is None:
        done = [p for p in checkpoints.glob("step-*") if (p / "manifest.json").exists()] if checkpoints.exists() else []
        checkpoint = done[0].name if done else None
        time.sleep(0.05)
    stopped_at = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        first_code = process.wait(timeout=clock.left(120))
    except subprocess.TimeoutExpired:
        process.kill()
        first_code = "timeout"
    result = {
        "first_checkpoint": checkpoint,
        "first_exit_code": first_code,
        "stop_seconds": round(time.monotonic() - stopped_at, 2),
    }
    for sub in ("model", "output"):
        shutil.rmtree(base / sub)
        (base / sub / "data" if sub == "output" else base / sub).mkdir(parents=True)
    process = start_training(base, work / "resume-2.log")
    try:
        result["second_exit_code"] = process.wait(timeout=clock.left(240))
    except subprocess.TimeoutExpired:
        process.kill()
        result["second_exit_code"] = "timeout"
    second_log = (work / "resume-2.log").read_text()
    resumed = [line for line in second_log.splitlines() if "resumed from step" in line]
    result["resumed_line"] = resumed[0].split("sagebert.")[-1] if resumed else None
    if result["second_exit_code"] == 0:
        result.update({f"second_{k}": v for k, v in training_figures(base, second_log).items()})
    else:
        result["log_tail"] = second_log[-3000:]
    # SIGTERM makes the job checkpoint and exit 143; the second run must say where it resumed and
    # end at the uninterrupted run's step count.
    result["ok"] = (
        result["first_exit_code"] == 143
        and result["resumed_line"] is not None
        and result.get("second_final_step") == uninterrupted_steps
    )
    result["uninterrupted_final_step"] = uninterrupted_steps
    log(f"resume → {json.dumps({k: v for k, v in result.items() if k != 'log_tail'})}")
    return result


# ---- serving -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(conn: http.client.HTTPConnection, texts: list[str]) -> dict:
    conn.request("POST", "/invocations", json.dumps(texts), {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {body[:300]!r}")
    return json.loads(body)


def test_rows() -> list[dict]:
    import csv

    with open(TEST_CSV, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load(port: int, batches: list[list[str]], concurrency: int, seconds: float, max_requests: int) -> dict:
    """``concurrency`` keep-alive clients send ``batches`` round-robin until ``seconds`` pass or
    ``max_requests`` are answered (bounded both ways)."""
    lock, counter, latencies, errors = threading.Lock(), [0], [], []
    stop_at = time.monotonic() + seconds

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = offset
        while time.monotonic() < stop_at:
            with lock:
                if counter[0] >= max_requests:
                    return
                counter[0] += 1
            started = time.perf_counter()
            try:
                post(conn, batches[i % len(batches)])
            except Exception as exc:  # counted and reported
                errors.append(str(exc)[:200])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
            i += concurrency

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    texts = sum(len(batches[0]) for _ in latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "texts_per_second": round(texts / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000, 2) if latencies else None,
    }


def gpu_memory_mib() -> float | None:
    """GPU memory held by processes, as nvidia-smi reports it (None without nvidia-smi)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    values = [float(v) for v in out.split() if v.replace(".", "", 1).isdigit()]
    return sum(values) if values else None


def run_serving(model_dir: Path, precision: str, work: Path, clock: Clock, smoke: bool) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "SAGEBERT_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEBERT_INFERENCE_PRECISION": precision,
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    log_file = work / f"serve-{precision}.log"
    handle = open(log_file, "w")  # noqa: SIM115 - closed when the server ends
    command = [sys.executable, "-c", "import sys; from sagebert.container.serve import main; sys.exit(main())"]
    started = time.monotonic()
    server = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    result: dict = {"precision": precision}
    try:
        limit = time.monotonic() + clock.left(120)
        while time.monotonic() < limit:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}")
            time.sleep(0.05)
        else:
            raise RuntimeError("the server did not answer /ping with 200 in time")
        result["cold_start_s"] = round(time.monotonic() - started, 2)
        rows = test_rows()
        tweets = [row["sentence"] for row in rows]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for text in tweets[:20]:
            post(conn, [text])
        single = []
        for text in tweets[20:220] if not smoke else tweets[20:60]:
            began = time.perf_counter()
            post(conn, [text])
            single.append(time.perf_counter() - began)
        single.sort()
        result["single_tweet_p50_ms"] = round(statistics.median(single) * 1000, 2)
        result["single_tweet_p99_ms"] = round(single[int(0.99 * (len(single) - 1))] * 1000, 2)
        seconds = 3 if smoke else 10
        result["c8_single"] = load(port, [[t] for t in tweets], 8, clock.left(seconds), 20000)
        result["c8_batch32"] = load(
            port, [tweets[i : i + 32] for i in range(0, len(tweets) - 31, 32)], 8, clock.left(seconds), 5000
        )
        predicted = []
        for i in range(0, len(tweets), 64):
            predicted += [p["label_id"] for p in post(conn, tweets[i : i + 64])["predictions"]]
        truth = [int(row["label"]) for row in rows]
        tp = sum(p == t == 1 for p, t in zip(predicted, truth, strict=True))
        precision_ = tp / max(1, sum(predicted))
        recall = tp / max(1, sum(truth))
        result["served_accuracy"] = round(sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth), 4)
        result["served_f1"] = round(2 * precision_ * recall / max(1e-9, precision_ + recall), 4)
        result["gpu_memory_mib"] = gpu_memory_mib()
    except Exception as exc:  # reported; the next step still runs
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        handle.close()
        result["log_tail"] = log_file.read_text()[-1500:]
    log(f"serving {precision} → {json.dumps({k: v for k, v in result.items() if k != 'log_tail'})}")
    return result


# ---- report ------------------------------------------------------------------------------------
def machine() -> dict:
    import torch
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        info.update(
            gpu=torch.cuda.get_device_name(0),
            cuda=torch.version.cuda,
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return info


def verdicts(report: dict) -> dict:
    """Each target of the issue: the figure, the target, met or missed and by how much."""
    by_name = {run["name"]: run for run in report["training"]}
    figures = {
        "minilm_2_epochs_train_s": by_name.get("minilm-auto", {}).get("train_seconds_total"),
        "bert_base_2_epochs_train_s": by_name.get("bert-base-random-b32-auto", {}).get("train_seconds_total"),
        "fp16_single_tweet_p50_ms": next(
            (s.get("single_tweet_p50_ms") for s in report["serving"] if s["precision"] == "fp16"), None
        ),
    }
    out = {}
    for name, target in TARGETS.items():
        value = figures[name]
        out[name] = {
            "figure": value,
            "target": target,
            "met": value is not None and value <= target,
            "over_by": None if value is None else round(max(0.0, value - target), 2),
        }
    return out


def table(report: dict) -> str:
    lines = [f"GPU check on {report['machine'].get('gpu', 'CPU (smoke run: figures mean nothing)')}", ""]
    lines += ["| training run | s/epoch | samples/s | accuracy | F1 | exit |", "|---|---|---|---|---|---|"]
    for run in report["training"]:
        lines.append(
            f"| {run['name']} | {run.get('train_seconds_per_epoch')} | {run.get('samples_per_second')} "
            f"| {run.get('accuracy') if 'bert-base' not in run['name'] else '(random init)'} "
            f"| {run.get('f1') if 'bert-base' not in run['name'] else '-'} | {run['exit_code']} |"
        )
    resume = report.get("resume", {})
    lines += ["", f"resume: {json.dumps({k: v for k, v in resume.items() if k != 'log_tail'})}", ""]
    lines += [
        "| serving | cold start s | 1 tweet p50/p99 ms | c=8 1 tweet req/s | c=8 32 tweets tweets/s | accuracy | GPU MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report["serving"]:
        lines.append(
            f"| {s['precision']} | {s.get('cold_start_s')} | {s.get('single_tweet_p50_ms')}/{s.get('single_tweet_p99_ms')} "
            f"| {s.get('c8_single', {}).get('requests_per_second')} | {s.get('c8_batch32', {}).get('texts_per_second')} "
            f"| {s.get('served_accuracy')} | {s.get('gpu_memory_mib')} |"
            + (f" error: {s['error']}" if "error" in s else "")
        )
    lines += ["", "| target | figure | target | met |", "|---|---|---|---|"]
    for name, v in report["targets"].items():
        lines.append(f"| {name} | {v['figure']} | ≤ {v['target']} | {'yes' if v['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--carry", type=Path, default=REPO / ".gpu-carry", help="what gpu_prepare.sh made")
    parser.add_argument("--smoke", action="store_true", help="tiny slices, to check the script without a GPU")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("no GPU: run with --smoke to check the script itself", file=sys.stderr)
        return 2
    clock = Clock(DEADLINE_S if not args.smoke else 30 * 60)
    args.results.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": machine(), "smoke": args.smoke, "training": [], "serving": []}
    log(json.dumps(report["machine"]))
    slice_ = {"max_train_samples": 320, "max_eval_samples": 64, "epochs": 1} if args.smoke else {}
    common = {"log_interval": 20, "checkpoint_minutes": 0, **slice_}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        try:
            bases = prepare_base_models(args.carry, work, args.smoke)
            runs = [
                ("minilm-auto", "minilm", {"mixed_precision": "auto"}),
                ("minilm-fp32", "minilm", {"mixed_precision": "no"}),
                ("bert-base-random-b32-auto", "bert-base-random", {"train_batch_size": 32, "mixed_precision": "auto"}),
                ("bert-base-random-b64-auto", "bert-base-random", {"train_batch_size": 64, "mixed_precision": "auto"}),
            ]
            for name, base, extra in runs:
                report["training"].append(run_training(name, work, bases[base], {**common, **extra}, clock))
            reference = report["training"][0]
            report["resume"] = run_resume(
                work,
                bases["minilm"],
                {**reference["hyperparameters"], "checkpoint_steps": 1 if args.smoke else 40},
                reference.get("final_step"),
                clock,
            )
            trained = work / "minilm-auto" / "model"
            for precision in ("fp16", "fp32") if not args.smoke else ("bf16", "fp32"):
                report["serving"].append(run_serving(trained, precision, work, clock, args.smoke))
        except TimeoutError as exc:
            report["stopped_early"] = str(exc)
        report["targets"] = verdicts(report)
        (args.results / "gpu_check.json").write_text(json.dumps(report, indent=2))
        (args.results / "gpu_check.md").write_text(table(report))
        logs = "\n".join(f"==== {p.name}\n{p.read_text()[-4000:]}" for p in sorted(work.glob("*.log")))
        (args.results / "gpu_check_logs.txt").write_text(logs)
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
