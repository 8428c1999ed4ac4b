"""Check requests against botocore's service model before they are sent.

botocore validates required members, unknown members, types and minimums on the client, but not
``pattern``, ``max`` or ``enum`` — SageMaker only rejects those once the request has reached AWS
(and local stand-ins such as moto accept them). Reading the limits from the installed service
model keeps them in step with the API instead of copying them here.

The model's patterns are Java regular expressions. The Java-only parts they use — Unicode
categories (``\\p{L}``, ``\\p{Z}``, …), POSIX classes (``\\p{Alnum}``, ``\\p{Print}``), UTF-16
surrogate-pair ranges, ``\\z`` and ``${1,128}`` — are translated to Python's syntax, so tag keys
and values are checked like every other field.
"""

from __future__ import annotations

import difflib
import re
import sys
import unicodedata
from functools import cache
from typing import Any

import botocore.session
from botocore.model import Shape

from ..errors import SagebertError

# Java's POSIX classes are ASCII-only.
_POSIX_CLASSES = {"Alnum": r"A-Za-z0-9", "Print": r"\x20-\x7e", "ASCII": r"\x00-\x7f", "Alpha": r"A-Za-z"}
# The supplementary planes, as Java patterns spell them in UTF-16: a high surrogate, then a range.
_SUPPLEMENTARY = re.compile(r"\\uD800\\uDC00-\\uDBFF\\uDFFF", re.IGNORECASE)


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
def _ranges_by_category(ascii_only: bool) -> dict[str, list[str]]:
    """Character ranges (``\\U…-\\U…``) of every two-letter Unicode general category (``Lu``, ``Zs``…).

    One pass over ASCII when the value checked is ASCII (instant), else over every code point (a
    fraction of a second, once per run).
    """
    limit = 0x80 if ascii_only else sys.maxunicode + 1
    ranges: dict[str, list[str]] = {}
    start, current = 0, unicodedata.category("\x00")
    for code in range(1, limit + 1):
        category = unicodedata.category(chr(code)) if code < limit else None
        if category != current:
            last = code - 1
            ranges.setdefault(current, []).append(
                f"\\U{start:08x}" if start == last else f"\\U{start:08x}-\\U{last:08x}"
            )
            start, current = code, category
    return ranges


def _category_ranges(category: str, ascii_only: bool) -> str:
    """A character-class body matching the Unicode general category ``category`` (``L``, ``Zs``…)."""
    found = [r for name, rs in _ranges_by_category(ascii_only).items() if name.startswith(category) for r in rs]
    return "".join(found) or r"\x00-\x00"  # an empty category still needs a valid class body


def python_pattern(pattern: str, ascii_only: bool = False) -> str:
    """A Java regular expression from the service model, rewritten in Python's ``re`` syntax."""
    pattern = _SUPPLEMENTARY.sub(r"\\U00010000-\\U0010FFFF", pattern)
    pattern = re.sub(r"\$\{\d+(?:,\d*)?\}", "$", pattern)  # "${1,128}": a quantified end anchor
    out: list[str] = []
    in_class, index = False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escape = pattern[index + 1]
            named = re.match(r"\\[pP]\{(\w+)\}", pattern[index:])
            if named:
                name = named.group(1)
                body = _POSIX_CLASSES.get(name) or _category_ranges(name, ascii_only)
                negated = named.group(0)[1] == "P"
                if negated:
                    out.append(f"[^{body}]")
                else:
                    out.append(body if in_class else f"[{body}]")
                index += len(named.group(0))
                continue
            out.append(r"\Z" if escape == "z" else char + escape)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


@cache
def _compiled(pattern: str, ascii_only: bool) -> re.Pattern | None:
    try:
        return re.compile(python_pattern(pattern, ascii_only))
    except re.error:  # a construct neither side of the translation knows: the service checks it
        return None


def matches_pattern(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the service model's (Java) ``pattern`` as a whole."""
    compiled = _compiled(pattern, value.isascii())
    return compiled is None or compiled.fullmatch(value) is not None


def _string_problem(shape: Shape, value: str) -> str | None:
    limits = shape.metadata
    if "max" in limits and len(value) > limits["max"]:
        return f"is {len(value)} characters long; at most {limits['max']} are allowed"
    if shape.enum and value not in shape.enum:
        close = difflib.get_close_matches(value, shape.enum, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"is not one of the values this boto3 knows{hint}; if it is new, upgrade boto3 (pip install -U boto3)"
    if "pattern" in limits and not matches_pattern(limits["pattern"], value):
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
