"""Helpers shared by the benchmark scripts: containers, bounded HTTP load, memory, percentiles."""

from __future__ import annotations

import csv
import http.client
import json
import os
import socket
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_CSV = REPO / "local_test" / "data" / "testing" / "test.csv"


def test_rows() -> list[dict]:
    with open(TEST_CSV, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Container:
    """A detached `docker run`, published on a free loopback port."""

    name: str
    port: int
    started: float
    cold_start_s: float = float("nan")

    @classmethod
    def start(
        cls,
        image: str,
        args: list[str],
        volumes: dict[str, str],
        env: dict[str, str],
        name_prefix: str = "bench",
    ) -> Container:
        port = free_port()
        name = f"{name_prefix}-{uuid.uuid4().hex[:6]}"
        command = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080"]
        for host, target in volumes.items():
            command += ["-v", f"{host}:{target}"]
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        started = time.monotonic()
        subprocess.run(command + [image, *args], check=True, capture_output=True)
        return cls(name, port, started)

    def wait_healthy(self, timeout: float = 120) -> float:
        """Seconds from `docker run` to the first 200 on /ping (polled every 20 ms)."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    self.cold_start_s = time.monotonic() - self.started
                    return self.cold_start_s
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not healthy after {timeout} s:\n{self.logs()[-2000:]}")

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True)
        return done.stdout + done.stderr

    def memory(self) -> dict:
        """The container's memory: cgroup usage (minus page cache), and RSS / PSS summed over its processes."""
        script = (
            "for f in /proc/[0-9]*/smaps_rollup; do cat $f 2>/dev/null; done; "
            "cat /sys/fs/cgroup/memory/memory.usage_in_bytes /sys/fs/cgroup/memory/memory.stat 2>/dev/null || "
            "cat /sys/fs/cgroup/memory.current /sys/fs/cgroup/memory.stat"
        )
        out = subprocess.run(["docker", "exec", self.name, "sh", "-c", script], capture_output=True, text=True).stdout
        rss = sum(int(line.split()[1]) for line in out.splitlines() if line.startswith("Rss:")) / 1024
        pss = sum(int(line.split()[1]) for line in out.splitlines() if line.startswith("Pss:")) / 1024
        numbers = [line for line in out.splitlines() if line.strip().isdigit()]
        stat = dict(line.split() for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())
        usage = int(numbers[0]) if numbers else 0
        cache = int(stat.get("total_inactive_file", stat.get("inactive_file", 0)))
        return {
            "cgroup_mib": round((usage - cache) / 2**20, 1),
            "rss_sum_mib": round(rss, 1),
            "pss_sum_mib": round(pss, 1),
        }

    def memory_while(self, work, every: float = 2.0) -> tuple[object, dict]:
        """Run ``work()`` while sampling memory; return its result and the peak sample."""
        samples: list[dict] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(every):
                samples.append(self.memory())

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            result = work()
        finally:
            done.set()
            sampler.join()
        return result, max(samples, key=lambda m: m["cgroup_mib"], default=self.memory())

    def idle_memory(self, seconds: float = 2.0) -> dict:
        """Memory once the server has been idle for ``seconds`` (it returns freed memory when idle)."""
        time.sleep(seconds)
        return self.memory()

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)

    def cpu_seconds(self) -> float:
        """CPU time the container's processes have used so far, from its cgroup's accounting on the
        host (cgroup v1 cpuacct.usage, or v2 cpu.stat usage_usec): read without entering the container."""
        if self._cpu_file is None:
            pid = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Pid}}", self.name], capture_output=True, text=True, check=True
            ).stdout.strip()
            self._cpu_file = cgroup_cpu_file(int(pid))
        text = self._cpu_file.read_text()
        if self._cpu_file.name == "cpuacct.usage":
            return int(text) / 1e9
        usage = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec "))
        return int(usage) / 1e6

    _cpu_file: Path | None = None


def cgroup_cpu_file(pid: int) -> Path:
    """The file that accounts the CPU time of ``pid``'s cgroup (v1 cpuacct, else v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                candidate = Path("/sys/fs/cgroup", mount, path.lstrip("/"), "cpuacct.usage")
                if candidate.exists():
                    return candidate
    path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        candidate = root / path.lstrip("/") / "cpu.stat"
        if candidate.exists():
            return candidate
    raise RuntimeError(f"no CPU accounting found for the cgroup of process {pid}: {lines}")


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu_s: float | None = None  # the server's CPU time over the timed phase (its cgroup's)
    client_cpu_s: float = 0.0  # this process's CPU time over the timed phase: the load generator's

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict:
        answered = len(self.latencies_ms) + self.errors
        summary = {
            "requests": len(self.latencies_ms),
            "errors": self.errors,
            "p50_ms": round(percentile(self.latencies_ms, 50), 2),
            "p99_ms": round(percentile(self.latencies_ms, 99), 2),
            "throughput_rps": round(self.throughput, 1),
            "client_cpu_ms_per_request": round(1000 * self.client_cpu_s / max(1, answered), 3),
            "client_cpus": round(self.client_cpu_s / self.seconds, 2) if self.seconds else None,
        }
        if self.server_cpu_s is not None:
            summary["server_cpu_ms_per_request"] = round(1000 * self.server_cpu_s / max(1, answered), 3)
            summary["server_cpus"] = round(self.server_cpu_s / self.seconds, 2) if self.seconds else None
        return summary


def load(
    port: int,
    bodies: list[bytes],
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    content_type: str = "application/json",
    warmup: int = 5,
    path: str = "/invocations",
    server_cpu=None,
) -> LoadResult:
    """Closed-loop load: ``concurrency`` keep-alive clients, bounded in count and in time. With
    ``server_cpu`` (a callable: the server's CPU seconds so far) the server's CPU time over the
    timed phase is kept too; the client's own (this process's) always is."""
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(10**9))
    for body in bodies[:warmup]:
        _post(http.client.HTTPConnection("127.0.0.1", port, timeout=60), body, content_type, path)
    server_before = server_cpu() if server_cpu else None
    client_before = time.process_time()
    start = time.monotonic()
    deadline = start + max_seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            if i >= max_requests:
                return
            t0 = time.perf_counter()
            ok = _post(conn, bodies[i % len(bodies)], content_type, path)
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                if ok:
                    result.latencies_ms.append(elapsed)
                else:
                    result.errors += 1
            if not ok:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - start
    result.client_cpu_s = time.process_time() - client_before
    if server_cpu:
        result.server_cpu_s = server_cpu() - server_before
    return result


def _post(conn: http.client.HTTPConnection, body: bytes, content_type: str, path: str = "/invocations") -> bool:
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False


def post_json(port: int, payload, path: str = "/invocations") -> object:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", path, body=json.dumps(payload), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {body[:300]!r}")
    return json.loads(body)


def machine() -> str:
    cpus = os.cpu_count()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{cpus} CPUs ({model})"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
