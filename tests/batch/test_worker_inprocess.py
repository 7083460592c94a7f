"""The worker's side of the celery backend run in this process (the chunk task, the pump,
the keeper, the broker checks), and a local batch interrupted half-way."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agentflow.batch import batch_status, create_batch, resume_batch
from agentflow.batch import celery_backend as cb
from agentflow.errors import SourceConnectionError, ValidationError
from agentflow.store import default_store
from tests.batch.conftest import six_doc


@pytest.fixture
def celery_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Redis as queue backend and broker, a queue of this test alone (purged afterwards)."""
    queue = f"af-inproc-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AGENTFLOW_REDIS_URL", redis_url)
    monkeypatch.setenv("AGENTFLOW_CELERY_QUEUE", queue)
    yield queue
    import redis

    redis.Redis.from_url(redis_url).delete(queue)


def queued_six(rate: float = 1000) -> dict[str, Any]:
    """The six-node workflow with its first llm call through a queue (so chunks do not top up)."""
    doc = six_doc(latency_ms=5)
    doc["queues"] = [{"id": "q-top", "max_messages_per_second": rate}]
    doc["nodes"][2]["queue"] = "q-top"
    return doc


def test_a_chunk_runs_its_rows_and_the_pump_hands_out_more(celery_env: str) -> None:
    store = default_store()
    batch = create_batch(queued_six(), [{"user_input": f"r{i}"} for i in range(10)], backend="celery",
                         chunk_size=3, store=store)
    bid = batch["batch_id"]
    counts = cb.pump(store, store.get_batch(bid))  # hands out a bounded window: 4 chunks of 3
    assert counts["sent"] == 10 and counts["dispatched"] == 10 and counts["status"] == "running"
    with store._read() as tx:
        tokens = [r["lease_owner"] for r in tx.all(
            "SELECT DISTINCT lease_owner FROM af_batch_rows WHERE batch_id = ? ORDER BY lease_owner", (bid,))]
    assert len(tokens) == 4 and all(t.startswith("send:") for t in tokens)
    rows_of = {}
    with store._read() as tx:
        for r in tx.all("SELECT row_no, lease_owner FROM af_batch_rows WHERE batch_id = ?", (bid,)):
            rows_of.setdefault(r["lease_owner"], []).append(r["row_no"])
    for token, rows in rows_of.items():
        assert cb.run_chunk(bid, sorted(rows), token) == len(rows)  # the task body, as a worker runs it
        assert cb.run_chunk(bid, sorted(rows), token) == 0  # a redelivered copy runs nothing
    final = store.batch_counts(bid)
    assert final["status"] == "finished" and final["done"] == 10
    assert cb.pump(store, store.get_batch(bid))["sent"] == 0
    assert cb.run_chunk("missing-batch", [0], "send:x") == 0


@pytest.mark.parametrize("queued", [False, True])
def test_a_chunk_tops_up_unless_a_queue_sets_the_pace(celery_env: str, queued: bool) -> None:
    store = default_store()
    doc = queued_six() if queued else six_doc(latency_ms=5)
    batch = create_batch(doc, [{"user_input": f"r{i}"} for i in range(10)], backend="celery", chunk_size=3,
                         store=store)
    bid = batch["batch_id"]
    first = store.lease_batch_rows(bid, "send:t1", lease_s=30, limit=3, count_attempt=False)
    other = store.lease_batch_rows(bid, "send:t2", lease_s=30, limit=3, count_attempt=False)
    recorded = cb.run_chunk(bid, [r["row"] for r in first], "send:t1")
    if queued:  # its own 3 rows; the pump after it handed the 4 pending ones out
        assert recorded == 3
        assert store.batch_counts(bid)["dispatched"] == 7
    else:  # it took the 4 pending rows, then the 3 still at the broker, as its own finished
        assert recorded == 10
        assert store.batch_counts(bid)["status"] == "finished"
        assert cb.run_chunk(bid, [r["row"] for r in other], "send:t2") == 0  # that message finds them gone


