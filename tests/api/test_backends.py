"""The API over the Postgres store and the Redis queue state, in-process (where coverage sees the
thread-pool paths that a remote store takes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from agentflow.api.main import create_app
from agentflow.runtime.rate_limiter import get_queue_manager
from agentflow.store import Store, open_store
from tests.api.conftest import Client, assert_error_shape, triage_doc

pytestmark = pytest.mark.services


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[Store]:
    store = open_store(pg_schema_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
async def pg_client(pg_store: Store, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("AGENTFLOW_REDIS_URL", redis_url)
    app = create_app(store=pg_store)
    async with Client(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30) as c:
        c.keys = {"editor": pg_store.create_token("ed", "editor")}
        yield c


async def test_life_cycle_on_postgres_with_redis_queues(pg_client: Client, pg_store: Store) -> None:
    ed = pg_client.as_("editor")
    health = (await pg_client.get("/health")).json()
    assert health["queues"] == "redis: ok" and health["store"] == "ok"
    queue = f"pgq-{uuid.uuid4().hex[:8]}"
    assert (await pg_client.put(f"/api/v1/queues/{queue}", json={"max_messages_per_second": 100},
                                headers=ed)).status_code == 200
    doc = triage_doc()
    doc["nodes"][2]["queue"] = queue
    r = await pg_client.put("/api/v1/workflows/triage-demo", json={"document": doc}, headers=ed)
    assert r.status_code == 201
    for _ in range(2):  # validated again each time: the queue is the workspace's
        r = await pg_client.post("/api/v1/workflows/triage-demo/runs", json={"input": "hi"}, headers=ed)
        assert r.json()["text_result"] == "You asked: hi"
    run = await pg_client.get(f"/api/v1/runs/{r.json()['metadata']['run_id']}", headers=ed)
    assert run.json()["user"] == "ed" and run.json()["status"] == "succeeded"
    stats = (await pg_client.get(f"/api/v1/queues/{queue}/stats", headers=ed)).json()
    assert stats["backend"] == "redis" and stats["granted"] == 2
    r = await pg_client.post("/api/v1/runs", json={"document": triage_doc(), "input": "x", "breakpoints": ["agg"]},
                             headers=ed)
    run_id = r.json()["metadata"]["run_id"]
    r = await pg_client.post(f"/api/v1/runs/{run_id}/resume", headers=ed)
    assert r.json()["metadata"]["status"] == "succeeded"
    r = await pg_client.get("/api/v1/workflows/nope", headers=ed)
    assert r.status_code == 404
    assert_error_shape(r.json(), "NotFoundError")


async def test_health_reports_an_unreachable_redis(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
    manager: Any = get_queue_manager()
    try:
        app = create_app(store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.get("/health")
        assert r.status_code == 503
        assert r.json()["details"]["queues"] == "redis: unreachable"
    finally:
        manager.close()
