"""The Flask app with the Flask test client and the tiny model (the real server over sockets is in
test_serving_server.py)."""

import io
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sagebert.serving.app import ModelHolder, create_app
from sagebert.serving.inference import model_fn
from sagebert.serving.settings import ServingSettings

SETTINGS = ServingSettings(model_dir=Path("/unused"))


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return model_fn(tiny_model_dir, precision="fp32")


def ready_holder(model, settings=SETTINGS):
    holder = ModelHolder(model=model, settings=settings)
    assert holder.warm_up()
    return holder


def app_client(model, settings=SETTINGS):
    return create_app(ready_holder(model, settings), settings).test_client()


@pytest.fixture
def client(model):
    return app_client(model)


def invoke(client, body, content_type="application/json", **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/invocations", data=data, headers={"Content-Type": content_type, **headers})


# ---- /ping ----------------------------------------------------------------------------------------


def test_ping_is_503_with_the_reason_when_loading_failed(tmp_path):
    settings = replace(SETTINGS, model_dir=tmp_path)
    holder = ModelHolder.from_model_dir(tmp_path, settings).load()
    client = create_app(holder, settings).test_client()
    response = client.get("/ping")
    assert response.status_code == 503 and "config.json is missing" in response.json["reason"]
    response = invoke(client, "fire")
    assert response.status_code == 503 and "not ready" in response.json["error"]


def test_ping_is_503_until_this_process_has_warmed_up(model):
    holder = ModelHolder(model=model, settings=SETTINGS)
    client = create_app(holder, SETTINGS).test_client()
    assert client.get("/ping").status_code == 503
    assert holder.warm_up()
    assert client.get("/ping").json == {"status": "healthy", "requests_in_flight": 0}


class Blocking:
    """The tiny model, with a forward pass that blocks on texts holding "block" until released."""

    def __init__(self, model):
        self.model, self.label_names, self.release = model, model.label_names, threading.Event()

    def tokenize(self, texts):
        return list(texts)

    def forward(self, texts):
        if any("block" in t for t in texts):
            self.release.wait(30)
        return self.model.predict(texts)


def test_ping_turns_503_once_a_forward_pass_runs_past_the_timeout(model):
    settings = replace(SETTINGS, timeout=1)
    blocking = Blocking(model)
    holder = ready_holder(blocking, settings)
    client = create_app(holder, settings).test_client()
    answers = {}
    stuck = threading.Thread(target=lambda: answers.update(stuck=invoke(client, ["block"])))
    stuck.start()
    statuses, deadline = [], time.monotonic() + 30  # a bound on a slow machine, not an expected time
    while time.monotonic() < deadline:
        statuses.append(client.get("/ping").status_code)
        if statuses[-1] == 503:
            break
        threading.Event().wait(0.05)
    assert statuses[-1] == 503 and "has run for" in client.get("/ping").json["reason"]
    stuck.join(10)
    assert answers["stuck"].status_code == 503 and "stuck" in answers["stuck"].json["error"]
    blocking.release.set()


# ---- /invocations: formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, content_type, count",
    [
        ("Just happened a terrible car crash", "text/plain", 1),
        ('"one"', "application/json", 1),
        (["one", "two", "three"], "application/json", 3),
        ({"inputs": "one"}, "application/json", 1),
        ({"inputs": ["one", "two"]}, "application/json", 2),
        ('"one"\n{"inputs": "two"}\n', "application/jsonlines", 2),
        ("one\ntwo, with comma\n", "text/csv", 2),
        ("text\none\n", "text/csv", 2),  # no header unless declared: "text" is a record
        ("text,id\none,1\ntwo,2\n", "text/csv; header=present", 2),
        ("one\n   \n\nfour\n", "text/csv", 4),  # blank records are texts too
    ],
)
def test_every_content_type_gets_one_prediction_per_record(client, body, content_type, count):
    response = invoke(client, body, content_type)
    assert response.status_code == 200, response.json
    predictions = response.json["predictions"]
    assert len(predictions) == count
    for p in predictions:
        assert p["label"] in ("Not a disaster", "Real disaster") and p["label_id"] in (0, 1)
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["probabilities"][p["label"]] == max(p["probabilities"].values())


def test_plain_text_is_one_record_per_line_in_batch_transform(model):
    client = app_client(model, replace(SETTINGS, batch_transform=True))
    assert len(invoke(client, "one\ntwo\n\nfour\n", "text/plain").json["predictions"]) == 4


def test_accept_types(client):
    lines = invoke(client, ["a", "b"], Accept="application/jsonlines")
    assert lines.content_type == "application/jsonlines"
    assert [json.loads(line)["label_id"] in (0, 1) for line in lines.data.decode().splitlines()] == [True, True]
    csv = invoke(client, ["a", "b"], Accept="text/csv")
    assert csv.content_type.startswith("text/csv") and len(csv.data.decode().splitlines()) == 2
    assert invoke(client, ["a"], Accept="*/*").content_type == "application/json"


