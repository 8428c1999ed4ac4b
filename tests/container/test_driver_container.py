"""`docker run IMAGE serve` on a machine without a GPU: the NVIDIA driver check says, in one log
line, that the CPU build has nothing to check, and lets the server start; with the JSON log
format every line the server writes is a JSON object."""

import json
import time

import requests

from support import ServingContainer


def wait_for_ping(server, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return requests.get(server.url + "/ping", timeout=5)
        except requests.RequestException:
            time.sleep(0.2)  # polling the port until the server listens, as the other container tests do
    raise AssertionError("the server never answered /ping:\n" + server.logs()[-3000:])


def test_the_driver_check_says_cpu_build_and_lets_serve_start_with_json_logs(image, tmp_path):
    (tmp_path / "model").mkdir()  # no model: /ping's reason must be the model, not the driver
    with ServingContainer(image, tmp_path, {"SAGEBERT_LOG_FORMAT": "json"}) as server:
        response = wait_for_ping(server)
        assert response.status_code == 503 and "config.json is missing" in response.json()["reason"]
        for _ in range(5):
            requests.get(server.url + "/ping", timeout=5)
        logs = server.logs()
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]
    driver = [r for r in records if r["logger"] == "sagebert.driver"]
    assert len(driver) == 1 and driver[0]["level"] == "INFO"
    assert "torch is a CPU build; nothing to check, running on the CPU" in driver[0]["message"]
    assert not any("/ping" in r["message"] for r in records)
