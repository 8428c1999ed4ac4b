"""sagebert's handlers inside sagemaker-inference's Transformer, for multi-model-server.

The Transformer runs model_fn once per model worker and input_fn → predict_fn → output_fn per
request — the same functions (sagebert.inference) the Flask server uses. Two changes to the
toolkit's behaviour: the handler functions are ours whatever SAGEMAKER_PROGRAM says (the image
sets it nowhere, but a user module named like it must not take over), and an error answers a JSON
reason with its status code and never the traceback (which goes to the log).
"""

from __future__ import annotations

import json
import logging
import os

from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.errors import GenericInferenceToolkitError
from sagemaker_inference.transformer import Transformer

from .. import codecs, inference
from ..environment import INFERENCE_BATCH_SIZE_ENV, INFERENCE_PRECISION_ENV, MODEL_SERVER_WORKERS_ENV, OUTPUT_FORMAT_ENV
from ..errors import SagebertError
from .responses import INTERNAL_ERROR
from .settings import MAX_TEXTS_ENV, cpu_count

log = logging.getLogger(__name__)


def _as_toolkit_error(exc: SagebertError) -> GenericInferenceToolkitError:
    body = json.dumps({"error": exc.message, "fix": exc.fix})
    return GenericInferenceToolkitError(exc.http_status, body, exc.message[:200])


def _request_header(context, name: str) -> str | None:
    if context is None:
        return None
    properties = context.request_processor[0].get_request_properties()
    return properties.get(name) or properties.get(name.lower())


class SagebertInferenceHandler(DefaultInferenceHandler):
    """The toolkit's handler interface, answered by sagebert.inference."""

    def default_model_fn(self, model_dir, context=None):
        workers = int(os.environ.get(MODEL_SERVER_WORKERS_ENV) or 1)
        import torch

        torch.set_num_threads(max(1, cpu_count() // max(workers, 1)))
        try:
            return inference.model_fn(
                model_dir,
                os.environ.get(INFERENCE_PRECISION_ENV, "auto"),
                int(os.environ.get(INFERENCE_BATCH_SIZE_ENV) or inference.DEFAULT_BATCH_SIZE),
            )
        except SagebertError as exc:
            raise _as_toolkit_error(exc) from exc

    def default_input_fn(self, input_data, content_type, context=None):
        try:
            return inference.input_fn(input_data, content_type, int(os.environ.get(MAX_TEXTS_ENV) or 10_000))
        except SagebertError as exc:
            raise _as_toolkit_error(exc) from exc

    def default_predict_fn(self, data, model, context=None):
        return inference.predict_fn(data, model)

    def default_output_fn(self, prediction, accept, context=None):
        try:
            negotiated = codecs.negotiate_accept(
                accept, os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or codecs.JSON
            )
            fmt = codecs.output_format(
                _request_header(context, codecs.CUSTOM_ATTRIBUTES),
                (os.environ.get(OUTPUT_FORMAT_ENV) or "predictions").lower(),
            )
        except SagebertError as exc:
            raise _as_toolkit_error(exc) from exc
        return inference.output_fn(prediction, negotiated, fmt)


class SagebertTransformer(Transformer):
    """The toolkit's Transformer with sagebert's handlers and JSON errors without tracebacks."""

    def __init__(self):
        super().__init__(default_inference_handler=SagebertInferenceHandler())

    def _validate_user_module_and_set_functions(self):
        handler = self._default_inference_handler
        self._model_fn = handler.default_model_fn
        self._input_fn = handler.default_input_fn
        self._predict_fn = handler.default_predict_fn
        self._output_fn = handler.default_output_fn
        self._transform_fn = self._default_transform_fn
        self._pre_model_fn = None
        self._model_warmup_fn = None

    @staticmethod
    def handle_error(context, inference_exception, trace):
        status = inference_exception.status_code
        body = inference_exception.message
        if status >= 500 or not body.startswith("{"):
            log.error("inference failed (%s): %s", status, trace)
            if not body.startswith("{"):
                body = json.dumps({"error": INTERNAL_ERROR})
        context.set_response_status(code=status, phrase=(inference_exception.phrase or "error").replace("\n", " "))
        context.set_response_content_type(0, codecs.JSON)
        return [body]
