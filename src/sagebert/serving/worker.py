"""The gunicorn worker of the Flask server: gthread, plus what a stuck model and a shutdown need.

- gthread's main loop heartbeats whatever its request threads do, so gunicorn's worker timeout
  never fires for a stuck forward pass. This worker stops heartbeating once a forward pass has run
  for a second: gunicorn then kills it (logging WORKER TIMEOUT) when the pass reaches
  SAGEMAKER_MODEL_SERVER_TIMEOUT, and starts a fresh one. Passes are bounded in size (the
  micro-batcher's slices), so only a stuck one runs that long.
- On SIGTERM it logs how many requests are in flight, lets them finish, and has the micro-batcher
  refuse (503) whatever would not finish inside the grace period, so every accepted request gets
  an answer before gunicorn's deadline.
- It heartbeats at most twice a second: gthread's loop heartbeats (a system call on a temporary
  file) after every event, 5 % of a worker's busy time in a profile of single-tweet requests.
- It answers in one write: gunicorn sends a response's headers and its body in two, which for a
  one-tweet answer costs a second system call and a second wake-up of the client (BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import time

from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger("sagebert.serve")

HEARTBEAT_PAUSE_AFTER_S = 1.0  # a forward pass running longer than this holds the heartbeat
HEARTBEAT_EVERY_S = 0.5  # at most one heartbeat per this many seconds (a quarter of a shorter timeout)
REPLY_MARGIN_S = 3.0  # before the grace period ends: time left to write the 503s


class _HeaderBuffer:
    """Stands in for the socket while gunicorn writes the headers, and keeps them."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


class OneWriteResponse(wsgi.Response):
    """gunicorn's Response, with the headers held back and sent with the first body bytes."""

    _held = b""

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        sock, self.sock = self.sock, _HeaderBuffer()
        try:
            super().send_headers()
        finally:
            self._held, self.sock = self.sock.data, sock

    def _release(self) -> bytes:
        held, self._held = self._held, b""
        return held

    def _emit_body(self, data: bytes) -> None:
        if self._held and not self.chunked:
            self.sock.sendall(self._release() + data)
            return
        if self._held:
            self.sock.sendall(self._release())
        super()._emit_body(data)

    def close(self) -> None:
        if not self.headers_sent:
            self.send_headers()
        if self._held:  # a response without body bytes
            self.sock.sendall(self._release())
        super().close()

    def can_sendfile(self) -> bool:
        return False  # sendfile would bypass the held headers (and nothing here serves files)


class SagebertWorker(ThreadWorker):
    """gthread with a heartbeat that tells the truth about the model, and a draining shutdown."""

    def init_process(self) -> None:
        # gunicorn builds every response through this module attribute; in a worker process this
        # worker is the only server.
        wsgi.Response = OneWriteResponse
        super().init_process()

    def _holder(self):
        return getattr(self.app, "holder", None)

    _last_heartbeat = float("-inf")

    def notify(self) -> None:
        holder = self._holder()
        batcher = holder.batcher if holder is not None else None
        if batcher is not None and batcher.busy_for() > HEARTBEAT_PAUSE_AFTER_S:
            return
        now = time.monotonic()
        if now - self._last_heartbeat < min(HEARTBEAT_EVERY_S, self.cfg.timeout / 4):
            return
        self._last_heartbeat = now
        super().notify()

    def handle_exit(self, sig, frame) -> None:
        if self.alive:
            self.method_queue.defer(self._begin_shutdown)  # logging is not safe in a signal handler
        super().handle_exit(sig, frame)

    def _begin_shutdown(self) -> None:
        holder = self._holder()
        if holder is None or holder.batcher is None:
            return
        grace = max(0.0, self.cfg.graceful_timeout - REPLY_MARGIN_S)
        log.info(
            "worker %s: shutting down; %d request(s) in flight finish, or get a 503 after %.0f s",
            self.pid,
            holder.in_flight,
            grace,
        )
        holder.batcher.close(time.monotonic() + grace)

    def run(self) -> None:
        super().run()
        holder = self._holder()
        if holder is None or holder.batcher is None or self.alive:
            return
        refused, left = holder.batcher.refused, holder.in_flight
        if left:
            log.warning("worker %s: stopped with %d request(s) unanswered", self.pid, left)
        elif refused:
            log.warning(
                "worker %s: stopped; %d request(s) that could not finish in the grace period got a 503",
                self.pid,
                refused,
            )
        else:
            log.info("worker %s: stopped; every request in flight was answered", self.pid)
