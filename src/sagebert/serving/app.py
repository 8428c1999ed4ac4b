"""The Flask app: GET /ping, POST /invocations, GET /execution-parameters.

``create_app(holder, settings)`` takes a ModelHolder, so tests can give it a tiny model, a model
that blocks, or one that failed to load. Client mistakes are 4xx with a JSON reason; anything else
is a 500 whose traceback goes to the log, never to the client.

/ping is 200 only while this worker can answer: the model loaded, a warm-up prediction succeeded
in this process, and no forward pass has run longer than SAGEMAKER_MODEL_SERVER_TIMEOUT. It never
touches the model, and it always finds a free request thread: at most ``threads - 2`` requests
per worker may be read or wait on the model (RequestSlots, shared with the heads that
serving.worker reads slowly), later ones get a 503 at once and their connection is closed.

A request body is read in full (up to the payload limit, chunked or not) before any answer, so a
client that sends its whole body before reading (Python's http.client, most SDKs) sees the 413 or
400 instead of a broken pipe. A body over the limit is drained (bounded) and refused, never cut.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from flask import Flask, Response, g, request

from .. import codecs
from ..errors import ModelNotReadyError, RequestError, SagebertError
from .answer import answer
from .batching import InferenceUnavailableError, MicroBatcher
from .emf import ServingMetrics
from .responses import install_error_handlers, json_response, payload_too_large
from .settings import ServingSettings

log = logging.getLogger(__name__)

WARM_UP_TEXT = "sagebert warm-up: Just happened a terrible car crash"
READ_CHUNK = 1 << 16
DRAIN_EXTRA_BYTES = 64 << 20  # past the limit, read at most this much more before answering 413
BATCH_PAYLOAD_LIMIT_MB = 100  # the largest MaxPayloadInMB batch transform accepts


class RequestSlots:
    """The request threads of a worker that requests being read, or waiting on the model, may take
    (serving.worker takes one for a request whose headers come slowly); the others stay free for
    /ping. Past the cap a request is refused at once, never queued behind slow senders."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._taken = 0
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Take a slot; False when all are taken."""
        with self._lock:
            if self._taken >= self.cap:
                return False
            self._taken += 1
            return True

    def release(self) -> None:
        """Give back a slot taken by try_take."""
        with self._lock:
            self._taken -= 1

    def refusal(self) -> InferenceUnavailableError:
        """The 503 for a request that finds no slot free."""
        return InferenceUnavailableError(
            f"This worker already has {self.cap} requests being read or waiting for the model.",
            "Retry after a moment, or send fewer requests at once (and each one without pausing).",
        )

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold a slot while a request is read and answered; its 503 at once when none is free."""
        if not self.try_take():
            raise self.refusal()
        try:
            yield
        finally:
            self.release()


def close_after_refusal(response: Response) -> Response:
    """A 408, or a 503 for want of a slot, leaves the body unread: closing the connection spares the
    thread gunicorn's drain of a body that may come a byte at a time (serving.worker honours it)."""
    if response.status_code in (408, 503) and request.method == "POST":
        response.headers["Connection"] = "close"
    return response


