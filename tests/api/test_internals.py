"""The API's own pieces, in the corners the route tests do not reach."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentflow.api import running
from agentflow.api.context import ApiContext, _RecordingWorkspace
from agentflow.api.main import create_app
from agentflow.api.requests import ChatMessage, ChatRequest
from agentflow.api.routes import openai_compat
from agentflow.errors import ExecutionError
from agentflow.settings import get_settings
from agentflow.store import Store, default_store
from tests.api.conftest import Client, assert_error_shape, triage_doc


def test_json_answers_never_hold_non_finite_numbers() -> None:
    assert running.dumps({"a": [1.5, math.inf], "b": {"c": -math.inf, "d": math.nan}, "e": (2,)}) == (
        '{"a":[1.5,null],"b":{"c":null,"d":null},"e":[2]}'
    )
    assert running.dumps({"ok": 1}) == '{"ok":1}'


async def test_a_state_with_infinity_answers_valid_json(client: Client, saved: dict) -> None:
    raw = b'{"state": {"user_input": "hi", "big": 1e999}}'
    r = await client.post("/api/v1/workflows/triage-demo/runs", content=raw,
                          headers=client.as_("editor", **{"Content-Type": "application/json"}))
    assert r.status_code == 200 and json.loads(r.text)["big"] is None


class _BrokenStore:
    backend = "sqlite"
    workspace_key = "broken"

    def record_run(self, *a: Any, **k: Any) -> None:
        raise RuntimeError("disk full")

    def record_runs(self, *a: Any, **k: Any) -> None:
        raise RuntimeError("disk full")

    def cancel_requests(self, ids: Any) -> set[str]:
        return set()


async def test_recording_problems_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    ctx = ApiContext(_BrokenStore())  # type: ignore[arg-type]
    rec = running.RunRecorder(ctx, "r1", "wf", {"user_input": "x"}, "u", None)
    await rec.end(None)  # never started, never seen: nothing to record
    await rec.running(None)
    await rec.end(None, ExecutionError("boom"))
    assert "could not record the start of run r1" in caplog.text
    assert "could not record run r1" in caplog.text


class _CountingStore:
    """A real store that counts the groups of run-history rows written to it."""

    def __init__(self, inner: Store, refuse: str | None = None) -> None:
        self.inner, self.refuse, self.groups = inner, refuse, []
        self.backend, self.workspace_key = inner.backend, inner.workspace_key

    def record_runs(self, rows: list[dict[str, Any]]) -> list[str]:
        self.groups.append([r["state"]["metadata"]["run_id"] for r in rows])
        if any(r["state"]["metadata"]["run_id"] == self.refuse for r in rows):
            raise RuntimeError("refused")
        return self.inner.record_runs(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _final(run_id: str) -> dict[str, Any]:
    return {"user_input": "x", "metadata": {"run_id": run_id, "workflow_id": "wf", "status": "succeeded"}}


async def test_runs_ending_together_share_one_history_write() -> None:
    store = _CountingStore(default_store())
    ctx = ApiContext(store)  # type: ignore[arg-type]
    await asyncio.gather(*(ctx.history.record(_final(f"t{i}"), user="u", input=None, workflow_version=None)
                           for i in range(5)))
    assert store.groups == [[f"t{i}" for i in range(5)]]
    assert [store.get_run(f"t{i}")["user"] for i in range(5)] == ["u"] * 5


async def test_a_bad_row_in_a_group_loses_only_itself() -> None:
    store = _CountingStore(default_store(), refuse="b1")
    ctx = ApiContext(store)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(ctx.history.record(_final(f"b{i}"), user=None, input=None, workflow_version=None) for i in range(3)),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and isinstance(results[1], RuntimeError)
    assert store.groups[0] == ["b0", "b1", "b2"] and sorted(store.groups[1:]) == [["b0"], ["b1"], ["b2"]]
    assert store.get_run("b0") and store.get_run("b2")


async def test_a_quiet_stream_sends_keep_alives_and_a_broken_run_ends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(running, "KEEPALIVE_S", 0.01)
    sink = running._Sink()
    events = sink.events()
    assert await events.__anext__() is None  # nothing yet: a keep-alive
    ctx = ApiContext(_BrokenStore())  # type: ignore[arg-type]
    recorder = running.RunRecorder(ctx, "r2", "wf", {}, None, None)

    async def broken() -> Any:
        yield {"type": "node_start"}
        raise RuntimeError("bug in a node")

    await running._drive({"type": "run_start"}, broken(), sink, recorder)
    got = [e async for e in events]
    assert [e["type"] for e in got if e] == ["run_start", "node_start"]
    response = running.event_stream(_items([None, {"type": "x", "run_id": "r"}]), trailer=b"data: [DONE]\n\n")
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[union-attr]
    assert body == b': keep-alive\n\nevent: x\ndata: {"type":"x","run_id":"r"}\n\ndata: [DONE]\n\n'


async def _items(items: list[Any]) -> Any:
    for item in items:
        yield item


def test_answer_text_and_usage() -> None:
    assert openai_compat.answer_text({"text_result": {"n": 1}}) == '{"n": 1}'
    assert openai_compat.answer_text({"text_result": None, "final_output": {"text": 7}}) == "7"
    assert openai_compat.answer_text({}) == "null"
    assert openai_compat.usage({"metadata": {"tokens": {"prompt": 2, "completion": 3}}}) == {
        "prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert openai_compat._epoch(None) == 0


def test_chat_messages_keep_names_and_text_parts() -> None:
    msg = ChatMessage(role="user", name="ann", content=[{"type": "text", "text": "a"}, {"type": "image_url"}])
    assert msg.as_state() == {"role": "user", "content": "a", "name": "ann"}
    req = ChatRequest(model="m", messages=[{"role": "user", "content": None}, {"role": "assistant", "content": "b"},
                                           {"role": "user", "content": "c"}])
    assert req.split() == ("c", [{"role": "user", "content": ""}, {"role": "assistant", "content": "b"}])


async def test_models_page_through_every_workflow(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_compat, "_PAGE", 2)
    doc = triage_doc()
    for i in range(5):
        await client.put(f"/api/v1/workflows/wf-{i}", json={"document": {**doc, "id": f"wf-{i}"}},
                         headers=client.as_("editor"))
    models = (await client.get("/v1/models", headers=client.as_("viewer"))).json()["data"]
    assert sorted(m["id"] for m in models) == [f"wf-{i}" for i in range(5)]


async def test_a_bad_content_length_is_left_to_the_server(client: Client) -> None:
    r = await client.post("/api/v1/validate", content=b"{}",
                          headers=client.as_("viewer", **{"Content-Length": "2", "X-Ignored": "1"}))
    assert r.status_code == 422
    from agentflow.api.errors import RequestLimits

    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("path", scope["type"]))

    limits = RequestLimits(app, 10)
    await limits({"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-length", b"abc")]},
                 None, None)  # type: ignore[arg-type]
    await limits({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["/x", "lifespan"]


async def test_repeated_query_parameters_are_refused(client: Client) -> None:
    r = await client.get("/api/v1/runs?limit=1&limit=2", headers=client.as_("viewer"))
    assert r.status_code == 422
    assert_error_shape(r.json(), "ValidationError")
    assert r.json()["details"]["errors"] == [{"path": "query.limit", "message": "given more than once"}]


def test_validation_that_looks_into_the_workspace_is_not_cached(store: Store) -> None:
    store.put_source({"id": "shared", "kind": "llm", "provider": "echo"})
    ctx = ApiContext(store)
    inline = {"id": "a", "version": 1, "created_at": "t", "document": triage_doc()}
    assert ctx.saved_spec(inline) is ctx.saved_spec(inline)
    doc = {"id": "b", "nodes": [{"id": "input", "type": "input"},
                                {"id": "x", "type": "llm", "source": "shared", "config": {"prompt": "{user_input}"}}],
           "edges": [{"from": "input", "to": "x"}]}
    uses = {"id": "b", "version": 1, "created_at": "t", "document": doc}
    assert ctx.saved_spec(uses) is not ctx.saved_spec(uses)
    rec = _RecordingWorkspace(store)
    assert rec.get_queue("nope") is None and rec.get_secret("nope") is None and rec.used


async def test_context_opens_the_environment_s_store_and_waits_for_background_runs(tmp_path: Path) -> None:
    ctx = ApiContext()
    assert ctx.store is default_store()
    assert ctx.settings == get_settings()
    own = ApiContext(settings=get_settings())
    store = own.store
    assert store is not default_store()
    done = asyncio.Event()

    async def background() -> None:
        await asyncio.sleep(0.05)
        done.set()

    own.spawn(background())
    await own.drain()
    assert done.is_set()
    slow = own.spawn(asyncio.sleep(10))
    await own.drain(timeout_s=0.01)
    await asyncio.sleep(0)
    assert slow.cancelled()
    own.close()
    with pytest.raises(Exception, match="closed"):
        store.ping() or store.list_sources()
    ctx.close()  # not its own: left open
    assert default_store().ping()


async def test_lifespan_opens_the_store_and_closes_its_own(tmp_path: Path) -> None:
    app = create_app(settings=get_settings())
    async with app.router.lifespan_context(app):
        ctx = app.state.agentflow
        store = ctx.store
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            assert (await c.get("/health")).status_code == 200
    assert store._closed
