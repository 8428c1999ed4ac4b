"""JSON answers and error handlers shared by the Flask server and the multi-model front."""

from __future__ import annotations

import json
import logging
import re

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .. import codecs
from ..errors import RequestError, SagebertError
from ..logs import RateLimitedWarning

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error; the endpoint's log (CloudWatch) has the details."


def json_response(payload: dict | list, status: int) -> Response:
    return Response(json.dumps(payload), status=status, mimetype=codecs.JSON)


def error_response(error: SagebertError) -> Response:
    """A user-fixable error as JSON: what went wrong and how to fix it."""
    return json_response({"error": error.message, "fix": error.fix}, error.http_status)


def payload_too_large(limit_mb: float) -> RequestError:
    """The 413 for a body over ``limit_mb`` megabytes."""
    return RequestError(
        f"The request body is larger than this endpoint's limit of {limit_mb:g} MB.",
        "Send fewer texts per request, or raise SAGEMAKER_MAX_PAYLOAD_IN_MB.",
        http_status=413,
    )


def install_error_handlers(app: Flask, max_payload_mb: float, warnings: RateLimitedWarning | None = None) -> None:
    """Errors as JSON: a SagebertError with its status and fix, HTTP errors with their reason (413
    saying the limit), and a 500 whose traceback stays in the log. A 503 (busy, stuck, shutting
    down) is logged at most once a minute per kind, with the count of those left out."""
    warnings = warnings or RateLimitedWarning(log)

    @app.errorhandler(SagebertError)
    def user_error(error: SagebertError) -> Response:
        if error.http_status >= 500:
            # One key per kind of 503 (busy, stuck, shutting down): the message without its numbers.
            key = f"{request.path} {re.sub(r'[0-9.]+', 'N', error.message)}"
            warnings.warn(key, "%s %s: %s", request.method, request.path, error)
        return error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return error_response(payload_too_large(max_payload_mb))
        return json_response({"error": f"{error.name}: {error.description}"}, error.code or 500)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response({"error": INTERNAL_ERROR}, 500)