def test_expired_leases_are_sent_again_and_the_keeper_pumps(celery_env: str, monkeypatch) -> None:
    store = default_store()
    batch = create_batch(six_doc(), [{"user_input": f"r{i}"} for i in range(4)], backend="celery", store=store,
                         chunk_size=2)
    bid = batch["batch_id"]
    store.set_batch_status(bid, "running")
    store.lease_batch_rows(bid, "run:dead:1:x", lease_s=0.05)  # a worker that died holding everything
    time.sleep(0.1)
    real_pump = cb.pump
    monkeypatch.setattr(cb, "KEEP_S", 0.05)
    sent = []
    monkeypatch.setattr(cb, "pump", lambda s, b, app=None: sent.append(b["batch_id"]) or {})
    keeper = cb._Keeper(celery_env)
    keeper.start()
    try:
        deadline = time.monotonic() + 5
        while bid not in sent and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        keeper.stop.set()
        keeper.join(2)
    assert bid in sent
    counts = real_pump(store, store.get_batch(bid))
    assert counts["sent"] == 4 and counts["dispatched"] == 4 and counts["running"] == 0


def test_cancelled_batches_are_not_pumped_and_their_messages_give_rows_back(celery_env: str) -> None:
    store = default_store()
    batch = create_batch(six_doc(), [{"user_input": "a"}, {"user_input": "b"}], backend="celery", store=store)
    bid = batch["batch_id"]
    counts = cb.pump(store, store.get_batch(bid))
    assert counts["dispatched"] == 2
    store.set_batch_status(bid, "cancelled")
    assert cb.pump(store, store.get_batch(bid))["sent"] == 0
    assert cb.run_chunk(bid, [0, 1], "send:whatever") == 0
    assert batch_status(bid)["pending"] == 2


def test_unreachable_services_are_named(celery_env: str, monkeypatch) -> None:
    monkeypatch.setenv("AGENTFLOW_CELERY_BROKER_URL", "amqp://guest:secret@127.0.0.1:1//")
    with pytest.raises(SourceConnectionError, match="AGENTFLOW_CELERY_BROKER_URL") as info:
        cb.check_services(cb.get_app("q-unreachable"))
    assert "secret" not in info.value.message
    monkeypatch.setenv("AGENTFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(SourceConnectionError, match="AGENTFLOW_REDIS_URL"):
        cb.check_services(cb.get_app("q-unreachable"))
    monkeypatch.delenv("AGENTFLOW_REDIS_URL")
    monkeypatch.delenv("AGENTFLOW_CELERY_BROKER_URL")
    with pytest.raises(ValidationError, match="AGENTFLOW_REDIS_URL"):
        cb.get_app()


def test_the_app_is_configured_for_fast_redelivery(celery_env: str) -> None:
    app = cb.get_app("q-config")
    assert app is cb.get_app("q-config")
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["unacked_restore_throttle"] == 1
    assert conf.broker_transport_options["visibility_timeout"] <= 60
    assert cb.TASK_NAME in app.tasks and conf.worker_disable_rate_limits
    assert cb._redact_url("amqp://guest:pw@host//") == "amqp://guest:***@host//"


def test_an_interrupted_local_batch_is_failed_and_resume_runs_the_rest() -> None:
    from agentflow.batch.local import run_local

    store = default_store()
    batch = create_batch(six_doc(latency_ms=200), [{"user_input": f"r{i}"} for i in range(20)], concurrency=2)
    bid = batch["batch_id"]

    async def interrupt() -> None:
        task = asyncio.create_task(run_local(store, store.get_batch(bid)))
        while store.batch_counts(bid)["done"] < 2:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupt())
    record = store.get_batch(bid)
    assert record["status"] == "failed" and "batch resume" in record["error"]["message"]
    counts = store.batch_counts(bid)
    assert counts["running"] == 0 and counts["done"] < 20  # nothing left held
    assert resume_batch(bid)["status"] == "finished"
    assert store.batch_counts(bid)["done"] == 20
