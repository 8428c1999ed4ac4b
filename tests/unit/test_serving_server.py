"""The real server (gunicorn, its workers, the Flask app) over sockets on loopback, with test models
that answer instantly, slowly, or never (tests/serving_fakes.py): what no test client can show."""

import csv
import http.client
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_fakes import expected_probability

from support import LocalServer


def post(server, body, content_type="application/json", timeout=60, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(
        server.url + "/invocations", data=data, timeout=timeout, headers={"Content-Type": content_type, **headers}
    )


@pytest.fixture(scope="module")
def echo():
    with LocalServer("echo", {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}, workers=2) as server:
        yield server.wait_healthy()


# ---- N records in, N answers out, each its own record's ---------------------------------------------


def encode_body(texts, content_type):
    if content_type == "application/json":
        return json.dumps(texts)
    if content_type == "application/jsonlines":
        return "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    out = io.StringIO()
    csv.writer(out).writerows([t] for t in texts)
    return out.getvalue()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(
        st.one_of(st.text(max_size=60), st.sampled_from(["", "  ", "text", "sentence", "a,b", '"', "\u2028", "\x85"])),
        min_size=1,
        max_size=40,
    ),
    content_type=st.sampled_from(["application/json", "application/jsonlines", "text/csv"]),
)
def test_every_record_gets_its_own_answer_in_order_over_http(echo, texts, content_type):
    response = post(echo, encode_body(texts, content_type).encode(), content_type, Accept="application/jsonlines")
    assert response.status_code == 200, response.text
    answers = [json.loads(line) for line in response.text.splitlines()]
    assert [a["probabilities"]["Real disaster"] for a in answers] == [expected_probability(t) for t in texts]


def test_one_clients_bad_requests_never_fail_the_good_ones_sent_alongside(echo):
    good = [f"good request {i}" for i in range(240)]
    bad = [json.dumps(["fine", "half of a pair \ud800"])] * 30  # json.dumps escapes it: valid JSON, invalid text
    work = [(g, 200) for g in good] + [(b, 400) for b in bad]
    work = work[::7] + [w for i, w in enumerate(work) if i % 7]  # bad ones spread through the load
    deadline = time.monotonic() + 120

    def send(item):
        body, expected = item
        if time.monotonic() > deadline:
            return None
        data = body if expected == 400 else json.dumps([body])
        return post(echo, data, timeout=30).status_code, expected

    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for o in pool.map(send, work) if o is not None]
    assert len(outcomes) >= 200
    assert all(status == expected for status, expected in outcomes), [o for o in outcomes if o[0] != o[1]][:5]


# ---- the body: read whole before answering, bounded, never cut ------------------------------------------


