"""The handler service multi-model-server loads for every model (SAGEMAKER_HANDLER).

MMS insists that this module define exactly ONE class (it counts the classes defined here, not
those imported), so the helpers are functions. Each request goes through the same
sagebert.inference functions as the Flask server (input_fn → predict_fn → output_fn), with the
settings of serving.settings. Errors answer a JSON reason with their status code, never a
traceback (that goes to the log).
"""

from __future__ import annotations

import json
import logging

from sagebert import codecs, inference
from sagebert.errors import SagebertError
from sagebert.serving import settings as serving_settings
from sagebert.serving.responses import INTERNAL_ERROR

log = logging.getLogger(__name__)


def _request_header(context, index: int, name: str) -> str | None:
    processors = context.request_processor or []
    properties = processors[min(index, len(processors) - 1)].get_request_properties() if processors else {}
    return properties.get(name) or properties.get(name.lower())


def _answer(model: inference.InferenceModel, body: bytes, context, index: int) -> tuple[int, bytes | str, str]:
    settings = serving_settings.current()
    try:
        accept = codecs.negotiate_accept(_request_header(context, index, "Accept"), settings.default_accept)
        fmt = codecs.output_format(_request_header(context, index, codecs.CUSTOM_ATTRIBUTES), settings.output_format)
        texts = inference.input_fn(
            body or b"",
            _request_header(context, index, "Content-Type"),
            settings.max_texts,
            plain_text_lines=settings.batch_transform,
        )
        answer, content_type = inference.output_fn(inference.predict_fn(texts, model), accept, fmt)
        return 200, answer, content_type
    except SagebertError as exc:
        return exc.http_status, json.dumps({"error": exc.message, "fix": exc.fix}), codecs.JSON
    except Exception:
        log.exception("inference failed")
        return 500, json.dumps({"error": INTERNAL_ERROR}), codecs.JSON


class HandlerService:
    """MMS's entry point for one model: initialize(context) loads it, handle(data, context) serves it."""

    def __init__(self):
        self.model: inference.InferenceModel | None = None

    def initialize(self, context) -> None:
        """Load the model MMS registered, with this worker's share of the CPUs."""
        import torch

        settings = serving_settings.current()
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
            status, answer, content_type = _answer(self.model, request.get("body"), context, index)  # type: ignore[arg-type]
            if status != 200:
                phrase = " ".join(json.loads(answer)["error"].split())[:200]  # Netty refuses line breaks
                context.set_response_status(code=status, phrase=phrase, idx=index)
            context.set_response_content_type(index, content_type)
            answers.append(answer)
        return answers
