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
from .answer import error_answer, error_json

log = logging.getLogger(__name__)


def json_response(payload: dict | list, status: int) -> Response:
    """``payload`` as a JSON response with ``status`` (answers that are not errors)."""
    return Response(json.dumps(payload), status=status, mimetype=codecs.JSON)


def error_response(error: BaseException) -> Response:
    """An error as the JSON body both servers answer (serving.answer.error_answer): a
    SagebertError with its status, message and fix; anything else a 500 without details."""
    status, body = error_answer(error)
    return Response(body, status=status, mimetype=codecs.JSON)


def error_message_response(message: str, status: int, fix: str | None = None) -> Response:
    """An error that is no exception (an HTTP error, a model server that did not answer) in the
    same JSON shape."""
    return Response(error_json(message, fix), status=status, mimetype=codecs.JSON)


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
        return error_message_response(f"{error.name}: {error.description}", error.code or 500)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(error)
