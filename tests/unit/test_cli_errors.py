"""How AWS failures read on the command line: one line saying what failed and the likely fix.

Every service error here is an HTTP answer as the real service sends it — status, headers and
body bytes in the service's own protocol (JSON 1.1 for SageMaker and Application Auto Scaling,
REST-JSON for the SageMaker runtime, XML for STS, S3 and CloudWatch), with the codes and
messages AWS really uses — parsed by a real botocore client into the ClientError the CLI sees.
Nothing leaves the machine: a ``before-send`` hook answers instead of AWS.
"""

from __future__ import annotations

import json

import boto3
import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError, ProfileNotFound

from sagebert.aws.clients import AwsClients
from sagebert.aws.errors import iam_action, is_not_found, translate
from sagebert.cli import main

ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/github-ci/sagebert-1234"


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_):
        yield self._data


def session_answering(status: int, body: bytes, headers: dict | None = None) -> boto3.session.Session:
    """A session whose every request is answered with this HTTP response (attempts counted)."""
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    session.events.register(
        "before-send", lambda request, **_: AWSResponse(request.url, status, headers or {}, _Body(body))
    )
    return session


def aws_says(
    service: str, operation: str, status: int, body: bytes, headers: dict | None = None, attempts: int = 1, **params
) -> ClientError:
    """The ClientError botocore raises for this answer to ``operation``."""
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    client = session_answering(status, body, headers).client(service, config=config)
    with pytest.raises(ClientError) as raised:
        getattr(client, operation)(**params)
    return raised.value


def json11(code: str, message: str, key: str = "message") -> bytes:
    """An AWS JSON 1.1 error body (SageMaker says ``message``, Application Auto Scaling ``Message``)."""
    return json.dumps({"__type": code, key: message}, separators=(",", ":")).encode()


# ---- not found, in AWS's own wordings -------------------------------------------------------------------
@pytest.mark.parametrize(
    "service, operation, params, status, headers, body",
    [
        (
            "sagemaker",
            "describe_training_job",
            {"TrainingJobName": "bert-e3"},
            400,
            {},
            json11("ValidationException", "Requested resource not found."),
        ),
        (
            "sagemaker",
            "describe_endpoint",
            {"EndpointName": "disaster-tweets"},
            400,
            {},
            b'{"__type":"ValidationException","message":"Could not find endpoint \\"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/disaster-tweets\\"."}',
        ),
        (
            "sagemaker-runtime",
            "invoke_endpoint",
            {"EndpointName": "disaster-tweets", "Body": b"{}"},
            400,
            {"x-amzn-ErrorType": "ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/"},
            b'{"message":"Endpoint disaster-tweets of account 123456789012 not found."}',
        ),
        (
            "application-autoscaling",
            "deregister_scalable_target",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": "endpoint/disaster-tweets/variant/AllTraffic",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            },
            400,
            {},
            json11(
                "ObjectNotFoundException",
                "No scalable target registered for service namespace: sagemaker, resource ID: "
                "endpoint/disaster-tweets/variant/AllTraffic, scalable dimension: sagemaker:variant:DesiredInstanceCount",
                "Message",
            ),
        ),
    ],
    ids=["DescribeTrainingJob", "DescribeEndpoint", "InvokeEndpoint", "DeregisterScalableTarget"],
)
def test_every_wording_aws_uses_for_not_found_is_recognised(service, operation, params, status, headers, body):
    exc = aws_says(service, operation, status, body, headers, **params)

    assert is_not_found(exc)
    error = translate(exc, region="eu-west-1")
    assert error.message.startswith("Not found: ")
    assert "the region (eu-west-1)" in error.fix


def test_a_validation_error_that_is_not_a_missing_resource_keeps_sagemakers_text():
    message = (
        "1 validation error detected: Value 'bert_run' at 'trainingJobName' failed to satisfy constraint: Member "
        "must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    exc = aws_says(
        "sagemaker", "describe_training_job", 400, json11("ValidationException", message), TrainingJobName="x"
    )

    assert not is_not_found(exc)
    error = translate(exc)
    assert error.message == f"SageMaker rejected the request: DescribeTrainingJob failed: {message}"


