"""`serve`: the image's inference server (``docker run IMAGE serve``).

Single-model endpoints and batch transform get gunicorn + Flask, on 0.0.0.0:8080 (or
SAGEMAKER_BIND_TO_PORT). The model is loaded once in gunicorn's master before the workers fork,
so on CPU every worker shares its memory (copy-on-write) instead of holding a copy; each worker
then sets its torch thread count (CPUs / workers) and runs one warm-up prediction before its
/ping says 200. Workers are threaded (gthread): /ping and queued requests are answered while a
forward pass runs, and requests queued together share one forward pass (serving.batching).
No nginx in front: SageMaker's own front end already buffers clients and caps the body, gunicorn
handles keep-alive, and the app enforces the payload limit itself.

SIGTERM (scale-in, UpdateEndpoint, `docker stop`) makes gunicorn stop accepting, let in-flight
requests finish (graceful timeout 25 s, inside SageMaker's 30 s), and exit 0.

With SAGEMAKER_MULTI_MODEL=true it runs multi-model-server instead (serving.mms).
"""
from __future__ import annotations

import logging
import sys

from .. import logs
from ..errors import SagebertError
from ..serving.settings import ServingSettings

log = logging.getLogger("sagebert.serve")

GRACEFUL_TIMEOUT = 25  # SageMaker sends SIGKILL 30 s after SIGTERM


def gunicorn_options(settings: ServingSettings) -> dict:
    """gunicorn's configuration for these settings."""
    return {
        "bind": f"0.0.0.0:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": settings.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 75,  # longer than the SageMaker front end's idle time, so it closes first
        "preload_app": True,
        "worker_tmp_dir": "/dev/shm",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "sagebert",
        "post_fork": _post_fork,
        "post_worker_init": _post_worker_init,
    }


def _post_fork(server, worker) -> None:
    import torch

    threads = server.app.settings.torch_threads_per_worker
    torch.set_num_threads(threads)
    log.info("worker %s: %d torch thread(s)", worker.pid, threads)


def _post_worker_init(worker) -> None:
    holder = worker.app.holder
    if holder.warm_up():
        log.info("worker %s warmed up and ready", worker.pid)


def run_gunicorn(settings: ServingSettings) -> None:
    """Serve the model in settings.model_dir until SIGTERM."""
    from gunicorn.app.base import BaseApplication

    from ..serving.app import ModelHolder, create_app

    class Application(BaseApplication):
        def __init__(self) -> None:
            self.settings = settings
            self.holder = ModelHolder.from_model_dir(settings.model_dir, settings)
            super().__init__()

        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)

        def load(self):
            # Runs once in the master (preload_app): the workers inherit the loaded model.
            import torch

            torch.set_num_threads(settings.torch_threads_per_worker)
            self.holder.load()
            return create_app(self.holder, settings)

    Application().run()


def main() -> int:
    """Entry point of `docker run IMAGE serve`."""
    logs.configure()
    try:
        settings = ServingSettings.from_env()
    except SagebertError as exc:
        log.error("cannot start the server: %s", exc)
        return 2
    if settings.multi_model:
        from ..serving.mms import run_multi_model_server

        return run_multi_model_server(settings)
    log.info("serving %s on port %d: %d worker(s) x %d thread(s), precision %s", settings.model_dir, settings.port,
             settings.workers, settings.threads, settings.precision)
    run_gunicorn(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
