"""Opportunistic micro-batching: requests that arrive while the model is busy share its next
forward pass. Nothing waits on purpose, so a lone request is never delayed; under concurrency the
model sees fewer, larger batches, which is where a CPU gains most.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_SECONDS = 0.5  # no request for this long: give freed memory back to the system


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), which returns the free memory of every arena to the system."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None
    return (lambda: trim(0)) if trim else None


class MicroBatcher(Generic[T]):
    """Runs ``predict`` on one thread, over the texts of the requests queued at that moment (up to
    ``max_texts`` texts; a request is never split, and ``max_texts=1`` serves each one alone)."""

    def __init__(self, predict: Callable[[list[str]], Sequence[T]], max_texts: int = 64):
        self._predict = predict
        self._max_texts = max_texts
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid: int | None = None  # the thread is started per process (gunicorn forks after loading)

    def submit(self, texts: Sequence[str]) -> list[T]:
        """Predict ``texts`` (blocking); exceptions from ``predict`` are raised here."""
        self._ensure_thread()
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result()

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._loop, name="sagebert-batcher", daemon=True).start()
                self._pid = os.getpid()

    def _loop(self) -> None:
        # Forward passes leave freed activation buffers that glibc keeps for reuse; across several
        # workers that adds up. They are handed back once a worker has been idle for a moment,
        # which costs nothing while requests keep coming.
        trim, dirty = _malloc_trim(), False
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS if dirty and trim else None)
            except queue.Empty:
                trim()
                dirty = False
                continue
            dirty = True
            jobs = [first]
            count = len(jobs[0][0])
            while count < self._max_texts:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                count += len(job[0])
            self._run(jobs)

    def _run(self, jobs: list[tuple[list[str], Future]]) -> None:
        texts = [text for job_texts, _ in jobs for text in job_texts]
        try:
            results = list(self._predict(texts))
        except BaseException as exc:
            for _, future in jobs:
                future.set_exception(exc)
            return
        start = 0
        for job_texts, future in jobs:
            future.set_result(results[start : start + len(job_texts)])
            start += len(job_texts)