# ---- throttling, quotas, access, credentials --------------------------------------------------------------
def test_throttling_after_the_retries_says_how_to_retry_longer():
    exc = aws_says(
        "sagemaker",
        "describe_endpoint",
        400,
        json11("ThrottlingException", "Rate exceeded"),
        attempts=2,
        EndpointName="e",
    )

    error = translate(exc)

    assert error.message == "Throttled (after 2 attempts): DescribeEndpoint failed: Rate exceeded"
    assert "AWS_RETRY_MODE=adaptive AWS_MAX_ATTEMPTS=10" in error.fix


def test_a_quota_names_the_quota_its_limit_and_what_the_request_needed():
    message = (
        "The account-level service limit 'ml.p3.2xlarge for spot training job usage' is 0 Instances, with current "
        "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an "
        "increase for this quota. If AWS Service Quotas is not available, contact AWS support to request an increase "
        "for this quota."
    )
    exc = aws_says("sagemaker", "describe_endpoint", 400, json11("ResourceLimitExceeded", message), EndpointName="e")

    error = translate(exc)

    assert error.message.startswith("Quota reached: DescribeEndpoint failed: The account-level service limit")
    assert error.fix.startswith(
        "Request a higher 'ml.p3.2xlarge for spot training job usage' quota (now 0 Instances, 0 in use, this request "
        "needs 1) in Service Quotas > AWS services > Amazon SageMaker"
    )


def test_access_denied_names_the_action_and_resource_aws_named():
    message = (
        f"User: {CALLER} is not authorized to perform: sagemaker:CreateEndpoint on resource: "
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/disaster-tweets because no identity-based policy allows the "
        "sagemaker:CreateEndpoint action"
    )
    exc = aws_says(
        "sagemaker", "describe_endpoint", 400, json11("AccessDeniedException", message, "Message"), EndpointName="e"
    )

    error = translate(exc)

    assert error.fix == (
        f"Allow the caller sagemaker:CreateEndpoint on arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/disaster-tweets "
        "(the permissions are listed in docs/aws.md)."
    )


def test_an_explicit_deny_says_a_policy_blocks_it():
    message = (
        f"User: {CALLER} is not authorized to perform: sagemaker:DeleteEndpoint on resource: "
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/prod with an explicit deny in a service control policy"
    )
    exc = aws_says(
        "sagemaker", "describe_endpoint", 400, json11("AccessDeniedException", message, "Message"), EndpointName="e"
    )

    assert translate(exc).fix.startswith(
        "An explicit Deny (a policy, permissions boundary or SCP) blocks sagemaker:DeleteEndpoint"
    )


def test_access_denied_to_pass_the_role_says_to_allow_iam_pass_role():
    message = f"User: {CALLER} is not authorized to perform: iam:PassRole on resource: arn:aws:iam::{ACCOUNT}:role/SageMakerExec"
    exc = aws_says(
        "sagemaker", "describe_endpoint", 400, json11("AccessDeniedException", message, "Message"), EndpointName="e"
    )

    assert "iam:PassRole" in translate(exc).fix and "sagemaker.amazonaws.com" in translate(exc).fix


def test_cloudwatch_access_denied_in_xml_names_describe_alarms():
    body = (
        b'<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type>'
        b"<Code>AccessDenied</Code><Message>User: " + CALLER.encode() + b" is not authorized to perform: "
        b"cloudwatch:DescribeAlarms because no identity-based policy allows the cloudwatch:DescribeAlarms action"
        b"</Message></Error><RequestId>4a1b</RequestId></ErrorResponse>"
    )
    exc = aws_says("cloudwatch", "describe_alarms", 403, body, AlarmNames=["sagebert-5xx"])

    assert translate(exc).fix.startswith("Allow the caller cloudwatch:DescribeAlarms")


def test_deleting_an_autoscaled_endpoint_without_the_deregister_permission_names_it():
    message = (
        "An Application AutoScaling scalable target exists for a variant being deleted, and the IAM identity used to "
        "invoke DeleteEndpoint does not have application-autoscaling:DeregisterScalableTarget permission to deregister "
        "the scalable target."
    )
    exc = aws_says("sagemaker", "delete_endpoint", 400, json11("ValidationException", message), EndpointName="e")

    error = translate(exc)

    assert error.message.startswith("Access denied: DeleteEndpoint failed:")
    assert error.fix.startswith("Allow the caller application-autoscaling:DeregisterScalableTarget")


