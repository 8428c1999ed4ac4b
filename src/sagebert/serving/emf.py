"""The server's own figures as CloudWatch embedded metric format (EMF) lines.

Each worker counts what its /invocations requests did and, at most once per interval (a minute),
prints one JSON line on stdout shaped by the EMF specification: ``_aws.Timestamp`` (epoch
milliseconds), ``_aws.CloudWatchMetrics`` (one directive: Namespace, Dimensions, Metrics with
Name and Unit) and every metric's value as a top-level member. The endpoint's log goes to
CloudWatch Logs, which turns such lines into CloudWatch metrics; nothing here calls AWS.

A line goes out when a request ends at least an interval after the last line (or the worker's
start), so an idle worker prints nothing and the counts of a quiet spell are stamped with the time
they were printed. Counts are per worker and per interval; CloudWatch sums them (Sum statistic)
across workers and instances.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

NAMESPACE = "sagebert"
INTERVAL_S = 60.0
# /invocations answers counted by status, each always present (0 when none), so alarms see data.
COUNTED_STATUSES = (400, 406, 408, 413, 415, 500, 503)
MAX_LABELS = 50  # an EMF directive holds at most 100 metrics; the rest are the fixed ones
LABEL_NAME_CHARS = 200  # a CloudWatch metric name is at most 255 characters


def _label_metric(name: str) -> str:
    printable = "".join(char if 32 <= ord(char) < 127 else "?" for char in name)
    return "Label:" + printable[:LABEL_NAME_CHARS]


def _write_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class ServingMetrics:
    """Thread-safe counters of one worker, printed as EMF lines at most once per ``interval``.

    ``queue_waits()`` returns (count, total seconds, longest seconds) of the requests that reached
    the model since its last call (the micro-batcher's), or is None.
    """

    def __init__(
        self,
        model: str = "sagebert",
        *,
        write: Callable[[str], None] = _write_stdout,
        clock: Callable[[], float] = time.time,
        interval: float = INTERVAL_S,
        queue_waits: Callable[[], tuple[int, float, float]] | None = None,
    ):
        self.model = model
        self.queue_waits = queue_waits
        self._write = write
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._last_line = clock()
        self._reset()

    def _reset(self) -> None:
        self._requests = 0
        self._predicted_requests = 0
        self._texts = 0
        self._truncated = 0
        self._labels: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()

    def record_predictions(self, texts: int, truncated: int, labels: Counter[str] | dict[str, int]) -> None:
        """One request's answer: how many texts, how many were truncated, how many per label
        (every label of the model, 0 included, so the mix shows labels that stopped appearing)."""
        with self._lock:
            self._predicted_requests += 1
            self._texts += texts
            self._truncated += truncated
            self._labels.update(labels)

    def record_status(self, status: int) -> None:
        """One /invocations answer's HTTP status."""
        with self._lock:
            self._requests += 1
            self._statuses[status] += 1

    def maybe_flush(self) -> str | None:
        """Print (and return) the line if an interval has passed since the last one."""
        now = self._clock()
        with self._lock:
            if now - self._last_line < self._interval:
                return None
            line = json.dumps(self._document(now))
            self._last_line = now
            self._reset()
        self._write(line)
        return line

    def _document(self, now: float) -> dict:
        values: dict[str, tuple[float, str]] = {
            "Requests": (self._requests, "Count"),
            "Texts": (self._texts, "Count"),
        }
        if self._predicted_requests:
            values["TextsPerRequest"] = (round(self._texts / self._predicted_requests, 3), "Count")
        if self._texts:
            values["TruncatedShare"] = (round(100 * self._truncated / self._texts, 3), "Percent")
        count, total, longest = self.queue_waits() if self.queue_waits else (0, 0.0, 0.0)
        if count:
            values["QueueWaitMean"] = (round(1000 * total / count, 3), "Milliseconds")
            values["QueueWaitMax"] = (round(1000 * longest, 3), "Milliseconds")
        for status in COUNTED_STATUSES:
            values[f"Http{status}"] = (self._statuses[status], "Count")
        for label, number in sorted(self._labels.items())[:MAX_LABELS]:
            values[_label_metric(label)] = (number, "Count")
        return {
            "_aws": {
                "Timestamp": int(now * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Model"]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                    }
                ],
            },
            "Model": self.model,
            "Worker": os.getpid(),  # a property, not a dimension: for Logs Insights, free in metrics
            **{name: value for name, (value, _) in values.items()},
        }
