"""The multi-model front against a fake multi-model-server over real HTTP, and the MMS handler
service with MMS's own Context."""

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask, Response, request
from werkzeug.serving import make_server

from sagebert.serving import mme_front
from sagebert.serving.mme_front import Backend, create_front_app
from sagebert.serving.mms import internal_port, model_server_environment
from sagebert.serving.settings import ServingSettings

SETTINGS = ServingSettings(model_dir=Path("/unused"))


class FakeMMS:
    """Just enough of multi-model-server's HTTP API: models, their workers, register, invoke; it
    records every request it gets."""

    def __init__(self):
        self.models: dict[str, list[str]] = {}  # name -> worker statuses
        self.ping_status = 200
        self.ping_body = "Healthy"
        self.requests: list[tuple[str, str, bytes]] = []  # method, full path with query, body
        app = Flask("fake-mms")

        @app.before_request
        def record():
            self.requests.append((request.method, request.full_path.rstrip("?"), request.get_data()))

        @app.get("/ping")
        def ping():
            return Response(json.dumps({"status": self.ping_body}), self.ping_status, mimetype="application/json")

        @app.get("/models")
        def list_models():
            return {"models": [{"modelName": n, "modelUrl": f"/opt/ml/models/{n}/model"} for n in self.models]}

        @app.post("/models")
        def register():
            name = request.get_json()["model_name"]
            if name in self.models:
                return Response(json.dumps({"code": 409, "message": "Model already registered"}), 409)
            self.models[name] = ["READY"]
            return {"status": "Workers scaled"}

        @app.get("/models/<name>")
        def describe(name):
            if name not in self.models:
                return Response(json.dumps({"code": 404}), 404)
            return Response(
                json.dumps([{"modelName": name, "workers": [{"status": s} for s in self.models[name]]}]),
                200,
                mimetype="application/json",
            )

        @app.post("/models/<name>/invoke")
        def invoke(name):
            if name not in self.models:
                return Response(json.dumps({"code": 404, "message": "Model not found"}), 404)
            return Response(
                json.dumps(
                    {"model": name, "body": request.get_data().decode(), "accept": request.headers.get("Accept")}
                ),
                200,
                headers={
                    "Content-Type": "application/json",
                    "X-Amzn-SageMaker-Custom-Attributes": "x=1",
                    "X-Internal": "not for clients",
                },
            )

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake():
    mms = FakeMMS()
    yield mms
    mms.server.shutdown()


@pytest.fixture
def models_dir(tmp_path):
    return tmp_path / "models"


@pytest.fixture
def client(fake, models_dir):
    return create_front_app(
        Backend(fake.url, timeout=5, pool_size=4), replace(SETTINGS, models_dir=models_dir)
    ).test_client()


def model_dir(models_dir, name="m"):
    directory = models_dir / name / "model"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text("{}")
    (directory / "model.safetensors").write_bytes(b"0" * 1000)
    return directory


def load(client, name, url, **extra):
    return client.post("/models", json={"model_name": name, "url": str(url), **extra})


# ---- /ping -------------------------------------------------------------------------------------------


def test_ping_is_healthy_with_no_models_and_with_working_ones(client, fake, models_dir):
    assert client.get("/ping").status_code == 200
    assert load(client, "a", model_dir(models_dir)).status_code == 200
    assert client.get("/ping").status_code == 200


def test_ping_costs_one_call_to_mms_however_many_models_are_loaded(client, fake, models_dir):
    for i in range(40):
        fake.models[f"m{i}"] = ["READY"]
    fake.requests.clear()
    assert client.get("/ping").status_code == 200
    assert [(m, p) for m, p, _ in fake.requests] == [("GET", "/ping")]


