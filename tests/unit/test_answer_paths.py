"""Both servers answer through one path: the Flask app and the multi-model-server handler give
byte-identical bodies, statuses and content types for the same requests, good and bad."""

from pathlib import Path

import pytest

from sagebert.serving.app import ModelHolder, create_app
from sagebert.serving.inference import model_fn
from sagebert.serving.settings import ServingSettings

SETTINGS = ServingSettings(model_dir=Path("/unused"), max_texts=3)
LOGITS = {"X-Amzn-SageMaker-Custom-Attributes": "output=logits"}


class Switchable:
    """The model, until ``broken`` is set: then every forward pass fails (an internal error)."""

    def __init__(self, model):
        self.model, self.broken = model, False
        self.label_names, self.batched = model.label_names, model.batched

    def tokenize(self, texts):
        return self.model.tokenize(texts)

    def forward(self, items):
        if self.broken:
            raise RuntimeError("the forward pass failed")
        return self.model.forward(items)

    def predict(self, texts):
        return self.forward(self.tokenize(texts))


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return Switchable(model_fn(tiny_model_dir, precision="fp32"))


@pytest.fixture
def flask_call(model):
    holder = ModelHolder(model=model, settings=SETTINGS)
    assert holder.warm_up()
    client = create_app(holder, SETTINGS, metrics=None).test_client()

    def call(body: bytes, content_type: str, headers: dict) -> tuple[int, bytes, str]:
        response = client.post("/invocations", data=body, headers={"Content-Type": content_type, **headers})
        return response.status_code, response.data, response.content_type

    return call


@pytest.fixture
def mms_call(model):
    from mms.context import Context, RequestProcessor

    from sagebert.serving.mms_handler_service import HandlerService

    service = HandlerService(SETTINGS)
    service.model = model  # what initialize loads: the same model object as the Flask app's

    def call(body: bytes, content_type: str, headers: dict) -> tuple[int, bytes, str]:
        context = Context("m", "/unused", None, 1, None, "1.1.11")
        context.request_processor = [RequestProcessor({"Content-Type": content_type, **headers})]
        out = service.handle([{"body": body}], context)
        status = context.request_processor[0].get_response_status_code() or 200
        return status, out[0], context.get_response_content_type(0)

    return call


REQUESTS = {
    "json list": (b'["flood in town", "nice day"]', "application/json", {}),
    "json inputs": (b'{"inputs": "flood in town"}', "application/json", {}),
    "jsonlines to csv": (b'"a"\n"b"\n', "application/jsonlines", {"Accept": "text/csv"}),
    "csv to jsonlines": (b"a\nb\n", "text/csv", {"Accept": "application/jsonlines"}),
    "plain text": (b"one whole text\nstill the same text", "text/plain", {}),
    "logits": (b'"a"', "application/json", LOGITS),
    "long text truncated": (("word " * 2000).encode(), "text/plain", {}),
    "broken json": (b"[1,", "application/json", {}),
    "not utf-8": (b"\xff\xfe", "application/json", {}),
    "empty body": (b"", "application/json", {}),
    "unknown content type": (b"<a/>", "application/xml", {}),
    "unknown accept": (b'"x"', "application/json", {"Accept": "application/xml"}),
    "unknown output format": (b'"x"', "application/json", {"X-Amzn-SageMaker-Custom-Attributes": "output=xml"}),
    "too many texts": (b'["a", "b", "c", "d"]', "application/json", {}),
}


@pytest.mark.parametrize("request_", REQUESTS.values(), ids=REQUESTS.keys())
def test_both_servers_answer_a_request_with_the_same_bytes(flask_call, mms_call, request_):
    flask_answer, mms_answer = flask_call(*request_), mms_call(*request_)
    assert flask_answer == mms_answer
    assert flask_answer[2] in ("application/json", "application/jsonlines", "text/csv")


def test_both_servers_cover_good_and_bad_requests(flask_call):
    statuses = {flask_call(*request_)[0] for request_ in REQUESTS.values()}
    assert statuses == {200, 400, 406, 413, 415}


def test_an_internal_error_has_the_same_body_from_both_servers(flask_call, mms_call, model):
    model.broken = True
    try:
        flask_answer = flask_call(b'"a"', "application/json", {})
        mms_answer = mms_call(b'"a"', "application/json", {})
    finally:
        model.broken = False
    assert flask_answer == mms_answer and flask_answer[0] == 500
    assert b"Traceback" not in flask_answer[1] and b"forward pass failed" not in flask_answer[1]


def test_the_body_is_freed_before_the_forward_pass(model):
    from sagebert.codecs import Predictions
    from sagebert.serving.answer import answer

    freed = []

    class Body(bytes):
        def __del__(self):
            freed.append(True)

    def predict(texts):
        assert freed, "the request body is still held during the forward pass"
        return Predictions(tuple(model.predict(texts)), tuple(model.label_names))

    content, _ = answer(
        Body(b'["a"]'), {"Content-Type": "application/json"}.get, SETTINGS, predict
    )  # no name holds the body: like /invocations
    assert len(content) > 0 and freed
