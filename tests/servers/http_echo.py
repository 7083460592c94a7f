"""A small generic HTTP server for tests of HTTP clients (the ``api/http`` provider, webhooks).

    with EchoHTTPServer() as srv:
        httpx.get(srv.url + "/echo/x?a=1").json()   # {"method", "path", "query", "headers", ...}

Routes (any method unless noted; query parameters in brackets):

- ``/`` and ``/health``: ``{"status": "ok"}``.
- ``/echo[/...]``: the request as JSON: ``method``, ``path``, ``query`` (first values),
  ``headers``, ``json`` (parsed body or null) and ``text`` (body as text).
- ``GET /text``: ``hello, world`` as ``text/plain``.
- ``GET /bytes[?n=16]``: ``n`` binary bytes (``application/octet-stream``).
- ``GET /big[?n=1048576&chunked=0]``: ``n`` bytes of ``x`` as text; with ``chunked=1`` it is
  sent in 64 KiB chunks without ``Content-Length`` (so a client must count as it reads).
- ``/redirect?to=URL[&status=302]``: a redirect to ``URL``.
- ``/status/<code>[?retry_after=S]``: answers ``code`` with ``{"error", "request_headers"}``
  (the echo of headers lets tests check that secrets sent are masked in errors).
- ``/flaky/<key>?fail=N[&status=503&retry_after=S]``: the first ``N`` calls per ``key``
  answer ``status``; later ones ``{"ok": true, "attempt": k}``.
- ``GET /slow[?s=1.0]``: answers after ``s`` seconds.
- ``GET /cookies``: sets ``Set-Cookie`` and ``X-Custom`` headers.
- ``GET /empty``: 204 with no body.

Plus :class:`tests.servers.base.LocalServer`'s ``fail_next``, ``set_delay``, ``route`` and
request records.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator

from tests.servers.base import LocalServer, RecordedRequest, Reply

_CHUNK = 64 * 1024


class EchoHTTPServer(LocalServer):
    """A generic test HTTP server (see the module docstring for its routes)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._flaky: Counter[str] = Counter()
        self._flaky_lock = threading.Lock()

    def handle(self, req: RecordedRequest) -> Reply:
        path = req.path
        if path in ("/", "/health"):
            return Reply.json({"status": "ok"})
        if path == "/echo" or path.startswith("/echo/"):
            return Reply.json(
                {
                    "method": req.method,
                    "path": path,
                    "query": {k: v[0] for k, v in req.query.items()},
                    "headers": req.headers,
                    "json": req.json,
                    "text": req.body.decode("utf-8", "replace"),
                }
            )
        if path == "/text":
            return Reply.text("hello, world")
        if path == "/bytes":
            n = int(req.arg("n", "16") or 16)
            return Reply(200, bytes(i % 256 for i in range(n)), {"Content-Type": "application/octet-stream"})
        if path == "/big":
            return self._big(int(req.arg("n", str(1 << 20)) or 0), req.arg("chunked") == "1")
        if path == "/redirect":
            status = int(req.arg("status", "302") or 302)
            return Reply(status, b"", {"Location": req.arg("to", "/") or "/"})
        if path.startswith("/status/"):
            return self._status(req, int(path.rsplit("/", 1)[1]))
        if path.startswith("/flaky/"):
            return self._flaky_reply(req, path.split("/", 2)[2])
        if path == "/slow":
            self.sleep(float(req.arg("s", "1.0") or 1.0))
            return Reply.json({"slow": True})
        if path == "/cookies":
            reply = Reply.json({"cookies": "set"})
            reply.headers.update({"Set-Cookie": "session=abc123; Path=/", "X-Custom": "1"})
            return reply
        if path == "/empty":
            return Reply(204)
        return super().handle(req)

    def _big(self, n: int, chunked: bool) -> Reply:
        headers = {"Content-Type": "text/plain"}
        if not chunked:
            return Reply(200, b"x" * n, headers)

        def pieces() -> Iterator[bytes]:
            left = n
            while left > 0:
                size = min(_CHUNK, left)
                left -= size
                yield b"x" * size

        return Reply(200, pieces(), headers)

    def _status(self, req: RecordedRequest, code: int) -> Reply:
        headers = {}
        if req.arg("retry_after") is not None:
            headers["Retry-After"] = req.arg("retry_after") or "0"
        body = {"error": f"status {code}", "request_headers": req.headers}
        return Reply(code, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})

    def _flaky_reply(self, req: RecordedRequest, key: str) -> Reply:
        with self._flaky_lock:
            self._flaky[key] += 1
            attempt = self._flaky[key]
        fail = int(req.arg("fail", "1") or 1)
        if attempt <= fail:
            headers = {}
            if req.arg("retry_after") is not None:
                headers["Retry-After"] = req.arg("retry_after") or "0"
            status = int(req.arg("status", "503") or 503)
            return Reply(
                status,
                json.dumps({"error": "flaky", "attempt": attempt}).encode(),
                {"Content-Type": "application/json", **headers},
            )
        return Reply.json({"ok": True, "attempt": attempt})
