"""Log set-up shared by the training program and the server (one line per record, to stdout), and
a warning that is logged at most once per interval however often it happens."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (time in UTC, level, logger, message; the traceback, if any, as
    one string), so CloudWatch Logs Insights can filter on the fields."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure(level: int | str | None = None, log_format: str = "text") -> None:
    """Send log records to stdout (CloudWatch keeps it), as text lines or JSON objects; level from
    the argument, else SAGEBERT_LOG_LEVEL (training reads it here; the server through its settings),
    default INFO."""
    level = level or os.environ.get("SAGEBERT_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "botocore", "filelock", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class RateLimitedWarning:
    """``warn(key, message, *args)`` logs at most one line per ``interval`` seconds for each key;
    the next line after a quiet interval says how many were left out. Under overload the same 503
    happens thousands of times a minute: one line a minute says so, with the count."""

    def __init__(
        self, logger: logging.Logger, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, message: str, *args: object) -> bool:
        """Log the warning unless one with ``key`` was logged less than an interval ago (then
        count it); True if it was logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += f" (and {suppressed} more like it since the last such line, not logged)"
        self._logger.warning(message, *args)
        return True
