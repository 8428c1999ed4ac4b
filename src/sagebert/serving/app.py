"""The Flask app: GET /ping, POST /invocations, GET /execution-parameters.

``create_app(holder, settings)`` takes a ModelHolder, so tests can give it a tiny model, a model
still loading, or one that failed to load. /ping answers 200 only once the model is loaded AND a
warm-up prediction succeeded in this process; it never touches the model, so it stays fast while
inference is busy. Client mistakes are 4xx with a JSON reason; anything else is a 500 whose
traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, request

from .. import codecs
from ..errors import ModelNotReadyError, SagebertError
from .batching import MicroBatcher
from .responses import install_error_handlers, json_response
from .settings import ServingSettings

log = logging.getLogger(__name__)

WARM_UP_TEXT = "sagebert warm-up: Just happened a terrible car crash"


class ModelHolder:
    """The served model and its readiness: loading → ready (after a warm-up), or failed."""

    def __init__(
        self, loader: Callable[[], object] | None = None, model: object | None = None, micro_batch_texts: int = 64
    ):
        self._loader = loader
        self.model = model
        self.error: str | None = None
        self._warm_pid: int | None = None
        self._micro_batch_texts = micro_batch_texts
        self.batcher: MicroBatcher | None = self._batcher() if model is not None else None

    @classmethod
    def from_model_dir(cls, model_dir: Path, settings: ServingSettings) -> ModelHolder:
        """A holder that loads ``model_dir`` with the settings' precision and batch size."""
        from ..inference import model_fn

        return cls(
            loader=lambda: model_fn(model_dir, settings.precision, settings.batch_size),
            micro_batch_texts=settings.micro_batch_texts,
        )

    def _batcher(self) -> MicroBatcher:
        return MicroBatcher(self._predict_texts, self._micro_batch_texts)

    def _predict_texts(self, texts: list[str]):
        return self.model.predict(texts)  # type: ignore[union-attr]

    def load(self) -> ModelHolder:
        """Load now (in this thread); a failure is kept (and logged), not raised."""
        started = time.monotonic()
        try:
            self.model = self._loader()  # type: ignore[misc]
            self.batcher = self._batcher()
            log.info("model ready in %.2f s", time.monotonic() - started)
        except Exception as exc:
            self.error = str(exc) if isinstance(exc, SagebertError) else f"{type(exc).__name__}: {exc}"
            log.exception("loading the model failed: %s", self.error)
        return self

    def load_in_background(self) -> ModelHolder:
        threading.Thread(target=self.load, name="sagebert-model-loader", daemon=True).start()
        return self

    def warm_up(self) -> bool:
        """One prediction in this process; /ping turns 200 once it succeeds."""
        import os

        if self.model is None:
            return False
        try:
            self.batcher.submit([WARM_UP_TEXT])  # type: ignore[union-attr]
        except Exception as exc:
            self.error = f"warm-up prediction failed: {type(exc).__name__}: {exc}"
            log.exception(self.error)
            return False
        self._warm_pid = os.getpid()
        return True

    @property
    def ready(self) -> bool:
        import os

        return self.model is not None and self.error is None and self._warm_pid == os.getpid()

    def require_ready(self) -> None:
        if not self.ready:
            raise ModelNotReadyError(
                f"The model is not ready: {self.error or 'still loading'}.",
                "Retry once GET /ping answers 200; the endpoint log says why if it never does.",
            )

    def predict(self, texts: list[str]) -> codecs.Predictions:
        self.require_ready()
        items = self.batcher.submit(texts)  # type: ignore[union-attr]
        return codecs.Predictions(tuple(items), tuple(self.model.label_names))  # type: ignore[union-attr]


def create_app(holder: ModelHolder, settings: ServingSettings) -> Flask:
    """The WSGI app serving ``holder``'s model under ``settings``."""
    app = Flask("sagebert")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    app.extensions["sagebert"] = holder

    @app.get("/ping")
    def ping() -> Response:
        if holder.ready:
            return json_response({"status": "healthy"}, 200)
        return json_response(
            {"status": "unhealthy" if holder.error else "loading", "reason": holder.error or "loading"}, 503
        )

    @app.post("/invocations")
    def invocations() -> Response:
        holder.require_ready()
        accept = codecs.negotiate_accept(request.headers.get("Accept"), settings.default_accept)
        custom = request.headers.get(codecs.CUSTOM_ATTRIBUTES)
        fmt = codecs.output_format(custom, settings.output_format)
        texts = codecs.decode(request.get_data(cache=False), request.headers.get("Content-Type"), settings.max_texts)
        predictions = holder.predict(texts)
        body, content_type = codecs.encode(predictions, accept, fmt)
        response = Response(body, status=200, content_type=content_type)
        if custom is not None:
            response.headers[codecs.CUSTOM_ATTRIBUTES] = custom
        return response

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return json_response(
            {
                "MaxConcurrentTransforms": settings.max_concurrent_transforms,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": int(max(1, settings.max_payload_mb)),
            },
            200,
        )

    @app.errorhandler(SagebertError)
    def user_error(error: SagebertError) -> Response:
        if error.http_status >= 500:
            log.warning("%s", error)
        return json_response({"error": error.message, "fix": error.fix}, error.http_status)

    install_error_handlers(app, settings.max_payload_mb)
    return app