@pytest.mark.parametrize(
    "mms_says, status",
    [
        ("Healthy", 200),
        ("Partial Healthy", 200),  # one model's dead workers do not take the instance out of service
        ("Unhealthy", 503),  # not one model worker runs
        ("", 503),
    ],
)
def test_ping_follows_what_mms_says_in_its_body_not_its_status(client, fake, mms_says, status):
    fake.models["a"] = ["READY"]
    fake.ping_body = mms_says  # MMS answers HTTP 200 in every state
    response = client.get("/ping")
    assert response.status_code == status and response.json["reason"]


def test_a_model_still_loading_does_not_make_the_container_unhealthy(fake):
    fake.ping_body = "Unhealthy"  # what MMS says while the only model's worker starts
    backend = Backend(fake.url, 5, 4)
    app = create_front_app(backend, SETTINGS)
    assert app.test_client().get("/ping").status_code == 503
    backend.loading.add("b")
    assert app.test_client().get("/ping").status_code == 200


def test_ping_is_503_when_mms_does_not_answer(fake):
    fake.server.shutdown()
    fake.server.server_close()
    client = create_front_app(Backend(fake.url, 5, 4), SETTINGS).test_client()
    response = client.get("/ping")
    assert response.status_code == 503 and "does not answer" in response.json["reason"]


# ---- the contract, passed through -----------------------------------------------------------------------


def test_the_contract_passes_through_with_its_status_codes(client, fake, models_dir):
    url = model_dir(models_dir)
    assert load(client, "a", url).status_code == 200
    assert load(client, "a", url).status_code == 409
    invoked = client.post(
        "/models/a/invoke", data='["hi"]', headers={"Content-Type": "application/json", "Accept": "text/csv"}
    )
    assert invoked.status_code == 200 and invoked.json == {"model": "a", "body": '["hi"]', "accept": "text/csv"}
    assert invoked.headers["X-Amzn-SageMaker-Custom-Attributes"] == "x=1" and "X-Internal" not in invoked.headers
    assert client.get("/models").json["models"][0]["modelName"] == "a"
    assert client.get("/models/zzz").status_code == 404
    assert client.post("/models/zzz/invoke", data="x").status_code == 404


def test_mms_gets_only_model_name_and_url_whatever_the_request_adds(client, fake, models_dir):
    url = model_dir(models_dir, "qs")
    fake.requests.clear()
    response = client.post(
        "/models?model_name=other&url=/tmp&initial_workers=4&synchronous=false",
        json={"model_name": "qs", "url": str(url), "initial_workers": 4, "batch_size": 8},
    )
    assert response.status_code == 200
    assert [(m, p) for m, p, _ in fake.requests] == [("POST", "/models")]
    assert json.loads(fake.requests[0][2]) == {"model_name": "qs", "url": str(url)}
    assert set(fake.models) == {"qs"}


def test_query_strings_are_dropped_except_the_listings_pagination(client, fake, models_dir):
    fake.models["a"] = ["READY"]
    fake.requests.clear()
    client.post("/models/a/invoke?url=/etc", data="x")
    client.get("/models/a?x=1")
    client.delete("/models/a?y=2")
    client.get("/models?limit=10&next_page_token=abc&url=/etc")
    paths = [p for _, p, _ in fake.requests]
    assert paths == ["/models/a/invoke", "/models/a", "/models/a", "/models?limit=10&next_page_token=abc"]


@pytest.mark.parametrize(
    "name",
    ["../../etc", "a/b", "..", ".hidden", "", "x" * 300, 7, None, "a b", "a\u2028b", "a\x00", "/etc", "ａ", "a\nb"],
)
def test_a_model_name_that_is_not_a_plain_name_is_400(client, fake, models_dir, name):
    response = client.post("/models", json={"model_name": name, "url": str(model_dir(models_dir, "good"))})
    assert response.status_code == 400 and "model_name must be" in response.json["error"]
    assert fake.models == {} and client.get("/ping").status_code == 200


