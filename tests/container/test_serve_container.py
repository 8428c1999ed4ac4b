"""`docker run IMAGE serve` on the model the container training test produced: real HTTP."""

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support import ServingContainer


@pytest.fixture(scope="module")
def served(image, trained_in_container):
    base, run = trained_in_container
    assert run.returncode == 0, run.output[-2000:]
    with ServingContainer(image, base) as server:
        server.wait_healthy()
        yield server


def post(server, body, content_type="application/json", timeout=30, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(
        server.url + "/invocations", data=data, timeout=timeout, headers={"Content-Type": content_type, **headers}
    )


def test_ping_and_invocations_over_http(served):
    assert requests.get(served.url + "/ping", timeout=2).status_code == 200
    response = post(served, {"inputs": ["I met my friend today by accident", "Just happened a terrible car crash"]})
    assert response.status_code == 200
    assert [p["label"] in ("Not a disaster", "Real disaster") for p in response.json()["predictions"]] == [True, True]
    assert "sagebert.serve" in served.logs() and "warmed up and ready" in served.logs()


def test_csv_and_jsonlines_round_trip(served):
    csv = post(served, "text\nflood in the valley\ncalm day\n", "text/csv", Accept="text/csv")
    assert csv.status_code == 200 and len(csv.text.splitlines()) == 2
    lines = post(served, '"a"\n"b"\n"c"\n', "application/jsonlines", Accept="application/jsonlines")
    assert len(lines.text.splitlines()) == 3


def test_a_burst_of_malformed_requests_leaves_the_server_healthy(served):
    bad = [
        ("[1, 2", "application/json"),
        ('{"x": 1}', "application/json"),
        ("", "text/plain"),
        ("a", "application/xml"),
        (b"\xff\xfe\x00", "text/plain"),
        ("[]", "application/json"),
        ("{" * 5000, "application/json"),
        ('"a"\n[1]\n', "application/jsonlines"),
    ]
    statuses = []
    deadline = time.monotonic() + 60

    def send(i):
        if time.monotonic() > deadline:
            return None
        body, content_type = bad[i % len(bad)]
        return post(served, body, content_type, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for s in pool.map(send, range(240)) if s is not None]
    assert len(statuses) >= 200
    assert set(statuses) <= {400, 415} and 500 not in statuses
    assert requests.get(served.url + "/ping", timeout=2).status_code == 200
    assert post(served, ["still working"]).status_code == 200


def test_payload_limit_is_413(image, trained_in_container):
    base, _ = trained_in_container
    with ServingContainer(image, base, {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}) as server:
        server.wait_healthy()
        too_big = post(server, ["a tweet about a fire " * 20] * 2500)  # ~1.1 MB
        assert too_big.status_code == 413 and "limit of 1 MB" in too_big.json()["error"]
        assert post(server, ["small"]).status_code == 200


def test_sigterm_lets_in_flight_requests_finish_then_exits_zero(image, trained_in_container):
    base, _ = trained_in_container
    with ServingContainer(image, base, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}) as server:
        server.wait_healthy()
        texts = [f"flood number {i} swept away the bridge near the old town square" for i in range(3000)]
        results = {}
        started = threading.Barrier(5)

        def client(i):
            started.wait()
            results[i] = post(server, texts, timeout=60)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        started.wait()
        time.sleep(0.5)  # the requests are in the server now
        subprocess.run(["docker", "kill", "--signal", "TERM", server.name], check=True, capture_output=True)
        for t in threads:
            t.join(60)
        assert sorted(results) == [0, 1, 2, 3]
        for response in results.values():
            assert response.status_code == 200 and len(response.json()["predictions"]) == 3000
        assert server.exit_code() == 0
        assert "Shutting down" in server.logs() or "Handling signal: term" in server.logs()


def test_a_container_without_a_model_stays_up_and_says_why(image, tmp_path):
    (tmp_path / "model").mkdir()
    with ServingContainer(image, tmp_path) as server:
        for _ in range(100):
            try:
                response = requests.get(server.url + "/ping", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        assert response.status_code == 503 and "config.json is missing" in response.json()["reason"]
        assert post(server, ["x"]).status_code == 503
        assert "loading the model failed" in server.logs()
