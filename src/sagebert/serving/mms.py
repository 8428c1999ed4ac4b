"""Multi-model endpoints: multi-model-server behind the sagebert front, one supervisor above both.

``serve`` with SAGEMAKER_MULTI_MODEL=true becomes this supervisor (PID 1). It starts
- multi-model-server, the sagemaker-inference way, on a loopback port (serving.mms_server), and
- the front on SageMaker's port (serving.mme_front): MMS's API plus an honest /ping,
and forwards SIGTERM to both. If either exits, the other is stopped and the container exits
non-zero, so SageMaker replaces it. As PID 1 it also reaps orphaned processes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from ..environment import BIND_TO_PORT_ENV, SAFE_PORT_RANGE_ENV
from .settings import ServingSettings

log = logging.getLogger(__name__)

STOP_GRACE = 25


def internal_port(front_port: int, safe_range: str | None) -> int:
    """The loopback port for MMS: the first of SAGEMAKER_SAFE_PORT_RANGE if given, else 8081."""
    if safe_range and "-" in safe_range:
        low, high = (int(p) for p in safe_range.split("-", 1))
        for port in range(low, high + 1):
            if port != front_port:
                return port
    return 8081 if front_port != 8081 else 8082


def run_multi_model_server(settings: ServingSettings) -> int:
    """Start MMS and the front; return when either exits (or after SIGTERM)."""
    port = internal_port(settings.port, os.environ.get(SAFE_PORT_RANGE_ENV))
    log.info("multi-model endpoint: front on port %d, multi-model-server on 127.0.0.1:%d", settings.port, port)
    mms = subprocess.Popen(
        [sys.executable, "-m", "sagebert.serving.mms_server"], env={**os.environ, BIND_TO_PORT_ENV: str(port)}
    )
    front = subprocess.Popen(
        [sys.executable, "-m", "sagebert.container.serve", "--multi-model-front", f"http://127.0.0.1:{port}"]
    )
    children = {mms.pid: ("multi-model-server", mms), front.pid: ("front", front)}
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
        for _, child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            pid, status = os.wait()  # also reaps orphans: this process is PID 1
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid not in children:
            continue
        name, _ = children[pid]
        code = os.waitstatus_to_exitcode(status)
        others = [child for other, (_, child) in children.items() if other != pid]
        if not stopping:
            log.error("%s exited (%d): stopping the container", name, code)
        for child in others:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in others:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        return 0 if stopping else (code or 1)
