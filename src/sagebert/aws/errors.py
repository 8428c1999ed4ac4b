"""Every AWS failure as one line: what was refused, and the likely fix.

boto3 raises ``ClientError`` (the service answered with an error code) or a ``BotoCoreError``
(no credentials, no region, no connection...). ``translate`` turns both into a SagebertError whose
message names the call and the service's own words, and whose fix names the permission, quota
or setting to change.
"""

from __future__ import annotations

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
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException", "SlowDown"}
_NO_CREDENTIALS_FIX = (
    "Configure credentials: `aws configure`, AWS_PROFILE=NAME, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (in CI: assume a role by OIDC)."
)


class AwsError(SagebertError):
    """An AWS call failed; ``code`` is the service's error code ("" for client-side failures)."""

    def __init__(self, message: str, fix: str | None = None, *, code: str = ""):
        super().__init__(message, fix)
        self.code = code


def iam_action(operation: str) -> str:
    """The IAM action a call needs, e.g. ``CreateTrainingJob`` → ``sagemaker:CreateTrainingJob``."""
    return _IAM_ACTIONS.get(operation, f"sagemaker:{operation}")


def _client_error(exc: ClientError) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "Unknown")
    message = str(error.get("Message") or "").strip() or "no message"
    operation = exc.operation_name
    said = f"{operation} failed: {message}"
    if code in _ACCESS_DENIED:
        denied = re.search(r"not authorized to perform: ([\w-]+:\w+)(?: on resource: (\S+))?", message)
        action = denied.group(1) if denied else iam_action(operation)
        if action == "iam:PassRole":
            fix = (
                "Allow the caller iam:PassRole on the execution role (condition iam:PassedToService = "
                "sagemaker.amazonaws.com)."
            )
        else:
            on = f" on {denied.group(2)}" if denied and denied.group(2) else ""
            fix = f"Allow the caller {action}{on} (the permissions are listed in {DOCS})."
        return AwsError(f"Access denied: {said}", fix, code=code)
    if code == "ResourceLimitExceeded":
        return AwsError(
            f"Quota reached: {said}",
            (
                "Request a higher quota in Service Quotas > Amazon SageMaker (e.g. '<instance type> for training "
                "job usage', '... for spot training job usage', '... for endpoint usage'), pick another instance "
                "type, or stop/delete what you no longer use."
            ),
            code=code,
        )
    if code in _BAD_CREDENTIALS:
        return AwsError(
            f"AWS rejected the credentials: {said}",
            "Refresh them (aws sso login, or a new session token) or check AWS_PROFILE.",
            code=code,
        )
    if code in _THROTTLED:
        return AwsError(f"Throttled: {said}", "Wait a minute and retry.", code=code)
    if code in ("NoSuchBucket", "404") and operation in ("HeadBucket", "ListObjectsV2", "PutObject"):
        return AwsError(
            f"The S3 bucket does not exist: {said}",
            "Create it (aws s3 mb s3://BUCKET) in the same region, or check the name.",
            code=code,
        )
    if code == "ModelError":
        original = exc.response.get("OriginalMessage") or message
        status = exc.response.get("OriginalStatusCode", "an error")
        log = exc.response.get("LogStreamArn")
        where = f" Its log: {log}." if log else ""
        return AwsError(
            f"The model container answered {status}: {original}",
            f"Check the texts and content type; the container's log says why.{where}",
            code=code,
        )
    if code in ("ValidationException", "ValidationError") and re.search(r"[Cc]ould not find|does not exist", message):
        return AwsError(
            f"Not found: {said}",
            (
                "Check the name (sagebert status lists endpoints and recent training jobs) and the region "
                "(--region or AWS_REGION)."
            ),
            code=code,
        )
    if code in ("ValidationException", "ValidationError"):
        return AwsError(
            f"SageMaker rejected the request: {said}",
            "Correct the value the message names (see `sagebert <command> --help`).",
            code=code,
        )
    if code in ("ResourceInUse", "ResourceInUseException"):
        return AwsError(
            f"In use: {said}", "Choose another name, or wait until the resource is no longer in use.", code=code
        )
    return AwsError(f"AWS error {code}: {said}", None, code=code)


def translate(exc: BaseException) -> SagebertError:
    """A SagebertError (one line + fix) for any error boto3 raises."""
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AwsError("No AWS credentials found.", _NO_CREDENTIALS_FIX)
    if isinstance(exc, NoRegionError):
        return AwsError(
            "No AWS region is configured.", "Pass --region, set AWS_REGION, or `aws configure set region eu-west-1`."
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
        return AwsError(f"AWS call failed: {exc}", None)
    s3_failure = re.search(r"\((\w+)\) when calling the (\w+) operation: (.*)", str(exc))
    if s3_failure:  # boto3's S3 transfer errors wrap a ClientError in their message
        code, operation, message = s3_failure.groups()
        return _client_error(ClientError({"Error": {"Code": code, "Message": message}}, operation))
    return AwsError(str(exc), None)