@pytest.mark.parametrize("url", ["/etc", "/root", "/proc/self", "/tmp", "{models}/../elsewhere"])
def test_a_url_outside_the_models_directory_is_400_and_lists_nothing(client, fake, models_dir, url):
    model_dir(models_dir, "inside")
    response = load(client, "m", url.format(models=models_dir))
    assert response.status_code == 400 and "is not under" in response.json["error"]
    assert "found" not in response.json["error"] and fake.models == {}


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("{models}/good/model\x00", "printable characters"),
        ("{models}/\x00/../good/model", "printable characters"),
        ("{models}/" + "a/" * 2100 + "model", "at most 4096"),
        ("{models}/good/model\u2028", "printable characters"),
        ("{models}/" + "x" * 300 + "/model", "cannot be read (File name too long)"),
    ],
)
def test_a_hostile_url_is_a_400_with_a_reason_not_a_500(client, fake, models_dir, url, fragment):
    # A NUL raised ValueError and a 300-character name ENAMETOOLONG in the path check: both were 500s.
    model_dir(models_dir, "good")
    response = load(client, "m", url.format(models=models_dir))
    assert response.status_code == 400 and fragment in response.json["error"] and response.json["fix"]
    assert len(response.data) < 1000 and fake.models == {} and client.get("/ping").status_code == 200


def test_a_symlink_out_of_the_models_directory_is_refused(client, fake, models_dir, tmp_path):
    outside = model_dir(tmp_path / "outside", "stolen")
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / "link").symlink_to(outside.parent)
    response = load(client, "m", models_dir / "link" / "model")
    assert response.status_code == 400 and "is not under" in response.json["error"] and fake.models == {}


def test_posts_beyond_the_fronts_slots_get_a_503_at_once_and_ping_still_answers(fake, models_dir):
    from sagebert.serving.app import RequestSlots

    slots = RequestSlots(1)
    front = create_front_app(Backend(fake.url, timeout=5, pool_size=4), replace(SETTINGS, models_dir=models_dir), slots)
    client = front.test_client()
    assert slots.try_take()  # a slow sender holds the only slot
    refused = client.post("/invocations", data=b"[]", headers={"X-Amzn-SageMaker-Target-Model": "a"})
    assert refused.status_code == 503 and "being read" in refused.json["error"]
    assert refused.headers["Connection"] == "close" and fake.requests == []
    assert client.get("/ping").status_code == 200
    slots.release()
    assert client.post("/models/a/invoke", data=b"x").status_code == 404  # passed through: a slot was free
    assert slots.try_take()  # and given back after the request


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d.mkdir(parents=True), (d / "notes.txt").write_text("x")), "config.json is missing."),
        (lambda d: (d.mkdir(parents=True), (d / "config.json").write_text("{}")), "no weights file"),
        (
            lambda d: (
                d.mkdir(parents=True),
                (d / "config.json").write_text("{"),
                (d / "model.safetensors").write_bytes(b"0"),
            ),
            "not valid JSON",
        ),
    ],
)
def test_a_bad_model_directory_is_a_clear_400_and_never_reaches_mms(client, fake, models_dir, setup, fragment):
    directory = models_dir / "bad" / "model"
    setup(directory)
    response = load(client, "bad", directory)
    assert response.status_code == 400 and fragment in response.json["error"] and response.json["fix"]
    assert "notes.txt" not in response.data.decode()  # what a directory holds is never listed
    assert "bad" not in fake.models and client.get("/ping").status_code == 200


def test_a_malformed_load_request_is_400(client):
    assert client.post("/models", data="nope").status_code == 400


def test_a_model_that_would_not_fit_in_memory_is_507_whatever_initial_workers_says(
    client, fake, models_dir, monkeypatch
):
    monkeypatch.setattr(mme_front, "memory_available_mb", lambda: 100.0)
    response = load(client, "big", model_dir(models_dir), initial_workers=0)
    assert response.status_code == 507 and "Not enough memory to load big" in response.json["error"]
    assert "big" not in fake.models


