"""`docker run IMAGE serve` on the model the container training test produced: real HTTP.

One container (2 workers, 1 MB payload limit) serves most tests; a second one, started with
`--cpus 2 --memory 800m`, shows the workers that follow the granted memory and is then stopped
with SIGTERM while requests are provably in flight. Every load is bounded in count and time.
"""

import csv
import http.client
import io
import json
import random
import re
import select
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support import REPO, TEST_CSV, ServingContainer, pings_while_stuck, read_rows

HOSTILE = [
    "",
    " ",
    "   ",
    "text",
    "Text",
    "sentence",
    "a, b, c",
    '"quoted"',
    'say "hi", then leave',
    "line one\nline two",
    "before\u2028after",
    "next\x85line",
    "emoji 😀🔥🌊",
    "tab\tseparated",
    "trailing CR\r",
    "x" * 3000,
    "flood " * 400,
]


@pytest.fixture(scope="module")
def served(image, trained_in_container):
    base, run = trained_in_container
    assert run.returncode == 0, run.output[-2000:]
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}
    with ServingContainer(image, base, env) as server:
        server.wait_healthy()
        yield server


def post(server, body, content_type="application/json", timeout=60, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(
        server.url + "/invocations", data=data, timeout=timeout, headers={"Content-Type": content_type, **headers}
    )


def probabilities(response) -> list[float]:
    assert response.status_code == 200, response.text[:500]
    return [json.loads(line)["probabilities"]["Real disaster"] for line in response.text.splitlines()]


def test_ping_and_invocations_over_http(served):
    assert requests.get(served.url + "/ping", timeout=2).status_code == 200
    response = post(served, {"inputs": ["I met my friend today by accident", "Just happened a terrible car crash"]})
    assert response.status_code == 200
    assert [p["label"] in ("Not a disaster", "Real disaster") for p in response.json()["predictions"]] == [True, True]
    assert "sagebert.serve" in served.logs() and "warmed up and ready" in served.logs()
    assert "exporting it now" not in served.logs()  # training's export was verified and used


def body_of(texts, content_type):
    if content_type == "application/jsonlines":
        return "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    if content_type == "text/csv":
        out = io.StringIO()
        csv.writer(out).writerows([t] for t in texts)
        return out.getvalue()
    return json.dumps(texts)


@pytest.mark.parametrize("content_type", ["application/json", "application/jsonlines", "text/csv"])
def test_n_hostile_records_in_give_n_answers_each_its_own_in_order(served, content_type):
    rng = random.Random(content_type)
    alone = {t: probabilities(post(served, [t], Accept="application/jsonlines"))[0] for t in HOSTILE}
    for _ in range(5):  # random orders and sizes, duplicates included
        texts = [rng.choice(HOSTILE) for _ in range(rng.randint(1, 60))]
        answer = post(served, body_of(texts, content_type).encode(), content_type, Accept="application/jsonlines")
        assert probabilities(answer) == [alone[t] for t in texts]


def test_predictions_are_the_same_however_requests_are_batched(served):
    texts = [row["sentence"] for row in read_rows(TEST_CSV, 240)]
    one_request = probabilities(post(served, texts, Accept="application/jsonlines"))
    rng = random.Random(7)
    requests_of = []
    start = 0
    while start < len(texts):  # random request sizes, sent 8 at a time: the server merges them
        size = rng.randint(1, 24)
        requests_of.append(list(range(start, min(len(texts), start + size))))
        start += size
    mixed = [None] * len(texts)
    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(
            lambda idx: (idx, post(served, [texts[i] for i in idx], Accept="application/jsonlines")), requests_of
        )
        for idx, answer in answers:
            for i, p in zip(idx, probabilities(answer), strict=True):
                mixed[i] = p
    assert max(abs(a - b) for a, b in zip(one_request, mixed, strict=True)) <= 1e-4
    assert [a > 0.5 for a in one_request] == [b > 0.5 for b in mixed]


def test_one_clients_bad_requests_leave_concurrent_good_ones_at_200(served):
    good = [json.dumps([f"good request {i} about a flood"]) for i in range(200)]
    bad = [json.dumps(["fine", "half a pair \ud800"]), '"\\ud800"', "[" * 20_000] * 10
    work = [(b, 200) for b in good] + [(b, 400) for b in bad]
    random.Random(3).shuffle(work)

    def send(item):  # every request is sent: the load is bounded by their number, not by a clock
        body, expected = item
        return post(served, body, timeout=30).status_code, expected

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(send, work))
    assert all(status == expected for status, expected in outcomes), [o for o in outcomes if o[0] != o[1]][:5]


