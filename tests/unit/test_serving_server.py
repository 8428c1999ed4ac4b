"""The real server (gunicorn, its workers, the Flask app) over sockets on loopback, with test models
that answer instantly, slowly, or never (tests/serving_fakes.py): what no test client can show."""

import contextlib
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

from support import LocalServer, pings_while_stuck


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

    def send(item):  # every request is sent: the load is bounded by their number, not by a clock
        body, expected = item
        data = body if expected == 400 else json.dumps([body])
        return post(echo, data, timeout=30).status_code, expected

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(send, work))
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


# 48 MB: more than loopback's socket buffers can hold (the receiver's grows to 32 MB here, the
# sender's to 4 MB), so a client still sending when the server answers without reading the body
# gets a broken pipe or a reset, not the 413; and under the 64 MB the server drains past the limit.
OVER_LIMIT_BODY = b"fire in the valley\n" * ((48 << 20) // 19)


def test_http_client_sees_the_413_for_a_body_over_the_limit(echo):
    status, answer = http_client_post(echo, OVER_LIMIT_BODY)  # limit 1 MB
    assert status == 413 and "limit of 1 MB" in json.loads(answer)["error"]


def test_a_chunked_body_over_the_limit_is_413_not_cut(echo):
    status, answer = http_client_post(echo, OVER_LIMIT_BODY, chunked=True)
    assert status == 413, answer[:200]
    status, answer = http_client_post(echo, (b"fire in the valley " * 19 + b"\n") * 2_600, chunked=True)  # 0.94 MB
    assert status == 200 and len(json.loads(answer)["predictions"]) == 2_600


def test_a_chunked_body_under_the_limit_gets_every_prediction(echo):
    status, answer = http_client_post(echo, b"fire in the valley\n" * 5_000, chunked=True)
    assert status == 200 and len(json.loads(answer)["predictions"]) == 5_000


def test_silent_clients_are_disconnected_and_do_not_hold_the_threads():
    # 4 threads per worker: without a read timeout, 6 clients that announce 100 bytes and send
    # 10 would hold every thread for as long as they stay connected. The 2 request slots wait for
    # them (408 when they stay silent); the others are refused at once (503).
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
        statuses = []
        for sock in stalled:  # the server gives up on each, with a 408, or refuses it at once
            statuses.append(sock.recv(65536)[:12])
            sock.close()
        assert sorted(statuses) == [b"HTTP/1.1 408"] * 2 + [b"HTTP/1.1 503"] * 4, statuses
        assert server.ping(timeout=10).status_code == 200
        assert post(server, ["after the silent clients"], timeout=10).status_code == 200


def test_clients_that_connect_and_send_nothing_do_not_hold_ping_back():
    # gthread gave each new connection a thread for up to 5 s waiting for its first byte: 20 silent
    # connections on 4 threads made /ping wait 25 s. They now wait on the poller, not in a thread.
    with LocalServer("echo", {"SAGEBERT_SERVER_THREADS": "4"}) as server:
        server.wait_healthy()
        silent = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(20)]
        try:
            started = time.monotonic()
            assert server.ping(timeout=2).status_code == 200
            assert post(server, ["beside the silent clients"], timeout=2).status_code == 200
            assert time.monotonic() - started < 2
        finally:
            for sock in silent:
                sock.close()


