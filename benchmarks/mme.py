"""One model, two servers: sagebert's gunicorn + Flask path against multi-model-server, side by side.

    .venv/bin/python benchmarks/mme.py --image sagebert:dev --model-dir local_test/test_dir/model

Both run in the image, one after the other, with the same model, int8 precision and one model
worker. MMS is measured through the front that SageMaker talks to (its honest /ping, the
payload limit). MMS itself listens on the container's loopback only, so it cannot be measured
from outside any more (BENCHMARKS.md keeps the figure measured before).
Cold start is `docker run` → the first successful prediction (for MMS: /ping 200, then POST
/models, then the first invoke — what the first request for a model pays on a multi-model
endpoint). Writes benchmarks/results/mme.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from common import REPO, Container, load, machine, median, post_json, test_rows

ENV = {"SAGEBERT_INFERENCE_PRECISION": "int8", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}


def measure(port: int, path: str, rows: list[dict], seconds: float) -> dict:
    singles = [json.dumps(r["sentence"]).encode() for r in rows]
    batches = [json.dumps([r["sentence"] for r in rows[i : i + 32]]).encode() for i in range(0, len(rows) - 32, 32)]
    return {
        "c1_single": load(port, singles, 1, 400, seconds, path=path).summary(),
        "c8_single": load(port, singles, 8, 4000, seconds, path=path).summary(),
        "c8_batch32": load(port, batches, 8, 600, seconds, path=path).summary(),
    }


def flask_path(image: str, model_dir: Path, rows, seconds: float, starts: int) -> dict:
    cold = []
    for _ in range(starts):
        c = Container.start(image, ["serve"], {str(model_dir): "/opt/ml/model"}, ENV, "bench-flask")
        try:
            c.wait_healthy()
            post_json(c.port, "warm")
            cold.append(time.monotonic() - c.started)
        finally:
            if len(cold) < starts:
                c.stop()
    try:
        result = {
            "name": "gunicorn + Flask",
            **measure(c.port, "/invocations", rows, seconds),
            "memory": c.idle_memory(),
            "cold_start_s": round(median(cold), 2),
        }
    finally:
        c.stop()
    return result


def mms_path(image: str, model_dir: Path, rows, seconds: float, starts: int) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="sagebert-mme-"))
    shutil.copytree(model_dir, root / "tweets" / "model")
    env = {**ENV, "SAGEMAKER_MULTI_MODEL": "true"}
    cold, loads = [], []
    for _ in range(starts):
        c = Container.start(image, ["serve"], {str(root): "/opt/ml/models:ro"}, env, "bench-mms")
        try:
            c.wait_healthy()
            t0 = time.monotonic()
            post_json(c.port, {"model_name": "tweets", "url": "/opt/ml/models/tweets/model"}, "/models")
            loads.append(time.monotonic() - t0)
            post_json(c.port, "warm", "/models/tweets/invoke")
            cold.append(time.monotonic() - c.started)
        finally:
            if len(cold) < starts:
                c.stop()
    try:
        front = {
            "name": "MMS through the front",
            **measure(c.port, "/models/tweets/invoke", rows, seconds),
            "memory": c.idle_memory(),
            "cold_start_s": round(median(cold), 2),
            "model_load_s": round(median(loads), 2),
        }
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
    return [front]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="sagebert:dev")
    parser.add_argument("--model-dir", type=Path, default=REPO / "local_test" / "test_dir" / "model")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "mme.json")
    args = parser.parse_args()
    rows = test_rows()
    model_dir = args.model_dir.resolve()
    print(f"MME benchmark on {machine()}, model {model_dir}, image {args.image}", flush=True)
    results = [
        flask_path(args.image, model_dir, rows, args.seconds, args.cold_starts),
        *mms_path(args.image, model_dir, rows, args.seconds, args.cold_starts),
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2)
    )
    print(
        "\n| server | cold start to first prediction s | c1 p50 ms | c1 p99 ms | c8 req/s (1 tweet) | c8 p99 ms | "
        "c8 req/s (32 tweets) | memory MiB (cgroup / PSS) |\n|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        m = r["memory"]
        print(
            f"| {r['name']} | {r['cold_start_s']} | {r['c1_single']['p50_ms']} | {r['c1_single']['p99_ms']} | "
            f"{r['c8_single']['throughput_rps']} | {r['c8_single']['p99_ms']} | {r['c8_batch32']['throughput_rps']} | "
            f"{m['cgroup_mib']} / {m['pss_sum_mib']} |"
        )


if __name__ == "__main__":
    main()
