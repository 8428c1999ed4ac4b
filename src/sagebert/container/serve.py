"""`serve`: the image's inference server (``docker run IMAGE serve``).

Single-model endpoints and batch transform get gunicorn + Flask, on 0.0.0.0:8080 (or
SAGEMAKER_BIND_TO_PORT). The model is loaded once in gunicorn's master before the workers fork
(with one torch thread: GNU OpenMP is not fork-safe once it has started threads), so on CPU every
worker shares its memory (copy-on-write) instead of holding a copy; each worker then sets its
torch thread count (granted CPUs / workers) and runs one warm-up prediction before it accepts
connections. Workers are threaded (serving.worker, gthread): /ping and queued requests are
answered while a forward pass runs, and requests queued together share forward passes
(serving.batching). A client that stays silent for SAGEBERT_CLIENT_TIMEOUT seconds while sending
its request or reading the answer is disconnected, one that has not sent its whole request within
SAGEBERT_REQUEST_READ_TIMEOUT gets a 408, and requests being read take one of a worker's request
slots (threads - 2, the rest refused at once), so slow clients cannot hold the threads.
No nginx in front: SageMaker's own front end already buffers clients and caps the body, gunicorn
handles keep-alive, and the app enforces the payload limit itself.

SIGTERM (scale-in, UpdateEndpoint, `docker stop`) makes gunicorn stop accepting; requests in
flight finish, or get a 503 if they cannot finish inside the grace period (SAGEBERT_STOP_GRACE,
8 s by default: inside Docker's default 10 s stop timeout and SageMaker's 30 s); the log says
which; then it exits 0.

With SAGEMAKER_MULTI_MODEL=true it runs multi-model-server behind a small front instead
(serving.mms).
"""

from __future__ import annotations

import logging
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from .. import logs
from ..errors import SagebertError
from ..serving.resources import gpu_count
from ..serving.settings import PING_RESERVED_THREADS, ServingSettings
from .driver_check import check_this_host

log = logging.getLogger("sagebert.serve")

BIND_HOST = "0.0.0.0"  # SageMaker reaches the container from outside it
FRONT_THREADS = 32
WORKER_CLASS = "sagebert.serving.worker.SagebertWorker"


def gunicorn_options(settings: ServingSettings, gpu: bool = False) -> dict:
    """gunicorn's configuration for the single-model server (no preloading on GPUs)."""
    return {
        **_common_options(settings),
        "workers": settings.workers,
        "threads": settings.threads,
        "preload_app": not gpu,
        "pre_fork": _pre_fork,
        "post_fork": _post_fork,
        "post_worker_init": _post_worker_init,
    }


def _common_options(settings: ServingSettings) -> dict:
    return {
        "bind": f"{BIND_HOST}:{settings.port}",
        "worker_class": WORKER_CLASS,
        "when_ready": lambda server: limit_client_silence(server.LISTENERS, settings.client_timeout),
        "timeout": settings.timeout,
        "graceful_timeout": settings.stop_grace,
        "keepalive": 75,  # longer than the SageMaker front end's idle time, so it closes first
        "worker_tmp_dir": "/dev/shm",
        "accesslog": None,  # no line per request: /ping alone would write one every few seconds
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "logger_class": _root_logger_class(),
        "proc_name": "sagebert",
    }


def _root_logger_class() -> type:
    from gunicorn.glogging import Logger

    class RootLogger(Logger):
        """gunicorn's own lines (workers booting, timing out) through the root logger's handler,
        so they share SAGEBERT_LOG_FORMAT with sagebert's."""

        def setup(self, cfg) -> None:
            super().setup(cfg)
            self.error_log.handlers[:] = []
            self.error_log.propagate = True

    return RootLogger


def limit_client_silence(listeners: Iterable, seconds: int) -> None:
    """Make every connection accepted on ``listeners`` give up on a client that sends or reads
    nothing for ``seconds`` (SO_RCVTIMEO/SO_SNDTIMEO, which accepted sockets inherit): a slow or
    short body then frees its thread instead of holding it until the client leaves."""
    timeval = struct.pack("ll", seconds, 0)
    for listener in listeners:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def choose_gpu(slots_in_use: Iterable[int | None], gpus: int) -> int:
    """The GPU for a new worker: the least used one (the lowest on a tie), so a worker that
    replaces a dead one takes its GPU, however many workers were started before."""
    load = Counter(slot for slot in slots_in_use if slot is not None)
    return min(range(gpus), key=lambda slot: (load[slot], slot))


def _pre_fork(server, worker) -> None:
    # In the master, before the fork: the live workers say which GPUs are taken.
    gpus = gpu_count()
    worker.gpu_slot = (
        choose_gpu((getattr(w, "gpu_slot", None) for w in server.WORKERS.values()), gpus) if gpus else None
    )


def _post_fork(server, worker) -> None:
    import torch

    if worker.gpu_slot is not None:
        # No preloading on GPUs (forking after CUDA starts is unsafe): each worker takes its own
        # GPU, then loads the model onto it.
        torch.cuda.set_device(worker.gpu_slot)
        log.info("worker %s: GPU %d", worker.pid, worker.gpu_slot)
        return
    threads = server.app.settings.torch_threads_per_worker
    torch.set_num_threads(threads)
    if server.app.holder.model is not None:
        server.app.holder.model.intra_op_threads = threads
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

    driver = check_this_host(batch_transform=settings.batch_transform)
    gpu = driver.ok and torch.cuda.is_available()

    def load(application):
        if not driver.ok:
            # No model on a host whose driver cannot run it: every worker's /ping says why (503).
            application.holder = ModelHolder(settings=settings)
            application.holder.error = driver.message
            return create_app(application.holder, settings)
        if not gpu:
            torch.set_num_threads(1)  # workers set their own after the fork
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
        "serving %s on port %d: %d worker(s) x %d thread(s) (%d CPU(s) granted), precision %s%s",
        settings.model_dir,
        settings.port,
        settings.workers,
        settings.threads,
        settings.cpus,
        settings.precision,
        ", one model copy per GPU" if gpu else "",
    )
    run_gunicorn(settings, gunicorn_options(settings, gpu), load)


def serve_multi_model_front(settings: ServingSettings, backend_url: str) -> None:
    """The front of a multi-model endpoint (see serving.mme_front), until SIGTERM."""
    from ..serving.app import RequestSlots
    from ..serving.mme_front import Backend, create_front_app

    options = {**_common_options(settings), "workers": 1, "threads": FRONT_THREADS}
    backend = Backend(backend_url, timeout=settings.timeout + 5, pool_size=FRONT_THREADS)

    def load(application):
        application.slots = RequestSlots(FRONT_THREADS - PING_RESERVED_THREADS)
        return create_front_app(backend, settings, application.slots)

    run_gunicorn(settings, options, load)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `docker run IMAGE serve`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    logs.configure("INFO")
    try:
        settings = ServingSettings.from_env()
    except SagebertError as exc:
        log.error("cannot start the server: %s", exc)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    if argv[:1] == ["--multi-model-front"]:
        serve_multi_model_front(settings, argv[1])
        return 0
    if settings.multi_model:
        from ..serving.mms import run_multi_model_server

        if not check_this_host(batch_transform=settings.batch_transform).ok:
            return 2  # the reason is in the log; SageMaker reports the container as failed
        return run_multi_model_server(settings)
    serve_single_model(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