def test_long_texts_are_truncated_and_flagged(client):
    long_text = " ".join(["flood"] * 200)  # the tiny model's max_length is 32 tokens
    predictions = invoke(client, [long_text, "short"]).json["predictions"]
    assert [p["truncated"] for p in predictions] == [True, False]


def test_execution_parameters_for_batch_transform(client, model):
    response = client.get("/execution-parameters")
    assert response.json == {"MaxConcurrentTransforms": 4, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
    big = app_client(model, replace(SETTINGS, max_payload_mb=1024)).get("/execution-parameters")
    assert big.json["MaxPayloadInMB"] == 100  # the most batch transform accepts


def test_logits_for_reference_clients_per_request_and_per_endpoint(model):
    client = app_client(model)
    response = invoke(client, ["a", "b"], **{"X-Amzn-SageMaker-Custom-Attributes": "output=logits"})
    logits = response.json
    assert len(logits) == 2 and all(len(row) == 2 for row in logits)
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "output=logits"
    endpoint_default = app_client(model, replace(SETTINGS, output_format="logits"))
    assert isinstance(invoke(endpoint_default, ["a"]).json, list)


def test_custom_attributes_are_passed_through(client):
    response = invoke(client, "a", "text/plain", **{"X-Amzn-SageMaker-Custom-Attributes": "trace-id=42"})
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace-id=42"


# ---- /invocations: errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, content_type, headers, status",
    [
        ("[1, 2", "application/json", {}, 400),
        ([1, 2], "application/json", {}, 400),
        ({"text": "a"}, "application/json", {}, 400),
        ("", "application/json", {}, 400),
        ([], "application/json", {}, 400),
        ("[" * 100_000, "application/json", {}, 400),
        ('["\\ud800"]', "application/json", {}, 400),
        ('"x" * 3\n"broken\n', "application/jsonlines", {}, 400),
        ("a," + "b" * 200_000 + '\n"open', "text/csv", {}, 400),
        ("<a/>", "application/xml", {}, 415),
        ("a", "text/plain", {"Accept": "application/xml"}, 406),
        ("a", "text/plain", {"X-Amzn-SageMaker-Custom-Attributes": "output=xml"}, 400),
    ],
)
def test_client_mistakes_are_4xx_with_a_json_reason(client, body, content_type, headers, status):
    response = invoke(client, body, content_type, **headers)
    assert response.status_code == status
    assert response.json["error"] and response.content_type == "application/json"


def test_body_over_the_limit_is_413(model):
    client = app_client(model, replace(SETTINGS, max_payload_mb=0.001))
    response = invoke(client, ["x" * 2000])
    assert response.status_code == 413 and "limit of 0.001 MB" in response.json["error"]


def test_a_chunked_body_over_the_limit_is_413_and_under_it_is_read_whole(model):
    client = app_client(model, replace(SETTINGS, max_payload_mb=0.001))

    def chunked(body):
        return client.post(
            "/invocations",
            input_stream=io.BytesIO(body),
            headers={"Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    assert chunked(b"fire\n" * 300).status_code == 413  # 1,500 bytes, limit 1,048
    response = chunked(b"fire\n" * 200)
    assert response.status_code == 200 and len(response.json["predictions"]) == 200


def test_a_body_shorter_than_its_content_length_is_400(client):
    response = client.post(
        "/invocations",
        input_stream=io.BytesIO(b'["short"]'),
        headers={"Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": "100"},
    )
    assert response.status_code == 400 and "ended after 9 of the 100 bytes" in response.json["error"]


def test_too_many_texts_is_413(model):
    assert invoke(app_client(model, replace(SETTINGS, max_texts=3)), ["a"] * 4).status_code == 413


def test_wrong_method_and_path_are_json(client):
    assert client.get("/invocations").status_code == 405
    response = client.get("/nothing-here")
    assert response.status_code == 404 and "Not Found" in response.json["error"]


class Flaky:
    """The tiny model, with a forward pass that fails on "boom"."""

    def __init__(self, model):
        self.model, self.label_names = model, model.label_names

    def tokenize(self, texts):
        return list(texts)

    def forward(self, texts):
        if "boom" in texts:
            raise RuntimeError("secret internal detail")
        return self.model.predict(texts)


def test_an_internal_error_is_500_without_traceback_and_the_server_keeps_serving(model):
    client = create_app(ready_holder(Flaky(model)), SETTINGS).test_client()
    response = invoke(client, "boom", "text/plain")
    assert response.status_code == 500
    assert "secret" not in response.data.decode() and "Traceback" not in response.data.decode()
    assert client.get("/ping").status_code == 200
    assert invoke(client, "fine", "text/plain").status_code == 200
