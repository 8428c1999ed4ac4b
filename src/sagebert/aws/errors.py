"""Every AWS failure as one line: what was refused, and the likely fix.

boto3 raises ``ClientError`` (the service answered with an error code) or a ``BotoCoreError``
(no credentials, no region, no connection...). ``translate`` turns both into a SagebertError whose
message names the call and the service's own words, and whose fix names the permission, quota
or setting to change. The codes and texts recognised are the real services' (the API reference
and what users report), not a local stand-in's: SageMaker says "Requested resource not found."
(DescribeTrainingJob), 'Could not find endpoint "arn:..."' (DescribeEndpoint), "Endpoint X of
account Y not found." (InvokeEndpoint, code ValidationError) and "Rate exceeded" (throttling).
"""

from __future__ import annotations

import html
import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ..errors import SagebertError

DOCS = "docs/aws.md"

# Operations whose IAM action is not "sagemaker:<Operation>".
_IAM_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DescribeLogStreams": "logs:DescribeLogStreams",
    "GetLogEvents": "logs:GetLogEvents",
    "GetCallerIdentity": "sts:GetCallerIdentity",
    "DescribeAlarms": "cloudwatch:DescribeAlarms",
    "DescribeImages": "ecr:DescribeImages",
}
_AUTOSCALING_OPERATIONS = {
    "RegisterScalableTarget",
    "DeregisterScalableTarget",
    "DescribeScalableTargets",
    "PutScalingPolicy",
    "DeleteScalingPolicy",
    "DescribeScalingPolicies",
}
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "UnauthorizedOperation"}
_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidSignatureException",
}
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
}
_QUOTA = {"ResourceLimitExceeded", "LimitExceededException", "ServiceQuotaExceededException"}
_VALIDATION = {"ValidationException", "ValidationError"}
_NOT_FOUND_CODES = {
    "ResourceNotFound",
    "ResourceNotFoundException",
    "ObjectNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "404",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
}
# SageMaker reports most missing resources as a ValidationException; these are its wordings.
_NOT_FOUND_TEXT = re.compile(
    r"Could not find|does not exist|Requested resource not found|\bnot found\b|No scalable target registered",
    re.IGNORECASE,
)
# AWS's common errors: InternalFailure (500) and ServiceUnavailable (503); with no error code in
# the body (an HTML page), the HTTP status stands for it: 500, 503, and the gateway errors 502 and
# 504 that a proxy or load balancer between the caller and AWS answers with.
_SERVER_ERRORS = {
    "InternalFailure",
    "InternalServerError",
    "InternalServiceException",
    "ServiceUnavailable",
    "500",
    "502",
    "503",
    "504",
}
_GATEWAY_ERRORS = {"502", "504"}
_NO_CREDENTIALS_FIX = (
    "Configure credentials: `aws configure`, AWS_PROFILE=NAME, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (in CI: assume a role by OIDC)."
)
_QUOTA_TEXT = re.compile(
    r"service limit '(?P<quota>[^']+)' is (?P<limit>\S+) (?P<unit>\w+), with current utilization of "
    r"(?P<used>\S+) \w+ and a request delta of (?P<delta>\S+)"
)


class AwsError(SagebertError):
    """An AWS call failed; ``code`` is the service's error code ("" for client-side failures)."""

    def __init__(self, message: str, fix: str | None = None, *, code: str = ""):
        super().__init__(message, fix)
        self.code = code


def iam_action(operation: str) -> str:
    """The IAM action a call needs, e.g. ``CreateTrainingJob`` → ``sagemaker:CreateTrainingJob``."""
    if operation in _AUTOSCALING_OPERATIONS:
        return f"application-autoscaling:{operation}"
    return _IAM_ACTIONS.get(operation, f"sagemaker:{operation}")


def error_code(exc: ClientError) -> str:
    """The service's error code (the HTTP status when there is none)."""
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "Unknown")


def _message(exc: ClientError) -> str:
    """The service's message on one line; an HTML error page is reduced to its title."""
    text = str(exc.response.get("Error", {}).get("Message") or "").strip()
    if re.search(r"<(!doctype|html|head|body)\b", text, re.IGNORECASE):
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        heading = title.group(1) if title else "no title"
        text = f"an HTML error page ({html.unescape(' '.join(heading.split()))})"
    return " ".join(text.split()) or "no message"


def is_not_found(exc: ClientError) -> bool:
    """Whether ``exc`` says the resource asked for does not exist (in any of AWS's wordings)."""
    code = error_code(exc)
    if code in _NOT_FOUND_CODES:
        return True
    return code in _VALIDATION and bool(_NOT_FOUND_TEXT.search(_message(exc)))


def _access_denied(said: str, message: str, operation: str, code: str) -> AwsError:
    denied = re.search(r"not authorized to perform: ([\w-]+:\w+)(?: on resource: (\S+))?", message)
    action = denied.group(1) if denied else iam_action(operation)
    if action == "iam:PassRole":
        fix = (
            "Allow the caller iam:PassRole on the execution role (condition iam:PassedToService = "
            "sagemaker.amazonaws.com)."
        )
    elif "explicit deny" in message:
        fix = f"An explicit Deny (a policy, permissions boundary or SCP) blocks {action}: ask whoever manages them."
    else:
        on = f" on {denied.group(2)}" if denied and denied.group(2) else ""
        fix = f"Allow the caller {action}{on} (the permissions are listed in {DOCS})."
    return AwsError(f"Access denied: {said}", fix, code=code)


