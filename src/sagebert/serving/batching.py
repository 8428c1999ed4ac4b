"""Micro-batching with bounded work: one thread per process runs the model; requests queue for it.

- Requests that arrive while the model is busy share its next forward pass, capped by number of
  texts AND by tokens. Nothing waits on purpose, so a lone request is never delayed.
- With ``inline`` (off by default), a request that finds the model idle and fits one forward pass
  runs it in its own thread, without the hand-off to the model thread and back. The pass is the
  same (the same items, alone), so the answers are the same; one pass runs at a time either way.
  It saves about 15 µs of CPU per request, too little to measure against a whole request's on 2
  cores (BENCHMARKS.md, issue 18), and a stuck pass run that way cannot answer its own request
  with a 503: hence off.
- A long request is served in slices of that size, round-robin with the other queued requests:
  a 10,000-text request does not hold back a one-text request behind it by more than one slice.
- One request's failure stays its own: a merged forward pass that raises is retried request by
  request, and only the requests that fail alone get the error.
- Waits are bounded: a forward pass running longer than ``stuck_after`` seconds marks the batcher
  stuck; its waiting requests fail with a 503 at once (the server then recycles the worker), and
  after ``close`` requests not finished by the deadline are refused with a 503. A request running
  its own pass (``inline``) cannot be answered while the pass runs: if that pass is stuck, the
  others still get their 503, /ping and the heartbeat still report it, and the worker is recycled
  with it (the stuck request's connection ends with the worker).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ..errors import SagebertError

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")
IDLE_SECONDS = 0.5  # no request for this long: give freed memory back to the system
WAIT_SLICE = 0.5  # how often a waiting request checks that the model is still making progress


class InferenceUnavailableError(SagebertError):
    """The model cannot answer this request now (stuck, or the server is shutting down): a 503."""

    http_status = 503


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), which returns the free memory of every arena to the system."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None
    return (lambda: trim(0)) if trim else None


class _Job:
    """One request: its items, the results so far, and how it ended."""

    def __init__(self, items: list) -> None:
        self.items = items
        self.results: list = [None] * len(items)
        self.next = 0  # the first item not yet handed to the model
        self.done_items = 0
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.queued_at = time.monotonic()

    def finish(self, error: BaseException | None = None) -> None:
        if not self.finished.is_set():
            self.error = error
            self.finished.set()


class MicroBatcher(Generic[Item, Result]):
    """Runs ``forward`` on one thread over slices of the queued requests' items (at most
    ``max_items`` items and ``max_cost`` cost per forward pass; one item always goes, whatever
    its cost). ``max_items=1`` serves every item alone. With ``merge=False`` a pass takes one
    request's slice only: for a model that runs each text on its own anyway, merging would only
    make the first request wait for the second. With ``inline`` a request that finds the model idle
    and nothing queued, and fits one pass, runs that pass in its own thread."""

    def __init__(
        self,
        forward: Callable[[list[Item]], Sequence[Result]],
        max_items: int = 64,
        max_cost: int = 4096,
        cost: Callable[[Item], int] = len,  # type: ignore[assignment]
        stuck_after: float = 60.0,
        merge: bool = True,
        inline: bool = False,
    ):
        self._forward = forward
        self._merge = merge
        self._inline = inline
        self._max_items = max_items
        self._max_cost = max_cost
        self._cost = cost
        self.stuck_after = stuck_after
        self._pid: int | None = None  # the thread is started per process (gunicorn forks after loading)
        self._start_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._wakeup = threading.Condition()
        self._busy_since: float | None = None  # set while a pass runs, on the model thread or inline
        self._passes = 0  # forward passes begun, on the model thread or inline
        self._trimmed = 0  # the passes begun when memory was last given back
        self._last_pass_end = time.monotonic()
        self._closing_at: float | None = None
        self.refused = 0  # requests answered with a 503 because the server was shutting down
        self._thread: threading.Thread | None = None
        self._waits = (0, 0.0, 0.0)  # requests that reached the model, their total and longest wait

    # ---- what request threads call ---------------------------------------------------------------

    def submit(self, items: Sequence[Item]) -> list[Result]:
        """The results for ``items``, in order (blocking); the forward pass's exception if it fails alone."""
        self._ensure_thread()
        job = _Job(list(items))
        if not job.items:
            return []
        with self._wakeup:
            if self._closing_at is not None:
                self.refused += 1
                raise InferenceUnavailableError("The server is shutting down.", "Send the request again.")
            inline = self._inline and not self._jobs and self._busy_since is None and self._fits_one_pass(job.items)
            if inline:  # the model is ours until the pass ends: the model thread waits for it
                self._begin_pass()
                self._count_wait(0.0)
            else:
                self._jobs.append(job)
                self._wakeup.notify()
        if inline:
            return self._run_inline(job.items)
        while not job.finished.wait(WAIT_SLICE):
            stuck = self.stuck_for()
            if stuck > self.stuck_after or not self._thread.is_alive():  # type: ignore[union-attr]
                self._give_up(
                    job,
                    InferenceUnavailableError(
                        f"Inference is stuck: a forward pass has run for {stuck:.0f} s "
                        f"(SAGEMAKER_MODEL_SERVER_TIMEOUT is {self.stuck_after:g} s); this worker restarts.",
                        "Send the request again.",
                    ),
                )
            elif self._closing_at is not None and time.monotonic() >= self._closing_at:
                self._refuse(job)
        if job.error is not None:
            raise job.error
        return job.results

    def stuck_for(self) -> float:
        """Seconds the running forward pass has taken, if more than ``stuck_after``; else 0."""
        started = self._busy_since
        running = time.monotonic() - started if started is not None else 0.0
        return running if running > self.stuck_after else 0.0

    def busy_for(self) -> float:
        """Seconds the running forward pass has taken so far (0 when idle)."""
        started = self._busy_since
        return time.monotonic() - started if started is not None else 0.0

    def pending(self) -> int:
        """Requests queued or in a forward pass."""
        with self._wakeup:
            return len(self._jobs) + (1 if self._busy_since is not None else 0)

    def take_queue_waits(self) -> tuple[int, float, float]:
        """(requests, total seconds, longest seconds) waited in the queue before their first
        forward pass, since the last call (the serving metrics read and reset them)."""
        with self._wakeup:
            waits, self._waits = self._waits, (0, 0.0, 0.0)
        return waits

    def close(self, deadline: float) -> None:
        """Refuse new requests; requests not finished by ``deadline`` (time.monotonic) get a 503."""
        with self._wakeup:
            self._closing_at = deadline
            self._wakeup.notify()

    def _fits_one_pass(self, items: list) -> bool:
        """Whether ``items`` make one forward pass: within both caps, or a single item (lock held)."""
        if len(items) > self._max_items:
            return False
        return len(items) == 1 or sum(map(self._cost, items)) <= self._max_cost

    def _begin_pass(self) -> None:
        self._busy_since = time.monotonic()
        self._passes += 1

    def _run_inline(self, items: list) -> list:
        """The forward pass of a request alone, in the request's thread (the model is reserved)."""
        try:
            return list(self._forward(items))
        finally:
            with self._wakeup:
                self._last_pass_end = time.monotonic()
                self._busy_since = None
                # Requests that queued behind this pass: the model thread takes them; or the first
                # pass since memory was given back: the model thread starts its idle clock.
                if self._jobs or self._passes == self._trimmed + 1:
                    self._wakeup.notify()

    def _count_wait(self, waited: float) -> None:
        waits = self._waits
        self._waits = (waits[0] + 1, waits[1] + waited, max(waits[2], waited))

    # ---- the model thread --------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():
                self._reset()
                self._thread = threading.Thread(target=self._loop, name="sagebert-batcher", daemon=True)
                self._thread.start()
                self._pid = os.getpid()

    def _next_slices(self) -> list[tuple[_Job, int, int]]:
        """Take the next forward pass's work from the queue, round-robin (lock held)."""
        slices, count, cost, now = [], 0, 0, time.monotonic()
        while self._jobs and count < self._max_items:
            job = self._jobs[0]
            start = end = job.next
            while end < len(job.items) and count < self._max_items:
                item_cost = self._cost(job.items[end])
                if count and cost + item_cost > self._max_cost:
                    break
                count, cost, end = count + 1, cost + item_cost, end + 1
            if end == start:
                break
            if start == 0:  # the request's first forward pass: its wait in the queue ends
                self._count_wait(now - job.queued_at)
            job.next = end
            self._jobs.popleft()
            if end < len(job.items):
                self._jobs.append(job)  # the rest of a long request waits for its next turn
            slices.append((job, start, end))
            if not self._merge:
                break
        return slices

    def _loop(self) -> None:
        # Forward passes leave freed activation buffers that glibc keeps for reuse; across several
        # workers that adds up. They are handed back once a worker has been idle for a moment,
        # which costs nothing while requests keep coming.
        # Passes run inline count too: the trim comes once no pass of either kind has ended for
        # IDLE_SECONDS, and an inline pass wakes this thread only when it is the first since a trim.
        trim = _malloc_trim()
        while True:
            with self._wakeup:
                if not self._jobs or self._busy_since is not None:  # nothing queued, or a pass runs inline
                    timeout = None
                    if trim and self._passes != self._trimmed:
                        idle = time.monotonic() - self._last_pass_end
                        if self._busy_since is None and not self._jobs and idle >= IDLE_SECONDS:
                            trim()
                            self._trimmed = self._passes
                            continue
                        timeout = IDLE_SECONDS - idle if self._busy_since is None else IDLE_SECONDS
                    self._wakeup.wait(timeout)
                    continue
                slices = self._next_slices()
                self._begin_pass()
            try:
                self._run(slices)
            finally:
                self._last_pass_end = time.monotonic()
                self._busy_since = None

    def _give_up(self, job: _Job, error: BaseException) -> None:
        """End ``job`` with ``error`` and take its remaining items off the queue."""
        with self._wakeup:
            if job in self._jobs:
                self._jobs.remove(job)
        job.finish(error)

    def _refuse(self, job: _Job) -> None:
        with self._wakeup:
            self.refused += 1
        self._give_up(
            job,
            InferenceUnavailableError(
                "The server is shutting down and could not finish this request in time.", "Send the request again."
            ),
        )

    def _run(self, slices: list[tuple[_Job, int, int]]) -> None:
        items = [item for job, start, end in slices for item in job.items[start:end]]
        try:
            results = list(self._forward(items))
        except BaseException as exc:
            if len(slices) == 1:
                self._give_up(slices[0][0], exc)
                return
            for one in slices:  # find whose texts fail; the others get their answers
                self._run([one])
            return
        position = 0
        for job, start, end in slices:
            answers, position = results[position : position + end - start], position + end - start
            if job.finished.is_set():
                continue  # given up on (stuck or refused) while this pass ran
            job.results[start:end] = answers
            job.done_items += end - start
            if job.done_items == len(job.items):
                job.finish()
