"""Multi-model endpoints: multi-model-server behind the sagebert front, one supervisor above both.

``serve`` with SAGEMAKER_MULTI_MODEL=true becomes this supervisor (PID 1). It starts
- multi-model-server, the sagemaker-inference way (``python -m sagebert.serving.mms``), with its
  inference and management APIs on a loopback port only, and
- the front on SageMaker's port (serving.mme_front): MMS's API, checked, plus an honest /ping,
and forwards SIGTERM to both. If either exits, the other is stopped and the container exits
non-zero, so SageMaker replaces it. As PID 1 it also reaps orphaned processes.

MMS is handed what ServingSettings decided (workers per model, timeout, payload limit), so the
front, MMS and the model workers agree; the toolkit writes those into /etc/sagemaker-mms.properties
with 0.0.0.0 addresses, which the MMS_INFERENCE_ADDRESS / MMS_MANAGEMENT_ADDRESS variables override
(the toolkit's properties enable MMS's environment configuration).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from .settings import ServingSettings

log = logging.getLogger(__name__)

HANDLER_SERVICE = "sagebert.serving.mms_handler_service"


def internal_port(front_port: int, safe_range: tuple[int, int] | None) -> int:
    """The loopback port for MMS: the first of SAGEMAKER_SAFE_PORT_RANGE (other than the front's)
    if given, else 8081."""
    if safe_range:
        low, high = safe_range
        for port in range(low, high + 1):
            if port != front_port:
                return port
    return 8081 if front_port != 8081 else 8082


def model_server_environment(settings: ServingSettings, port: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of multi-model-server: loopback addresses, and the settings as decided here."""
    address = f"http://127.0.0.1:{port}"
    name = ServingSettings.variable
    return {
        **environ,
        name("port").name: str(port),
        "MMS_INFERENCE_ADDRESS": address,
        "MMS_MANAGEMENT_ADDRESS": address,
        name("workers").name: str(settings.workers),
        name("timeout").name: str(settings.timeout),
        # The toolkit takes whole megabytes; the front enforces the exact limit before MMS sees a byte.
        name("max_payload_mb").name: str(math.ceil(settings.max_payload_mb)),
    }


def run_multi_model_server(settings: ServingSettings) -> int:
    """Start MMS and the front; return when either exits (or after SIGTERM)."""
    port = internal_port(settings.port, settings.safe_port_range)
    log.info(
        "multi-model endpoint: front on port %d, multi-model-server on 127.0.0.1:%d, %d worker(s) per model",
        settings.port,
        port,
        settings.workers,
    )
    mms = subprocess.Popen(
        [sys.executable, "-m", "sagebert.serving.mms"], env=model_server_environment(settings, port, os.environ)
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
        deadline = time.monotonic() + settings.stop_grace
        for child in others:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        return 0 if stopping else (code or 1)


def main() -> int:
    """multi-model-server, started by the toolkit with sagebert's handler service; blocks until it exits."""
    from sagemaker_inference import model_server

    model_server.start_model_server(handler_service=HANDLER_SERVICE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
