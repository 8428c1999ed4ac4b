"""Dry runs: every request that would change something is recorded in order and answered here.

A ``Plan`` hooks into botocore's event system of each client it watches. ``before-parameter-build``
keeps a copy of the parameters the CLI passed; ``before-call`` comes after botocore has validated
and serialised them and, when a handler returns a response there, botocore uses it instead of
sending anything. Reads (Describe*, List*, Get*, Head*, Search*) still go to AWS, because the plan
depends on what exists; they are recorded too, so the plan can say what it looked at. Everything
else is recorded and answered with a response shaped from the operation's output model, enough for
the CLI to carry on: ARNs built from the names in the request, an ETag, an upload id.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from botocore.awsrequest import AWSResponse

READ_PREFIXES = ("Describe", "List", "Get", "Head", "Search", "BatchDescribe", "BatchGet")
# The placeholder account of ARNs made up for resources a dry run does not create.
PLANNED_ACCOUNT = "000000000000"
_PARAMS_KEY = "sagebert_planned_params"


def is_read(operation: str) -> bool:
    """Whether ``operation`` only reads (a dry run lets it through)."""
    return operation.startswith(READ_PREFIXES)


@dataclass(frozen=True)
class Step:
    """One request of a plan: its service, operation and parameters; ``read`` for a look-up."""

    service: str
    operation: str
    request: dict
    read: bool = False

    def as_json(self) -> str:
        """``{"operation": ..., "request": {...}}`` on one line (the --json plan format)."""
        return json.dumps({"operation": self.operation, "request": self.request}, default=str, sort_keys=False)

    def summary(self) -> str:
        """``sagemaker CreateModel {...}`` for the text plan."""
        return f"{self.service} {self.operation} {json.dumps(self.request, default=str)}"


def jsonable(value: Any) -> Any:
    """The request as JSON can carry it: bodies become ``<N bytes>`` or ``<file NAME>``, dates ISO text."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<file {_file_name(value)}>" if _file_name(value) else f"<{type(value).__name__}>"


def _file_name(body: Any) -> str | None:
    """The path behind an upload's body: s3transfer wraps the file a few times (``_fileobj``)."""
    for _ in range(5):
        if body is None or isinstance(getattr(body, "name", None), str):
            return getattr(body, "name", None)
        body = getattr(body, "_fileobj", None)
    return None


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def planned_arn(member: str, request: dict, service: str, region: str | None) -> str:
    """An ARN for ``member`` (``EndpointConfigArn`` → ``...:endpoint-config/NAME``), the name taken
    from the request's matching ``...Name`` field."""
    stem = member[: -len("ARN")] if member.endswith("ARN") else member[: -len("Arn")]
    name = (
        request.get(f"{stem}Name")
        or request.get(f"{stem}GroupName")
        or request.get("PolicyName")
        or request.get("ResourceId")
        or "planned"
    )
    return f"arn:aws:{service}:{region or 'us-east-1'}:{PLANNED_ACCOUNT}:{_kebab(stem)}/{name}"


def planned_response(operation_model, request: dict, region: str | None) -> dict:
    """A response to a request not sent: each top-level ``...Arn``/``...ARN`` string of the output
    shape built from the names in the request, an ETag and an UploadId where the shape has them."""
    response: dict = {"ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "dry-run", "HTTPHeaders": {}}}
    shape = operation_model.output_shape
    if shape is None:
        return response
    service = operation_model.service_model.signing_name or operation_model.service_model.endpoint_prefix
    for member, member_shape in shape.members.items():
        if member_shape.type_name != "string":
            continue
        if member.endswith(("Arn", "ARN")):
            response[member] = planned_arn(member, request, service, region)
        elif member == "ETag":
            response[member] = '"dry-run"'
        elif member == "UploadId":
            response[member] = "dry-run"
    return response


class Plan:
    """The requests of a dry run, in the order the CLI would send them."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._lock = threading.Lock()  # S3 transfers call the client from worker threads

    @property
    def changes(self) -> list[Step]:
        """The requests that would change something (reads left out)."""
        return [step for step in self.steps if not step.read]

    def watch(self, client) -> None:
        """Record every request ``client`` makes; answer the ones that change something here."""
        events = client.meta.events
        events.register("before-parameter-build", self._remember, unique_id="sagebert-plan-params")
        events.register("before-call", self._intercept, unique_id="sagebert-plan-call")

    def unwatch(self, client) -> None:
        """Let ``client`` send again."""
        events = client.meta.events
        events.unregister("before-parameter-build", unique_id="sagebert-plan-params")
        events.unregister("before-call", unique_id="sagebert-plan-call")

    @staticmethod
    def _remember(params, context, **_) -> None:
        # A copy as JSON carries it (later handlers may change the parameters in place); an
        # upload's file-like Body becomes its file's name, never copied or read.
        context[_PARAMS_KEY] = jsonable(params)

    def _intercept(self, model, context, **_):
        service = model.service_model.service_name
        request = context.get(_PARAMS_KEY, {})
        read = is_read(model.name)
        with self._lock:
            self.steps.append(Step(service, model.name, request, read))
        if read:
            return None
        response = planned_response(model, request, context.get("client_region"))
        return AWSResponse(url="", status_code=200, headers={}, raw=None), response