class ModelHolder:
    """The served model and its readiness: loading → ready (after a warm-up), or failed.

    ``model`` has ``tokenize(texts) -> items`` (cheap, in the request's thread) and
    ``forward(items) -> predictions`` (run by the micro-batcher), and ``label_names``.
    """

    def __init__(
        self,
        loader: Callable[[], object] | None = None,
        model: object | None = None,
        settings: ServingSettings | None = None,
    ):
        self._loader = loader
        self.settings = settings or ServingSettings(model_dir=Path("/opt/ml/model"))
        self.model = model
        self.error: str | None = None
        self._warm_pid: int | None = None
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.batcher: MicroBatcher | None = self._batcher() if model is not None else None
        self.slots = RequestSlots(self.settings.inference_slots)

    @classmethod
    def from_model_dir(cls, model_dir: Path, settings: ServingSettings) -> ModelHolder:
        """A holder that loads ``model_dir`` with the settings' precision and batch size."""
        from . import inference

        return cls(
            loader=lambda: inference.model_fn(model_dir, settings.precision, settings.batch_size), settings=settings
        )

    def _batcher(self) -> MicroBatcher:
        return MicroBatcher(
            self.model.forward,  # type: ignore[union-attr]
            max_items=self.settings.micro_batch_texts,
            max_cost=self.settings.micro_batch_tokens,
            stuck_after=self.settings.timeout,
            merge=getattr(self.model, "batched", True),
        )

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

    def warm_up(self) -> bool:
        """One prediction in this process; /ping turns 200 once it succeeds."""
        if self.model is None:
            return False
        try:
            self.batcher.submit(self.model.tokenize([WARM_UP_TEXT]))  # type: ignore[union-attr]
        except Exception as exc:
            self.error = f"warm-up prediction failed: {type(exc).__name__}: {exc}"
            log.exception(self.error)
            return False
        self._warm_pid = os.getpid()
        return True

    @property
    def ready(self) -> bool:
        return self.model is not None and self.error is None and self._warm_pid == os.getpid()

    def health(self) -> tuple[int, dict]:
        """/ping's status and body."""
        if not self.ready:
            reason = self.error or "loading"
            return 503, {"status": "unhealthy" if self.error else "loading", "reason": reason}
        stuck = self.batcher.stuck_for()  # type: ignore[union-attr]
        if stuck:
            reason = f"a forward pass has run for {stuck:.0f} s (limit {self.settings.timeout} s); restarting"
            return 503, {"status": "unhealthy", "reason": reason}
        return 200, {"status": "healthy", "requests_in_flight": self._in_flight}

    @property
    def in_flight(self) -> int:
        """Requests of this process waiting on the model now."""
        return self._in_flight

    def require_ready(self) -> None:
        if not self.ready:
            raise ModelNotReadyError(
                f"The model is not ready: {self.error or 'still loading'}.",
                "Retry once GET /ping answers 200; the endpoint log says why if it never does.",
            )

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Count a request waiting on the model; a 503 when this worker has no slot left."""
        with self._in_flight_lock:
            if self._in_flight >= self.settings.inference_slots:
                raise InferenceUnavailableError(
                    f"This worker already has {self._in_flight} requests waiting for the model.",
                    "Retry after a moment, or send fewer requests at once.",
                )
            self._in_flight += 1
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def predict(self, texts: Sequence[str]) -> codecs.Predictions:
        """One Prediction per text, from the micro-batcher; 503 when not ready or no slot is free."""
        self.require_ready()
        # Tokenized before it counts as in flight: what /ping and the SIGTERM drain count must already
        # be on its way into the batcher's queue, or it would be refused while counted as finishing.
        encoded = self.model.tokenize(texts)  # type: ignore[union-attr]
        with self.admitted():
            items = self.batcher.submit(encoded)  # type: ignore[union-attr]
        return codecs.Predictions(tuple(items), tuple(self.model.label_names))  # type: ignore[union-attr]


def _drain(stream, size: int) -> None:
    while size > 0:
        chunk = stream.read(min(READ_CHUNK, size))
        if not chunk:
            return
        size -= len(chunk)


def read_body(limit_mb: float) -> bytes:
    """The request body, at most ``limit_mb`` megabytes; a 413 after draining a larger one (bounded),
    a 400 for a body shorter than its Content-Length or badly chunked, a 408 for a client that
    stopped sending (the listening socket's SO_RCVTIMEO, see container.serve) or did not send the
    whole request within SAGEBERT_REQUEST_READ_TIMEOUT (serving.worker's deadline)."""
    try:
        return _read_body(request.environ["wsgi.input"], int(limit_mb * 2**20), limit_mb)
    except (BlockingIOError, TimeoutError) as exc:
        raise RequestError(
            f"The client did not send the request body in time ({exc or 'it stopped sending'}).",
            "Send the whole body without pausing.",
            http_status=408,
        ) from None
    except OSError as exc:  # what gunicorn raises for a body cut short or badly chunked
        raise RequestError(
            f"The request body could not be read ({type(exc).__name__}).", "Send a complete, well-formed body."
        ) from None


def _read_body(stream, limit: int, limit_mb: float) -> bytes:
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            _drain(stream, min(declared, limit + DRAIN_EXTRA_BYTES))
            raise payload_too_large(limit_mb)
        body = stream.read(declared) if declared else b""
        if len(body) < declared:
            raise RequestError(
                f"The body ended after {len(body)} of the {declared} bytes its Content-Length announced.",
                "Send the whole body, or the right Content-Length.",
            )
        return body
    if not request.environ.get("wsgi.input_terminated"):
        return b""  # no Content-Length and not chunked: HTTP says there is no body
    parts, size = [], 0
    while size <= limit:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    _drain(stream, DRAIN_EXTRA_BYTES)
    raise payload_too_large(limit_mb)


def _queue_waits(holder: ModelHolder) -> tuple[int, float, float]:
    return holder.batcher.take_queue_waits() if holder.batcher is not None else (0, 0.0, 0.0)


def create_app(holder: ModelHolder, settings: ServingSettings, metrics: ServingMetrics | None = None) -> Flask:
    """The WSGI app serving ``holder``'s model under ``settings``; ``metrics`` counts its
    /invocations answers (by default EMF lines on stdout, unless SAGEBERT_METRICS=off)."""
    app = Flask("sagebert")
    if metrics is None and settings.metrics:
        metrics = ServingMetrics(settings.metrics_model)
    if metrics is not None:
        metrics.queue_waits = metrics.queue_waits or (lambda: _queue_waits(holder))

        @app.after_request
        def count(response: Response) -> Response:
            if request.path == "/invocations":
                predictions = g.get("predictions")
                if predictions is not None:
                    labels = dict.fromkeys(predictions.label_names, 0)
                    for item in predictions.items:
                        labels[item.label] = labels.get(item.label, 0) + 1
                    metrics.record_predictions(len(predictions), sum(p.truncated for p in predictions.items), labels)
                metrics.record_status(response.status_code)
                metrics.maybe_flush()
            return response

    @app.get("/ping")
    def ping() -> Response:
        status, payload = holder.health()
        return json_response(payload, status)

    def predict(texts: Sequence[str]) -> codecs.Predictions:
        g.predictions = holder.predict(texts)  # counted by the metrics after the request
        return g.predictions

    def ready_body() -> bytes:
        body = read_body(settings.max_payload_mb)
        holder.require_ready()  # after the whole body is read: the client gets the 503, not a broken pipe
        return body

    @app.post("/invocations")
    def invocations() -> Response:
        with holder.slots.held():
            # The body is handed over without a name here, so answer() holds its only reference and
            # frees it once decoded, before the forward pass.
            content, content_type = answer(ready_body(), request.headers.get, settings, predict)
        response = Response(content, status=200, content_type=content_type)
        custom = request.headers.get(codecs.CUSTOM_ATTRIBUTES)
        if custom is not None:
            response.headers[codecs.CUSTOM_ATTRIBUTES] = custom
        return response

    app.after_request(close_after_refusal)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return json_response(
            {
                "MaxConcurrentTransforms": settings.max_concurrent_transforms,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": min(BATCH_PAYLOAD_LIMIT_MB, int(max(1, settings.max_payload_mb))),
            },
            200,
        )

    install_error_handlers(app, settings.max_payload_mb)
    return app
