"""The gunicorn worker of the Flask server: gthread, plus what a stuck model and a shutdown need.

- gthread's main loop heartbeats whatever its request threads do, so gunicorn's worker timeout
  never fires for a stuck forward pass. This worker stops heartbeating once a forward pass has run
  for a second: gunicorn then kills it (logging WORKER TIMEOUT) when the pass reaches
  SAGEMAKER_MODEL_SERVER_TIMEOUT, and starts a fresh one. Passes are bounded in size (the
  micro-batcher's slices), so only a stuck one runs that long.
- On SIGTERM it logs how many requests are in flight, lets them finish, and has the micro-batcher
  refuse (503) whatever would not finish inside the grace period, so every accepted request gets
  an answer before gunicorn's deadline.
"""

from __future__ import annotations

import logging
import time

from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger("sagebert.serve")

HEARTBEAT_PAUSE_AFTER_S = 1.0  # a forward pass running longer than this holds the heartbeat
REPLY_MARGIN_S = 3.0  # before the grace period ends: time left to write the 503s


class SagebertWorker(ThreadWorker):
    """gthread with a heartbeat that tells the truth about the model, and a draining shutdown."""

    def _holder(self):
        return getattr(self.app, "holder", None)

    def notify(self) -> None:
        holder = self._holder()
        batcher = holder.batcher if holder is not None else None
        if batcher is not None and batcher.busy_for() > HEARTBEAT_PAUSE_AFTER_S:
            return
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
