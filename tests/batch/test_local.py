"""The local backend and the Python API: results in row order, scores, malformed rows,
bounded concurrency, cancel and resume, rows of a lost process taken over, compare."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agentflow.batch import (
    arun_batch,
    batch_results,
    batch_status,
    cancel_batch,
    compare_batches,
    create_batch,
    execute_batch,
    resume_batch,
    run_batch,
    start_batch,
)
from agentflow.batch.runner import MAX_ATTEMPTS
from agentflow.errors import ConflictError, ValidationError
from agentflow.store import default_store
from tests.batch.conftest import ConcurrencyProbe, openai_doc, six_doc
from tests.servers.openai_compat import CHAT_PATH


def wait_until(check, timeout: float = 20.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def test_run_batch_returns_rows_in_order_with_scores_and_malformed_rows(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    lines = [f'{{"q": "q{i}", "gold": "q{i}", "topic": "t{i}"}}' for i in range(30)]
    lines[7] = '{"q": "broken'
    lines[11] = '{"gold": "x"}'
    data.write_text("\n".join(lines) + "\n")
    seen: list[dict] = []
    results = run_batch(six_doc(), data, column="q", expected="gold", scorer="json:text", concurrency=8,
                        progress=seen.append)
    assert [r["row"] for r in results] == list(range(30))
    assert set(results[0]) == {"row", "status", "run_id", "final_output", "error", "latency_ms", "tokens",
                               "cost_usd", "score"}
    ok = results[0]
    assert ok["status"] == "succeeded" and ok["final_output"] == {"text": "q0"} and ok["score"] == 1.0
    assert ok["tokens"]["total"] > 0 and ok["latency_ms"] > 0 and len(ok["run_id"]) == 32
    assert results[7]["status"] == "failed" and results[7]["score"] == 0.0
    assert results[7]["error"]["error_type"] == "ValidationError"
    assert results[7]["error"]["message"].startswith("line 8: not valid JSON")
    assert results[11]["error"]["message"] == 'line 12: missing column "q"'
    status = results.status
    assert status["status"] == "finished" and status["total"] == 30
    assert (status["done"], status["failed"], status["running"], status["pending"]) == (28, 2, 0, 0)
    assert results.mean_score == pytest.approx(28 / 30)
    assert seen and seen[-1]["status"] == "finished"
    # the batch is in the store, with the workflow document it ran
    store = default_store()
    assert store.get_batch(results.batch_id)["document"]["id"] == "six"
    assert batch_results(results.batch_id) == list(results)
    assert batch_status(results.batch_id) == status
    # rows are not copied into the run history
    assert store.list_runs()[0] == []


def test_failed_runs_are_rows_with_their_error(tmp_path: Path) -> None:
    doc = six_doc()
    doc["nodes"][2]["config"]["prompt"] = "{missing_key}"
    results = run_batch(doc, [{"user_input": "a"}, {"user_input": "b", "missing_key": "here"}],
                        output_key="draft")
    assert results[0]["status"] == "failed" and results[0]["error"]["error_type"] == "ExecutionError"
    assert "missing_key" in results[0]["error"]["message"] and results[0]["run_id"]
    assert results[1]["status"] == "succeeded" and results[1]["final_output"] == "here"
    assert results[1]["score"] is None
    trace = default_store().batch_results(results.batch_id, include_trace=True)[0]["trace"]
    assert trace and trace[-1]["status"] == "failed"


def test_concurrency_is_bounded(llm_server) -> None:
    probe = ConcurrencyProbe(delay_s=0.05)
    llm_server.route("POST", CHAT_PATH, probe)
    doc = openai_doc(llm_server.base_url, "q-bound", rate=1000)
    results = run_batch(doc, [{"user_input": f"r{i}"} for i in range(24)], concurrency=4, output_key="text_result")
    assert all(r["status"] == "succeeded" for r in results)
    assert results[3]["final_output"] == "echo: r3"
    assert probe.peak == 4


def test_invalid_input_stores_nothing(tmp_path: Path) -> None:
    store = default_store()
    with pytest.raises(ValidationError, match="invalid workflow"):
        run_batch({"id": "x", "nodes": [], "edges": [], "bogus": 1}, [{"user_input": "a"}])
    with pytest.raises(ValidationError, match="unknown scorer"):
        run_batch(six_doc(), [{"user_input": "a", "e": "a"}], expected="e", scorer="nope")
    bad = tmp_path / "x.csv"
    bad.write_text("question\nhello\n")
    with pytest.raises(ValidationError, match='no column "user_input"'):
        run_batch(six_doc(), bad)
    assert store.list_batches() == []


def test_the_celery_backend_without_redis_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("AGENTFLOW_REDIS_URL", raising=False)
    monkeypatch.delenv("AGENTFLOW_CELERY_BROKER_URL", raising=False)
    with pytest.raises(ValidationError, match="the celery backend needs AGENTFLOW_REDIS_URL") as info:
        run_batch(six_doc(), [{"user_input": "a"}], backend="celery")
    assert info.value.errors == [{"path": "AGENTFLOW_REDIS_URL", "message": "not set"}]
    assert default_store().list_batches() == []


def test_cancel_stops_handing_out_rows_and_resume_runs_only_the_rest(llm_server) -> None:
    llm_server.set_delay(0.1)
    doc = openai_doc(llm_server.base_url, "q-cancel", rate=1000)
    handle = start_batch(doc, [{"user_input": f"r{i}"} for i in range(40)], concurrency=2, output_key="text_result")
    store = default_store()
    wait_until(lambda: store.batch_counts(handle.batch_id)["done"] >= 4)
    status = cancel_batch(handle.batch_id)
    assert status["status"] == "cancelled"
    assert handle.join(10)
    after = batch_status(handle.batch_id)
    assert after["status"] == "cancelled" and after["running"] == 0
    assert 4 <= after["done"] < 20 and after["done"] + after["pending"] == 40
    calls = len(llm_server.requests_to(CHAT_PATH))
    assert calls == after["done"]  # rows already running finished; no other row started
    with pytest.raises(ConflictError, match="nothing to cancel"):
        store.set_batch_status(handle.batch_id, "finished")
        cancel_batch(handle.batch_id)
    store.set_batch_status(handle.batch_id, "cancelled")
    counts = resume_batch(handle.batch_id)
    assert counts["status"] == "finished" and counts["done"] == 40
    assert len(llm_server.requests_to(CHAT_PATH)) == 40  # each row ran once
    assert [r["row"] for r in batch_results(handle.batch_id)] == list(range(40))
    assert resume_batch(handle.batch_id)["status"] == "finished"  # nothing left: nothing runs


def test_rows_held_by_a_lost_process_are_taken_over(monkeypatch) -> None:
    store = default_store()
    batch = create_batch(six_doc(), [{"user_input": f"r{i}"} for i in range(6)])
    bid = batch["batch_id"]
    store.lease_batch_rows(bid, "local:gone:1:x", lease_s=0.5, rows=[0, 1])  # a process that died
    for _ in range(MAX_ATTEMPTS):  # row 5 killed its process every time
        store.lease_batch_rows(bid, "run:crashy", lease_s=0.01, rows=[5])
        time.sleep(0.02)
    monkeypatch.setattr("agentflow.batch.local.WAIT_FOR_OTHERS_S", 0.1)
    started = time.monotonic()
    counts = execute_batch(bid)
    assert counts["status"] == "finished" and counts["done"] == 5 and counts["failed"] == 1
    assert time.monotonic() - started >= 0.3  # it waited for the lease to expire
    rows = batch_results(bid)
    assert rows[0]["status"] == "succeeded"
    assert rows[5]["status"] == "failed" and f"started {MAX_ATTEMPTS} times" in rows[5]["error"]["message"]


def test_arun_batch_and_run_batch_inside_an_event_loop() -> None:
    async def main():
        a = await arun_batch(six_doc(), [{"user_input": "x"}])
        b = run_batch(six_doc(), [{"user_input": "y"}])  # a running loop: runs on a thread
        return a, b

    a, b = asyncio.run(main())
    assert a[0]["final_output"] == {"text": "x"} and b[0]["final_output"] == {"text": "y"}


def test_compare_two_batches_row_by_row() -> None:
    rows = [{"user_input": f"q{i}", "gold": "q0" if i == 0 else f"q{i}"} for i in range(4)]
    a = run_batch(six_doc(), rows, expected="gold", scorer="json:text")
    doc_b = six_doc()
    doc_b["nodes"][3]["config"]["prompt"] = "{draft}!"  # version B adds a "!"
    rows_b = [dict(r, gold="q1!") if i == 1 else dict(r, gold=f"{r['user_input']}!") for i, r in enumerate(rows)]
    rows_b[2]["gold"] = "wrong"
    b = run_batch(doc_b, rows_b, expected="gold", scorer="json:text")
    cmp = compare_batches(a.batch_id, b.batch_id)
    s = cmp["summary"]
    assert s["rows"] == 4 and s["same_output"] == 0 and s["different_output"] == 4
    assert s["a"]["mean_score"] == 1.0 and s["b"]["mean_score"] == 0.75
    assert s["improved"] == 0 and s["regressed"] == 1 and s["status_changed"] == 0
    assert s["a"]["succeeded"] == 4 and s["b"]["batch_id"] == b.batch_id
    row = cmp["rows"][2]
    assert row["input"] == "q2" and row["a"]["final_output"] == {"text": "q2"}
    assert row["b"]["final_output"] == {"text": "q2!"} and row["score_delta"] == -1.0
    assert set(row["a"]) == {"status", "score", "final_output", "latency_ms"}


def test_rows_waiting_on_a_queue_are_reported(llm_server) -> None:
    doc = openai_doc(llm_server.base_url, "q-slow", rate=4)
    handle = start_batch(doc, [{"user_input": f"r{i}"} for i in range(16)], concurrency=8, output_key="text_result")
    try:
        status = wait_until(lambda: (s := batch_status(handle.batch_id))["waiting"] > 0 and s, timeout=10)
        assert status["running"] >= status["waiting"] > 0 and status["status"] == "running"
    finally:
        cancel_batch(handle.batch_id)
        handle.join(10)
