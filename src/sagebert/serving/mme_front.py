"""The front of a multi-model endpoint: SageMaker's port, in front of multi-model-server.

It answers the multi-model contract (POST/GET /models, GET/DELETE /models/<name>,
POST /models/<name>/invoke, GET /ping) by passing on to MMS only what the contract holds:

- POST /models takes ``model_name`` and ``url`` from the JSON body and nothing else (no query
  string, no ``initial_workers``: MMS starts the configured workers per model, which is what the
  memory check counted). The name must be a plain name (letters, digits, ``.``, ``_``, ``-``; no
  ``/``), the url a model directory under /opt/ml/models. Then it checks the directory (a clear 400
  instead of a model that loads "successfully" and fails every request; the reason names what is
  missing, never what the directory holds) and the memory left (507 when the model would not
  fit, so that SageMaker unloads others and retries, instead of the kernel killing a worker).
- Other calls go to MMS without their query string, except GET /models' ``limit`` and
  ``next_page_token``.
- GET /ping costs one call to MMS (1 s timeout), whatever the number of models. MMS's /ping
  answers HTTP 200 in every state; its body says "Healthy", "Partial Healthy" (some model workers
  are not running; MMS restarts them) or "Unhealthy" (models are loaded but not one worker runs).
  The front answers 503 when MMS does not answer or says "Unhealthy" while no load is in
  progress; one model with dead workers does not take the instance out of service.

No torch here: this process stays small.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from urllib.parse import urlencode

import urllib3
from flask import Flask, Response, g, request

from .. import contract
from ..errors import RequestError
from .app import RequestSlots, close_after_refusal, read_body
from .resources import memory_available_mb
from .responses import error_message_response, error_response, install_error_handlers, json_response
from .settings import ServingSettings

log = logging.getLogger(__name__)

FORWARDED_HEADERS = (
    "content-type",
    "accept",
    "x-amzn-sagemaker-custom-attributes",
    "x-amzn-sagemaker-target-model",
    "x-amzn-sagemaker-inference-id",
)
RETURNED_HEADERS = ("content-type", "x-amzn-sagemaker-custom-attributes")
LIST_QUERY = ("limit", "next_page_token")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WORKER_BASELINE_MB = 300  # a model worker's Python, torch and tokenizer before the weights
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
PING_TIMEOUT_S = 1.0
MAX_URL_CHARS = 4096  # Linux's PATH_MAX
SHOWN_URL_CHARS = 200  # how much of a url an error message quotes back


def check_model_name(name: object) -> None:
    """A RequestError unless ``name`` is a plain model name (it becomes a path segment and a URL part)."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise RequestError(
            "model_name must be 1 to 255 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            'POST {"model_name": "m", "url": "/opt/ml/models/m/model"}',
        )


def check_model_dir(url: object, models_dir: Path) -> Path:
    """The model directory ``url`` names, if it is a loadable sagebert model under ``models_dir``;
    else a RequestError that says what is wrong (never what the directory holds)."""
    fix = 'POST {"model_name": "m", "url": "/opt/ml/models/m/model"}'
    if not isinstance(url, str) or not url:
        raise RequestError("url must be the model's directory.", fix)
    if len(url) > MAX_URL_CHARS or not url.isprintable():
        # A NUL made the path check raise ValueError, a long name ENAMETOOLONG: both were 500s.
        raise RequestError(
            f"url must be a path of at most {MAX_URL_CHARS} printable characters (no NUL, control or "
            "separator characters).",
            fix,
        )
    try:
        return _checked_model_dir(url, models_dir)
    except OSError as exc:
        raise RequestError(
            f"The model directory {url[:SHOWN_URL_CHARS]} cannot be read ({exc.strerror or type(exc).__name__}).",
            f"Load models from {models_dir}, where SageMaker extracts them.",
        ) from None


def _checked_model_dir(url: str, models_dir: Path) -> Path:
    shown = url[:SHOWN_URL_CHARS]
    root = models_dir.resolve()
    directory = Path(url).resolve()
    if directory != root and root not in directory.parents:
        raise RequestError(
            f"The model directory {shown} is not under {models_dir}.",
            f"Load models from {models_dir}, where SageMaker extracts them.",
        )
    if not directory.is_dir():
        raise RequestError(
            f"The model directory {shown} does not exist.",
            "Check the model's S3 key: SageMaker extracts <TargetModel>.tar.gz there before loading it.",
        )
    if not (directory / "config.json").is_file():
        raise RequestError(
            f"{shown} holds no model: config.json is missing.",
            "Upload the model.tar.gz of a sagebert training job; its files must sit at the archive root.",
        )
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        raise RequestError(
            f"{shown} has no weights file (model.safetensors).", "Upload the unmodified model.tar.gz of a training job."
        )
    try:
        json.loads((directory / "config.json").read_text())
    except (ValueError, OSError):
        raise RequestError(
            f"{shown}/config.json is not valid JSON.", "Upload the unmodified model.tar.gz of a training job."
        ) from None
    return directory


def memory_needed_mb(directory: Path, workers: int) -> float:
    """What ``workers`` MMS workers of the model in ``directory`` will take (each holds a copy)."""
    weights = sum((directory / name).stat().st_size for name in WEIGHT_FILES if (directory / name).is_file())
    return workers * (WORKER_BASELINE_MB + 1.3 * weights / 2**20)


