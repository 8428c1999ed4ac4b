"""The pieces of a dry run that need no AWS (sagebert.aws.plan): what counts as a read, what a
planned request is answered with, and how a request is written down."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from sagebert.aws.plan import PLANNED_ACCOUNT, Step, is_read, jsonable, planned_response
from sagebert.aws.validation import service_model


@pytest.mark.parametrize(
    "operation",
    ["DescribeEndpoint", "ListTags", "GetCallerIdentity", "HeadObject", "ListObjectsV2", "BatchGetImage", "Search"],
)
def test_look_ups_are_reads(operation):
    assert is_read(operation)


@pytest.mark.parametrize(
    "operation",
    [
        "CreateModel",
        "UpdateEndpoint",
        "DeleteModel",
        "AddTags",
        "PutObject",
        "RegisterScalableTarget",
        "StopTrainingJob",
    ],
)
def test_everything_else_is_a_change(operation):
    assert not is_read(operation)


def answer(service: str, operation: str, request: dict) -> dict:
    return planned_response(service_model(service).operation_model(operation), request, "eu-west-1")


def test_a_planned_create_is_answered_with_the_arn_its_name_makes():
    assert answer("sagemaker", "CreateEndpointConfig", {"EndpointConfigName": "ep-1"})["EndpointConfigArn"] == (
        f"arn:aws:sagemaker:eu-west-1:{PLANNED_ACCOUNT}:endpoint-config/ep-1"
    )
    assert answer("sagemaker", "CreateModelPackage", {"ModelPackageGroupName": "tweets"})["ModelPackageArn"].endswith(
        ":model-package/tweets"
    )
    assert answer("application-autoscaling", "PutScalingPolicy", {"PolicyName": "p"})["PolicyARN"].endswith("/p")


def test_planned_uploads_get_an_etag_and_an_upload_id():
    assert answer("s3", "PutObject", {"Bucket": "b", "Key": "k"})["ETag"] == '"dry-run"'
    assert answer("s3", "CreateMultipartUpload", {"Bucket": "b", "Key": "k"})["UploadId"] == "dry-run"


def test_an_operation_without_output_is_answered_with_metadata_only():
    assert set(answer("sagemaker", "DeleteModel", {"ModelName": "m"})) == {"ResponseMetadata"}


def test_a_request_is_written_as_json_carries_it_bodies_by_size_or_file_name():
    named = io.BytesIO(b"x")
    named.name = "data/train.csv"
    request = {"Body": b"12345", "File": named, "When": datetime(2026, 12, 7), "Tags": ({"Key": "a"},)}

    assert jsonable(request) == {
        "Body": "<5 bytes>",
        "File": "<file data/train.csv>",
        "When": "2026-12-07T00:00:00",
        "Tags": [{"Key": "a"}],
    }
    assert Step("sagemaker", "DeleteModel", {"ModelName": "m"}).as_json() == (
        '{"operation": "DeleteModel", "request": {"ModelName": "m"}}'
    )
