"""Two ``serve`` processes sharing the local Postgres store and Redis queue state behave as one.

What one saves the other serves; a cancel sent to one stops a run the other runs; and a
queue of 5 calls per second, shared by both, never lets more than 5 calls reach the
provider (a local OpenAI-compatible server that records arrival times) in any second.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from agentflow.store import open_store
from tests.api.conftest import slow_chain, triage_doc
from tests.api.servers import Serve, server_env
from tests.servers.openai_compat import OpenAICompatServer

pytestmark = [pytest.mark.services, pytest.mark.slow]

@pytest.fixture
def replicas(tmp_path: Path, pg_schema_url: str, redis_url: str) -> Iterator[tuple[Serve, Serve, str]]:
    store = open_store(pg_schema_url)
    key = store.create_token("ops", "editor")
    store.close()
    servers = [Serve(server_env(tmp_path / name, AGENTFLOW_DB_URL=pg_schema_url, AGENTFLOW_REDIS_URL=redis_url))
               for name in ("a", "b")]
    for srv in servers:
        srv.launch()
    try:
        for srv in servers:
            srv.wait()
        yield servers[0], servers[1], key
    finally:
        for srv in servers:
            srv.stop()


def test_replicas_share_the_store_the_queues_and_cancels(replicas: tuple[Serve, Serve, str]) -> None:
    a, b, key = replicas
    h = {"Authorization": f"Bearer {key}"}
    ca, cb = httpx.Client(base_url=a.url, headers=h, timeout=60), httpx.Client(base_url=b.url, headers=h, timeout=60)
    for c in (ca, cb):
        assert c.get("/health").json()["queues"] == "redis: ok"

    # Saved through one, run through the other; the history is one.
    doc = triage_doc()
    assert ca.put("/api/v1/workflows/triage-demo", json={"document": doc}).status_code == 201
    r = cb.post("/api/v1/workflows/triage-demo/runs", json={"input": "from b"})
    assert r.status_code == 200 and r.json()["text_result"] == "You asked: from b"
    assert ca.get(f"/api/v1/runs/{r.json()['metadata']['run_id']}").json()["status"] == "succeeded"

    # A run on one, cancelled through the other.
    got: list[dict] = []

    def stream() -> None:
        body = {"document": slow_chain("long", latency_ms=500, steps=6), "input": "go"}
        with ca.stream("POST", "/api/v1/runs", json=body, headers={"Accept": "text/event-stream"}) as s:
            got.extend(json.loads(line[6:]) for line in s.iter_lines() if line.startswith("data: "))

    reader = threading.Thread(target=stream)
    reader.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        runs = cb.get("/api/v1/runs", params={"status": "running", "workflow": "long"}).json()["runs"]
        if runs:
            break
        time.sleep(0.05)
    r = cb.post(f"/api/v1/runs/{runs[0]['run_id']}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelling"
    reader.join(30)
    assert got[-1]["type"] == "run_end"
    assert got[-1]["data"]["metadata"]["status"] == "cancelled"
    assert len(got[-1]["data"]["metadata"]["nodes_executed"]) < 7

    # One 5-per-second queue, shared by both processes.
    queue = f"shared-{uuid.uuid4().hex[:8]}"
    with OpenAICompatServer() as provider:
        assert ca.put(f"/api/v1/queues/{queue}", json={"max_messages_per_second": 5, "max_wait_s": 60}).status_code == 200
        source = {"kind": "llm", "provider": "openai",
                  "config": {"model": "gpt-4o-mini", "base_url": provider.base_url, "max_retries": 0}}
        assert cb.put("/api/v1/sources/local-llm", json=source).status_code == 200
        paced = {"id": "paced", "nodes": [
            {"id": "input", "type": "input"},
            {"id": "ask", "type": "llm", "source": "local-llm", "queue": queue, "config": {"prompt": "{user_input}"}}],
            "edges": [{"from": "input", "to": "ask"}]}
        assert ca.put("/api/v1/workflows/paced", json={"document": paced}).status_code == 201
        # Warm each process's client for the source first (same source, no queue). A cold
        # client is built between the queue's grant and the call (~0.3 s): a grant made at
        # 0.0 then lands at 0.3, next to the next second's grants (see the report on issue 9).
        warm = {**paced, "id": "warm", "nodes": [paced["nodes"][0], {**paced["nodes"][1], "queue": None}]}
        for c in (ca, cb):
            assert c.post("/api/v1/runs", json={"document": warm, "input": "warm up"}).status_code == 200
        provider.reset()
        calls = 24

        def one(i: int) -> int:
            client = ca if i % 2 else cb
            return client.post("/api/v1/workflows/paced/runs", json={"input": f"call {i}"}).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(calls) as pool:
            statuses = list(pool.map(one, range(calls)))
        took = time.monotonic() - started
        arrivals = sorted(provider.arrivals("/v1/chat/completions"))
    assert statuses == [200] * calls
    assert len(arrivals) == calls
    # Counted where the calls land, over whole seconds, with the queue's default settings:
    # its guard_ms covers the delay between a grant and the call reaching the provider.
    windows = [sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals]
    landed = [round(t - arrivals[0], 4) for t in arrivals]
    assert max(windows) <= 5, f"{max(windows)} calls reached the provider within one second: {landed}"
    assert took >= (calls - 5) / 5 - 0.5  # the queue paced them; it did not just drop or fail any
    stats = ca.get(f"/api/v1/queues/{queue}/stats").json()
    assert stats["backend"] == "redis" and stats["granted"] == calls  # counted across both processes
