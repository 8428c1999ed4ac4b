"""What `sagebert invoke` sends and prints: request bodies, reading predictions, one line per text."""

from __future__ import annotations

import json

import pytest

from sagebert.aws.invocation import (
    CSV,
    JSON,
    MAX_BODY_BYTES,
    InvocationError,
    Prediction,
    invocation_body,
    parse_predictions,
)
from sagebert.cli.invoke import prediction_lines


def test_a_json_body_is_the_inputs_list():
    assert json.loads(invocation_body(["héllo", "world"], JSON)) == {"inputs": ["héllo", "world"]}


def test_a_csv_body_has_one_text_per_line_quoted_where_csv_needs_it():
    body = invocation_body(['fire, near "La Ronge"', "two\nlines"], CSV)

    assert body == b'"fire, near ""La Ronge"""\ntwo lines\n'


def test_no_texts_is_an_error_saying_how_to_pass_them():
    with pytest.raises(InvocationError, match="No text to classify") as raised:
        invocation_body([], JSON)
    assert "--file" in raised.value.fix


def test_a_body_over_invoke_endpoints_limit_is_refused():
    with pytest.raises(InvocationError, match=f"at most {MAX_BODY_BYTES}"):
        invocation_body(["x" * MAX_BODY_BYTES], JSON)


def test_predictions_read_the_label_its_probability_and_truncation():
    body = json.dumps(
        {
            "predictions": [
                {
                    "label": "Real disaster",
                    "label_id": 1,
                    "probabilities": {"Not a disaster": 0.03, "Real disaster": 0.97},
                    "truncated": True,
                }
            ]
        }
    ).encode()

    assert parse_predictions(body, 1) == [Prediction("Real disaster", 0.97, True)]


@pytest.mark.parametrize("body", [b"body", b'{"outputs": []}', b'{"predictions": [{"score": 1}]}'])
def test_an_answer_that_is_not_sagebert_predictions_is_an_error(body):
    with pytest.raises(InvocationError, match="not sagebert predictions"):
        parse_predictions(body, 1)


def test_a_prediction_count_different_from_the_text_count_is_an_error():
    with pytest.raises(InvocationError, match="Sent 2 texts but the endpoint answered 1 predictions"):
        parse_predictions(b'{"predictions": [{"label": "a"}]}', 2)


def test_each_text_is_printed_after_its_label_and_probability_aligned():
    lines = prediction_lines(
        ["crash", "fruits", "??"],
        [Prediction("Real disaster", 0.97), Prediction("Not a disaster", 0.881, truncated=True), Prediction("x")],
    )

    assert lines == [
        "Real disaster   0.970  crash",
        "Not a disaster  0.881  fruits  [truncated]",
        "x                 -    ??",
    ]