def test_expired_credentials_in_stss_xml_say_to_refresh_them():
    body = (
        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        b"<Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message>"
        b"</Error><RequestId>c6104cbe</RequestId></ErrorResponse>"
    )
    error = translate(aws_says("sts", "get_caller_identity", 403, body))

    assert error.message.startswith("AWS rejected the credentials") and "role-duration-seconds" in error.fix


def test_a_missing_bucket_in_s3s_xml_says_to_create_it():
    body = (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket "
        b"does not exist</Message><BucketName>no-such-bucket</BucketName><RequestId>TX1</RequestId>"
        b"<HostId>h</HostId></Error>"
    )
    error = translate(aws_says("s3", "list_objects_v2", 404, body, Bucket="no-such-bucket"))

    assert error.message.startswith("The S3 bucket does not exist: ListObjectsV2 failed:") and "aws s3 mb" in error.fix


def test_an_html_error_page_is_one_line_with_its_title():
    body = (
        b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
        b"<p>The server encountered an internal error and was unable to complete your request.</p>\n"
    )
    error = translate(aws_says("sagemaker", "update_endpoint", 500, body, EndpointName="e", EndpointConfigName="c"))

    assert str(error) == (
        "AWS error 500: UpdateEndpoint failed: an HTML error page (500 Internal Server Error) "
        "Fix: A service-side failure: retry in a minute."
    )


@pytest.mark.parametrize("status", [502, 503, 504])
def test_an_html_gateway_or_unavailable_page_gets_a_fix_line(status):
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
    body = f"<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body></html>".encode()
    error = translate(aws_says("sagemaker", "describe_endpoint", status, body, EndpointName="e"))

    assert error.message.startswith(f"AWS error {status}: DescribeEndpoint failed:") and reason in error.message
    assert error.fix and "retry in a minute" in error.fix
    assert ("proxy" in error.fix) == (status != 503)


def test_the_command_line_prints_one_line_and_no_traceback(capsys):
    body = json11("ValidationException", "Requested resource not found.")
    clients = AwsClients(session_answering(400, body))

    code = main(["status", "--training-job", "bert-e3"], clients=clients)

    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "error: There is no training job bert-e3 in eu-west-1 (SageMaker: Requested resource not found.)"
    )


def test_debug_adds_the_traceback(capsys):
    clients = AwsClients(session_answering(400, json11("AccessDeniedException", f"User: {CALLER} is not authorized")))

    code = main(["status", "--endpoint", "e", "--debug"], clients=clients)

    err = capsys.readouterr().err
    assert code == 1 and "Traceback (most recent call last)" in err and "error: Access denied" in err


# ---- client-side failures and the IAM action of each call -------------------------------------------------------
@pytest.mark.parametrize(
    "operation, action",
    [
        ("CreateTrainingJob", "sagemaker:CreateTrainingJob"),
        ("InvokeEndpoint", "sagemaker:InvokeEndpoint"),
        ("ListObjectsV2", "s3:ListBucket"),
        ("PutObject", "s3:PutObject"),
        ("GetLogEvents", "logs:GetLogEvents"),
        ("RegisterScalableTarget", "application-autoscaling:RegisterScalableTarget"),
        ("DescribeAlarms", "cloudwatch:DescribeAlarms"),
        ("DescribeImages", "ecr:DescribeImages"),
    ],
)
def test_each_call_maps_to_the_iam_action_it_needs(operation, action):
    assert iam_action(operation) == action


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


def test_a_model_error_carries_the_containers_status_and_log():
    log = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/disaster-tweets"
    body = (
        '{"ErrorCode":"CLIENT_ERROR_FROM_MODEL","LogStreamArn":"' + log + '","Message":"Received client error (400) '
        'from primary with message \\"{\\"error\\": \\"empty input\\"}\\". See the log for more information.",'
        '"OriginalMessage":"{\\"error\\": \\"empty input\\"}","OriginalStatusCode":400}'
    ).encode()
    exc = aws_says(
        "sagemaker-runtime",
        "invoke_endpoint",
        424,
        body,
        {"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"},
        EndpointName="disaster-tweets",
        Body=b"{}",
    )

    error = translate(exc)

    assert error.message == 'The model container answered 400: {"error": "empty input"}'
    assert log in error.fix
