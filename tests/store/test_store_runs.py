"""Run history: record, upsert by run id, keyset pages, filters, big states."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from agentflow.errors import NotFoundError, ValidationError
from agentflow.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def final_state(run_id: str, *, minute: int = 0, status: str = "succeeded", **meta) -> dict:
    started = T0 + timedelta(minutes=minute)
    trace = [{"node": "answer", "type": "llm", "status": status, "latency_ms": 1.5}]
    return {
        "user_input": f"hello {run_id}",
        "text_result": "hi",
        "errors": [],
        "metadata": {
            "run_id": run_id,
            "workflow_id": meta.pop("workflow_id", "triage"),
            "status": status,
            "total_runtime_ms": 12.5,
            "nodes_executed": ["input", "answer"],
            "trace": trace,
            "tokens": {"prompt": 3, "completion": 4, "total": 7},
            "cost_usd": 0.0001,
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "ended_at": (started + timedelta(seconds=1)).isoformat(),
            **meta,
        },
    }


def test_record_and_get(store: Store) -> None:
    state = final_state("r1")
    assert store.record_run(state, user="ann", workflow_version=3) == "r1"
    run = store.get_run("r1")
    assert run["run_id"] == "r1" and run["workflow_id"] == "triage"
    assert run["workflow_version"] == 3 and run["status"] == "succeeded"
    assert run["user"] == "ann" and run["input"] == {"user_input": "hello r1"}
    assert run["final_state"] == state
    assert run["trace"] == state["metadata"]["trace"]
    assert run["tokens"] == {"prompt": 3, "completion": 4, "total": 7}
    assert run["cost_usd"] == pytest.approx(0.0001) and run["total_runtime_ms"] == 12.5
    assert run["started_at"] == "2026-03-01T12:00:00.000000Z"
    assert run["ended_at"] == "2026-03-01T12:00:01.000000Z"
    assert run["error"] is None
    assert store.get_run("r1", include_state=False)["final_state"] is None
    with pytest.raises(NotFoundError, match='run "nope" not found'):
        store.get_run("nope")


def test_failed_run_keeps_its_error(store: Store) -> None:
    error = {"status": "error", "error_type": "ExecutionError", "message": "boom"}
    store.record_run(final_state("bad", status="failed", error=error), input={"x": 1})
    run = store.get_run("bad")
    assert run["status"] == "failed" and run["error"] == error and run["input"] == {"x": 1}
    (summary,), _ = store.list_runs()
    assert summary["error"] == error


def test_resumed_run_updates_its_record(store: Store) -> None:
    store.record_run(final_state("r1", status="interrupted"), user="ann", workflow_version=2)
    resumed = final_state("r1", minute=5, status="succeeded")
    resumed["metadata"]["tokens"] = {"prompt": 10, "completion": 20, "total": 30}
    store.record_run(resumed)
    run = store.get_run("r1")
    assert run["status"] == "succeeded" and run["tokens"]["total"] == 30
    assert run["user"] == "ann" and run["workflow_version"] == 2  # kept when not given again
    assert run["started_at"] == "2026-03-01T12:00:00.000000Z"  # first start kept
    assert run["final_state"] == resumed
    rows, _ = store.list_runs()
    assert len(rows) == 1


def test_invalid_states_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match=r"metadata\.run_id"):
        store.record_run({"metadata": {}})
    with pytest.raises(ValidationError, match=r"metadata\.status"):
        store.record_run(final_state("x", status="weird"))
    with pytest.raises(ValidationError, match="started_at"):
        store.record_run(final_state("x", started_at="yesterday"))


def test_several_runs_are_recorded_in_one_go_all_or_none(store: Store) -> None:
    rows = [{"state": final_state(f"g{i}", minute=i), "user": "ann", "workflow_version": 2} for i in range(3)]
    assert store.record_runs(rows) == ["g0", "g1", "g2"]
    got = store.get_run("g1")
    assert got["user"] == "ann" and got["workflow_version"] == 2 and got["status"] == "succeeded"
    bad = [{"state": final_state("h0")}, {"state": final_state("h1", status="weird")}]
    with pytest.raises(ValidationError, match=r"metadata\.status"):
        store.record_runs(bad)
    with pytest.raises(NotFoundError):
        store.get_run("h0")  # the group was refused whole
    assert store.record_runs([]) == []


def test_pages_newest_first_without_gaps_or_repeats(store: Store) -> None:
    for i in range(23):
        store.record_run(final_state(f"r{i:02d}", minute=i % 7))  # equal start times too
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = store.list_runs(limit=5, cursor=cursor)
        seen += [r["run_id"] for r in rows]
        assert "final_state" not in rows[0] and "trace" not in rows[0]
        if cursor is None:
            break
    assert len(seen) == 23 and len(set(seen)) == 23
    keys = [(store.get_run(r, include_state=False)["started_at"], r) for r in seen]
    assert keys == sorted(keys, reverse=True)


def test_filters(store: Store) -> None:
    store.record_run(final_state("a1", minute=1, workflow_id="a"), user="ann")
    store.record_run(final_state("a2", minute=2, workflow_id="a", status="failed"), user="bob")
    store.record_run(final_state("b1", minute=3, workflow_id="b"), user="ann")

    def ids(**kw) -> list[str]:
        return [r["run_id"] for r in store.list_runs(**kw)[0]]

    assert ids() == ["b1", "a2", "a1"]
    assert ids(workflow="a") == ["a2", "a1"]
    assert ids(status="failed") == ["a2"]
    assert ids(user="ann") == ["b1", "a1"]
    assert ids(workflow="a", user="ann") == ["a1"]
    assert ids(since=T0 + timedelta(minutes=2)) == ["b1", "a2"]
    assert ids(until="2026-03-01T12:02:00Z") == ["a1"]
    assert ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == ["a2", "a1"]
    rows, cursor = store.list_runs(workflow="a", limit=1)
    assert [r["run_id"] for r in rows] == ["a2"] and cursor
    assert [r["run_id"] for r in store.list_runs(workflow="a", cursor=cursor)[0]] == ["a1"]


def test_bad_cursor_and_limit(store: Store) -> None:
    with pytest.raises(ValidationError, match="cursor"):
        store.list_runs(cursor="not-a-cursor")
    with pytest.raises(ValidationError, match="limit"):
        store.list_runs(limit=0)


def test_big_images_are_stored_but_not_listed(store: Store) -> None:
    image = "iVBORw0KGgo" + "A" * 3_000_000
    state = final_state("img")
    state["image_result"] = {"b64": image}
    store.record_run(state)
    assert store.get_run("img")["final_state"]["image_result"]["b64"] == image
    rows, _ = store.list_runs()
    assert image not in repr(rows)


@pytest.mark.slow
def test_first_page_of_10000_runs_is_fast(store: Store) -> None:
    # Written through the store's own transactions in bulk, to keep the test short.
    from agentflow.store import codec

    rows = []
    for i in range(10_000):
        started = T0 + timedelta(seconds=i)
        rows.append((f"run-{i:05d}", "wf" if i % 2 else "other", "succeeded", started, started))
    with store._write() as tx:  # bulk seeding, for the timing only
        for run_id, wf, status, started, recorded in rows:
            tx.run(
                "INSERT INTO af_runs (run_id, workflow_id, status, started_at, recorded_at, "
                "final_state) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, wf, status, started, recorded, codec.dumps({"big": "x" * 2000})),
            )
    store.list_runs(limit=50)  # warm the connection
    t = time.perf_counter()
    page, cursor = store.list_runs(limit=50)
    first_page_ms = (time.perf_counter() - t) * 1000
    assert page[0]["run_id"] == "run-09999" and cursor
    t = time.perf_counter()
    filtered, _ = store.list_runs(workflow="wf", limit=50, cursor=cursor)
    filtered_ms = (time.perf_counter() - t) * 1000
    assert filtered and all(r["workflow_id"] == "wf" for r in filtered)
    assert first_page_ms < 100 and filtered_ms < 100, (first_page_ms, filtered_ms)