def _trickle(port: int, head: bytes, limit: float = 20.0) -> tuple[bytes, float]:
    """A client that sends ``head`` at once, then one more byte every half second until the server
    answers: the answer's first bytes, and the seconds from the first byte to the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    with sock:
        started = time.monotonic()
        sock.sendall(head)
        sock.settimeout(0.5)  # the pace: a byte whenever half a second passes without an answer
        while time.monotonic() - started < limit:
            try:
                return sock.recv(65536), time.monotonic() - started
            except TimeoutError:
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")
    return b"", limit


TRICKLED_BODY = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
TRICKLED_HEADERS = b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Slow: "


@pytest.mark.parametrize("head", [TRICKLED_BODY, TRICKLED_HEADERS], ids=["body", "headers"])
def test_trickling_clients_get_a_408_at_the_deadline_and_never_hold_ping_back(head):
    # 4 threads, 2 of them request slots: 10 clients sending a byte every half second (the socket's
    # read timeout never fires) held every thread for as long as they kept sending, and /ping failed.
    env = {"SAGEBERT_SERVER_THREADS": "4", "SAGEBERT_REQUEST_READ_TIMEOUT": "3", "SAGEBERT_CLIENT_TIMEOUT": "30"}
    with LocalServer("echo", env) as server:
        server.wait_healthy()
        with ThreadPoolExecutor(10) as pool:
            tricklers = [pool.submit(_trickle, server.port, head) for _ in range(10)]
            while not all(t.done() for t in tricklers):
                started = time.monotonic()
                assert server.ping(timeout=2).status_code == 200
                assert time.monotonic() - started < 2
            answers = [t.result() for t in tricklers]
        timed_out = [seconds for answer, seconds in answers if answer.startswith(b"HTTP/1.1 408 ")]
        refused = [seconds for answer, seconds in answers if answer.startswith(b"HTTP/1.1 503 ")]
        assert len(timed_out) == 2 and len(refused) == 8, answers  # the slots held, the rest refused at once
        assert all(2.9 <= seconds <= 4.5 for seconds in timed_out), timed_out
        assert all(seconds < 2.5 for seconds in refused), refused
        assert all(b'"error"' in answer and b'"fix"' in answer for answer, _ in answers)
        assert post(server, ["after the trickling clients"], timeout=10).status_code == 200


def _raw(port: int, request: bytes) -> tuple[int, dict]:
    """Send ``request`` as bytes; the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "request_bytes, status, fragment",
    [
        (b"POST /invocations HTTP/1.1\r\nHost: x\r\nAccept: " + b"x/y," * 3000 + b"\r\n\r\n", 431, "Too Large"),
        (b"POST /invocations HTTP/1.1\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n", 400, "CONTENT-TYPE"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 414, "URI"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Bad Request"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "Bad Request"),
    ],
    ids=["header-too-large", "two-content-types", "long-uri", "negative-length", "tls-hello"],
)
def test_requests_gunicorn_refuses_get_a_json_reason_not_an_html_page(echo, request_bytes, status, fragment):
    got, body = _raw(echo.port, request_bytes)
    assert got == status and fragment in body["error"] and body["fix"]


def test_hostile_header_values_get_an_answer_never_a_500(echo):
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
    body = b'["a"]'
    attributes = b"X-Amzn-SageMaker-Custom-Attributes: output=logits;trace=\xff\xfe\r\nConnection: close\r\n"
    assert _raw(echo.port, head + attributes + b"\r\n" + body)[0] == 200  # latin-1 bytes are passed back
    for accept in (b"text/\xff\xfe", b"text/csv;q=nan, application/json;q=inf", b"*/*;q=1e999"):
        status, answer = _raw(echo.port, head + b"Accept: " + accept + b"\r\nConnection: close\r\n\r\n" + body)
        assert status in (200, 406), answer
    assert echo.ping().status_code == 200


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


def test_a_forward_pass_that_fails_on_one_request_fails_only_that_one_of_those_merged_with_it(tmp_path):
    import os

    gate = tmp_path / "hold"
    os.mkfifo(gate)
    good = [[f"good request {i}", f"its second text {i}"] for i in range(6)]
    # The server is the inner context: a failure kills it first, so no client waits out its timeout.
    # Room for all fourteen queued texts in one pass, whatever the defaults become.
    env = {"HOLD_FIFO": str(gate), "SAGEBERT_MICRO_BATCH_TEXTS": "64", "SAGEBERT_MICRO_BATCH_TOKENS": "4096"}
    with ThreadPoolExecutor(8) as pool, LocalServer("exploding", env) as server:
        server.wait_healthy()
        held = pool.submit(post, server, ["hold the model"], timeout=60)
        server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 1, 30, "the held request")
        marked = pool.submit(post, server, ["fine", "explode here"], timeout=60)
        answers = [pool.submit(post, server, texts, timeout=60) for texts in good]
        server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 8, 30, "all queued behind it")
        with open(gate, "wb"):  # the held pass goes on; the queued requests share the next one
            pass
        assert held.result().status_code == 200
        for texts, answer in zip(good, (a.result() for a in answers), strict=True):
            assert answer.status_code == 200, answer.text
            assert [p["probabilities"]["Real disaster"] for p in answer.json()["predictions"]] == [
                expected_probability(t) for t in texts
            ]
        failed = marked.result()
        assert failed.status_code == 500 and "log" in failed.json()["error"]
        merged = "exploding model: a forward pass of 14 text(s), marker True"  # the marked pair + 6 good pairs
        assert merged in server.logs(), server.logs()[-3000:]
        assert server.ping().status_code == 200
        assert post(server, ["after the failure"], timeout=30).status_code == 200


