"""The batch tables on both backends: leases, write-once results, counts, cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from agentflow.errors import ConflictError, NotFoundError, ValidationError
from agentflow.store import Store, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


def make(store: Store, batch_id: str = "b1", n: int = 10, failed: tuple[int, ...] = ()) -> dict:
    rows = []
    for i in range(n):
        if i in failed:
            result = {"status": "failed", "error": {"status": "error", "error_type": "ValidationError",
                                                     "message": f"line {i + 2}: bad"}, "score": 0.0}
            rows.append({"row": i, "line": i + 2, "input": None, "result": result})
        else:
            rows.append({"row": i, "line": i + 2, "input": {"user_input": f"q{i}"}})
    return store.create_batch(
        {"batch_id": batch_id, "workflow_id": "wf", "workflow_version": 3, "document": {"id": "wf"},
         "backend": "local", "user": "ann", "dataset": "d.csv", "options": {"column": "user_input"}},
        rows,
    )


def result(row: int, status: str = "succeeded", **kw) -> dict:
    return {"row": row, "status": status, "run_id": f"r{row}", "output": {"text": f"a{row}"}, "error": None,
            "latency_ms": 12.5, "tokens": {"prompt": 1, "completion": 2, "total": 3}, "cost_usd": 0.001,
            "score": kw.pop("score", 1.0), "queue_wait_ms": 4.0, **kw}


def test_create_get_and_list(store: Store) -> None:
    rec = make(store, failed=(3,))
    assert rec["batch_id"] == "b1" and rec["status"] == "queued" and rec["total"] == 10
    full = store.get_batch("b1")
    assert full["document"] == {"id": "wf"} and full["workflow_version"] == 3 and full["user"] == "ann"
    assert full["options"] == {"column": "user_input"} and full["dataset"] == "d.csv"
    c = store.batch_counts("b1")
    assert (c["pending"], c["failed"], c["done"], c["running"], c["dispatched"]) == (9, 1, 0, 0, 0)
    (only,) = store.batch_results("b1")
    assert only["row"] == 3 and only["status"] == "failed" and only["error"]["message"] == "line 5: bad"
    assert store.batch_inputs("b1")[0] == {"row": 0, "line": 2, "input": {"user_input": "q0"}}
    make(store, "b2", n=2)
    listed = store.list_batches()
    assert [b["batch_id"] for b in listed] == ["b2", "b1"]
    assert listed[1]["failed"] == 1 and listed[1]["pending"] == 9
    assert [b["batch_id"] for b in store.list_batches(workflow="wf", status="queued", limit=1)] == ["b2"]
    with pytest.raises(ConflictError, match='batch "b1" already exists'):
        make(store)
    with pytest.raises(NotFoundError, match='batch "nope" not found'):
        store.get_batch("nope")
    with pytest.raises(ValidationError, match="limit"):
        store.list_batches(limit=0)


def test_leases_are_exclusive_and_expire(store: Store) -> None:
    make(store)
    a = store.lease_batch_rows("b1", "run:a", lease_s=30, limit=4)
    assert [r["row"] for r in a] == [0, 1, 2, 3] and a[0]["input"] == {"user_input": "q0"} and a[0]["attempts"] == 1
    b = store.lease_batch_rows("b1", "run:b", lease_s=0.2, rows=[2, 3, 4, 5])
    assert [r["row"] for r in b] == [4, 5]  # 2 and 3 are a's
    time.sleep(0.3)
    c = store.lease_batch_rows("b1", "run:c", lease_s=30, rows=[4, 5, 6])
    assert [r["row"] for r in c] == [4, 5, 6] and c[0]["attempts"] == 2  # b's leases expired
    assert store.renew_batch_leases("b1", "run:a", lease_s=30) == 4
    counts = store.batch_counts("b1")
    assert counts["running"] == 7 and counts["pending"] == 3


def test_a_runner_takes_over_its_message_token_but_not_a_live_runner(store: Store) -> None:
    make(store)
    sent = store.lease_batch_rows("b1", "send:t1", lease_s=30, limit=3, count_attempt=False)
    assert [r["attempts"] for r in sent] == [0, 0, 0]
    assert store.batch_counts("b1")["dispatched"] == 3
    got = store.lease_batch_rows("b1", "run:w1", lease_s=30, rows=[0, 1, 2], take_from="send:t1")
    assert [r["row"] for r in got] == [0, 1, 2]
    # a second copy of the same message (redelivered) finds the rows held: nothing to run
    assert store.lease_batch_rows("b1", "run:w2", lease_s=30, rows=[0, 1, 2], take_from="send:t1") == []


def test_results_are_written_once(store: Store) -> None:
    make(store, n=3)
    store.lease_batch_rows("b1", "run:a", lease_s=30)
    assert store.record_batch_results("b1", [result(0), result(1, "failed", score=0.0)], recorded_by="run:a") == [0, 1]
    # the same rows again (a worker killed after writing, before acknowledging): first write wins
    again = [result(0, output={"text": "second"}), result(1, "succeeded")]
    assert store.record_batch_results("b1", again, recorded_by="run:b") == []
    rows = store.batch_results("b1")
    assert [(r["row"], r["status"], r["final_output"]) for r in rows] == [
        (0, "succeeded", {"text": "a0"}), (1, "failed", {"text": "a1"})]
    assert rows[0]["tokens"] == {"prompt": 1, "completion": 2, "total": 3} and rows[0]["queue_wait_ms"] == 4.0
    c = store.batch_counts("b1")
    assert (c["done"], c["failed"], c["running"], c["status"]) == (1, 1, 1, "queued")
    # recorded rows are never leased again
    assert store.lease_batch_rows("b1", "run:z", lease_s=30, rows=[0, 1]) == []
    store.set_batch_status("b1", "running")
    store.record_batch_results("b1", [result(2)])
    c = store.batch_counts("b1")
    assert c["status"] == "finished" and c["mean_score"] == pytest.approx(2 / 3)
    assert store.get_batch("b1")["finished_at"] is not None


def test_trace_is_kept_on_request(store: Store) -> None:
    make(store, n=1)
    store.record_batch_results("b1", [result(0, "failed", trace=[{"node": "x"}])])
    assert store.batch_results("b1", include_trace=True)[0]["trace"] == [{"node": "x"}]
    assert "trace" not in store.batch_results("b1")[0]
    assert store.batch_results("b1", offset=1) == [] and len(store.batch_results("b1", limit=5)) == 1


def test_cancel_takes_back_rows_at_the_broker_and_stops_leasing(store: Store) -> None:
    make(store)
    store.lease_batch_rows("b1", "send:t1", lease_s=30, limit=3, count_attempt=False)
    store.lease_batch_rows("b1", "run:w", lease_s=30, limit=2)
    assert store.set_batch_status("b1", "cancelled", only_from=("queued", "running"))
    c = store.batch_counts("b1")
    assert (c["status"], c["dispatched"], c["running"], c["pending"]) == ("cancelled", 0, 2, 8)
    assert store.lease_batch_rows("b1", "run:x", lease_s=30) == []
    # a message handed out in a race with the cancel: its rows go back when a runner sees it
    with store._write() as tx:
        tx.run("UPDATE af_batch_rows SET status = 'leased', lease_owner = 'send:late' WHERE batch_id = 'b1' "
               "AND row_no = 9")
    assert store.batch_counts("b1")["dispatched"] == 1
    assert store.lease_batch_rows("b1", "run:y", lease_s=30, rows=[9], take_from="send:late") == []
    assert store.batch_counts("b1")["dispatched"] == 0
    assert not store.set_batch_status("b1", "cancelled", only_from=("queued", "running"))
    assert store.release_batch_rows("b1", "run:w") == 2
    assert store.batch_counts("b1")["pending"] == 10
    assert store.set_batch_status("b1", "running", only_from=("cancelled",))
    assert len(store.lease_batch_rows("b1", "run:x", lease_s=30)) == 10
    with pytest.raises(ValidationError):
        store.set_batch_status("b1", "nope")
    with pytest.raises(NotFoundError):
        store.set_batch_status("missing", "running")


def test_finish_if_done_and_active_batches(store: Store) -> None:
    make(store, n=1)
    assert [b["batch_id"] for b in store.active_batches("local")] == ["b1"]
    assert store.active_batches("celery") == []
    assert not store.finish_batch_if_done("b1")
    store.lease_batch_rows("b1", "run:a", lease_s=30)
    store.record_batch_results("b1", [result(0)])
    assert store.get_batch("b1")["status"] == "finished"
    assert store.active_batches() == []


def test_runner_reports(store: Store) -> None:
    make(store)
    store.note_batch_runner("b1", "run:a", running=5, waiting=3)
    store.note_batch_runner("b1", "run:b", running=2, waiting=1)
    store.note_batch_runner("b1", "run:a", running=4, waiting=2)
    c = store.batch_counts("b1")
    assert c["waiting"] == 3 and c["runners"] == 2
    store.drop_batch_runner("b1", "run:a")
    assert store.batch_counts("b1")["runners"] == 1


def test_concurrent_leases_never_share_a_row(store: Store) -> None:
    make(store, n=200)
    got: list[list[int]] = []
    lock = threading.Lock()

    def take(owner: str) -> None:
        mine = []
        while True:
            rows = store.lease_batch_rows("b1", owner, lease_s=30, limit=7)
            if not rows:
                break
            mine += [r["row"] for r in rows]
        with lock:
            got.append(mine)

    threads = [threading.Thread(target=take, args=(f"run:{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [r for g in got for r in g]
    assert sorted(flat) == list(range(200))
