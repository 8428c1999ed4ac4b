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

With SAGEMAKER_MULTI_MODEL=true it runs multi-model-server behind a small front instead
(serving.mms).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from .. import logs
from ..errors import SagebertError
from ..serving.settings import ServingSettings

log = logging.getLogger("sagebert.serve")

GRACEFUL_TIMEOUT = 25  # SageMaker sends SIGKILL 30 s after SIGTERM
FRONT_THREADS = 32


def gunicorn_options(settings: ServingSettings, gpu: bool = False) -> dict:
    """gunicorn's configuration for the single-model server (no preloading on GPUs)."""
    return {
        **_common_options(settings),
        "workers": settings.workers,
        "threads": settings.threads,
        "preload_app": not gpu,
        "post_fork": _post_fork,
        "post_worker_init": _post_worker_init,
    }


def _common_options(settings: ServingSettings) -> dict:
    return {
        "bind": f"0.0.0.0:{settings.port}",
        "worker_class": "gthread",
        "timeout": settings.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 75,  # longer than the SageMaker front end's idle time, so it closes first
        "worker_tmp_dir": "/dev/shm",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "sagebert",
    }


def _post_fork(server, worker) -> None:
    import torch

    if torch.cuda.is_available():
        # No preloading on GPUs (forking after CUDA starts is unsafe): each worker takes its own
        # GPU, then loads the model onto it.
        device = (worker.age - 1) % torch.cuda.device_count()
        torch.cuda.set_device(device)
        log.info("worker %s: GPU %d", worker.pid, device)
        return
    threads = server.app.settings.torch_threads_per_worker
    torch.set_num_threads(threads)
    if server.app.holder.model is not None:
        server.app.holder.model.threads = threads
    log.info("worker %s: %d torch thread(s)", worker.pid, threads)


def _post_worker_init(worker) -> None:
    if worker.app.holder.warm_up():
        log.info("worker %s warmed up and ready", worker.pid)


def run_gunicorn(settings: ServingSettings, options: dict, load: Callable[[object], object]) -> None:
    """Run gunicorn with ``options``; ``load(application)`` builds the WSGI app (in the master if preloading)."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):
        def __init__(self) -> None:
            self.settings = settings
            self.holder = None
            super().__init__()

        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return load(self)

    Application().run()


def serve_single_model(settings: ServingSettings) -> None:
    """Serve the model in settings.model_dir until SIGTERM."""
    import torch

    from ..serving.app import ModelHolder, create_app

    gpu = torch.cuda.is_available()

    def load(application):
        if not gpu:
            torch.set_num_threads(settings.torch_threads_per_worker)
        application.holder = ModelHolder.from_model_dir(settings.model_dir, settings).load()
        app = create_app(application.holder, settings)
        if not gpu:
            import gc

            # Keep the garbage collector off the objects the workers inherit: its bookkeeping
            # writes would copy their memory pages into every worker.
            gc.collect()
            gc.freeze()
        return app

    log.info(
        "serving %s on port %d: %d worker(s) x %d thread(s), precision %s%s",
        settings.model_dir,
        settings.port,
        settings.workers,
        settings.threads,
        settings.precision,
        ", one model copy per GPU" if gpu else "",
    )
    run_gunicorn(settings, gunicorn_options(settings, gpu), load)


def serve_multi_model_front(settings: ServingSettings, backend_url: str) -> None:
    """The front of a multi-model endpoint (see serving.mme_front), until SIGTERM."""
    from ..serving.mme_front import Backend, create_front_app

    options = {**_common_options(settings), "workers": 1, "threads": FRONT_THREADS}
    backend = Backend(backend_url, timeout=settings.timeout + 5, pool_size=FRONT_THREADS)
    run_gunicorn(settings, options, lambda application: create_front_app(backend, settings))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `docker run IMAGE serve`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    logs.configure()
    try:
        settings = ServingSettings.from_env()
    except SagebertError as exc:
        log.error("cannot start the server: %s", exc)
        return 2
    if argv[:1] == ["--multi-model-front"]:
        serve_multi_model_front(settings, argv[1])
        return 0
    if settings.multi_model:
        from ..serving.mms import run_multi_model_server

        return run_multi_model_server(settings)
    serve_single_model(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
