"""The image with no network at all (`docker run --network none`), as a network-isolated SageMaker
job or model runs it: training and serving need nothing outside the container, and give the same
results as with Docker's default network.

The isolated server publishes no port (there is no network to publish it on), so it is asked from
inside its own container, over its loopback, with the image's Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from support import ServingContainer, docker_run

pytestmark = pytest.mark.container

TEXTS = [
    "Forest fire near La Ronge Sask. Canada",
    "I love fruits",
    "Flood warning issued for the river valley tonight",
    "What a goooooooaaaaaal!!!!!!",
]
BODY = json.dumps({"inputs": TEXTS})


@pytest.fixture(scope="module")
def trained_without_network(image, trained_in_container, tmp_path_factory):
    """The same /opt/ml inputs as ``trained_in_container`` (copied), trained with ``--network none``."""
    base, _ = trained_in_container
    isolated = tmp_path_factory.mktemp("isolated") / "opt_ml"
    shutil.copytree(base / "input", isolated / "input")
    return isolated, docker_run(image, "train", opt_ml=isolated, hostname=None, extra=("--network", "none"))


def test_training_with_no_network_succeeds_and_scores_as_with_one(trained_in_container, trained_without_network):
    base, with_network = trained_in_container
    isolated, without = trained_without_network

    assert with_network.returncode == 0, with_network.output[-2000:]
    assert without.returncode == 0, without.output[-3000:]
    assert (isolated / "output" / "success").exists()
    expected = json.loads((base / "model" / "metrics.json").read_text())
    measured = json.loads((isolated / "model" / "metrics.json").read_text())
    scores = ("accuracy", "precision", "recall", "f1", "loss", "examples", "epochs")
    assert {k: measured[k] for k in scores} == pytest.approx({k: expected[k] for k in scores}, abs=1e-6)


class IsolatedServer:
    """`docker run -d --network none IMAGE serve`, asked from inside over 127.0.0.1:8080."""

    def __init__(self, image: str, opt_ml):
        self.name = f"sagebert-isolated-{uuid.uuid4().hex[:8]}"
        command = ["docker", "run", "-d", "--name", self.name, "--network", "none", "-v", f"{opt_ml}:/opt/ml"]
        subprocess.run(command + [image, "serve"], check=True, capture_output=True)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        code = (
            "import sys, urllib.request, urllib.error\n"
            "data = sys.stdin.read().encode() or None\n"
            f"req = urllib.request.Request('http://127.0.0.1:8080{path}', data=data, method={method!r},"
            " headers={'Content-Type': 'application/json'})\n"
            "try:\n"
            "    with urllib.request.urlopen(req, timeout=30) as r: print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e: print(e.code); print(e.read().decode())\n"
        )
        done = subprocess.run(
            ["docker", "exec", "-i", self.name, "python", "-c", code],
            input=body or "",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            return 0, done.stderr
        status, _, text = done.stdout.partition("\n")
        return int(status), text.strip()

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request("GET", "/ping")[0] == 200:
                return
            time.sleep(0.5)  # polling a server that is starting, bounded by the deadline
        logs = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True)
        raise AssertionError(f"{self.name} never answered /ping:\n{(logs.stdout + logs.stderr)[-3000:]}")

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


def test_serving_with_no_network_answers_as_with_one(image, trained_in_container):
    base, run = trained_in_container
    assert run.returncode == 0, run.output[-2000:]
    with ServingContainer(image, base) as server:
        server.wait_healthy()
        answer = requests.post(
            server.url + "/invocations", data=BODY, headers={"Content-Type": "application/json"}, timeout=60
        )
    isolated = IsolatedServer(image, base)
    try:
        isolated.wait_healthy()
        status, text = isolated.request("POST", "/invocations", BODY)
        network = subprocess.run(
            ["docker", "inspect", "-f", "{{.HostConfig.NetworkMode}}", isolated.name], capture_output=True, text=True
        )
    finally:
        isolated.remove()

    assert network.stdout.strip() == "none"
    assert answer.status_code == status == 200, text
    assert json.loads(text) == answer.json()
    assert len(answer.json()["predictions"]) == len(TEXTS)
