"""Check requests against botocore's service model before they are sent.

botocore validates required members, unknown members, types and minimums on the client, but not
``pattern``, ``max`` or ``enum`` — SageMaker only rejects those once the request has reached AWS
(and local stand-ins such as moto accept them). Reading the limits from the installed service
model keeps them in step with the API instead of copying them here.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import Any

import botocore.session
from botocore.model import Shape

from ..errors import SagebertError


class InvalidRequestError(SagebertError):
    """A request sagebert was about to send breaks one of the API's own rules."""


@cache
def service_model(service: str = "sagemaker"):
    """The installed botocore model of ``service`` (read once)."""
    return botocore.session.get_session().get_service_model(service)


def shape_limits(shape_name: str, service: str = "sagemaker") -> dict[str, Any]:
    """``min``/``max``/``pattern``/``enum`` of a named shape (e.g. ``TrainingJobName``)."""
    shape = service_model(service).shape_for(shape_name)
    limits = dict(shape.metadata)
    if shape.enum:
        limits["enum"] = list(shape.enum)
    return limits


@cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:  # Java-only syntax such as \p{L}: the service checks it, we cannot
        return None


def _string_problem(shape: Shape, value: str) -> str | None:
    limits = shape.metadata
    if "max" in limits and len(value) > limits["max"]:
        return f"is {len(value)} characters long; at most {limits['max']} are allowed"
    if shape.enum and value not in shape.enum:
        close = difflib.get_close_matches(value, shape.enum, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"is not one of the values this boto3 knows{hint}; if it is new, upgrade boto3 (pip install -U boto3)"
    pattern = _compiled(limits["pattern"]) if "pattern" in limits else None
    if pattern is not None and not pattern.fullmatch(value):
        return f"does not match the pattern {limits['pattern']}"
    return None


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _check(member, value[name], f"{path}.{name}" if path else name, problems)
    elif kind == "list" and isinstance(value, (list, tuple)):
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path} has {len(value)} entries; at most {shape.metadata['max']} are allowed")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map" and isinstance(value, dict):
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path} has {len(value)} entries; at most {shape.metadata['max']} are allowed")
        for key, item in value.items():
            _check(shape.key, key, f"{path} key", problems)
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string" and isinstance(value, str):
        problem = _string_problem(shape, value)
        if problem:
            shown = value if len(value) <= 80 else value[:77] + "..."
            problems.append(f"{path} {shown!r} {problem}")
    elif (
        kind in ("integer", "long", "float", "double")
        and isinstance(value, (int, float))
        and "max" in shape.metadata
        and value > shape.metadata["max"]
    ):
        problems.append(f"{path} is {value}; at most {shape.metadata['max']} is allowed")


def request_problems(operation: str, request: dict, service: str = "sagemaker") -> list[str]:
    """Every pattern/max/enum rule of ``operation``'s input that ``request`` breaks."""
    problems: list[str] = []
    _check(service_model(service).operation_model(operation).input_shape, request, "", problems)
    return problems


def validate_request(operation: str, request: dict, service: str = "sagemaker") -> None:
    """Raise InvalidRequestError listing every rule ``request`` breaks; return if it breaks none."""
    problems = request_problems(operation, request, service)
    if problems:
        raise InvalidRequestError(
            f"The {operation} request would be rejected: " + "; ".join(problems) + ".",
            "Correct the option that sets that field (see `sagebert <command> --help`).",
        )
