"""The handler service multi-model-server loads for every model (SAGEMAKER_HANDLER).

MMS insists that this module define exactly ONE class (it counts the classes defined here, not
those imported), so the helpers are functions. ``initialize`` loads the model with
sagebert.serving.inference.model_fn; each request of MMS's batch is answered by serving.answer.answer,
the function the Flask server's /invocations calls too (decode → predict → encode), with the
model's own predict in place of the Flask server's micro-batcher. Settings are read from the
environment once, when MMS creates the service. Errors answer serving.answer's JSON body with
their status code, never a traceback (that goes to the log).
"""

from __future__ import annotations

import json
import logging

from sagebert import codecs
from sagebert.errors import SagebertError
from sagebert.serving import inference
from sagebert.serving.answer import answer, error_answer
from sagebert.serving.settings import ServingSettings

log = logging.getLogger(__name__)


def _request_header(context, index: int, name: str) -> str | None:
    processors = context.request_processor or []
    properties = processors[min(index, len(processors) - 1)].get_request_properties() if processors else {}
    return properties.get(name) or properties.get(name.lower())


def _answer(
    model: inference.InferenceModel, settings: ServingSettings, body: bytes, context, index: int
) -> tuple[int, bytes, str]:
    try:
        content, content_type = answer(
            body or b"",
            lambda name: _request_header(context, index, name),
            settings,
            lambda texts: inference.predict_fn(texts, model),
        )
        return 200, content, content_type
    except Exception as exc:
        if not isinstance(exc, SagebertError):
            log.exception("inference failed")
        status, content = error_answer(exc)
        return status, content, codecs.JSON


class HandlerService:
    """MMS's entry point for one model: initialize(context) loads it, handle(data, context) serves it.

    MMS creates it without arguments; tests pass ``settings`` (by default read from the
    environment)."""

    def __init__(self, settings: ServingSettings | None = None):
        self.settings = settings or ServingSettings.from_env()
        self.model: inference.InferenceModel | None = None

    def initialize(self, context) -> None:
        """Load the model MMS registered, with this worker's share of the CPUs."""
        import torch

        settings = self.settings
        torch.set_num_threads(settings.torch_threads_per_worker)
        self.model = inference.model_fn(
            context.system_properties.get("model_dir"), settings.precision, settings.batch_size
        )
        log.info(
            "model worker: %d worker(s) per model x %d torch thread(s), %d CPU(s) granted",
            settings.workers,
            settings.torch_threads_per_worker,
            settings.cpus,
        )

    def handle(self, data, context) -> list:
        """One answer per request of MMS's batch, each with its own status and content type."""
        answers = []
        for index, request in enumerate(data or []):
            status, content, content_type = _answer(self.model, self.settings, request.get("body"), context, index)  # type: ignore[arg-type]
            if status != 200:
                phrase = " ".join(json.loads(content)["error"].split())[:200]  # Netty refuses line breaks
                context.set_response_status(code=status, phrase=phrase, idx=index)
            context.set_response_content_type(index, content_type)
            answers.append(content)
        return answers
