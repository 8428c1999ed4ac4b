"""The Flask app with the Flask test client and the tiny model."""

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sagebert.inference import model_fn
from sagebert.serving.app import ModelHolder, create_app
from sagebert.serving.settings import ServingSettings

SETTINGS = ServingSettings(model_dir=Path("/unused"))


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return model_fn(tiny_model_dir, precision="fp32")


def ready_holder(model):
    holder = ModelHolder(model=model)
    assert holder.warm_up()
    return holder


@pytest.fixture
def client(model):
    return create_app(ready_holder(model), SETTINGS).test_client()


def invoke(client, body, content_type="application/json", **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/invocations", data=data, headers={"Content-Type": content_type, **headers})


# ---- /ping ----------------------------------------------------------------------------------------


def test_ping_is_503_while_loading_then_200_once_loaded_and_warmed(model):
    release = threading.Event()

    def slow_loader():
        release.wait(10)
        return model

    holder = ModelHolder(loader=slow_loader).load_in_background()
    client = create_app(holder, SETTINGS).test_client()
    response = client.get("/ping")
    assert response.status_code == 503 and response.json["status"] == "loading"
    assert invoke(client, "fire").status_code == 503
    release.set()
    for _ in range(100):
        if holder.model is not None:
            break
        threading.Event().wait(0.05)
    assert client.get("/ping").status_code == 503  # loaded, not yet warmed up in this process
    assert holder.warm_up()
    assert client.get("/ping").status_code == 200


def test_ping_is_503_with_the_reason_when_loading_failed(tmp_path):
    settings = replace(SETTINGS, model_dir=tmp_path)
    holder = ModelHolder.from_model_dir(tmp_path, settings).load()
    client = create_app(holder, settings).test_client()
    response = client.get("/ping")
    assert response.status_code == 503 and "config.json is missing" in response.json["reason"]
    response = invoke(client, "fire")
    assert response.status_code == 503 and "not ready" in response.json["error"]


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
        ("text,id\none,1\ntwo,2\n", "text/csv", 2),
    ],
)
def test_every_content_type_gets_one_prediction_per_text(client, body, content_type, count):
    response = invoke(client, body, content_type)
    assert response.status_code == 200, response.json
    predictions = response.json["predictions"]
    assert len(predictions) == count
    for p in predictions:
        assert p["label"] in ("Not a disaster", "Real disaster") and p["label_id"] in (0, 1)
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["probabilities"][p["label"]] == max(p["probabilities"].values())


def test_accept_types(client):
    lines = invoke(client, ["a", "b"], Accept="application/jsonlines")
    assert lines.content_type == "application/jsonlines"
    assert [json.loads(line)["label_id"] in (0, 1) for line in lines.data.decode().splitlines()] == [True, True]
    csv = invoke(client, ["a", "b"], Accept="text/csv")
    assert csv.content_type.startswith("text/csv") and len(csv.data.decode().splitlines()) == 2
    assert invoke(client, ["a"], Accept="*/*").content_type == "application/json"


def test_predictions_do_not_depend_on_batching_or_order(client):
    texts = ["short", "a much longer text about a flood that destroyed the bridge", "mid length text", "x"]
    together = invoke(client, texts).json["predictions"]
    alone = [invoke(client, [t]).json["predictions"][0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert a["label"] == b["label"]
        for name in a["probabilities"]:
            assert a["probabilities"][name] == pytest.approx(b["probabilities"][name], abs=1e-4)


def test_long_texts_are_truncated_and_flagged(client):
    long_text = " ".join(["flood"] * 200)  # the tiny model's max_length is 32 tokens
    predictions = invoke(client, [long_text, "short"]).json["predictions"]
    assert [p["truncated"] for p in predictions] == [True, False]


def test_batch_transform_multi_record_keeps_one_output_per_record_in_order(client):
    records = [f"record number {i} " + "word " * (i % 7) for i in range(50)]
    jsonl = "".join(json.dumps(r) + "\n" for r in records)
    out = invoke(client, jsonl, "application/jsonlines", Accept="application/jsonlines").data.decode().splitlines()
    single = [invoke(client, r, "text/plain").json["predictions"][0]["label"] for r in records]
    assert [json.loads(line)["label"] for line in out] == single
    csv_out = invoke(client, "\n".join(records) + "\n", "text/csv", Accept="text/csv").data.decode().splitlines()
    assert [row.split(",")[0] for row in csv_out] == single


def test_execution_parameters_for_batch_transform(client):
    response = client.get("/execution-parameters")
    assert response.json == {"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_logits_for_reference_clients_per_request_and_per_endpoint(model):
    client = create_app(ready_holder(model), SETTINGS).test_client()
    response = invoke(client, ["a", "b"], **{"X-Amzn-SageMaker-Custom-Attributes": "output=logits"})
    logits = response.json
    assert len(logits) == 2 and all(len(row) == 2 for row in logits)
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "output=logits"
    endpoint_default = create_app(ready_holder(model), replace(SETTINGS, output_format="logits")).test_client()
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
    client = create_app(ready_holder(model), replace(SETTINGS, max_payload_mb=0.001)).test_client()
    response = invoke(client, ["x" * 2000])
    assert response.status_code == 413 and "limit of 0.001 MB" in response.json["error"]


def test_too_many_texts_is_413(model):
    client = create_app(ready_holder(model), replace(SETTINGS, max_texts=3)).test_client()
    assert invoke(client, ["a"] * 4).status_code == 413


def test_wrong_method_and_path_are_json(client):
    assert client.get("/invocations").status_code == 405
    response = client.get("/nothing-here")
    assert response.status_code == 404 and "Not Found" in response.json["error"]


def test_an_internal_error_is_500_without_traceback_and_the_server_keeps_serving(model):
    class Flaky:
        label_names = model.label_names

        def predict(self, texts):
            if "boom" in texts:
                raise RuntimeError("secret internal detail")
            return model.predict(texts)

    holder = ModelHolder(model=Flaky())
    holder.warm_up()
    client = create_app(holder, SETTINGS).test_client()
    response = invoke(client, "boom", "text/plain")
    assert response.status_code == 500
    assert "secret" not in response.data.decode() and "Traceback" not in response.data.decode()
    assert client.get("/ping").status_code == 200
    assert invoke(client, "fine", "text/plain").status_code == 200


def test_settings_from_the_environment():
    settings = ServingSettings.from_env(
        {
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
        }
    )
    assert (settings.workers, settings.port, settings.default_accept, settings.timeout) == (3, 9090, "text/csv", 30)
    assert settings.max_concurrent_transforms == 5  # 5 x 20 MB stays within batch transform's 100 MB
    from sagebert.errors import SagebertError

    with pytest.raises(SagebertError, match="SAGEMAKER_MODEL_SERVER_WORKERS"):
        ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"})
