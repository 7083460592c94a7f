"""Cancelling a run from another process sharing the store (both store backends)."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from agentflow import run_workflow
from agentflow.runtime.remote_cancel import request_cancel, stop_watchers, watch_cancel_requests
from agentflow.store import open_store


def slow_chain() -> dict[str, Any]:
    nodes = [{"id": "input", "type": "input"}] + [
        {"id": f"n{i}", "type": "llm", "source": "slow", "config": {"output_key": f"o{i}"}} for i in range(5)
    ]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"id": "slow", "sources": [{"id": "slow", "kind": "llm", "provider": "echo", "config": {"latency_ms": 300}}],
            "nodes": nodes, "edges": edges}


def test_cancel_request_from_another_store_handle_stops_the_run(store_url: str) -> None:
    running_side, other_side = open_store(store_url), open_store(store_url)
    watch_cancel_requests(running_side, interval_s=0.05)
    result: dict[str, Any] = {}
    run_id = "remote-cancel-" + str(time.time_ns())
    thread = threading.Thread(target=lambda: result.update(state=run_workflow(slow_chain(), "x", run_id=run_id)))
    try:
        thread.start()
        time.sleep(0.4)
        # "another process": cancel_run cannot see the run, so the request goes through the store
        from agentflow.runtime import executor

        with executor._active_lock:
            hidden = executor._active.pop(run_id)
        assert request_cancel(run_id, other_side, by="tester") is False
        with executor._active_lock:
            executor._active[run_id] = hidden
        thread.join(5)
        meta = result["state"]["metadata"]
        assert meta["status"] == "cancelled"
        assert len(meta["nodes_executed"]) < 6
        assert other_side.cancel_requests([run_id]) == set()  # the request was consumed
    finally:
        stop_watchers()
        running_side.close()
        other_side.close()
