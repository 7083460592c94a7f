"""The run route's fast path answers exactly as the FastAPI route does.

Two apps over one store, one with the fast path (the default) and one without; every
request goes to both and the answers are compared, with what differs between any two runs
(run ids, times) left out. The fast path must also be the one that answered the
well-formed calls (else these tests would compare the route with itself).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentflow.api.fast_runs import RunFastPath
from agentflow.api.main import create_app
from agentflow.store import Store
from tests.api.conftest import assert_error_shape, failing_doc, triage_doc

RUNS = "/api/v1/workflows/triage-demo/runs"
#: What differs between two runs of the same request.
VOLATILE = {"run_id", "started_at", "ended_at", "duration_ms", "latency_ms", "total_runtime_ms", "trace", "reference"}


def _fast_path(app: Any) -> RunFastPath:
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, RunFastPath):
        layer = getattr(layer, "app", None)
    assert layer is not None, "the app has no fast path"
    return layer


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return "<id>"
    return value


class Pair:
    """The same request to both apps."""

    def __init__(self, fast: httpx.AsyncClient, plain: httpx.AsyncClient, fast_app: Any, keys: dict[str, str]) -> None:
        self.fast, self.plain, self.fast_app, self.keys = fast, plain, fast_app, keys

    def served(self) -> int:
        return _fast_path(self.fast_app).served if self.fast_app.middleware_stack is not None else 0

    async def both(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
        a = await self.fast.request(method, url, **kw)
        b = await self.plain.request(method, url, **kw)
        return a, b

    async def same(self, url: str = RUNS, *, role: str | None = "editor", **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if role is not None:
            headers.setdefault("Authorization", f"Bearer {self.keys[role]}")
        a, b = await self.both("POST", url, headers=headers, **kw)
        assert a.status_code == b.status_code, (a.text, b.text)
        assert a.headers.get("content-type") == b.headers.get("content-type")
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
        if a.headers.get("content-type", "").startswith("application/json"):
            assert _stable(a.json()) == _stable(b.json()), (a.text, b.text)
        if a.status_code >= 400:
            assert_error_shape(a.json())
        return a


@pytest.fixture
async def pair(store: Store, keys: dict[str, str]) -> AsyncIterator[Pair]:
    fast_app, plain_app = create_app(store=store), create_app(store=store, fast_runs=False)
    store.save_workflow(triage_doc(), author="t")
    store.save_workflow(triage_doc(), author="t")  # version 2
    store.save_workflow(failing_doc(), author="t")
    clients = []
    for app in (fast_app, plain_app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30))
    try:
        yield Pair(clients[0], clients[1], fast_app, keys)
    finally:
        for c in clients:
            await c.aclose()


async def test_a_well_formed_run_is_answered_by_the_fast_path_as_by_the_route(pair: Pair) -> None:
    r = await pair.same(json={"input": "hi"})
    assert r.status_code == 200 and r.json()["final_output"]
    assert pair.served() == 1
    r = await pair.same(json={"input": "img: a fox", "version": 1, "subqueue": "default"})
    assert r.json()["metadata"]["workflow_version"] == 1
    r = await pair.same(RUNS + "?version=1", json={"state": {"user_input": "hi"}})
    assert r.json()["metadata"]["workflow_version"] == 1
    await pair.same(headers={"Content-Type": "application/json; charset=utf-8"}, content=b'{"input": "hi"}')
    assert pair.served() == 4


@pytest.mark.parametrize(
    ("url", "role", "body", "status"),
    [
        (RUNS, None, {"input": "hi"}, 401),
        (RUNS, "viewer", {"input": "hi"}, 403),
        ("/api/v1/workflows/nope/runs", "editor", {"input": "hi"}, 404),
        (RUNS, "editor", {"input": "hi", "version": 9}, 404),
        (RUNS + "?version=9", "editor", {"input": "hi"}, 404),
        ("/api/v1/workflows/fails/runs", "editor", {"input": "hi"}, 422),
    ],
)
async def test_refusals_and_failed_runs_read_the_same(
    pair: Pair, url: str, role: str | None, body: dict[str, Any], status: int
) -> None:
    r = await pair.same(url, role=role, json=body)
    assert r.status_code == status
    assert pair.served() == 1  # the body was well formed: the fast path answered


async def test_a_bad_api_key_is_refused_alike(pair: Pair) -> None:
    r = await pair.same(role=None, headers={"Authorization": "Bearer af_not-a-key"}, json={"input": "hi"})
    assert r.status_code == 401
    r = await pair.same(role=None, headers={"Authorization": "Basic dXNlcjpwYXNz"}, json={"input": "hi"})
    assert r.status_code == 401


async def test_a_failed_run_keeps_its_id_and_partial_trace(pair: Pair) -> None:
    r = await pair.fast.post("/api/v1/workflows/fails/runs", json={"input": "hi"},
                             headers={"Authorization": f"Bearer {pair.keys['editor']}"})
    assert r.status_code == 422
    details = r.json()["details"]
    assert details["run_id"]
    assert [(e["node"], e["status"]) for e in details["trace"]] == [
        ("input", "succeeded"), ("ok", "succeeded"), ("broken", "failed")
    ]
    assert pair.served() == 1


@pytest.mark.parametrize(
    ("url", "content", "headers"),
    [
        (RUNS, b"{not json", {}),
        (RUNS, b"", {}),
        (RUNS, b"[]", {}),
        (RUNS, b'{"input": NaN}', {}),
        (RUNS, b'{"input": "hi", "extra": 1}', {}),
        (RUNS, b'{"input": "hi", "version": "1"}', {}),
        (RUNS, b'{"input": "hi", "version": 1.0}', {}),
        (RUNS, b'{"input": "hi", "version": 123456789012345678901234567890}', {}),
        (RUNS, b'{"input": "\\ud800"}', {}),
        (RUNS, b'{}', {}),
        (RUNS + "?version=0", b'{"input": "hi"}', {}),
        (RUNS + "?version=abc", b'{"input": "hi"}', {}),
        (RUNS + "?other=1", b'{"input": "hi"}', {}),
        (RUNS, b'{"input": "hi"}', {"Content-Type": "text/plain"}),
        ("/api/v1/workflows/Not_A_Slug/runs", b'{"input": "hi"}', {}),
    ],
)
async def test_malformed_calls_get_the_routes_own_answer(
    pair: Pair, url: str, content: bytes, headers: dict[str, str]
) -> None:
    headers = {"Content-Type": "application/json", **headers}
    r = await pair.same(url, content=content, headers=headers)
    assert pair.served() == 0, "the fast path must leave malformed calls to the route"
    assert r.status_code in (200, 404, 422)  # "[]"... are refused; the unusual but valid ones run


async def test_streamed_runs_go_to_the_route(pair: Pair) -> None:
    r = await pair.fast.post(RUNS, json={"input": "hi"},
                             headers={"Authorization": f"Bearer {pair.keys['editor']}", "Accept": "text/event-stream"})
    assert r.status_code == 200 and r.text.rstrip().splitlines()[-1].startswith("data:")
    assert "event: run_end" in r.text
    assert pair.served() == 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_bodies = st.dictionaries(
    st.sampled_from(["input", "state", "version", "subqueue", "breakpoints", "extra"]), _json, max_size=4
) | _json


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
async def test_any_json_body_is_answered_alike(pair: Pair, body: Any) -> None:
    r = await pair.same(content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 404, 409, 422), r.text


# -- the pieces that real clients rarely exercise --------------------------------------------


def _receiver(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


async def test_a_body_in_pieces_is_joined_and_a_short_or_broken_one_is_left_to_the_route() -> None:
    from agentflow.api.fast_runs import _read_body, _replaying

    pieces = ({"type": "http.request", "body": b'{"in', "more_body": True},
              {"type": "http.request", "body": b'put": "hi"}', "more_body": False})
    messages, body = await _read_body(_receiver(*pieces), 15)
    assert body == b'{"input": "hi"}' and len(messages) == 2
    replay = _replaying(messages, _receiver({"type": "http.disconnect"}))
    assert [await replay() for _ in range(3)] == [*pieces, {"type": "http.disconnect"}]
    assert (await _read_body(_receiver(*pieces), 99))[1] is None  # not what was declared
    gone = (await _read_body(_receiver(pieces[0], {"type": "http.disconnect"}), 15))
    assert gone[1] is None and gone[0][-1] == {"type": "http.disconnect"}


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        [(b"content-type", b"application/json"), (b"content-length", b"x1")],
        [(b"content-type", b"application/json")],
        [(b"content-length", b"2")],
        [(b"content-length", b"2"), (b"content-type", b"application/json"), (b"accept", b"text/event-stream")],
        [(b"content-length", b"2"), (b"content-type", b"application/json"),
         (b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
    ],
)
def test_only_a_plain_json_request_is_taken(headers: list[tuple[bytes, bytes]]) -> None:
    from agentflow.api.fast_runs import _plain_request

    assert _plain_request({"headers": headers}) is None
    plain = [(b"content-length", b"2"), (b"content-type", b"Application/JSON; charset=utf-8"),
             (b"authorization", b"Bearer k")]
    assert _plain_request({"headers": plain}) == (2, "Bearer k")


async def test_other_methods_and_a_body_that_never_came_go_to_the_route(pair: Pair) -> None:
    a, b = await pair.both("GET", RUNS, headers={"Authorization": f"Bearer {pair.keys['editor']}"})
    assert a.status_code == b.status_code == 405 and a.json() == b.json()

    seen: list[Any] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())

    scope = {"type": "http", "method": "POST", "path": RUNS, "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")]}
    await RunFastPath(route, ctx=None)(scope, _receiver({"type": "http.disconnect"}), None)
    assert seen == [{"type": "http.disconnect"}]