def _quota(said: str, message: str, code: str) -> AwsError:
    found = _QUOTA_TEXT.search(message)
    if found:
        fix = (
            f"Request a higher '{found['quota']}' quota (now {found['limit']} {found['unit']}, {found['used']} in use, "
            f"this request needs {found['delta']}) in Service Quotas > AWS services > Amazon SageMaker, pick another "
            "instance type, or stop/delete what you no longer use."
        )
    else:
        fix = (
            "Request a higher quota in Service Quotas > AWS services (e.g. '<instance type> for training job usage', "
            "'... for spot training job usage', '... for endpoint usage'), pick another instance type, or "
            "stop/delete what you no longer use."
        )
    return AwsError(f"Quota reached: {said}", fix, code=code)


def _client_error(exc: ClientError, region: str | None) -> AwsError:
    code = error_code(exc)
    message = _message(exc)
    operation = exc.operation_name
    said = f"{operation} failed: {message}"
    missing_permission = re.search(r"does not have ([\w-]+:\w+) permission", message)
    if code in _ACCESS_DENIED:
        return _access_denied(said, message, operation, code)
    if missing_permission:  # e.g. DeleteEndpoint of an autoscaled variant without DeregisterScalableTarget
        return AwsError(
            f"Access denied: {said}", f"Allow the caller {missing_permission.group(1)} (see {DOCS}).", code=code
        )
    if code in _QUOTA:
        return _quota(said, message, code)
    if code in _BAD_CREDENTIALS:
        return AwsError(
            f"AWS rejected the credentials: {said}",
            "Refresh them (aws sso login, or a new session token; in CI a longer role-duration-seconds) "
            "or check AWS_PROFILE.",
            code=code,
        )
    if code in _THROTTLED:
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
        after = f" (after {attempts + 1} attempts)" if attempts else ""
        return AwsError(
            f"Throttled{after}: {said}",
            "AWS limits the request rate: wait a minute and retry, or retry longer with "
            "AWS_RETRY_MODE=adaptive AWS_MAX_ATTEMPTS=10.",
            code=code,
        )
    if code in ("NoSuchBucket", "404") and operation in ("HeadBucket", "ListObjectsV2", "PutObject"):
        return AwsError(
            f"The S3 bucket does not exist: {said}",
            "Create it (aws s3 mb s3://BUCKET) in the same region, or check the name.",
            code=code,
        )
    if code == "ModelError":
        original = " ".join(str(exc.response.get("OriginalMessage") or message).split())
        status = exc.response.get("OriginalStatusCode", "an error")
        log = exc.response.get("LogStreamArn")
        where = f" Its log: {log}." if log else ""
        return AwsError(
            f"The model container answered {status}: {original}",
            f"Check the texts and content type; the container's log says why.{where}",
            code=code,
        )
    if is_not_found(exc):
        where = f" ({region})" if region else ""
        return AwsError(
            f"Not found: {said}",
            f"Check the name (sagebert status lists endpoints and recent training jobs) and the region{where}: "
            "--region, AWS_REGION or AWS_DEFAULT_REGION.",
            code=code,
        )
    if code in _VALIDATION and re.search(r"Cannot update in-progress endpoint", message):
        return AwsError(
            f"The endpoint is busy: {said}",
            "Wait until it is InService (sagebert status --endpoint NAME), then retry.",
            code=code,
        )
    if code in _VALIDATION:
        return AwsError(
            f"SageMaker rejected the request: {said}",
            "Correct the value the message names (see `sagebert <command> --help`).",
            code=code,
        )
    if code in ("ResourceInUse", "ResourceInUseException", "ConflictException"):
        return AwsError(
            f"In use: {said}", "Choose another name, or wait until the resource is no longer in use.", code=code
        )
    if code in _GATEWAY_ERRORS:
        return AwsError(
            f"AWS error {code}: {said}",
            "A gateway between you and AWS failed (a proxy, or AWS's front end): retry in a minute; if it goes on, "
            "check the proxy settings (HTTPS_PROXY, NO_PROXY) and AWS_ENDPOINT_URL.",
            code=code,
        )
    if code in _SERVER_ERRORS:
        return AwsError(f"AWS error {code}: {said}", "A service-side failure: retry in a minute.", code=code)
    return AwsError(f"AWS error {code}: {said}", None, code=code)


def translate(exc: BaseException, region: str | None = None) -> SagebertError:
    """A SagebertError (one line + fix) for any error boto3 raises."""
    if isinstance(exc, ClientError):
        return _client_error(exc, region)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AwsError("No AWS credentials found.", _NO_CREDENTIALS_FIX)
    if isinstance(exc, NoRegionError):
        return AwsError(
            "No AWS region is configured.",
            "Pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), or `aws configure set region eu-west-1`.",
        )
    if isinstance(exc, ProfileNotFound):
        return AwsError(f"{exc}.", "Check AWS_PROFILE / --profile against ~/.aws/config.")
    if isinstance(exc, EndpointConnectionError):
        return AwsError(
            f"Cannot reach AWS: {exc}.", "Check the network, the region, and AWS_ENDPOINT_URL if you set it."
        )
    if isinstance(exc, ParamValidationError):
        return AwsError(" ".join(str(exc).split()), "Correct the option that sets that field.")
    if isinstance(exc, BotoCoreError):
        return AwsError(f"AWS call failed: {' '.join(str(exc).split())}", None)
    s3_failure = re.search(r"\((\w+)\) when calling the (\w+) operation: (.*)", str(exc))
    if s3_failure:  # boto3's S3 transfer errors wrap a ClientError in their message
        code, operation, message = s3_failure.groups()
        return _client_error(ClientError({"Error": {"Code": code, "Message": message}}, operation), region)
    return AwsError(" ".join(str(exc).split()), None)
