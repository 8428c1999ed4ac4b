"""JSON answers and error handlers shared by the Flask server and the multi-model front."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .. import codecs

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error; the endpoint's log (CloudWatch) has the details."


def json_response(payload: dict, status: int) -> Response:
    return Response(json.dumps(payload), status=status, mimetype=codecs.JSON)


def install_error_handlers(app: Flask, max_payload_mb: float) -> None:
    """HTTP errors as JSON (413 saying the limit), and a 500 whose traceback stays in the log."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return json_response(
                {
                    "error": f"The request body is larger than this endpoint's limit of {max_payload_mb:g} MB.",
                    "fix": "Send fewer texts per request, or raise SAGEMAKER_MAX_PAYLOAD_IN_MB.",
                },
                413,
            )
        return json_response({"error": f"{error.name}: {error.description}"}, error.code or 500)

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response({"error": INTERNAL_ERROR}, 500)
