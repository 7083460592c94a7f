"""``api/http`` with ``httpx`` against the local generic HTTP server."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentflow.errors import ExecutionError, SourceConnectionError, ValidationError
from agentflow.sources.base import APIRequest
from agentflow.sources.clients import create_provider
from agentflow.spec.models import SourceSpec
from tests.conftest import ROOT
from tests.servers import EchoHTTPServer

TOKEN_ENV = "AF_TEST_API_TOKEN"
TOKEN = "tok-very-secret-0123456789"


@pytest.fixture
def srv() -> Iterator[EchoHTTPServer]:
    with EchoHTTPServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def make(base_url: str, **config: Any) -> Any:
    cfg = {"base_url": base_url, "retry_backoff_s": 0.01, **config}
    return create_provider(SourceSpec(id="api", kind="api", provider="http", config=cfg), None)


def get(path: str, **kw: Any) -> APIRequest:
    return APIRequest(method="GET", path=path, **kw)


def test_get_with_params_and_secret_header(srv: EchoHTTPServer) -> None:
    api = make(srv.url + "/echo", headers={"X-Plain": "1", "Authorization": {"env": TOKEN_ENV, "prefix": "Bearer "}})
    resp = api.request(get("items", params={"q": "x y", "n": 2}, headers={"X-Req": "2"}))
    assert resp.status == 200 and resp.body["path"] == "/echo/items"
    assert resp.body["query"] == {"q": "x y", "n": "2"}
    sent = srv.requests[0].headers
    assert sent["authorization"] == f"Bearer {TOKEN}" and sent["x-plain"] == "1" and sent["x-req"] == "2"
    assert resp.headers["content-type"] == "application/json"
    posted = api.request(APIRequest(method="post", path="/new", json={"a": [1, 2]}))
    assert posted.body["method"] == "POST" and posted.body["json"] == {"a": [1, 2]}


def test_body_decoding(srv: EchoHTTPServer) -> None:
    api = make(srv.url)
    assert api.request(get("/text")).body == "hello, world"
    binary = api.request(get("/bytes", params={"n": 4})).body
    assert binary == {
        "encoding": "base64",
        "data": base64.b64encode(bytes([0, 1, 2, 3])).decode(),
        "content_type": "application/octet-stream",
        "size": 4,
    }
    empty = api.request(get("/empty"))
    assert (empty.status, empty.body) == (204, None)
    json.dumps(api.request(get("/echo")).to_dict())


def test_cookies_neither_returned_nor_kept(srv: EchoHTTPServer) -> None:
    api = make(srv.url)
    resp = api.request(get("/cookies"))
    assert "set-cookie" not in resp.headers and resp.headers["x-custom"] == "1"
    assert "cookie" not in api.request(get("/echo")).body["headers"]  # one client, many users


def test_5xx_retried_for_idempotent_methods_only(srv: EchoHTTPServer) -> None:
    api = make(srv.url, max_retries=2)
    assert api.request(get("/flaky/a", params={"fail": 2, "status": 500})).body == {"ok": True, "attempt": 3}
    with pytest.raises(SourceConnectionError, match=r"POST /flaky/b: server error \(HTTP 500") as info:
        api.request(APIRequest(method="POST", path="/flaky/b", params={"fail": 1, "status": 500}))
    assert info.value.retryable  # the node's policy may still decide to retry
    assert len(srv.requests_to("/flaky/b")) == 1
    # 503 means "not processed": safe to send again even for POST.
    ok = api.request(APIRequest(method="POST", path="/flaky/c", params={"fail": 1, "status": 503}))
    assert ok.body["attempt"] == 2


def test_retry_after(srv: EchoHTTPServer) -> None:
    api = make(srv.url, max_retries=1, max_retry_wait_s=1)
    assert api.request(get("/flaky/d", params={"fail": 1, "status": 429, "retry_after": 0.3})).status == 200
    first, second = srv.arrivals("/flaky/d")
    assert second - first >= 0.3
    started = time.monotonic()
    with pytest.raises(SourceConnectionError, match="rate limited") as info:
        api.request(get("/status/429", params={"retry_after": 100}))  # too long to wait inside a call
    assert info.value.retry_after_s == 100 and time.monotonic() - started < 0.5
    assert len(srv.requests_to("/status/429")) == 1


def test_retries_run_out(srv: EchoHTTPServer) -> None:
    with pytest.raises(SourceConnectionError, match="HTTP 502") as info:
        make(srv.url, max_retries=1).request(get("/status/502"))
    assert info.value.retryable and len(srv.requests_to("/status/502")) == 2


def test_unreachable(srv: EchoHTTPServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceConnectionError, match="connection refused") as refused:
        make(f"http://127.0.0.1:{port}", max_retries=0).request(get("/x"))
    assert refused.value.retryable and refused.value.source == "api"
    with pytest.raises(SourceConnectionError, match="resolve") as dns:
        make("http://no-such-host.invalid", max_retries=3).request(get("/x"))
    # NXDOMAIN is a config error; a resolver that cannot answer (no network) is transient.
    assert dns.value.retryable == ("right now" in dns.value.message)
    with pytest.raises(SourceConnectionError, match="TLS") as tls:  # https to a plain-HTTP port
        make(f"https://127.0.0.1:{srv.port}", max_retries=3).request(get("/x"))
    assert not tls.value.retryable and srv.requests == []


def test_timeout(srv: EchoHTTPServer) -> None:
    started = time.monotonic()
    with pytest.raises(SourceConnectionError, match="timed out") as info:
        make(srv.url, timeout_s=0.2, max_retries=0).request(get("/slow", params={"s": 3}))
    assert info.value.retryable and time.monotonic() - started < 1.5


def test_response_size_cap(srv: EchoHTTPServer) -> None:
    api = make(srv.url, max_response_bytes=100_000)
    assert len(api.request(get("/big", params={"n": 100_000})).body) == 100_000
    with pytest.raises(ExecutionError, match="max_response_bytes"):
        api.request(get("/big", params={"n": 100_001}))  # declared length: refused unread
    with pytest.raises(ExecutionError, match="more than 100000 bytes"):
        api.request(get("/big", params={"n": 5_000_000, "chunked": 1}))  # counted while reading


def test_redirects_stay_on_host(srv: EchoHTTPServer) -> None:
    api = make(srv.url)
    same = api.request(get("/redirect", params={"to": "/echo/moved"}))
    assert same.status == 200 and same.body["path"] == "/echo/moved"
    off_host = f"http://localhost:{srv.port}/echo/stolen"  # same machine, another host name
    with pytest.raises(SourceConnectionError, match="refused a redirect to another host") as info:
        api.request(get("/redirect", params={"to": off_host}))
    assert not info.value.retryable
    assert srv.requests_to("/echo/stolen") == []  # never sent
    raw = make(srv.url, follow_redirects=False).request(get("/redirect", params={"to": off_host}))
    assert raw.status == 302 and raw.headers["location"] == off_host


def test_paths_cannot_leave_the_host(srv: EchoHTTPServer) -> None:
    api = make(srv.url)
    assert api.request(get(srv.url + "/echo/abs")).body["path"] == "/echo/abs"
    for path in (f"http://localhost:{srv.port}/echo", "//evil.example/x", "https://evil.example/"):
        with pytest.raises(ExecutionError, match="not on the source's host"):
            api.request(get(path))
    assert srv.requests_to("/echo") == []


def test_client_errors_and_masked_secrets(srv: EchoHTTPServer) -> None:
    api = make(srv.url, headers={"X-Api-Key": {"env": TOKEN_ENV}})
    with pytest.raises(SourceConnectionError, match="refused the credentials") as info:
        api.request(get("/status/401"))  # the server echoes our headers in its error body
    assert not info.value.retryable
    assert TOKEN not in info.value.message and TOKEN not in json.dumps(info.value.to_dict())
    with pytest.raises(ExecutionError, match=r"GET /status/400 was rejected \(HTTP 400"):
        api.request(get("/status/400"))
    with pytest.raises(ExecutionError, match="check the path"):
        api.request(get("/status/404"))
    loose = make(srv.url, raise_for_status=False).request(get("/status/404"))
    assert loose.status == 404 and loose.body["error"] == "status 404"


def test_missing_header_secret(srv: EchoHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(SourceConnectionError, match=f"environment variable {TOKEN_ENV}"):
        make(srv.url, headers={"Authorization": {"env": TOKEN_ENV}}).request(get("/"))


def test_async_across_loops(srv: EchoHTTPServer) -> None:
    api = make(srv.url, max_retries=1)

    async def calls() -> list[int]:
        got = await asyncio.gather(api.arequest(get("/echo/1")), api.arequest(get("/flaky/async", params={"fail": 1})))
        return [r.status for r in got]

    assert asyncio.run(calls()) == [200, 200]
    assert asyncio.run(calls()) == [200, 200]
    off_host = get("/redirect", params={"to": f"http://localhost:{srv.port}/echo/stolen"})
    with pytest.raises(SourceConnectionError, match="another host"):
        asyncio.run(api.arequest(off_host))
    assert srv.requests_to("/echo/stolen") == []
    api.close()


def test_check(srv: EchoHTTPServer) -> None:
    assert make(srv.url).check().ok
    no_root = make(srv.url + "/nothing-here").check()
    assert no_root.ok and "health_path" in no_root.message
    bad = make(srv.url, health_path="/status/503").check()
    assert not bad.ok and "HTTP 503" in bad.message


def test_config_validation() -> None:
    for config, match in (
        ({"base_url": "http://h", "headers": {"Authorization": "Bearer abc"}}, "carries a credential"),
        ({"base_url": "http://h", "headers": {"X-Token": "abc"}}, "carries a credential"),
        ({"base_url": "ftp://h"}, "http:// or https://"),
        ({"base_url": "http://h", "api_key": "abc"}, '"api_key_env"'),
        ({"base_url": "http://h", "headers": {"A": {"env": "X", "secret": "Y"}}}, "exactly one"),
    ):
        with pytest.raises(ValidationError, match=match):
            create_provider(SourceSpec(id="api", kind="api", provider="http", config=config), None)


def test_import_is_cheap() -> None:
    """Importing the provider module (the registry does, for every run) loads no client library."""
    code = (
        "import sys, agentflow.sources.base; before = set(sys.modules);"
        "import agentflow.sources.api_http;"
        "heavy = {m.split('.')[0] for m in set(sys.modules) - before}"
        " & {'openai', 'httpx', 'httpx2', 'psycopg', 'psycopg_pool'};"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_wire_helpers() -> None:
    """Header and body rules shared by the HTTP-based providers, on edge inputs."""
    from email.utils import formatdate

    from agentflow.sources._http_errors import body_detail, retry_after_s
    from agentflow.sources._http_wire import decode_body, public_headers

    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "nan"}) is None and retry_after_s({"retry-after": "soon"}) is None
    assert 5 < retry_after_s({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert body_detail(b'{"error": {"message": "bad  model\\n name"}}') == "bad model name"
    assert body_detail("x" * 500).endswith("…") and len(body_detail("x" * 500)) == 300
    assert decode_body(b"{oops", "application/problem+json", None) == "{oops"
    assert decode_body(b"<a/>", "application/atom+xml", "no-such-charset") == "<a/>"
    assert decode_body(b"caf\xe9", "text/plain; charset=latin-1", "latin-1") == "café"
    assert public_headers({"Set-Cookie": "a=1", "X-Api-Key": "k", "ETag": "1"}) == {"etag": "1"}
