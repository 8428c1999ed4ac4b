import json

import pytest

from sagebert import codecs
from sagebert.codecs import Prediction, Predictions, decode, encode, negotiate_accept, output_format
from sagebert.errors import RequestError


@pytest.mark.parametrize(
    "body, content_type, texts",
    [
        ('"one text"', "application/json", ["one text"]),
        ('["a", "b"]', "application/json; charset=utf-8", ["a", "b"]),
        ('{"inputs": "a"}', "application/json", ["a"]),
        ('{"inputs": ["a", "b, c"]}', "Application/JSON", ["a", "b, c"]),
        ('"a"\n{"inputs": "b"}\n\n{"text": "c"}\n', "application/jsonlines", ["a", "b", "c"]),
        ('"a"\n"b"\n', "application/x-jsonlines", ["a", "b"]),
        (
            "fire at the mall\nI love fruits, apples and pears\n",
            "text/csv",
            ["fire at the mall", "I love fruits, apples and pears"],
        ),
        ('"quoted, with comma"\nplain\n', "text/csv", ["quoted, with comma", "plain"]),
        ('id,text\n1,"fire, smoke"\n2,calm\n', "text/csv", ["fire, smoke", "calm"]),
        ("text\nonly column\n", "text/csv", ["only column"]),
        ("Just one text, with a comma\n", "text/plain", ["Just one text, with a comma"]),
    ],
)
def test_decode_every_content_type(body, content_type, texts):
    assert decode(body.encode(), content_type) == texts


@pytest.mark.parametrize(
    "body, content_type, status, fragment",
    [
        (b"[1, 2", "application/json", 400, "not valid JSON"),
        (b'[1, "a"]', "application/json", 400, "the body[0] is int"),
        (b'{"text": "a"}', "application/json", 400, "no 'inputs' key"),
        (b'{"inputs": 5}', "application/json", 400, "inputs is int"),
        (b"   ", "application/json", 400, "body is empty"),
        (b"[]", "application/json", 400, "holds no texts"),
        (b"[1]\n", "application/jsonlines", 400, "Line 1 holds list"),
        (b'{"x": 1}\n', "application/jsonlines", 400, "neither an 'inputs' nor a 'text' key"),
        (b"\xff\xfe", "text/plain", 400, "not valid utf-8"),
        (b"a", "application/xml", 415, "Unsupported Content-Type 'application/xml'"),
        (b"a", None, 415, "Unsupported Content-Type 'none'"),
        (b"a", "text/plain; charset=klingon", 400, "Unknown charset"),
    ],
)
def test_decode_errors_are_4xx_with_a_fix(body, content_type, status, fragment):
    with pytest.raises(RequestError) as info:
        decode(body, content_type)
    assert info.value.http_status == status
    assert fragment in info.value.message and info.value.fix


def test_too_many_texts_is_413():
    with pytest.raises(RequestError) as info:
        decode(json.dumps(["x"] * 11).encode(), "application/json", max_texts=10)
    assert info.value.http_status == 413 and "at most 10" in info.value.message


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("application/x-jsonlines", "application/jsonlines"),
        ("application/xml, text/csv;q=0.5", "text/csv"),
        ("text/csv;q=0.2, application/json;q=0.9", "application/json"),
        ("text/*", "text/csv"),
    ],
)
def test_accept_negotiation(accept, expected):
    assert negotiate_accept(accept) == expected


def test_accept_default_comes_from_the_endpoint_setting():
    assert negotiate_accept("*/*", default="text/csv") == "text/csv"


def test_unsupported_accept_is_406():
    with pytest.raises(RequestError) as info:
        negotiate_accept("application/xml")
    assert info.value.http_status == 406 and "text/csv" in info.value.fix


def test_output_format_from_custom_attributes():
    assert output_format("trace=abc; output=logits") == "logits"
    assert output_format(None, default="logits") == "logits"
    assert output_format("trace=abc") == "predictions"
    with pytest.raises(RequestError):
        output_format("output=xml")


PREDICTIONS = Predictions(
    (
        Prediction("Real disaster", 1, (0.1, 0.9), (-1.0, 1.2), False),
        Prediction("Not, a disaster", 0, (0.75, 0.25), (0.5, -0.6), True),
    ),
    ("Not, a disaster", "Real disaster"),
)


def test_encode_json():
    body, content_type = encode(PREDICTIONS, "application/json")
    assert content_type == "application/json"
    assert json.loads(body)["predictions"][0] == {
        "label": "Real disaster",
        "label_id": 1,
        "truncated": False,
        "probabilities": {"Not, a disaster": 0.1, "Real disaster": 0.9},
    }


def test_encode_jsonlines_one_record_per_text():
    body, _ = encode(PREDICTIONS, "application/jsonlines")
    lines = body.decode().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["truncated"] is True


def test_encode_csv_quotes_label_names():
    body, content_type = encode(PREDICTIONS, "text/csv")
    assert content_type == "text/csv"
    assert body.decode().splitlines() == ["Real disaster,1,0.1,0.9,false", '"Not, a disaster",0,0.75,0.25,true']


def test_logits_format_is_what_the_reference_client_takes_argmax_over():
    import numpy as np

    body, _ = encode(PREDICTIONS, "application/json", "logits")
    assert json.loads(body) == [[-1.0, 1.2], [0.5, -0.6]]
    assert np.argmax(json.loads(body), axis=1).tolist() == [1, 0]
    assert encode(PREDICTIONS, "text/csv", "logits")[0].decode().splitlines() == ["-1.0,1.2", "0.5,-0.6"]


def test_media_type_parsing():
    assert codecs.media_type('text/csv; charset="UTF-8"') == ("text/csv", {"charset": "UTF-8"})
