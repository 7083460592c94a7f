"""The celery backend against the real services: two ``python -m agentflow worker``
processes on the local Redis and, separately, on the local RabbitMQ, the store in the local
Postgres, calls landing at a local OpenAI-compatible server that records when they arrive.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agentflow.batch import cancel_batch, create_batch, resume_batch
from agentflow.batch.service import BatchHandle
from agentflow.cli import main
from agentflow.store import default_store
from tests.batch.conftest import max_in_window, openai_doc, six_doc
from tests.servers.openai_compat import CHAT_PATH

pytestmark = [pytest.mark.services, pytest.mark.slow]


def wait_until(check, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def recorded(batch_id: str) -> list[dict[str, Any]]:
    with default_store()._read() as tx:
        return tx.all("SELECT row_no, recorded_by FROM af_batch_results WHERE batch_id = ? ORDER BY row_no",
                      (batch_id,))


def held_by(batch_id: str, node: str) -> int:
    with default_store()._read() as tx:
        row = tx.one(
            "SELECT COUNT(*) AS n FROM af_batch_rows WHERE batch_id = ? AND status = 'leased' AND lease_owner LIKE ?",
            (batch_id, f"run:{node}@%"),
        )
    return int(row["n"])


def queue_id() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


def test_two_workers_never_pass_the_queue_rate(cluster_env, llm_server, tmp_path: Path, capsys) -> None:
    workers = cluster_env["workers"]
    (tmp_path / "wf.json").write_text(json.dumps(openai_doc(llm_server.base_url, queue_id(), rate=20)))
    (tmp_path / "rows.csv").write_text("user_input\n" + "".join(f"question {i}\n" for i in range(100)))
    code = main(["batch", "run", str(tmp_path / "wf.json"), "--data", str(tmp_path / "rows.csv"),
                 "--backend", "celery", "--output-key", "text_result"])
    out, err = capsys.readouterr()
    assert code == 0, (out, err, workers.log_text())
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["row"] for r in rows] == list(range(100))
    assert all(r["status"] == "succeeded" for r in rows), [r for r in rows if r["status"] != "succeeded"][:3]
    assert rows[42]["final_output"] == "echo: question 42"
    arrivals = llm_server.arrivals(CHAT_PATH)
    assert len(arrivals) == 100
    worst = max_in_window(arrivals, 1.0)  # where the calls land, with the default queue settings
    t0 = min(arrivals)
    assert worst <= 20, f"{worst} calls landed within one second: {[round(t - t0, 3) for t in sorted(arrivals)]}"
    assert max(arrivals) - min(arrivals) >= 4.0  # 100 calls at 20/s: 20 at once, then 80 over 4 s
    nodes = {r["recorded_by"].split(":")[1].split("@")[0] for r in recorded(batch_id_of(err))}
    assert nodes == {workers.name(0), workers.name(1)}  # both workers ran rows


def batch_id_of(err: str) -> str:
    return next(line.split()[1] for line in err.splitlines() if line.startswith("batch "))


def test_a_worker_killed_mid_batch_loses_no_row_and_records_none_twice(cluster_env, llm_server) -> None:
    workers = cluster_env["workers"]
    store = default_store()
    doc = openai_doc(llm_server.base_url, queue_id(), rate=10)
    batch = create_batch(doc, [{"user_input": f"r{i}"} for i in range(100)], backend="celery",
                         output_key="text_result", store=store)
    bid = batch["batch_id"]
    handle = BatchHandle(store, bid).start()
    victim = workers.name(0)
    wait_until(lambda: held_by(bid, victim) > 0 and store.batch_counts(bid)["done"] >= 10, 30,
               "the first worker to hold rows")
    held = held_by(bid, victim)
    workers.kill(0)
    killed_at = time.monotonic()
    assert handle.join(90), workers.log_text()
    took = time.monotonic() - killed_at
    counts = store.batch_counts(bid)
    assert counts["status"] == "finished" and counts["done"] == 100 and counts["failed"] == 0, counts
    rows = recorded(bid)
    assert [r["row_no"] for r in rows] == list(range(100))  # no row lost, each recorded once
    with store._read() as tx:
        assert tx.one("SELECT COUNT(*) AS n FROM af_batch_results WHERE batch_id = ?", (bid,))["n"] == 100
    assert took < 60, f"the lost worker's rows took {took:.1f} s to run again"
    calls = len(llm_server.requests_to(CHAT_PATH))
    assert calls >= 100  # the lost rows ran again (their calls may repeat; their records do not)
    print(f"{cluster_env['broker']}: killed holding {held} rows; done {took:.1f} s later; {calls} calls")


def test_resume_after_cancel_runs_only_the_rest(cluster_env, llm_server) -> None:
    store = default_store()
    doc = openai_doc(llm_server.base_url, queue_id(), rate=20)
    batch = create_batch(doc, [{"user_input": f"r{i}"} for i in range(100)], backend="celery",
                         output_key="text_result", store=store)
    bid = batch["batch_id"]
    handle = BatchHandle(store, bid).start()
    wait_until(lambda: store.batch_counts(bid)["done"] >= 20, 30, "20 rows")
    assert cancel_batch(bid, store=store)["status"] == "cancelled"
    assert handle.join(10)
    settled = wait_until(lambda: (c := store.batch_counts(bid))["running"] == 0 and c["dispatched"] == 0 and c,
                         15, "running rows to finish")
    time.sleep(1.0)  # nothing else starts
    after = store.batch_counts(bid)
    assert after["status"] == "cancelled" and after["done"] == settled["done"] < 100
    assert after["done"] + after["pending"] == 100
    assert len(llm_server.requests_to(CHAT_PATH)) == after["done"]
    counts = resume_batch(bid, store=store)
    assert counts["status"] == "finished" and counts["done"] == 100
    assert len(llm_server.requests_to(CHAT_PATH)) == 100  # the rest ran, and only the rest
    assert [r["row_no"] for r in recorded(bid)] == list(range(100))


def test_a_detached_batch_is_finished_by_the_workers(cluster_env, tmp_path: Path, capsys) -> None:
    (tmp_path / "wf.json").write_text(json.dumps(six_doc(latency_ms=5)))
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"user_input": f"d{i}"}) + "\n" for i in range(40)))
    code = main(["batch", "run", str(tmp_path / "wf.json"), "--data", str(tmp_path / "rows.jsonl"),
                 "--backend", "celery", "--detach", "--chunk-size", "2"])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == batch_id_of(err)
    bid = out.strip()
    store = default_store()
    assert store.batch_counts(bid)["dispatched"] + store.batch_counts(bid)["done"] < 40  # a bounded hand-out
    wait_until(lambda: store.batch_counts(bid)["status"] == "finished", 60, "the workers to finish it")
    assert [r["row_no"] for r in recorded(bid)] == list(range(40))


def test_driver_waits_in_a_thread_and_stops_waiting(cluster_env) -> None:
    from agentflow.batch import celery_backend

    store = default_store()
    batch = create_batch(six_doc(latency_ms=5), [{"user_input": "a"}] * 4, backend="celery", store=store)
    stop = threading.Event()
    stop.set()
    counts = celery_backend.drive(store, batch["batch_id"], stop=stop)  # returns at once when told to stop
    assert counts["total"] == 4
    wait_until(lambda: store.batch_counts(batch["batch_id"])["status"] == "finished", 30, "the batch")
