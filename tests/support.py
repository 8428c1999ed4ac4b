"""Helpers shared by every test layer: a tiny BERT, slices of the bundled tweets, a SageMaker
/opt/ml tree builder, and `docker run`."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN_CSV = REPO / "local_test" / "data" / "training" / "train.csv"
TEST_CSV = REPO / "local_test" / "data" / "testing" / "test.csv"
RAW_CSV = REPO / "data" / "raw.csv"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def read_rows(path: Path, limit: int | None = None) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_tiny_bert(directory: Path) -> Path:
    """A randomly initialised 2-layer BERT with a WordPiece vocabulary built from the tweets."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = Counter()
    for row in read_rows(TRAIN_CSV):
        words.update(row["sentence"].lower().split())
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for w in words for c in w})
    vocab = specials + [w for w, _ in words.most_common(2000)] + chars + [f"##{c}" for c in chars]
    vocab = list(dict.fromkeys(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_tiny_model_dir(tiny_bert: Path, directory: Path, max_length: int = 32) -> Path:
    """Save the tiny BERT the way a training job saves its model (untrained head: answers are arbitrary)."""
    from sagebert.modeling import BaseModelChoice, load_for_training, save_model_dir

    labels = ("Not a disaster", "Real disaster")
    tokenizer, model = load_for_training(BaseModelChoice(str(tiny_bert), "test", "tiny"), labels, max_length)
    save_model_dir(
        directory, model, tokenizer, labels, max_length=max_length, base_model="tiny", hyperparameters={}, metrics={}
    )
    return directory


def with_scaled_head(model_dir: Path, directory: Path, factor: float) -> Path:
    """A copy of ``model_dir`` (without ONNX exports) whose classifier weights are ``factor`` times
    larger: an untrained head's logits are otherwise too small for labels or tolerances to mean anything."""
    import torch
    from transformers import AutoModelForSequenceClassification

    shutil.copytree(model_dir, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.onnx"))
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    with torch.no_grad():
        model.classifier.weight *= factor
    model.save_pretrained(directory)
    return directory


def make_opt_ml(
    base: Path,
    *,
    train_rows: int = 200,
    test_rows: int | None = 80,
    hyperparameters: dict | None = None,
    pretrained: Path | None = None,
    hosts: list[str] | None = None,
    current_host: str = "algo-1",
) -> Path:
    """A SageMaker /opt/ml tree under ``base`` with slices of the bundled split."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    channels = {}
    rows = read_rows(TRAIN_CSV, train_rows)
    write_csv(
        base / "input" / "data" / "training" / "train.csv",
        ["label", "sentence"],
        [[r["label"], r["sentence"]] for r in rows],
    )
    channels["training"] = {}
    if test_rows:
        rows = read_rows(TEST_CSV, test_rows)
        write_csv(
            base / "input" / "data" / "testing" / "test.csv",
            ["label", "sentence"],
            [[r["label"], r["sentence"]] for r in rows],
        )
        channels["testing"] = {}
    if pretrained is not None:
        import shutil

        shutil.copytree(pretrained, base / "input" / "data" / "pretrained")
        channels["pretrained"] = {}
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in (hyperparameters or {}).items()}))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for name in channels
            }
        )
    )
    hosts = hosts or ["algo-1"]
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": current_host, "hosts": hosts, "network_interface_name": "eth0"})
    )
    for sub in ("model", "output/data", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return base


def in_ci() -> bool:
    """Whether these tests run in CI: ``CI`` set to a true value (``true``, ``1``, ``yes``); ``CI=false`` is not CI."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str, fix: str) -> None:
    """Skip a test that cannot run here, or fail it in CI, where every test must run."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason}: in CI every test must run; {fix}")
    pytest.skip(f"{reason}; {fix}")


def docker_usable() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@dataclass
class Run:
    """A finished `docker run`."""

    returncode: int
    output: str


def docker_run(
    image: str,
    *args: str,
    opt_ml: Path | None = None,
    hostname: str | None = "algo-1",
    extra: tuple[str, ...] = (),
    timeout: int = 300,
) -> Run:
    """Run the image to completion (stdout and stderr together) and remove the container.

    ``hostname`` None: Docker's random host name, as a plain `docker run IMAGE train` gets."""
    name = f"sagebert-test-{uuid.uuid4().hex[:8]}"
    command = ["docker", "run", "--rm", "--name", name, *(["--hostname", hostname] if hostname else []), *extra]
    if opt_ml is not None:
        command += ["-v", f"{opt_ml}:/opt/ml"]
    command += [image, *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        raise
    return Run(done.returncode, done.stdout + done.stderr)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServingContainer:
    """`docker run -d IMAGE serve` with a model, published on a free loopback port."""

    def __init__(
        self,
        image: str,
        opt_ml: Path,
        env: dict | None = None,
        *,
        volume_target: str = "/opt/ml",
        extra: tuple[str, ...] = (),
        command: tuple[str, ...] = ("serve",),
    ):
        self.name = f"sagebert-serve-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command_line = [
            "docker",
            "run",
            "-d",
            "--name",
            self.name,
            "-p",
            f"127.0.0.1:{self.port}:8080",
            "-v",
            f"{opt_ml}:{volume_target}",
        ]
        for key, value in (env or {}).items():
            command_line += ["-e", f"{key}={value}"]
        subprocess.run([*command_line, *extra, image, *command], check=True, capture_output=True)

    def wait_healthy(self, timeout: float = 90) -> float:
        """Seconds until /ping answered 200; raises with the log if it never does."""
        import time

        import requests

        start, last = time.monotonic(), "no answer yet"
        while time.monotonic() - start < timeout:
            try:  # refused or unanswered while the server starts: expected, but kept for the failure
                ping = requests.get(self.url + "/ping", timeout=2)
                if ping.status_code == 200:
                    return time.monotonic() - start
                last = f"{ping.status_code} {ping.text[:300]}"
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            if not self.running():
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} never became healthy (last /ping: {last}):\n{self.logs()[-3000:]}")

    def ip_address(self) -> str:
        """The container's address on Docker's bridge: reached directly, without docker-proxy's buffers."""
        done = subprocess.run(
            ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.name],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split()[0]

    def running(self) -> bool:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", self.name], capture_output=True, text=True
        )
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True)
        return done.stdout + done.stderr

    def exit_code(self) -> int:
        subprocess.run(["docker", "wait", self.name], capture_output=True, timeout=60)
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", self.name], capture_output=True, text=True
        )
        return int(state.stdout.strip())

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)

    def run_python(self, code: str, timeout: float = 60) -> str:
        """Run ``code`` with the image's Python inside this container; its stdout."""
        done = subprocess.run(
            ["docker", "exec", self.name, "python", "-c", code], capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def memory_pss_mb(self) -> float:
        """The sum of every process's proportional set size (shared pages counted once), in MiB."""
        code = (
            "import glob, os\n"
            "total = 0\n"
            "for path in glob.glob('/proc/[0-9]*/smaps_rollup'):\n"
            "    if path == f'/proc/{os.getpid()}/smaps_rollup':\n"
            "        continue\n"
            "    try:\n"
            "        lines = open(path).read().splitlines()\n"
            "    except OSError:\n"
            "        continue\n"
            "    total += sum(int(l.split()[1]) for l in lines if l.startswith('Pss:'))\n"
            "print(total / 1024)\n"
        )
        return float(self.run_python(code))

    def __enter__(self) -> ServingContainer:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def pings_while_stuck(url: str, stuck, timeout: float = 60) -> list[tuple[float, dict]]:
    """Ping ``url`` (2 s each, SageMaker's ping timeout; no error caught) from now, with the stuck
    request ``stuck`` (a Future) on the model, until it has its answer or /ping reports the worker
    stuck; every ping before that must be a 200. The 200s' (seconds since the first ping, body)."""
    import time

    import requests

    start, answered = time.monotonic(), []
    while not stuck.done():
        elapsed = time.monotonic() - start
        assert elapsed < timeout, f"the stuck request had no answer after {timeout} s"
        ping = requests.get(url + "/ping", timeout=2)
        if ping.status_code == 503:
            assert "forward pass has run for" in ping.json()["reason"], ping.text
            break  # the worker says it is stuck: gunicorn replaces it now
        assert ping.status_code == 200, ping.text
        answered.append((elapsed, ping.json()))
        time.sleep(0.05)  # a poll interval, not a synchronisation
    return answered


class TrainingContainer:
    """`docker run -d IMAGE train`, whose live log can be watched (to stop or kill it at a chosen step)."""

    def __init__(self, image: str, opt_ml: Path, *, hostname: str = "algo-1", network: str | None = None):
        self.name = f"sagebert-train-{uuid.uuid4().hex[:8]}"
        command = ["docker", "run", "-d", "--name", self.name, "--hostname", hostname, "-v", f"{opt_ml}:/opt/ml"]
        if network:
            command += ["--network", network, "--network-alias", hostname]
        subprocess.run(command + [image, "train"], check=True, capture_output=True)

    def wait_for_line(self, pattern: str, timeout: float = 180) -> str:
        """Block until a log line matches the regex ``pattern``; return it."""
        import re
        import time

        deadline = time.monotonic() + timeout
        follow = subprocess.Popen(
            ["docker", "logs", "-f", self.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            for line in follow.stdout:
                if re.search(pattern, line):
                    return line
                if time.monotonic() > deadline:
                    break
        finally:
            follow.kill()
            follow.wait()
        raise AssertionError(f"no log line matched {pattern!r}:\n{self.logs()[-3000:]}")

    def signal(self, name: str) -> None:
        subprocess.run(["docker", "kill", "--signal", name, self.name], check=True, capture_output=True)

    def stop(self, grace_seconds: int = 120) -> None:
        """`docker stop -t`: SIGTERM, then SIGKILL after ``grace_seconds`` (SageMaker's StopTrainingJob gives 120 s)."""
        subprocess.run(
            ["docker", "stop", "-t", str(grace_seconds), self.name],
            check=True,
            capture_output=True,
            timeout=grace_seconds + 60,
        )

    def wait(self, timeout: float = 300) -> int:
        done = subprocess.run(["docker", "wait", self.name], capture_output=True, text=True, timeout=timeout)
        return int(done.stdout.strip())

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True)
        return done.stdout + done.stderr

    def added_paths(self) -> list[str]:
        """Paths the container added to its own file system that are still there (`docker diff`)."""
        done = subprocess.run(["docker", "diff", self.name], capture_output=True, text=True, check=True)
        return [line[2:] for line in done.stdout.splitlines() if line.startswith("A ")]

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


class LocalServer:
    """The production server (``sagebert.container.serve.main``: gunicorn, its workers, the app) in
    a subprocess on a free loopback port, with a test model from tests/serving_fakes.py."""

    def __init__(self, fake: str, env: dict | None = None, *, workers: int = 1):
        import sys
        import tempfile

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (the server writes it until __exit__)
            prefix="sagebert-server-", suffix=".log", delete=False
        )
        environ = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
            "SAGEBERT_MODEL_DIR": "/nonexistent/test-model",
            **{k: str(v) for k, v in (env or {}).items()},
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving_fakes", fake],
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that no worker outlives the test
        )

    def ping(self, timeout: float = 5):
        import requests

        return requests.get(self.url + "/ping", timeout=timeout)

    def wait_for(self, condition, timeout: float = 60, what: str = "the condition") -> None:
        """Poll ``condition()`` until it holds; an AssertionError with the log if it never does."""
        import time

        deadline, last = time.monotonic() + timeout, "none"
        while time.monotonic() < deadline:
            try:  # refused while the server starts or replaces a worker: kept for the failure
                if condition():
                    return
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{what} never happened (last error: {last}):\n{self.logs()[-3000:]}")

    def wait_healthy(self, timeout: float = 60) -> LocalServer:
        self.wait_for(lambda: self.ping().status_code == 200, timeout, "/ping 200")
        return self

    def logs(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code."""
        import signal

        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        os.unlink(self._log.name)