def http_client_post(server, body, *, chunked=False):
    """POST the way Python's http.client does: the whole body first, then read the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        if chunked:
            pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
            connection.request("POST", "/invocations", pieces, {"Content-Type": "text/csv"}, encode_chunked=True)
        else:
            connection.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_http_client_sees_the_413_for_a_body_over_the_limit(echo):
    status, answer = http_client_post(echo, b"fire in the valley\n" * 120_000)  # 2.3 MB, limit 1 MB
    assert status == 413 and "limit of 1 MB" in json.loads(answer)["error"]


def test_a_chunked_body_over_the_limit_is_413_not_cut(echo):
    status, answer = http_client_post(echo, b"fire in the valley\n" * 60_000, chunked=True)  # 1.14 MB
    assert status == 413, answer[:200]
    status, answer = http_client_post(echo, (b"fire in the valley " * 19 + b"\n") * 2_600, chunked=True)  # 0.94 MB
    assert status == 200 and len(json.loads(answer)["predictions"]) == 2_600


def test_a_chunked_body_under_the_limit_gets_every_prediction(echo):
    status, answer = http_client_post(echo, b"fire in the valley\n" * 5_000, chunked=True)
    assert status == 200 and len(json.loads(answer)["predictions"]) == 5_000


def test_silent_clients_are_disconnected_and_do_not_hold_the_threads():
    # 4 threads per worker: without a read timeout, 6 clients that announce 100 bytes and send
    # 10 would hold every thread for as long as they stay connected.
    with LocalServer("echo", {"SAGEBERT_SERVER_THREADS": "4", "SAGEBERT_CLIENT_TIMEOUT": "2"}) as server:
        server.wait_healthy()
        stalled = []
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
                + b"0123456789"
            )
            stalled.append(sock)
        for sock in stalled:  # the server gives up on each, with a 408
            assert sock.recv(65536).startswith(b"HTTP/1.1 408 ")
            sock.close()
        assert server.ping(timeout=10).status_code == 200
        assert post(server, ["after the silent clients"], timeout=10).status_code == 200


# ---- long, stuck and concurrent work -------------------------------------------------------------------


def test_a_long_request_does_not_hold_back_ping_or_short_requests():
    with LocalServer("slow", {"SLOW_SECONDS": "0.005", "SAGEBERT_MICRO_BATCH_TEXTS": "16"}) as server:
        server.wait_healthy()
        finished = []
        long_done = threading.Event()

        def long_request():
            response = post(server, ["long text"] * 2000, timeout=120)  # 10 s of work, served in 0.08 s slices
            finished.append(("long", response.status_code))
            long_done.set()

        thread = threading.Thread(target=long_request)
        thread.start()
        server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 1, 30, "the long request in flight")
        for i in range(5):
            assert server.ping(timeout=10).status_code == 200
            finished.append((f"short{i}", post(server, ["short"], timeout=60).status_code))
        still_running = not long_done.is_set()
        thread.join(120)
        assert still_running, "the long request ended before the short ones: the test proves nothing"
        assert finished[:5] == [(f"short{i}", 200) for i in range(5)] and finished[5] == ("long", 200)


def test_a_stuck_forward_pass_gets_a_503_and_gunicorn_replaces_the_worker():
    # (/ping's 503 for a stuck worker is in test_serving_app: here gunicorn kills the worker as
    # soon as it is stuck, which leaves no time to see it.)
    with LocalServer("blocking", {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3"}) as server:
        server.wait_healthy()
        stuck = post(server, ["this will block"], timeout=60)
        assert stuck.status_code == 503 and "stuck" in stuck.json()["error"]
        server.wait_for(lambda: "WORKER TIMEOUT" in server.logs(), 30, "gunicorn's worker timeout")
        server.wait_healthy(60)  # the replacement worker
        assert post(server, ["fine again"], timeout=30).status_code == 200


def test_requests_beyond_the_workers_slots_get_a_503_and_ping_still_answers():
    with LocalServer("slow", {"SLOW_SECONDS": "1", "SAGEBERT_SERVER_THREADS": "4"}) as server:
        server.wait_healthy()
        with ThreadPoolExecutor(2) as pool:
            busy = [pool.submit(post, server, ["slow"] * 3, timeout=60) for _ in range(2)]
            server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 2, 30, "two requests in flight")
            refused = post(server, ["one more"], timeout=30)
            assert refused.status_code == 503 and "waiting for the model" in refused.json()["error"]
            assert server.ping(timeout=10).status_code == 200
            assert [f.result().status_code for f in busy] == [200, 200]


# ---- start and stop ----------------------------------------------------------------------------------


def test_nothing_answers_200_before_the_model_is_loaded_and_warm():
    with LocalServer("slow-loading", {"LOAD_SECONDS": "3"}) as server:
        seen = []

        def ping_status():
            try:
                seen.append(server.ping(timeout=2).status_code)
            except requests.ConnectionError:
                seen.append("refused")
            return seen[-1] == 200

        server.wait_for(ping_status, 60, "/ping 200")
        assert "model ready" in server.logs() and "warmed up and ready" in server.logs()
        assert set(seen[:-1]) <= {"refused", 503}


def test_a_model_that_fails_to_load_gives_503_with_the_reason():
    with LocalServer("failing") as server:
        server.wait_for(lambda: server.ping().status_code == 503, 60, "/ping 503")
        assert "config.json is missing" in server.ping().json()["reason"]
        assert post(server, ["x"], timeout=10).status_code == 503


def test_sigterm_lets_requests_provably_in_flight_finish_and_says_so():
    with LocalServer("slow", {"SLOW_SECONDS": "0.01"}) as server:
        server.wait_healthy()
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, server, [f"text {i}"] * 200, timeout=60) for i in range(4)]
            server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 4, 30, "four requests in flight")
            code = server.stop()
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 4
        assert all(len(a.json()["predictions"]) == 200 for a in answers)
        assert code == 0
        assert "4 request(s) in flight finish" in server.logs()
        assert "every request in flight was answered" in server.logs()


def test_sigterm_refuses_with_503_what_cannot_finish_in_the_grace_period():
    with LocalServer("slow", {"SLOW_SECONDS": "0.1", "GRACEFUL_TIMEOUT": "5"}) as server:
        server.wait_healthy()
        with ThreadPoolExecutor(1) as pool:
            long = pool.submit(post, server, ["text"] * 600, timeout=60)  # 60 s of work
            server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 1, 30, "the request in flight")
            code = server.stop()
            answer = long.result()
        assert answer.status_code == 503 and "shutting down" in answer.json()["error"]
        assert code == 0
        assert "1 request(s) that could not finish in the grace period got a 503" in server.logs()


class _RecordingSocket:
    def __init__(self):
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))


def _response(headers):
    from types import SimpleNamespace

    from gunicorn.config import Config

    from sagebert.serving.worker import OneWriteResponse

    request = SimpleNamespace(version=(1, 1), method="POST", should_close=lambda: False, headers=[])
    sock = _RecordingSocket()
    response = OneWriteResponse(request, sock, Config())
    response.start_response("200 OK", headers)
    return response, sock


def test_a_response_with_a_body_goes_out_in_one_write():
    response, sock = _response([("Content-Type", "application/json"), ("Content-Length", "2")])
    response.write(b"{}")
    response.close()
    assert len(sock.writes) == 1
    head, body = sock.writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"{}"


@pytest.mark.parametrize("body", [b"", b"[1]"])
def test_headers_come_first_whatever_the_body(body):
    response, sock = _response([("Content-Type", "application/json")])  # no length: chunked
    if body:
        response.write(body)
    response.close()
    wire = b"".join(sock.writes)
    assert wire.startswith(b"HTTP/1.1 200 OK") and wire.endswith(b"0\r\n\r\n")
    assert (body in wire.split(b"\r\n\r\n", 1)[1]) and wire.count(b"HTTP/1.1") == 1
