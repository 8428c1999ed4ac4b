"""`sagebert invoke --inference-id`: the id InvokeEndpoint records in the data capture
(eventMetadata.inferenceId), which `sagebert report` matches production and shadow requests by."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.aws

ENDPOINT = "disaster-tweets"
ANSWER = {"predictions": [{"label": "Real disaster", "label_id": 1, "probabilities": {"Real disaster": 0.9}}]}


def test_the_inference_id_is_sent_with_the_request(cli, clients, sent, endpoint_answers):
    endpoint_answers([json.dumps(ANSWER)])

    result = cli("invoke", "--endpoint", ENDPOINT, "--inference-id", "order-42 retry 1", "fire", clients=clients)

    assert result.code == 0, result.err
    assert sent.one("InvokeEndpoint")["InferenceId"] == "order-42 retry 1"


def test_without_an_inference_id_none_is_sent(cli, clients, sent, endpoint_answers):
    endpoint_answers([json.dumps(ANSWER)])
    assert cli("invoke", "--endpoint", ENDPOINT, "smoke", clients=clients).code == 0
    assert "InferenceId" not in sent.one("InvokeEndpoint")


def test_the_inference_id_goes_with_an_async_request(cli, clients, sent, bucket):
    result = cli(
        "invoke",
        "--endpoint",
        ENDPOINT,
        "--async",
        f"s3://{bucket}/in/t.jsonl",
        "--inference-id",
        "a-1",
        clients=clients,
    )
    assert result.code == 0, result.err
    assert sent.one("InvokeEndpointAsync")["InferenceId"] == "a-1"


@pytest.mark.parametrize("bad", ["", " leading-space", "x" * 65, "tab\there", "café-1"])
def test_an_inference_id_the_api_refuses_is_a_usage_error_before_any_request(cli, offline, bad):
    result = cli("invoke", "--endpoint", ENDPOINT, "--inference-id", bad, "fire", clients=offline)
    assert result.code == 2 and "is not an inference id: 1-64 printable ASCII characters" in result.err
    assert offline.attempts == []
