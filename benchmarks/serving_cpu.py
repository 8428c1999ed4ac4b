"""Where a single-tweet request's CPU goes: the server's CPU per request against the forward pass's,
with the micro-batcher's no-hand-off path on and off, side by side in one run (issue 18).

    .venv/bin/python benchmarks/serving_cpu.py --model-dir local_test/test_dir/model --rounds 4

Two copies of the production server (``sagebert.container.serve.main``: gunicorn, the Flask app,
the real model and backend, the default workers and threads) run on this machine, outside Docker,
one with ``MicroBatcher(inline=False)``. The rounds alternate between them under the same load
(closed loop, keep-alive clients from this process), so a load spike from elsewhere lands on both
in turn. Per phase it prints: requests/s; the server's CPU time per request (its process tree,
user + system, from /proc); the CPU time of the forward passes inside the server (each pass timed
with its thread's CPU clock); their difference, which is what the server spends per request beyond
the model; and the load generator's own CPU per request. CPU times are far less sensitive to
other work on the machine than requests/s are.

``--echo`` serves the tests' instant model instead (tests/serving_fakes.py): the HTTP stack alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, free_port, load, machine, test_rows

# Run by each server process (``python -c``): the production entry point, with the forward pass's
# CPU time written to a file now and then, and the no-hand-off path switched off when asked.
SERVER = """
import json, os, sys, time
from pathlib import Path
from sagebert.serving import inference
from sagebert.container import serve
from sagebert.serving import batching

if os.environ["BENCH_INLINE"] == "0":
    init = batching.MicroBatcher.__init__
    batching.MicroBatcher.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "inline": False})
if os.environ.get("BENCH_ECHO") == "1":
    import serving_fakes
    inference.model_fn = serving_fakes._loader("echo")
    cls = serving_fakes.EchoModel
else:
    cls = inference.InferenceModel
forward, totals = cls.forward, {"cpu": 0.0, "texts": 0}
out = Path(os.environ["BENCH_OUT"])

def timed(self, items):
    begun = time.thread_time()
    try:
        return forward(self, items)
    finally:
        totals["cpu"] += time.thread_time() - begun
        totals["texts"] += len(items)
        if totals["texts"] % 100 < len(items):
            (out / f"forward-{os.getpid()}.json").write_text(json.dumps(totals))

cls.forward = timed
serve.BIND_HOST = "127.0.0.1"
sys.exit(serve.main([]))
"""


class Server:
    def __init__(self, model_dir: Path, inline: bool, echo: bool, scratch: Path):
        self.port = free_port()
        self.out = scratch / ("inline" if inline else "hand-off")
        self.out.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEBERT_MODEL_DIR": str(model_dir),
            "SAGEBERT_METRICS": "off",
            "BENCH_INLINE": "1" if inline else "0",
            "BENCH_ECHO": "1" if echo else "0",
            "BENCH_OUT": str(self.out),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server never answered /ping with 200")

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its workers so far."""
        tick = os.sysconf("SC_CLK_TCK")
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        total = 0
        for pid in [self.process.pid, *map(int, children.split())]:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / tick

    def forward_cpu(self) -> tuple[float, int]:
        """(CPU seconds, texts) of the forward passes so far, over the workers."""
        cpu, texts = 0.0, 0
        for path in self.out.glob("forward-*.json"):
            totals = json.loads(path.read_text())
            cpu, texts = cpu + totals["cpu"], texts + totals["texts"]
        return cpu, texts

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(60)


def phase(server: Server, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    load(server.port, bodies, concurrency, 20, 30)  # warm: the ONNX session opens on a first request
    cpu, (fcpu, ftexts) = server.cpu_seconds(), server.forward_cpu()
    result = load(server.port, bodies, concurrency, 10**7, seconds)
    cpu = server.cpu_seconds() - cpu
    fcpu_after, ftexts_after = server.forward_cpu()
    n = max(1, len(result.latencies_ms))
    server_ms = 1000 * cpu / n
    # The forward files are written every ~100 texts: the per-text figure is over the texts they saw.
    forward_ms = 1000 * (fcpu_after - fcpu) / max(1, ftexts_after - ftexts)
    return {
        "rps": round(result.throughput, 1),
        "errors": result.errors,
        "server_cpu_ms_per_request": round(server_ms, 3),
        "forward_cpu_ms_per_text": round(forward_ms, 3),
        "beyond_forward_ms": round(server_ms - forward_ms, 3),
        "server_cpus": round(cpu / result.seconds, 2),
        "client_cpu_ms_per_request": round(1000 * result.client_cpu_s / n, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "local_test" / "test_dir" / "model")
    parser.add_argument("--concurrency", default="8,1", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=8, help="time bound of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two servers per concurrency")
    parser.add_argument("--echo", action="store_true", help="the tests' instant model: the HTTP stack alone")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "serving_cpu.json")
    args = parser.parse_args()
    bodies = [json.dumps(r["sentence"]).encode() for r in test_rows()]
    print(f"serving CPU benchmark on {machine()}, model {'echo' if args.echo else args.model_dir}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(scratch) / "model"  # a copy: the ONNX export is made in it once
        if not args.echo:
            shutil.copytree(args.model_dir, model_dir)
        servers = {inline: Server(model_dir, inline, args.echo, Path(scratch)) for inline in (False, True)}
        try:
            for server in servers.values():
                server.wait_healthy()
            for concurrency in map(int, args.concurrency.split(",")):
                for round_ in range(args.rounds):
                    for inline, server in servers.items():
                        row = {"concurrency": concurrency, "round": round_, "inline": inline}
                        row |= phase(server, bodies, concurrency, args.seconds)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            for server in servers.values():
                server.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    print()
    print(
        "| concurrency | path | rounds | req/s (mean) | server CPU ms / request | forward CPU ms / text | beyond the forward ms | client CPU ms / request |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for concurrency in sorted({r["concurrency"] for r in rows}, reverse=True):
        for inline in (False, True):
            mine = [r for r in rows if r["concurrency"] == concurrency and r["inline"] == inline]

            def mean(key: str, mine=mine) -> float:
                return round(sum(r[key] for r in mine) / len(mine), 3)

            print(
                f"| {concurrency} | {'inline when idle' if inline else 'always hand-off'} | {len(mine)} | "
                f"{mean('rps')} | {mean('server_cpu_ms_per_request')} | {mean('forward_cpu_ms_per_text')} | "
                f"{mean('beyond_forward_ms')} | {mean('client_cpu_ms_per_request')} |"
            )


if __name__ == "__main__":
    main()