def test_payload_limit_is_413(fake):
    client = create_front_app(Backend(fake.url, 5, 4), replace(SETTINGS, max_payload_mb=0.001)).test_client()
    assert client.post("/models/a/invoke", data="x" * 5000).status_code == 413


def test_mms_gets_a_loopback_port_of_its_own():
    assert internal_port(8080, None) == 8081
    assert internal_port(8081, None) == 8082
    assert internal_port(8080, (21000, 21999)) == 21000


def test_mms_listens_on_loopback_only_and_gets_the_settings_decided_here():
    settings = replace(SETTINGS, workers=3, timeout=120, max_payload_mb=2.5)
    env = model_server_environment(settings, 8081, {"SAGEMAKER_MODEL_SERVER_WORKERS": "", "PATH": "/bin"})
    assert env["MMS_INFERENCE_ADDRESS"] == env["MMS_MANAGEMENT_ADDRESS"] == "http://127.0.0.1:8081"
    assert (env["SAGEMAKER_MODEL_SERVER_WORKERS"], env["SAGEMAKER_MODEL_SERVER_TIMEOUT"]) == ("3", "120")
    assert env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "3" and env["PATH"] == "/bin"


# ---- the handler service inside MMS ---------------------------------------------------------------


def mms_call(service, body, content_type="application/json", **headers):
    """One request the way MMS makes it: the model's one Context, with this request's processor."""
    from mms.context import RequestProcessor

    context = service.context
    context.request_processor = [RequestProcessor({"Content-Type": content_type, **headers})]
    out = service.handle([{"body": body}], context)
    status = context.request_processor[0].get_response_status_code() or 200
    return status, out[0], context.get_response_content_type(0)


@pytest.fixture(scope="module")
def service(tiny_model_dir):
    from mms.context import Context

    from sagebert.serving.mms_handler_service import HandlerService

    handler = HandlerService()
    handler.context = Context("m", str(tiny_model_dir), None, 1, None, "1.1.11")
    handler.initialize(handler.context)
    return handler


def test_handler_service_module_defines_exactly_one_class_as_mms_requires():
    from mms.model_loader import ModelLoader

    import sagebert.serving.mms_handler_service as module

    assert len(ModelLoader.list_model_services(module)) == 1


def test_mms_handler_answers_like_the_flask_server(service, tiny_model_dir):
    from sagebert.serving.inference import model_fn

    status, body, content_type = mms_call(service, b'{"inputs": ["flood in town", "nice day"]}')
    assert status == 200 and content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    expected = model_fn(tiny_model_dir).predict(["flood in town", "nice day"])
    assert [p["probabilities"] for p in predictions] == [
        {n: round(p, 6) for n, p in zip(("Not a disaster", "Real disaster"), e.probabilities, strict=True)}
        for e in expected
    ]


def test_mms_handler_formats_and_custom_attributes(service):
    status, body, content_type = mms_call(service, b"a\nb\n", "text/csv", Accept="text/csv")
    assert status == 200 and content_type == "text/csv" and len(body.decode().splitlines()) == 2
    status, body, _ = mms_call(service, b'"a"', **{"X-Amzn-SageMaker-Custom-Attributes": "output=logits"})
    assert status == 200 and len(json.loads(body)[0]) == 2


@pytest.mark.parametrize(
    "body, content_type, headers, status",
    [
        (b"[1,", "application/json", {}, 400),
        (b'["\\ud800"]', "application/json", {}, 400),
        (b"\xff\xfe", "application/json", {}, 400),
        (b"[" * 50_000, "application/json", {}, 400),
        (b"x", "application/xml", {}, 415),
        (b'"x"', "application/json", {"Accept": "application/xml"}, 406),
    ],
)
def test_mms_handler_errors_are_json_without_traceback(service, body, content_type, headers, status):
    code, answer, content = mms_call(service, body, content_type, **headers)
    assert code == status and content == "application/json"
    assert json.loads(answer)["error"] and b"Traceback" not in answer
