"""The front of a multi-model endpoint: SageMaker's port, in front of multi-model-server.

Every call of the multi-model contract (POST/GET /models, GET/DELETE /models/<name>,
POST /models/<name>/invoke) is passed to MMS unchanged, with two exceptions:

- GET /ping is 200 only if MMS answers AND every loaded model has a live worker. MMS's own /ping
  answers HTTP 200 even when it knows a model's workers are dead (MMS issue #1027; only its body
  says "Unhealthy"), which would keep a broken instance in service while requests to that model
  hang.
- POST /models first checks the model directory (a clear 400 instead of a model that loads
  "successfully" and then fails every request) and the memory left (507 when the model would not
  fit, so that SageMaker unloads others and retries, instead of the kernel killing a worker).

No torch here: this process stays small.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import urllib3
from flask import Flask, Response, request

from .responses import install_error_handlers, json_response
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
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WORKER_BASELINE_MB = 300  # a model worker's Python, torch and tokenizer before the weights


def check_model_dir(url: str) -> tuple[str, str] | None:
    """(problem, fix) if ``url`` is not a loadable sagebert model directory, else None."""
    directory = Path(url)
    if not directory.is_dir():
        return (
            f"The model directory {url} does not exist.",
            "Check the model's S3 key: SageMaker extracts <TargetModel>.tar.gz there before loading it.",
        )
    names = {p.name for p in directory.iterdir()}
    if "config.json" not in names:
        return (
            f"{url} holds no model: config.json is missing (found: {', '.join(sorted(names)[:8]) or 'nothing'}).",
            "Upload the model.tar.gz of a sagebert training job; its files must sit at the archive root.",
        )
    if not names & set(WEIGHT_FILES):
        return (
            f"{url} has no weights file (model.safetensors).",
            "Upload the unmodified model.tar.gz of a training job.",
        )
    try:
        json.loads((directory / "config.json").read_text())
    except (ValueError, OSError) as exc:
        return (
            f"{url}/config.json is not valid JSON ({exc}).",
            "Upload the unmodified model.tar.gz of a training job.",
        )
    return None


def memory_available_mb() -> float:
    """Memory this container may still use: its cgroup's limit minus usage (page cache excluded), else the host's."""
    import psutil

    host = psutil.virtual_memory().available / 2**20
    for limit_file, usage_file, stat_file, cache_key in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat", "inactive_file"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "/sys/fs/cgroup/memory/memory.stat",
            "total_inactive_file",
        ),
    ):
        try:
            limit_text = Path(limit_file).read_text().strip()
            if limit_text == "max" or int(limit_text) >= 2**60:
                return host
            stat = dict(line.split() for line in Path(stat_file).read_text().splitlines())
            usage = int(Path(usage_file).read_text()) - int(stat.get(cache_key, 0))
            return min(host, (int(limit_text) - usage) / 2**20)
        except (OSError, ValueError):
            continue
    return host


def memory_needed_mb(url: str, workers: int) -> float:
    weights = sum((Path(url) / name).stat().st_size for name in WEIGHT_FILES if (Path(url) / name).exists())
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
        """(healthy, reason).

        MMS's /ping answers HTTP 200 whatever its state; its body says "Healthy", "Partial Healthy"
        or "Unhealthy" (fewer live worker processes than models need). That body is the truth,
        except while a model is loading, whose workers are not up yet: then the models already
        loaded are checked one by one instead.
        """
        try:
            answer = self.call("GET", "/ping", timeout=1.0)
            if answer.status != 200:
                return False, f"multi-model-server's /ping answered {answer.status}"
            status = json.loads(answer.data).get("status", "")
            names, token = [], ""
            while True:
                listing = json.loads(
                    self.call(
                        "GET", "/models?limit=100" + (f"&next_page_token={token}" if token else ""), timeout=1.0
                    ).data
                )
                names += [m["modelName"] for m in listing.get("models", [])]
                token = listing.get("nextPageToken")
                if not token:
                    break
            with self.lock:
                loading = set(self.loading)
            if status != "Healthy" and not loading:
                return False, f"multi-model-server reports {status or 'no status'}: a model's workers are not running"
            for name in (n for n in names if n not in loading):
                described = json.loads(self.call("GET", f"/models/{name}", timeout=1.0).data)
                model = described[0] if isinstance(described, list) else described
                if not any(w.get("status") == "READY" for w in model.get("workers", [])):
                    return False, f"model {name} has no worker running"
        except (urllib3.exceptions.HTTPError, ValueError, KeyError, IndexError, AttributeError) as exc:
            return False, f"multi-model-server does not answer ({type(exc).__name__})"
        return True, f"{len(names)} model(s) loaded"


def create_front_app(backend: Backend, settings: ServingSettings) -> Flask:
    """The front's WSGI app, passing the multi-model contract through to ``backend``."""
    app = Flask("sagebert-mme")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes

    def passthrough(path: str, body: bytes | None = None) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        query = request.query_string.decode()
        try:
            answer = backend.call(
                request.method,
                path + (f"?{query}" if query else ""),
                body if body is not None else request.get_data(),
                headers,
            )
        except urllib3.exceptions.HTTPError as exc:
            log.error("multi-model-server did not answer %s %s: %s", request.method, path, exc)
            return json_response({"error": "The model server did not answer; the endpoint's log has the details."}, 502)
        returned = {k: v for k, v in answer.headers.items() if k.lower() in RETURNED_HEADERS}
        return Response(answer.data, status=answer.status, headers=returned)

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
        body = request.get_data()
        try:
            spec = json.loads(body)
            name, url = spec["model_name"], spec["url"]
        except (ValueError, KeyError, TypeError):
            return json_response(
                {
                    "error": "The body must be JSON with model_name and url.",
                    "fix": 'POST {"model_name": "m", "url": "/opt/ml/models/m/model"}',
                },
                400,
            )
        problem = check_model_dir(url)
        if problem:
            return json_response({"error": problem[0], "fix": problem[1]}, 400)
        needed, available = memory_needed_mb(url, settings.workers), memory_available_mb()
        if needed > available:
            return json_response(
                {
                    "error": f"Not enough memory to load {name}: it needs about {needed:.0f} MB, "
                    f"{available:.0f} MB are free.",
                    "fix": "SageMaker unloads other models and retries; or use an instance with more memory.",
                },
                507,
            )
        with backend.lock:
            backend.loading.add(name)
        try:
            return passthrough("/models", body)
        finally:
            with backend.lock:
                backend.loading.discard(name)

    @app.route("/models", methods=["GET"])
    @app.route("/models/<name>", methods=["GET", "DELETE"])
    @app.route("/models/<name>/invoke", methods=["POST"])
    @app.post("/invocations")
    def forward(name: str | None = None) -> Response:
        return passthrough(request.path)

    install_error_handlers(app, settings.max_payload_mb)
    return app