def test_a_stuck_forward_pass_gets_a_503_ping_answers_meanwhile_and_gunicorn_replaces_the_worker():
    # One worker: the stuck one must answer /ping itself until it says it is stuck. (/ping's 503 is
    # in test_serving_app too; here gunicorn kills the worker soon after, so it may not be seen.)
    with ThreadPoolExecutor(1) as pool, LocalServer("blocking", {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3"}) as server:
        server.wait_healthy()
        stuck = pool.submit(post, server, ["this will block"], timeout=60)
        server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 1, 30, "the request on the model")
        answered = pings_while_stuck(server.url, stuck)
        assert all(body["requests_in_flight"] == 1 for _, body in answered)
        assert max(seconds for seconds, _ in answered) > 1.5  # past the second after which the heartbeat stops
        response = stuck.result()
        assert response.status_code == 503 and "stuck" in response.json()["error"]
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
    # 8 s of work in flight: a grace period longer than the default, as SageMaker's 30 s allows.
    with LocalServer("slow", {"SLOW_SECONDS": "0.01", "SAGEBERT_STOP_GRACE": "20"}) as server:
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


def test_a_request_still_being_encoded_is_not_counted_in_flight_and_gets_a_reason_at_sigterm(tmp_path):
    # What /ping and the SIGTERM log count as in flight must be on the model's queue: those finish
    # (or get a 503 at the deadline). A request counted while its texts were still being encoded
    # was refused at once at SIGTERM, while the log said it would finish.
    import os
    import signal

    gate = tmp_path / "hold"
    os.mkfifo(gate)
    with ThreadPoolExecutor(1) as pool, LocalServer("gated-encoding", {"HOLD_FIFO": str(gate)}) as server:
        server.wait_healthy()
        encoding = pool.submit(post, server, ["hold while encoding"], timeout=60)
        with open(gate, "wb"):  # opened: the request is now in tokenize, waiting on the gate
            assert server.ping().json()["requests_in_flight"] == 0
            server.process.send_signal(signal.SIGTERM)
            server.wait_for(lambda: "request(s) in flight finish" in server.logs(), 30, "the shutdown's log line")
        answer = encoding.result()
        assert server.process.wait(60) == 0
        assert "shutting down; 0 request(s) in flight finish" in server.logs()
    assert answer.status_code == 503 and "shutting down" in answer.json()["error"]  # refused, with the reason


def test_sigterm_refuses_with_503_what_cannot_finish_in_the_grace_period():
    with LocalServer("slow", {"SLOW_SECONDS": "0.1", "SAGEBERT_STOP_GRACE": "5"}) as server:
        server.wait_healthy()
        with ThreadPoolExecutor(1) as pool:
            long = pool.submit(post, server, ["text"] * 600, timeout=60)  # 60 s of work
            server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 1, 30, "the request in flight")
            code = server.stop()
            answer = long.result()
        assert answer.status_code == 503 and "shutting down" in answer.json()["error"]
        assert code == 0
        assert "1 request(s) that could not finish in the grace period got a 503" in server.logs()


def test_with_the_default_grace_a_stop_ends_inside_dockers_10_s_whatever_is_in_flight():
    # `docker stop` kills after 10 s. The grace period was a hard-coded 25 s: a request longer
    # than 10 s was killed with the server (exit 137, no answer). 60 s of work is in flight here.
    with LocalServer("slow", {"SLOW_SECONDS": "0.1"}) as server:
        server.wait_healthy()
        with ThreadPoolExecutor(1) as pool:
            long = pool.submit(post, server, ["text"] * 600, timeout=60)
            server.wait_for(lambda: server.ping().json().get("requests_in_flight") == 1, 30, "the request in flight")
            started = time.monotonic()
            code = server.stop()
            took = time.monotonic() - started
            answer = long.result()
        assert code == 0 and took < 10, took
        assert answer.status_code == 503 and "shutting down" in answer.json()["error"]


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
