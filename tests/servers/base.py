"""The in-process HTTP server the test servers build on.

A :class:`LocalServer` listens on a free ``127.0.0.1`` port, serves from a background thread
(one thread per connection, HTTP/1.1 keep-alive), records every request with its arrival
time, and can be told to misbehave: fail the next N requests, or answer slowly. Subclasses
route requests in :meth:`LocalServer.handle`; tests may add routes with :meth:`route`.

    with EchoHTTPServer() as srv:              # or OpenAICompatServer()
        srv.fail_next(2, status=503, retry_after=0.1)
        srv.set_delay(0.5, path="/slow")
        ... call srv.url ...
        srv.requests                          # [RecordedRequest(...)], arrival order
        srv.arrivals("/v1/chat/completions")  # time.monotonic() of each arrival

Everything here is thread-safe: tests may read the records while clients are still calling.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    #: ``time.monotonic()`` and ``time.time()`` when the request line arrived.
    monotonic: float
    wall: float
    #: Status answered (None until the answer starts).
    status: int | None = None

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of query parameter ``name``."""
        return self.query.get(name, [default])[0]


@dataclass
class Reply:
    """An answer. ``body`` as an iterable of byte chunks is sent chunked, piece by piece."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type})


Handler = Callable[[RecordedRequest], Reply]


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after: float | None
    body: Any
    path: str | None


class LocalServer:
    """Base of the local test servers: start/stop, recording, failures and delays."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._delays: dict[str | None, float] = {}
        self._routes: dict[tuple[str, str], Handler] = {}
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> LocalServer:
        """Bind a free port and serve in a daemon thread; returns self."""
        server = self

        class _Handler(_RequestHandler):
            app = server

        self._httpd = _Server((self._host, self._port), _Handler)
        self._port = self._httpd.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{type(self).__name__}:{self._port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release delayed handlers; the port is free afterwards."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self._host}:{self._port}"

    # -- behaviour ----------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: float | None = None,
        path: str | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``n`` requests (to ``path`` if given) with ``status``.

        ``retry_after`` adds ``Retry-After`` (seconds, as given: "0.2" is allowed);
        ``body`` defaults to an OpenAI-style error object.
        """
        with self._lock:
            self._failures.append(_Failure(n, status, retry_after, body, path))

    def set_delay(self, seconds: float, path: str | None = None) -> None:
        """Wait ``seconds`` before answering (requests to ``path``, or all when None)."""
        with self._lock:
            self._delays[path] = seconds

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` (exact path; method "*" for any) with ``handler``."""
        with self._lock:
            self._routes[(method.upper(), path)] = handler

    def reset(self) -> None:
        """Forget records, failures, delays and added routes."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._delays.clear()
            self._routes.clear()

    # -- records ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def arrivals(self, path: str | None = None) -> list[float]:
        """``time.monotonic()`` arrival times of requests (to ``path`` if given)."""
        return [r.monotonic for r in self.requests if path is None or r.path == path]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests arrived (or ``timeout``); returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reqs = self.requests
            if len(reqs) >= n:
                return reqs
            time.sleep(0.01)
        return self.requests

    # -- to override --------------------------------------------------------------

    def handle(self, req: RecordedRequest) -> Reply:
        """Answer a request that no failure or added route took (subclasses override)."""
        return Reply.json({"error": {"message": f"no route {req.method} {req.path}"}}, 404)

    # -- machinery ----------------------------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _plan(self, req: RecordedRequest) -> tuple[Reply | None, float, Handler | None]:
        """The failure to answer (if one is due), the delay, and an added route."""
        with self._lock:
            failure = None
            for f in self._failures:
                if f.remaining > 0 and (f.path is None or f.path == req.path):
                    f.remaining -= 1
                    failure = f
                    break
            self._failures = [f for f in self._failures if f.remaining > 0]
            delay = self._delays.get(req.path, self._delays.get(None, 0.0))
            handler = self._routes.get((req.method, req.path)) or self._routes.get(("*", req.path))
        reply = None
        if failure is not None:
            body = (
                failure.body
                if failure.body is not None
                else {
                    "error": {
                        "message": f"injected failure {failure.status}",
                        "type": "server_error",
                        "code": None,
                        "param": None,
                    }
                }
            )
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = f"{failure.retry_after:g}"
            reply = Reply.json(body, failure.status, headers)
        return reply, delay, handler

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops first; False when stopping (for handlers)."""
        return not self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    # A deep accept backlog: with the default (5), a burst of concurrent clients (rate-limit
    # tests) sees dropped SYNs and one-second retransmits that distort arrival times.
    request_queue_size = 512
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, interpreter exit) are normal here; other errors are
        # bugs in a handler and keep the default traceback on stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle on, the body waits for the
    # client's delayed ACK (40 ms per keep-alive request on Linux).
    disable_nagle_algorithm = True
    app: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default handler writes every request to stderr."""

    def _serve(self) -> None:
        arrived_mono, arrived_wall = time.monotonic(), time.time()
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            monotonic=arrived_mono,
            wall=arrived_wall,
        )
        self.app._record(req)
        reply, delay, handler = self.app._plan(req)
        if delay and not self.app.sleep(delay):
            self.close_connection = True
            return
        if reply is None:
            try:
                reply = handler(req) if handler is not None else self.app.handle(req)
            except Exception as exc:  # a broken test handler answers 500, not a dropped socket
                reply = Reply.json({"error": {"message": f"handler failed: {exc!r}"}}, 500)
        req.status = reply.status
        try:
            self._write(reply)
        except (ConnectionError, OSError):  # the client gave up (e.g. its timeout)
            self.close_connection = True

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, (bytes, bytearray)):
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in reply.body:
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


_WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    """Token stand-in the servers use for ``usage``: whitespace-separated words."""
    return len(_WORD.findall(text or ""))
