"""The boto3 clients of one run, sending a validated request, and the caller's identity."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from .. import __version__
from .errors import AwsError, error_code, is_not_found
from .plan import Plan
from .validation import validate_request

# Standard retries (throttling and transient errors back off and retry) unless the user chose
# their own with AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, which botocore then honours.
DEFAULT_RETRIES = {"mode": "standard", "max_attempts": 5}
# The AwsClients properties that hold a boto3 client.
CLIENT_NAMES = ("sagemaker", "runtime", "s3", "logs", "sts", "autoscaling", "cloudwatch", "ecr")

# The region variables, strongest first. botocore reads only AWS_DEFAULT_REGION; AWS_REGION is what
# the other AWS SDKs, Lambda and CodeBuild set, and what the README and GitHub's configure step use.
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def resolve_region(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """--region, else AWS_REGION, else AWS_DEFAULT_REGION; None leaves it to the profile."""
    for value in (explicit, *(environ.get(name) for name in REGION_VARIABLES)):
        if value and value.strip():
            return value.strip()
    return None


class AwsClients:
    """The boto3 clients of one session, made when first used (making one sends nothing).

    The region is ``region`` (--region), else AWS_REGION, else AWS_DEFAULT_REGION, else the
    profile's; credentials follow boto3's usual chain (AWS_PROFILE, ~/.aws/config, instance
    roles...) unless ``profile`` is given; AWS_ENDPOINT_URL is honoured.
    """

    def __init__(
        self, session: boto3.session.Session | None = None, *, region: str | None = None, profile: str | None = None
    ):
        self._session = session
        self._region = region
        self._profile = profile
        self.plan: Plan | None = None

    @property
    def dry_run(self) -> bool:
        """Whether requests that change something are recorded instead of sent (``--dry-run``)."""
        return self.plan is not None

    def start_plan(self) -> Plan:
        """From now on, record and answer every request that changes something (see aws.plan);
        clients already made are watched too."""
        self.plan = Plan()
        for name in CLIENT_NAMES:
            if name in self.__dict__:
                self.plan.watch(self.__dict__[name])
        return self.plan

    def end_plan(self) -> None:
        """Send requests again (the clients are reused after a dry run, e.g. by tests)."""
        if self.plan is not None:
            for name in CLIENT_NAMES:
                if name in self.__dict__:
                    self.plan.unwatch(self.__dict__[name])
        self.plan = None

    @cached_property
    def session(self) -> boto3.session.Session:
        return self._session or boto3.session.Session(
            region_name=resolve_region(self._region, os.environ), profile_name=self._profile
        )

    def _client(self, service: str, **config):
        chosen = os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE")
        retries = {} if chosen else {"retries": DEFAULT_RETRIES}
        settings = Config(user_agent_extra=f"sagebert/{__version__}", **retries, **config)
        client = self.session.client(service, config=settings)
        if self.plan is not None:
            self.plan.watch(client)
        return client

    @cached_property
    def sagemaker(self):
        return self._client("sagemaker")

    @cached_property
    def runtime(self):
        # The container has 60 s to answer an invocation; wait a little longer than that.
        return self._client("sagemaker-runtime", read_timeout=70)

    @cached_property
    def s3(self):
        return self._client("s3")

    @cached_property
    def logs(self):
        return self._client("logs")

    @cached_property
    def sts(self):
        return self._client("sts")

    @cached_property
    def autoscaling(self):
        return self._client("application-autoscaling")

    @cached_property
    def cloudwatch(self):
        return self._client("cloudwatch")

    @cached_property
    def ecr(self):
        return self._client("ecr")

    @property
    def region(self) -> str | None:
        return self.sagemaker.meta.region_name


def send(client, operation: str, request: dict) -> dict:
    """Validate ``request`` against ``operation``'s input rules, then send it."""
    validate_request(operation, request, client.meta.service_model.service_name)
    return getattr(client, xform_name(operation))(**request)


def account_id(clients: AwsClients) -> str:
    """The caller's AWS account (STS GetCallerIdentity)."""
    return clients.sts.get_caller_identity()["Account"]


def role_arn(clients: AwsClients, role: str) -> str:
    """An execution role's ARN; a bare role name is completed with the caller's account (STS)."""
    if role.startswith("arn:"):
        return role
    partition = clients.session.get_partition_for_region(clients.region or "us-east-1")
    return f"arn:{partition}:iam::{account_id(clients)}:role/{role.strip('/')}"


def described(clients: AwsClients, kind: str, name: str, listing: str, call: Callable[[], dict]) -> dict:
    """The answer of a Describe* ``call``; a missing resource is one line naming ``kind`` ``name``,
    the region and where to find the names (``listing``)."""
    try:
        return call()
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        said = exc.response.get("Error", {}).get("Message")
        raise AwsError(
            f"There is no {kind} {name} in {clients.region or 'the configured region'} (SageMaker: {said})",
            f"Check the name ({listing}) and the region (--region, AWS_REGION or AWS_DEFAULT_REGION).",
            code=error_code(exc),
        ) from None