def test_a_burst_of_malformed_requests_leaves_the_server_healthy(served):
    bad = [
        ("[1, 2", "application/json"),
        ('{"x": 1}', "application/json"),
        ("", "text/plain"),
        ("a", "application/xml"),
        (b"\xff\xfe\x00", "text/plain"),
        ("[]", "application/json"),
        ("{" * 5000, "application/json"),
        ("[" * 100_000, "application/json"),
        ('"a"\n[1]\n', "application/jsonlines"),
        ('"a"\n\n"b"\n', "application/jsonlines"),
        ('fine\n"unterminated\nquote\n', "text/csv"),
    ]

    def send(i):  # every request is sent: the load is bounded by their number, not by a clock
        body, content_type = bad[i % len(bad)]
        return post(served, body, content_type, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(220)))
    assert set(statuses) <= {400, 415} and 500 not in statuses
    assert requests.get(served.url + "/ping", timeout=2).status_code == 200
    assert post(served, ["still working"]).status_code == 200


def test_python_http_clients_see_the_413_chunked_or_not(served):
    # 48 MB, limit 1 MB: more than the socket buffers hold (up to 32 MB for the receiver, 4 MB for
    # the sender), so a server that answered without reading the body would leave the client with a
    # broken pipe; under the 64 MB the server drains. Sent to the container's own address: through
    # the published port, docker-proxy's two connections would buffer twice as much.
    body = b"a tweet about a fire in the valley\n" * ((48 << 20) // 35)
    for chunked in (False, True):
        connection = http.client.HTTPConnection(served.ip_address(), 8080, timeout=60)
        payload = (body[i : i + 65536] for i in range(0, len(body), 65536)) if chunked else body
        connection.request("POST", "/invocations", payload, {"Content-Type": "text/csv"}, encode_chunked=chunked)
        answer = connection.getresponse()
        assert answer.status == 413 and "limit of 1 MB" in json.loads(answer.read())["error"]
        connection.close()
    assert post(served, ["small"]).status_code == 200


def test_memory_with_two_workers_is_not_twice_one_workers(served, small_server):
    # The workers share the model their master loaded (copy-on-write), so a second worker adds
    # its own activation buffers and interpreter, not a second model.
    for server in (served, small_server):
        post(server, [row["sentence"] for row in read_rows(TEST_CSV, 64)])
    # Idle workers give freed buffers back (half a second after their last request, if their CPU
    # lets them): measured until they have, or a minute has passed.
    deadline = time.monotonic() + 60
    while True:
        two, one = served.memory_pss_mb(), small_server.memory_pss_mb()
        if two <= 1.5 * one or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # a poll interval: the measurement decides
    assert two <= 1.5 * one, (two, one)


@pytest.fixture(scope="module")
def small_server(image, trained_in_container):
    """A server granted 2 CPUs and 800 MB: room for one worker only (the memory decides)."""
    base, _ = trained_in_container
    with ServingContainer(image, base, extra=("--cpus", "2", "--memory", "800m")) as server:
        server.wait_healthy()
        yield server


def test_workers_follow_the_memory_the_container_was_granted(small_server):
    assert "1 worker(s) x 16 thread(s) (2 CPU(s) granted)" in small_server.logs()


def test_a_long_request_does_not_starve_ping_or_short_requests(small_server):
    # Independent of the CPU's speed, proved by what the one-worker server reports: a short
    # request counts once it was answered while /ping, asked right after, still shows a request on
    # the model. The only other request is the long one, whose answer is not yet read: so it was
    # still being computed when the short one finished. A server that let the long request starve
    # the others would answer a short one only after the long one left the model (in flight 0).
    # When a long request ends first, the next one is sent, so this holds however fast the CPU is.
    body = json.dumps(
        [f"flood number {i} " + "swept away the bridge near the old town square " * 20 for i in range(1000)]
    )

    def send_long() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", small_server.port, timeout=300)
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        return connection

    def answered(connection) -> bool:
        return bool(select.select([connection.sock], [], [], 0)[0])

    def finish(connection) -> None:
        answer = connection.getresponse()
        assert answer.status == 200 and len(json.loads(answer.read())["predictions"]) == 1000
        connection.close()

    def on_the_model() -> int:
        ping = requests.get(small_server.url + "/ping", timeout=2)  # SageMaker's ping timeout
        assert ping.status_code == 200
        return ping.json()["requests_in_flight"]

    long_request, inside, long_requests, deadline = send_long(), 0, 1, time.monotonic() + 180
    try:
        while inside < 5 and time.monotonic() < deadline:
            if answered(long_request):
                finish(long_request)
                long_request, long_requests = send_long(), long_requests + 1
                continue
            if on_the_model() < 1:  # the long request's body is still being decoded
                time.sleep(0.02)  # a poll interval: /ping decides
                continue
            assert post(small_server, ["short"], timeout=60).status_code == 200
            inside += on_the_model() >= 1 and not answered(long_request)
        assert inside == 5, f"{inside} short requests answered while a long one was on the model ({long_requests} long)"
    finally:
        finish(long_request)


def test_sigterm_lets_requests_provably_in_flight_finish_then_exits_zero(small_server):
    texts = [f"flood number {i} swept away the bridge near the old town square" for i in range(300)]
    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(post, small_server, texts, timeout=60) for _ in range(4)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the one worker counts the requests waiting on its model
            if requests.get(small_server.url + "/ping", timeout=5).json().get("requests_in_flight") == 4:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the four requests were never in flight together")
        subprocess.run(["docker", "kill", "--signal", "TERM", small_server.name], check=True, capture_output=True)
        responses = [a.result() for a in answers]
    # 1,200 texts of the tiny model: a small fraction of the 25 s grace on any CPU, so every request
    # provably in flight must finish (a 503 here would be a drain that gave up, not a slow machine).
    assert [r.status_code for r in responses] == [200] * 4, [r.text[:300] for r in responses]
    assert all(len(r.json()["predictions"]) == 300 for r in responses)
    assert small_server.exit_code() == 0
    logs = small_server.logs()
    assert "shutting down; 4 request(s) in flight finish" in logs
    assert "every request in flight was answered" in logs


def test_a_stuck_forward_pass_gets_a_503_ping_answers_meanwhile_and_the_worker_is_replaced(image, tmp_path):
    # A forward pass that provably never ends: the image's own server (`python -m serving_fakes`
    # runs sagebert.container.serve.main unchanged) with the test model that blocks on "block",
    # mounted into the container. A real model with a small timeout would be stuck only on a CPU
    # slow enough, and production code has no hook to hang a forward pass (nor should it).
    fakes = REPO / "tests" / "serving_fakes.py"
    env = {
        "PYTHONPATH": "/opt/sagebert-tests",
        "SAGEBERT_TEST_BIND_HOST": "0.0.0.0",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",  # the stuck worker answers /ping itself
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3",
    }
    extra = ("-v", f"{fakes}:/opt/sagebert-tests/serving_fakes.py:ro")
    command = ("python", "-m", "serving_fakes", "blocking")
    with ThreadPoolExecutor(1) as pool, ServingContainer(image, tmp_path, env, extra=extra, command=command) as server:
        server.wait_healthy()
        stuck = pool.submit(post, server, ["this will block"], timeout=60)
        deadline = time.monotonic() + 30
        while requests.get(server.url + "/ping", timeout=2).json().get("requests_in_flight") != 1:
            assert time.monotonic() < deadline, "the request never reached the model"
            time.sleep(0.02)  # a poll interval: the ping decides
        answered = pings_while_stuck(server.url, stuck)
        assert all(body["requests_in_flight"] == 1 for _, body in answered)
        assert max(seconds for seconds, _ in answered) > 1.5  # past the second after which the heartbeat stops
        response = stuck.result()
        assert response.status_code == 503 and "stuck" in response.json()["error"]
        server.wait_healthy(60)  # the replacement worker
        assert post(server, ["fine again"], timeout=30).status_code == 200
        logs = server.logs()
        assert "WORKER TIMEOUT" in logs and logs.count("warmed up and ready") == 2, logs[-3000:]


def test_a_container_without_a_model_stays_up_and_says_why(image, tmp_path):
    (tmp_path / "model").mkdir()
    with ServingContainer(image, tmp_path) as server:
        deadline, response = time.monotonic() + 90, None  # however long the server takes to start
        while response is None:
            try:
                response = requests.get(server.url + "/ping", timeout=2)
            except requests.ConnectionError:  # not listening yet
                assert time.monotonic() < deadline and server.running(), server.logs()[-3000:]
                time.sleep(0.2)  # a poll interval: the ping decides
        assert response.status_code == 503 and "config.json is missing" in response.json()["reason"]
        assert post(server, ["x"]).status_code == 503
        assert "loading the model failed" in server.logs()


@pytest.fixture(scope="module")
def served_by_each_backend(image, trained_in_container, tmp_path_factory):
    """The trained model served with torch fp32 and with ONNX Runtime int8 (2 workers each), each
    from its own copy of the model directory, without the export another server may have left."""
    import shutil

    base, run = trained_in_container
    assert run.returncode == 0, run.output[-2000:]
    servers = {}
    try:
        for precision in ("fp32", "onnx-int8"):
            opt_ml = tmp_path_factory.mktemp(f"serve-{precision}")
            shutil.copytree(base / "model", opt_ml / "model", ignore=shutil.ignore_patterns("*.onnx"))
            env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEBERT_INFERENCE_PRECISION": precision}
            servers[precision] = (ServingContainer(image, opt_ml, env), opt_ml / "model")
        for server, _ in servers.values():
            server.wait_healthy(timeout=180)
        yield servers
    finally:
        for server, _ in servers.values():
            server.remove()


def test_onnx_int8_is_exported_at_start_and_serves_over_http(served_by_each_backend):
    onnx, model_dir = served_by_each_backend["onnx-int8"]
    fp32, _ = served_by_each_backend["fp32"]
    assert len(list(model_dir.glob("model.int8-*.onnx"))) == 1
    logs = onnx.logs()
    assert "precision onnx-int8" in logs and "exported the model to ONNX int8" in logs, logs[-3000:]
    texts = [row["sentence"] for row in read_rows(TEST_CSV, 96)]
    quantized = post(onnx, texts).json()["predictions"]
    exact = post(fp32, texts).json()["predictions"]
    agree = sum(q["label"] == e["label"] for q, e in zip(quantized, exact, strict=True))
    assert agree >= 0.95 * len(texts)  # int8 may flip a few borderline tweets of the tiny model


def test_onnx_int8_answers_do_not_depend_on_their_request(served_by_each_backend):
    onnx, _ = served_by_each_backend["onnx-int8"]
    texts = [row["sentence"] for row in read_rows(TEST_CSV, 120)]
    one_request = probabilities(post(onnx, texts, Accept="application/jsonlines"))
    rng = random.Random(11)
    sizes, start = [], 0
    while start < len(texts):
        sizes.append((start, min(len(texts), start + rng.randint(1, 16))))
        start = sizes[-1][1]
    with ThreadPoolExecutor(8) as pool:  # concurrent requests: the server may merge them
        parts = list(
            pool.map(lambda s: probabilities(post(onnx, texts[s[0] : s[1]], Accept="application/jsonlines")), sizes)
        )
    assert [p for part in parts for p in part] == one_request  # each text runs alone: bitwise equal


@pytest.mark.parametrize("workers", ["1", "2"])
def test_onnx_int8_workers_exit_cleanly_on_sigterm(image, served_by_each_backend, tmp_path, workers):
    """Workers forked from the master must not inherit onnxruntime: one that did aborted
    ('terminate called ... std::system_error', SIGABRT) or hung when it exited."""
    import shutil

    _, model_dir = served_by_each_backend["onnx-int8"]
    shutil.copytree(model_dir, tmp_path / "model")  # with the export the fixture's server made
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": workers, "SAGEBERT_INFERENCE_PRECISION": "onnx-int8"}
    server = ServingContainer(image, tmp_path, env)
    try:
        server.wait_healthy(timeout=180)
        assert post(server, ["forest fire near la ronge"]).status_code == 200
        subprocess.run(["docker", "stop", "-t", "60", server.name], check=True, capture_output=True, timeout=90)
        assert server.exit_code() == 0
        logs = server.logs()
        assert logs.count("Worker exiting") == int(workers), logs[-3000:]
        assert "terminate called" not in logs and "SIGABRT" not in logs and "SIGKILL" not in logs, logs[-3000:]
    finally:
        server.remove()


def test_a_plain_docker_stop_answers_the_requests_in_flight_and_exits_zero(image, trained_in_container):
    # Docker's default stop timeout is 10 s; the grace period was 25 s, so a plain `docker stop`
    # SIGKILLed the server (exit 137) with its requests in flight. Two clients send requests back
    # to back, so requests are on the model (the one worker's /ping and its shutdown line say so)
    # when the stop begins.
    base, _ = trained_in_container
    texts = [f"flood number {i} swept away the bridge near the old town square" for i in range(200)]
    server = ServingContainer(image, base, extra=("--cpus", "2", "--memory", "800m"))
    try:
        server.wait_healthy()
        sent, stopping = [], threading.Event()

        def back_to_back():
            while not stopping.is_set():
                started = time.monotonic()
                try:
                    sent.append((started, post(server, texts, timeout=60).status_code))
                except requests.RequestException as exc:
                    sent.append((started, type(exc).__name__))

        senders = [threading.Thread(target=back_to_back) for _ in range(2)]
        for sender in senders:
            sender.start()
        try:
            give_up = time.monotonic() + 60
            while requests.get(server.url + "/ping", timeout=2).json().get("requests_in_flight", 0) < 1:
                assert time.monotonic() < give_up, "no request was ever in flight"
            proven = time.monotonic()
            subprocess.run(["docker", "stop", server.name], check=True, capture_output=True, timeout=30)
            stop_took = time.monotonic() - proven
        finally:
            stopping.set()
            for sender in senders:
                sender.join(120)
        assert server.exit_code() == 0, server.logs()[-3000:]
        assert stop_took < 10
        logs = server.logs()
        in_flight = re.search(r"shutting down; (\d+) request\(s\) in flight finish", logs)
        assert in_flight and int(in_flight.group(1)) >= 1, logs[-3000:]
        assert "every request in flight was answered" in logs
        # The requests sent before the one proven in flight all got their answer.
        before = [status for started, status in sent if started < proven]
        assert before and before == [200] * len(before), before
    finally:
        server.remove()
