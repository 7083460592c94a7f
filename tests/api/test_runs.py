"""Runs over HTTP: JSON answers and Server-Sent Events, history, breakpoints, resume, fork, cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentflow.runtime.executor import active_runs
from agentflow.store import Store
from tests.api.conftest import Client, assert_error_shape, failing_doc, parse_sse, slow_chain

RUNS = "/api/v1/workflows/triage-demo/runs"


async def test_run_answers_the_final_state_and_is_recorded(client: Client, saved: dict, store: Store) -> None:
    r = await client.post(RUNS, json={"input": "hello"}, headers=client.as_("editor"))
    assert r.status_code == 200
    final = r.json()
    meta = final["metadata"]
    assert final["text_result"] == "You asked: hello"
    assert meta["status"] == "succeeded" and meta["workflow_id"] == "triage-demo"
    assert meta["nodes_executed"] == ["input", "router", "answer", "agg"]
    assert meta["user"] == "editor-key" and meta["workflow_version"] == 1
    record = (await client.get(f"/api/v1/runs/{meta['run_id']}", headers=client.as_("viewer"))).json()
    assert record["status"] == "succeeded" and record["user"] == "editor-key"
    assert record["workflow_version"] == 1 and record["input"] == {"user_input": "hello"}
    assert record["final_state"]["text_result"] == "You asked: hello"
    assert [e["node"] for e in record["trace"]] == ["input", "router", "answer", "agg"]


async def test_run_a_chosen_version_with_state_and_subqueue(client: Client, saved: dict) -> None:
    ed = client.as_("editor")
    v2 = dict(saved, name="v2")
    v2["nodes"] = [dict(n) for n in saved["nodes"]]
    v2["nodes"][2] = dict(v2["nodes"][2], config={"prompt": "v2 says {user_input}"})
    await client.put("/api/v1/workflows/triage-demo", json={"document": v2}, headers=ed)
    latest = (await client.post(RUNS, json={"input": "x"}, headers=ed)).json()
    assert latest["text_result"] == "You asked: v2 says x"
    first = (await client.post(RUNS, json={"input": "x", "version": 1}, headers=ed)).json()
    assert first["text_result"] == "You asked: x" and first["metadata"]["workflow_version"] == 1
    by_query = (await client.post(RUNS, params={"version": 1}, json={"state": {"user_input": "q", "extra": 5}},
                                  headers=ed)).json()
    assert by_query["metadata"]["workflow_version"] == 1 and by_query["extra"] == 5
    both = (await client.post(RUNS, json={"input": "wins", "state": {"user_input": "loses"}, "subqueue": "batch"},
                              headers=ed)).json()
    assert both["user_input"] == "wins" and both["metadata"]["subqueue"] == "batch"
    r = await client.post(RUNS, json={"input": "x", "version": 7}, headers=ed)
    assert r.status_code == 404
    r = await client.post("/api/v1/workflows/nope/runs", json={"input": "x"}, headers=ed)
    assert r.status_code == 404
    assert_error_shape(r.json(), "NotFoundError")


@pytest.mark.parametrize(
    ("body", "path"),
    [({}, "body"), ({"input": 5}, "body.input"), ({"input": "x", "bogus": 1}, "body.bogus"),
     ({"input": "x", "breakpoints": ["Bad Id"]}, "body.breakpoints.0"), ({"state": []}, "body.state"),
     ({"input": "x", "version": 0}, "body.version")],
)
async def test_run_requests_are_validated(client: Client, saved: dict, body: dict, path: str) -> None:
    r = await client.post(RUNS, json=body, headers=client.as_("editor"))
    assert r.status_code == 422
    assert_error_shape(r.json(), "ValidationError")
    assert path in [e["path"] for e in r.json()["details"]["errors"]]


async def test_events_stream_in_order_and_end_with_run_end(client: Client, saved: dict, store: Store) -> None:
    r = await client.post(RUNS, json={"input": "one two three"},
                          headers=client.as_("editor", Accept="text/event-stream"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert all(e == data["type"] for e, data in events)
    run_id = events[0][1]["data"]["run_id"]
    assert all(data["run_id"] == run_id for _, data in events)
    nodes = [d["node"] for e, d in events if e == "node_end"]
    assert nodes == ["input", "router", "answer", "agg"]
    tokens = "".join(d["data"] for e, d in events if e == "token")
    assert tokens == "You asked: one two three"
    assert events[-1][1]["data"]["metadata"]["status"] == "succeeded"
    assert store.get_run(run_id)["status"] == "succeeded"
    assert store.get_run(run_id)["user"] == "editor-key"


async def test_inline_document_runs_as_json_and_events(client: Client, doc: dict[str, Any]) -> None:
    ed = client.as_("editor")
    r = await client.post("/api/v1/runs", json={"document": doc, "input": "img: a fox"}, headers=ed)
    assert r.status_code == 200
    assert r.json()["intent"] == "image" and r.json()["image_result"]
    assert "workflow_version" not in r.json()["metadata"]
    r = await client.post("/api/v1/runs", json={"document": doc, "input": "sql: a desk lamp or a floor lamp"},
                          headers={**ed, "Accept": "text/event-stream"})
    final = parse_sse(r.text)[-1][1]["data"]
    assert [row["name"] for row in final["db_result"]] == ["desk lamp", "floor lamp"]
    r = await client.post("/api/v1/runs", json={"document": {"id": "x"}, "input": "hi"}, headers=ed)
    assert r.status_code == 422
    assert_error_shape(r.json(), "ValidationError")
    r = await client.post("/api/v1/runs", json={"document": "examples/triage.json", "input": "hi"}, headers=ed)
    assert r.status_code == 422  # a path on the server is never read


async def test_a_failed_run_answers_its_error_with_run_id_and_partial_trace(client: Client, store: Store) -> None:
    r = await client.post("/api/v1/runs", json={"document": failing_doc(), "input": "hi"},
                          headers=client.as_("editor"))
    assert r.status_code == 422
    body = r.json()
    assert_error_shape(body, "ExecutionError")
    assert "missing_key" in body["message"]
    details = body["details"]
    assert [(e["node"], e["status"]) for e in details["trace"]] == [
        ("input", "succeeded"), ("ok", "succeeded"), ("broken", "failed")
    ]
    record = store.get_run(details["run_id"])
    assert record["status"] == "failed" and record["user"] == "editor-key"
    assert record["error"]["error_type"] == "ExecutionError"
    # Streamed, the same failure is the run_end's status.
    r = await client.post("/api/v1/runs", json={"document": failing_doc(), "input": "hi"},
                          headers=client.as_("editor", Accept="text/event-stream"))
    events = parse_sse(r.text)
    end = events[-1][1]["data"]["metadata"]
    assert events[-1][0] == "run_end" and end["status"] == "failed"
    assert store.get_run(end["run_id"])["status"] == "failed"


async def test_breakpoint_checkpoints_resume_and_fork(client: Client, saved: dict, store: Store) -> None:
    ed = client.as_("editor")
    r = await client.post(RUNS, json={"input": "hi", "breakpoints": ["answer"]}, headers=ed)
    paused = r.json()["metadata"]
    assert r.status_code == 200
    assert paused["status"] == "interrupted" and paused["paused_before"] == "answer"
    run_id = paused["run_id"]
    assert (await client.get(f"/api/v1/runs/{run_id}", headers=ed)).json()["status"] == "interrupted"
    cps = (await client.get(f"/api/v1/runs/{run_id}/checkpoints", headers=client.as_("viewer"))).json()
    assert cps and cps[-1]["next"] == ["answer"]
    r = await client.post(f"/api/v1/runs/{run_id}/resume", json={"state_patch": {"user_input": "changed"}},
                          headers=ed)
    assert r.status_code == 200, r.text
    assert r.json()["text_result"] == "You asked: changed"
    assert r.json()["metadata"]["status"] == "succeeded"
    record = store.get_run(run_id)
    assert record["status"] == "succeeded" and record["user"] == "editor-key"
    r = await client.post(f"/api/v1/runs/{run_id}/resume", json={}, headers=ed)
    assert r.status_code == 422
    assert_error_shape(r.json(), "ExecutionError")
    # Fork from the checkpoint before "answer": a new run; the original stays.
    before = next(c for c in cps if c["next"] == ["answer"])
    r = await client.post(f"/api/v1/runs/{run_id}/fork",
                          json={"checkpoint_id": before["checkpoint_id"], "state_patch": {"user_input": "forked"}},
                          headers=ed)
    assert r.status_code == 200, r.text
    forked = r.json()
    assert forked["text_result"] == "You asked: forked"
    assert forked["metadata"]["run_id"] != run_id
    assert forked["metadata"]["forked_from"] == {"run_id": run_id, "checkpoint_id": before["checkpoint_id"]}
    r = await client.post(f"/api/v1/runs/{run_id}/fork", json={"checkpoint_id": "nope"}, headers=ed)
    assert r.status_code == 404


async def test_resume_and_checkpoints_of_unknown_or_plain_runs(client: Client, saved: dict) -> None:
    ed = client.as_("editor")
    plain = (await client.post(RUNS, json={"input": "hi"}, headers=ed)).json()["metadata"]["run_id"]
    r = await client.get(f"/api/v1/runs/{plain}/checkpoints", headers=ed)
    assert r.status_code == 404
    assert "breakpoints" in r.json()["message"]
    for path in ("/api/v1/runs/unknown", "/api/v1/runs/unknown/checkpoints"):
        assert (await client.get(path, headers=ed)).status_code == 404
    assert (await client.post("/api/v1/runs/unknown/resume", headers=ed)).status_code == 404
    r = await client.post(RUNS, json={"input": "hi", "breakpoints": ["nope"]}, headers=ed)
    assert r.status_code == 422
    assert "nope" in r.json()["message"]
    r = await client.post(RUNS, json={"input": "hi", "breakpoints": ["nope"]},
                          headers={**ed, "Accept": "text/event-stream"})
    assert r.status_code == 422


async def test_cancel_paused_ended_and_unknown_runs(client: Client, saved: dict, store: Store) -> None:
    ed = client.as_("editor")
    paused = (await client.post(RUNS, json={"input": "hi", "breakpoints": ["agg"]}, headers=ed)).json()
    run_id = paused["metadata"]["run_id"]
    r = await client.post(f"/api/v1/runs/{run_id}/cancel", headers=ed)
    assert r.status_code == 202
    assert r.json() == {"run_id": run_id, "status": "cancelled"}
    assert store.get_run(run_id)["status"] == "cancelled"
    r = await client.post(f"/api/v1/runs/{run_id}/cancel", headers=ed)
    assert r.status_code == 409
    assert_error_shape(r.json(), "ConflictError")
    assert (await client.post("/api/v1/runs/unknown/cancel", headers=ed)).status_code == 404


async def test_cancel_a_running_run_stops_it_at_the_next_node(client: Client, store: Store) -> None:
    ed = client.as_("editor")
    doc = slow_chain(latency_ms=400, steps=4)
    before = set(active_runs())  # runs of earlier tests may still be ending in this process
    task = asyncio.create_task(client.post("/api/v1/runs", json={"document": doc, "input": "go"}, headers=ed))
    for _ in range(200):
        if set(active_runs()) - before:
            break
        await asyncio.sleep(0.01)
    [run_id] = set(active_runs()) - before
    for _ in range(100):  # recorded as running once it has lasted a quarter of a second
        listed = (await client.get("/api/v1/runs", params={"status": "running"}, headers=ed)).json()["runs"]
        if listed:
            break
        await asyncio.sleep(0.02)
    assert [r["run_id"] for r in listed] == [run_id]
    r = await client.post(f"/api/v1/runs/{run_id}/cancel", headers=ed)
    assert r.status_code == 202 and r.json()["status"] == "cancelling"
    answer = await task
    assert answer.status_code == 200
    meta = answer.json()["metadata"]
    assert meta["status"] == "cancelled" and meta["run_id"] == run_id
    assert len(meta["nodes_executed"]) < 5
    assert (await client.get(f"/api/v1/runs/{run_id}", headers=ed)).json()["status"] == "cancelled"


async def test_history_filters_and_pages(client: Client, saved: dict, store: Store) -> None:
    ed, ad = client.as_("editor"), client.as_("admin")
    for i in range(3):
        await client.post(RUNS, json={"input": f"hi {i}"}, headers=ed)
    await client.post("/api/v1/runs", json={"document": failing_doc(), "input": "x"}, headers=ad)
    page = (await client.get("/api/v1/runs", params={"limit": 2}, headers=ed)).json()
    assert len(page["runs"]) == 2 and page["next_cursor"]
    rest = (await client.get("/api/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]}, headers=ed)).json()
    assert len(rest["runs"]) == 2 and rest["next_cursor"] is None
    assert page["runs"][0]["workflow_id"] == "fails"  # newest first
    failed = (await client.get("/api/v1/runs", params={"status": "failed"}, headers=ed)).json()["runs"]
    assert [r["user"] for r in failed] == ["admin-key"]
    mine = (await client.get("/api/v1/runs", params={"workflow": "triage-demo", "user": "editor-key"},
                             headers=ed)).json()["runs"]
    assert len(mine) == 3
    for params in ({"status": "weird"}, {"cursor": "not-a-cursor"}, {"limit": 5000}):
        r = await client.get("/api/v1/runs", params=params, headers=ed)
        assert r.status_code == 422, params
        assert_error_shape(r.json(), "ValidationError")


async def test_a_long_debug_run_ends_recorded_as_paused_not_running(client: Client, store: Store) -> None:
    doc = slow_chain("debugged", latency_ms=200, steps=3)
    r = await client.post("/api/v1/runs", json={"document": doc, "input": "go", "breakpoints": ["s3"]},
                          headers=client.as_("editor"))
    meta = r.json()["metadata"]
    assert meta["status"] == "interrupted" and meta["total_runtime_ms"] > 300  # long enough to be swept
    record = store.get_run(meta["run_id"])
    assert record["status"] == "interrupted" and record["user"] == "editor-key"
