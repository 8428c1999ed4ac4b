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
- It bounds how long a client may take to send a request (SAGEBERT_REQUEST_READ_TIMEOUT, from its
  first byte, headers and body together): a client that trickles a byte a second is answered 408
  at the deadline, whereas the socket's read timeout only catches a silent one. gthread parses
  headers in a request thread, so a request whose headers do not arrive at once takes one of the
  worker's request slots (serving.app.RequestSlots, shared with the requests being read or waiting
  on the model) or, when none is free, a 503 at once: slow senders never hold the threads /ping needs.
- It closes connections without lingering in its main loop: gthread half-closes a connection and
  reads what the client still sends for up to 2 s, blocking the loop that accepts everyone else
  (/ping included) for as long, per connection, while a trickling client keeps sending. Here the
  same linger is left to the poller.
- Requests gunicorn itself refuses (a malformed request line or header, headers over its limits)
  get its status with a JSON reason, as the app's errors do, instead of its HTML page.
- It answers in one write: gunicorn sends a response's headers and its body in two, which for a
  one-tweet answer costs a second system call and a second wake-up of the client (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import selectors
import socket
import time
from collections import deque
from functools import partial

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger("sagebert.serve")

HEARTBEAT_PAUSE_AFTER_S = 1.0  # a forward pass running longer than this holds the heartbeat
HEARTBEAT_EVERY_S = 0.5  # at most one heartbeat per this many seconds (a quarter of a shorter timeout)
REPLY_MARGIN_S = 3.0  # before the grace period ends: time left to write the 503s
# How long a request thread waits for a new connection's first byte before handing the connection
# back to the poller (gthread waits 5 s: 16 clients that connect and send nothing held every
# thread of a worker for 5 s each, /ping included).
FIRST_BYTE_WAIT_S = 0.1
LINGER_S = 2.0  # gunicorn's close_graceful: how long a closed connection's late bytes are read
LINGER_BYTES = 1 << 16
HEAD_LIMIT = 1 << 20  # past this many bytes without a blank line, gunicorn's parser refuses the head
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


class RequestDeadlineError(TimeoutError):
    """The client did not send its whole request (headers and body) by the deadline."""


class _DeadlineSocket:
    """The client socket as gunicorn's request parser reads it: no recv() past ``deadline``, nor
    one that waits more than ``silence`` seconds (SAGEBERT_CLIENT_TIMEOUT: a socket with a Python
    timeout no longer obeys the SO_RCVTIMEO container.serve gives it)."""

    def __init__(self, sock: socket.socket, deadline: float, seconds: int, silence: float) -> None:
        self.sock, self.deadline, self.seconds, self.silence = sock, deadline, seconds, silence

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestDeadlineError(f"not all sent within {self.seconds} s")
        self.sock.settimeout(min(remaining, self.silence))
        try:
            return self.sock.recv(size)
        except TimeoutError:
            if remaining <= self.silence:
                raise RequestDeadlineError(f"not all sent within {self.seconds} s") from None
            raise TimeoutError(f"nothing sent for {self.silence:g} s") from None
        finally:
            self.sock.settimeout(None)  # blocking again, as gthread's request threads want it

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def _refusal(status: str, error: str, fix: str) -> bytes:
    """A whole HTTP response that closes the connection, for a request the app never sees."""
    body = json.dumps({"error": error, "fix": fix}).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body


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

    def process_headers(self, headers) -> None:
        # gunicorn drops the app's Connection header; "close" from the app closes the connection.
        if any(name.lower() == "connection" and value.strip().lower() == "close" for name, value in headers):
            self.force_close()
        super().process_headers(headers)

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


class _ErrorPage:
    """Stands in for the client socket while gunicorn writes one of its HTML error pages, and keeps it."""

    def __init__(self, sock) -> None:
        self.sock, self.data = sock, b""

    def gettimeout(self) -> float:
        return 0.0  # util.write_nonblock then writes at once, without switching the socket's mode

    def sendall(self, data: bytes) -> None:
        self.data += data

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


_PAGE_MESSAGE = re.compile(r"</h1>\s*(.*?)\s*</body>", re.S)
GUNICORN_ERROR_FIX = (
    "Send a well-formed HTTP/1.1 request: a request line under 4094 bytes, at most 100 header fields "
    "of at most 8190 bytes each."
)


class SagebertWorker(ThreadWorker):
    """gthread with a heartbeat that tells the truth about the model, and a draining shutdown."""

    def init_process(self) -> None:
        # gunicorn builds every response through this module attribute; in a worker process this
        # worker is the only server.
        wsgi.Response = OneWriteResponse
        self._lingering = deque()  # [deadline, socket, bytes read] of closed connections
        super().init_process()

    def _holder(self):
        return getattr(self.app, "holder", None)

    def _slots(self):
        """The app's RequestSlots: the model holder's, or the multi-model front's."""
        holder = self._holder()
        return holder.slots if holder is not None else getattr(self.app, "slots", None)

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's handling (its status, its log line), answered as JSON instead of HTML."""
        page = _ErrorPage(client)
        super().handle_error(req, page, addr, exc)
        text = page.data.decode("latin-1")
        status = text.split("\r\n", 1)[0].partition(" ")[2] or "500 Internal Server Error"
        found = _PAGE_MESSAGE.search(text)
        message = html.unescape(found.group(1)) if found and not status.startswith("500") else ""
        reason = status.partition(" ")[2]
        with contextlib.suppress(OSError):
            util.write_nonblock(
                client, _refusal(status, f"{reason}: {message}" if message else reason, GUNICORN_ERROR_FIX)
            )

    def enqueue_req(self, conn) -> None:
        if "close" not in vars(conn):
            conn.close = partial(self._close, conn, conn.close)
        super().enqueue_req(conn)

    def _close(self, conn, close, graceful: bool = False) -> None:
        """TConn.close, but a graceful close lingers on the poller instead of in the main loop."""
        if not graceful or not self.alive:
            close(graceful)
            return
        sock = conn.sock
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, partial(self._drain_lingering, sock))
        except (OSError, ValueError, KeyError):
            close(False)
            return
        self._lingering.append([time.monotonic() + LINGER_S, sock, 0])

    def _drain_lingering(self, sock, _fileobj) -> None:
        entry = next((entry for entry in self._lingering if entry[1] is sock), None)
        try:
            data = sock.recv(LINGER_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if entry is not None:
            entry[2] += len(data)
        if not data or entry is None or entry[2] >= LINGER_BYTES:
            self._end_linger(sock)

    def _end_linger(self, sock) -> None:
        self._lingering = deque(entry for entry in self._lingering if entry[1] is not sock)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(sock)
        util.close(sock)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for deadline, sock, _ in list(self._lingering):
            if deadline <= now:
                self._end_linger(sock)

    def _read_timeouts(self) -> tuple[int, int]:
        """(SAGEBERT_REQUEST_READ_TIMEOUT, SAGEBERT_CLIENT_TIMEOUT) of the app's settings."""
        settings = self.app.settings
        return settings.request_read_timeout, settings.client_timeout

    def handle(self, conn):
        """gthread's handle, with the request read under its deadline (see the module docstring)."""
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(FIRST_BYTE_WAIT_S):
            return gthread._DEFER  # no byte yet: back to the poller, as gthread does
        conn.data_ready = True
        conn.sock.setblocking(True)
        conn.init()
        unreader = getattr(conn.parser, "unreader", None)
        if conn.is_http2 or not hasattr(unreader, "sock"):
            return super().handle(conn)  # not a plain HTTP/1 connection: gthread's own handling
        real = unreader.sock
        seconds, silence = self._read_timeouts()
        unreader.sock = _DeadlineSocket(real, time.monotonic() + seconds, seconds, silence)
        try:
            if not self._read_head(conn, unreader):
                return False
            return super().handle(conn)
        finally:
            unreader.sock = real

    def handle_request(self, req, conn):
        try:
            return super().handle_request(req, conn)
        finally:
            # The app has read what it wanted: gunicorn's own bounded drain reads the rest.
            conn.parser.unreader.sock = getattr(conn.parser.unreader.sock, "sock", conn.parser.unreader.sock)

    @staticmethod
    def _refuse(conn, status: str, error: str, fix: str) -> None:
        with contextlib.suppress(OSError):  # a client already gone needs no answer
            conn.sock.sendall(_refusal(status, error, fix))

    def _read_head(self, conn, unreader) -> bool:
        """Read until the request's headers are complete (then give the bytes back to the parser);
        False when the client was answered 408 or 503 here, or left."""
        data = unreader.take_buffered()
        searched = 0  # the head's end is looked for in the new bytes only (and the 1 before them)
        slots, occupied = self._slots(), False
        try:
            while not any(end in data[searched:] for end in _HEAD_ENDS) and len(data) < HEAD_LIMIT:
                searched = max(0, len(data) - 3)
                if data and not occupied and slots is not None:
                    # The head did not come at once: it waits in a request slot, or not at all.
                    if not slots.try_take():
                        self._refuse(
                            conn,
                            "503 Service Unavailable",
                            "Every request slot of this worker is taken by requests being read or answered.",
                            "Retry after a moment, and send each request without pausing.",
                        )
                        return False
                    occupied = True
                try:
                    chunk = unreader.sock.recv(65536)
                except TimeoutError as exc:
                    self._refuse(
                        conn,
                        "408 Request Timeout",
                        f"The client did not send the request headers in time ({exc}).",
                        "Send the whole request without pausing.",
                    )
                    return False
                if not chunk:
                    break
                data += chunk
        finally:
            if occupied:
                slots.release()
        unreader.unread(data)
        return True

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
