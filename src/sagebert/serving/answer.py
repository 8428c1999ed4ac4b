"""The one answer path of both servers, and the one error body.

The Flask server (serving.app, POST /invocations) and the multi-model-server handler
(serving.mms_handler_service) each read a request their own way, then call ``answer``:
decode the body (sagebert.codecs) → predict (the caller's function: the Flask server merges
requests in its micro-batcher, a multi-model worker runs its model directly) → encode for the
negotiated Accept type. The same request therefore gets the same body from either server.

Every error body, from either server and from the multi-model front, is ``error_json``:
``{"error": what went wrong, "fix": how to fix it}`` (no ``fix`` where the client can fix
nothing), never a traceback.

No Flask and no torch here: the multi-model worker imports it too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from .. import codecs
from ..errors import SagebertError
from .settings import ServingSettings

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error; the endpoint's log (CloudWatch) has the details."


def answer(
    body: bytes,
    header: Callable[[str], str | None],
    settings: ServingSettings,
    predict: Callable[[Sequence[str]], codecs.Predictions],
) -> tuple[bytes, str]:
    """The response body and content type for one invocation: ``body`` decoded by its
    Content-Type, ``predict`` run on its texts, the predictions encoded for its Accept type and
    output format (custom attributes). ``header(name)`` gives a request header or None.
    A client's mistake raises a SagebertError carrying its 4xx status."""
    # Accept and the output format are checked before the body is decoded: a request that could
    # never be answered costs no decoding.
    accept = codecs.negotiate_accept(header("Accept"), settings.default_accept)
    fmt = codecs.output_format(header(codecs.CUSTOM_ATTRIBUTES), settings.output_format)
    texts = codecs.decode(body, header("Content-Type"), settings.max_texts, plain_text_lines=settings.batch_transform)
    del body  # up to SAGEMAKER_MAX_PAYLOAD_IN_MB: freed before the forward pass if the caller kept no name for it
    return codecs.encode(predict(texts), accept, fmt)


def error_json(message: str, fix: str | None = None) -> bytes:
    """The JSON error body every sagebert server answers with."""
    return json.dumps({"error": message, "fix": fix} if fix is not None else {"error": message}).encode()


def error_answer(error: BaseException) -> tuple[int, bytes]:
    """The status and body for an error raised while answering: a SagebertError with its own
    status and fix; anything else a 500 that names no detail (the caller logs the traceback)."""
    if isinstance(error, SagebertError):
        return error.http_status, error_json(error.message, error.fix)
    return 500, error_json(INTERNAL_ERROR)