class Backend:
    """multi-model-server on a loopback port, and which models it is loading right now."""

    def __init__(self, url: str, timeout: float, pool_size: int):
        self.url = url.rstrip("/")
        self.http = urllib3.PoolManager(maxsize=pool_size, retries=False)
        self.timeout = timeout
        self.loading: set[str] = set()
        self.lock = threading.Lock()

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
        timeout: float | None = None,
    ):
        return self.http.request(
            method,
            self.url + path,
            body=body,
            headers=headers or {},
            timeout=urllib3.Timeout(connect=1.0, read=timeout or self.timeout),
        )

    def health(self) -> tuple[bool, str]:
        """(healthy, reason), from one call to MMS's /ping (see the module docstring)."""
        try:
            answer = self.call("GET", "/ping", timeout=PING_TIMEOUT_S)
            status = json.loads(answer.data).get("status", "") if answer.status == 200 else ""
        except (urllib3.exceptions.HTTPError, ValueError, AttributeError) as exc:
            return False, f"multi-model-server does not answer ({type(exc).__name__})"
        if answer.status != 200:
            return False, f"multi-model-server's /ping answered {answer.status}"
        with self.lock:
            loading = sorted(self.loading)
        if status == "Healthy":
            return True, "every model's workers are running"
        if status == "Partial Healthy":
            return True, "some model workers are not running; multi-model-server restarts them"
        if loading:
            return True, f"loading {', '.join(loading)}"
        return False, f"multi-model-server reports {status or 'no status'}: no model worker is running"


def _forwarded_headers() -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}


def create_front_app(backend: Backend, settings: ServingSettings, slots: RequestSlots | None = None) -> Flask:
    """The front's WSGI app, passing the multi-model contract through to ``backend``. ``slots``
    caps the POSTs being read or passed through at once, so /ping always finds a thread."""
    app = Flask("sagebert-mme")

    @app.before_request
    def take_slot() -> Response | None:
        if slots is not None and request.method == "POST":
            if not slots.try_take():
                return error_response(slots.refusal())
            g.slot_taken = True
        return None

    @app.teardown_request
    def release_slot(_error: BaseException | None) -> None:
        if g.pop("slot_taken", False):
            slots.release()  # type: ignore[union-attr]

    app.after_request(close_after_refusal)

    def passthrough(path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        try:
            answer = backend.call(request.method, path, body, _forwarded_headers() if headers is None else headers)
        except urllib3.exceptions.HTTPError as exc:
            log.error("multi-model-server did not answer %s %s: %s", request.method, path, exc)
            return error_message_response("The model server did not answer; the endpoint's log has the details.", 502)
        returned = {k: v for k, v in answer.headers.items() if k.lower() in RETURNED_HEADERS}
        return Response(answer.data, status=answer.status, headers=returned)

    def model_path(name: str, suffix: str = "") -> str | None:
        return f"/models/{name}{suffix}" if MODEL_NAME.fullmatch(name) else None

    def no_such_model(name: str) -> Response:
        # MMS's own 404 body, so that an unknown model reads the same whether MMS or the front refused it.
        return json_response(
            {"code": 404, "type": "ModelNotFoundException", "message": f"Model not found: {name[:80]}"}, 404
        )

    @app.get("/ping")
    def ping() -> Response:
        healthy, reason = backend.health()
        if not healthy:
            log.warning("unhealthy: %s", reason)
        return json_response(
            {"status": "healthy" if healthy else "unhealthy", "reason": reason}, 200 if healthy else 503
        )

    @app.post("/models")
    def load_model() -> Response:
        body = read_body(settings.max_payload_mb)
        try:
            spec = json.loads(body)
            name, url = spec["model_name"], spec["url"]
        except (ValueError, KeyError, TypeError):
            return error_response(
                RequestError(
                    "The body must be JSON with model_name and url.",
                    'POST {"model_name": "m", "url": "/opt/ml/models/m/model"}',
                )
            )
        check_model_name(name)
        directory = check_model_dir(url, settings.models_dir)
        needed, available = memory_needed_mb(directory, settings.workers), memory_available_mb()
        if needed > available:
            return error_response(
                RequestError(
                    f"Not enough memory to load {name}: it needs about {needed:.0f} MB, {available:.0f} MB are free.",
                    "SageMaker unloads other models and retries; or use an instance with more memory.",
                    http_status=507,
                )
            )
        with backend.lock:
            backend.loading.add(name)
        try:
            return passthrough(
                "/models", json.dumps({"model_name": name, "url": url}).encode(), {"Content-Type": contract.JSON}
            )
        finally:
            with backend.lock:
                backend.loading.discard(name)

    @app.get("/models")
    def list_models() -> Response:
        query = urlencode([(k, v) for k, v in request.args.items(multi=True) if k in LIST_QUERY])
        return passthrough("/models" + (f"?{query}" if query else ""))

    @app.route("/models/<name>", methods=["GET", "DELETE"])
    def one_model(name: str) -> Response:
        path = model_path(name)
        return passthrough(path) if path else no_such_model(name)

    @app.post("/models/<name>/invoke")
    def invoke(name: str) -> Response:
        body = read_body(settings.max_payload_mb)
        path = model_path(name, "/invoke")
        return passthrough(path, body) if path else no_such_model(name)

    @app.post("/invocations")
    def invocations() -> Response:
        return passthrough("/invocations", read_body(settings.max_payload_mb))

    install_error_handlers(app, settings.max_payload_mb)
    return app
