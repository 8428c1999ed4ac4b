"""Log set-up shared by the training program and the server (one line per record, to stdout)."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: int | str | None = None) -> None:
    """Send log records to stdout (CloudWatch keeps it); level from SAGEBERT_LOG_LEVEL, default INFO."""
    level = level or os.environ.get("SAGEBERT_LOG_LEVEL", "INFO")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "botocore", "filelock", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
