"""How AWS failures read on the command line: one line saying what failed and the likely fix."""

from __future__ import annotations

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError, ProfileNotFound

from sagebert.aws.errors import iam_action, translate


def client_error(code: str, message: str, operation: str = "CreateTrainingJob", **extra) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, operation)


def test_access_denied_names_the_denied_action_and_resource_from_the_message():
    error = translate(
        client_error(
            "AccessDeniedException",
            "User: arn:aws:iam::1:user/ci is not authorized to "
            "perform: sagemaker:CreateEndpoint on resource: arn:aws:sagemaker:x:1:endpoint/ep",
            "CreateEndpoint",
        )
    )

    assert error.message.startswith("Access denied: CreateEndpoint failed: User:")
    assert error.fix == (
        "Allow the caller sagemaker:CreateEndpoint on arn:aws:sagemaker:x:1:endpoint/ep "
        "(the permissions are listed in docs/aws.md)."
    )


@pytest.mark.parametrize(
    "operation, action",
    [
        ("CreateTrainingJob", "sagemaker:CreateTrainingJob"),
        ("InvokeEndpoint", "sagemaker:InvokeEndpoint"),
        ("ListObjectsV2", "s3:ListBucket"),
        ("PutObject", "s3:PutObject"),
        ("GetLogEvents", "logs:GetLogEvents"),
    ],
)
def test_each_call_maps_to_the_iam_action_it_needs(operation, action):
    assert iam_action(operation) == action


def test_access_denied_to_pass_the_role_says_to_allow_iam_pass_role():
    error = translate(client_error("AccessDenied", "... is not authorized to perform: iam:PassRole on resource: r"))

    assert "iam:PassRole" in error.fix and "sagemaker.amazonaws.com" in error.fix


def test_a_quota_error_points_at_service_quotas():
    error = translate(client_error("ResourceLimitExceeded", "The account-level service limit is 0 Instances"))

    assert error.message == "Quota reached: CreateTrainingJob failed: The account-level service limit is 0 Instances"
    assert "Service Quotas" in error.fix


def test_a_validation_exception_keeps_sagemakers_own_text():
    error = translate(
        client_error(
            "ValidationException",
            "1 validation error detected: Value 'x' at 'trainingJobName' failed to satisfy constraint",
        )
    )

    assert "1 validation error detected: Value 'x' at 'trainingJobName'" in error.message


def test_expired_credentials_say_to_refresh_them():
    error = translate(client_error("ExpiredTokenException", "The security token included in the request is expired"))

    assert error.message.startswith("AWS rejected the credentials") and "aws sso login" in error.fix


def test_a_model_error_carries_the_containers_status_and_log():
    error = translate(
        client_error(
            "ModelError",
            "Received client error (400)",
            "InvokeEndpoint",
            OriginalStatusCode=400,
            OriginalMessage='{"error": "empty input"}',
            LogStreamArn="arn:aws:logs:x:1:log-group:/aws/sagemaker/Endpoints/ep",
        )
    )

    assert error.message == 'The model container answered 400: {"error": "empty input"}'
    assert "/aws/sagemaker/Endpoints/ep" in error.fix


@pytest.mark.parametrize(
    "exception, message, fix",
    [
        (NoCredentialsError(), "No AWS credentials found.", "aws configure"),
        (NoRegionError(), "No AWS region is configured.", "AWS_REGION"),
        (ProfileNotFound(profile="nope"), "The config profile (nope) could not be found.", "AWS_PROFILE"),
        (EndpointConnectionError(endpoint_url="https://x"), "Cannot reach AWS", "AWS_ENDPOINT_URL"),
    ],
)
def test_client_side_failures_have_a_fix(exception, message, fix):
    error = translate(exception)

    assert error.message.startswith(message) and fix in error.fix


def test_an_s3_transfer_failure_is_read_through_to_its_error_code():
    failure = S3UploadFailedError(
        "Failed to upload a to b/c: An error occurred (NoSuchBucket) when calling the "
        "PutObject operation: The specified bucket does not exist"
    )

    error = translate(failure)

    assert error.message.startswith("The S3 bucket does not exist: PutObject failed:")
    assert "aws s3 mb" in error.fix
