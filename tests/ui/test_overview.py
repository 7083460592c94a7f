"""Workflows at a glance, usage of sources and queues, ids, weights and queue meters."""

from __future__ import annotations

import pytest

from agentflow import run_workflow
from agentflow.spec.models import QueueSpec
from agentflow.ui.overview import (
    format_weights,
    free_id,
    latest_documents,
    parse_weights,
    queue_document,
    queue_meters,
    send_test_traffic,
    short_list,
    usage,
    usage_text,
    weight_shares,
    workflow_rows,
)


def test_workflow_rows_show_versions_and_last_run(store, examples_dir):
    text = (examples_dir / "triage.json").read_text()
    store.save_workflow(text, author="ann")
    store.save_workflow(text, author="bob")
    assert workflow_rows(store)[0]["last run"] == "never run"
    state = run_workflow(text, {"user_input": "hi"})
    store.record_run(state, user="ann")
    row = workflow_rows(store)[0]
    assert row["versions"] == 2 and row["last run"] == "succeeded" and row["edited by"] == "bob"


def test_usage_names_workflows_and_inline_copies(store, examples_dir):
    store.save_workflow((examples_dir / "triage.json").read_text(), author="ann")
    store.save_workflow(
        {"id": "uses-registered", "nodes": [{"id": "a", "type": "llm", "source": "echo", "queue": "q1"}], "edges": []},
        author="ann",
    )
    docs = latest_documents(store)
    found = usage(docs, "source")["echo"]
    assert {(u["workflow"], u["inline"]) for u in found} == {("triage-demo", True), ("uses-registered", False)}
    assert usage(docs, "queue") == {"q1": [{"workflow": "uses-registered", "nodes": ["a"], "inline": False}]}
    assert "triage-demo (own copy)" in usage_text(found)


def test_short_list():
    assert short_list(["a", "b"]) == "a, b"
    assert short_list([str(i) for i in range(10)], limit=3) == "0, 1, 2 and 7 more"


def test_free_id():
    assert free_id("my-triage", []) == "my-triage"
    assert free_id("my-triage", ["my-triage", "my-triage-2"]) == "my-triage-3"
    assert free_id("My Flow!", []) == "my-flow"


def test_weights_parse_format_and_share():
    assert parse_weights("interactive=3, batch:1\n") == {"interactive": 3.0, "batch": 1.0}
    assert format_weights({"interactive": 3.0, "batch": 1.0}) == "interactive=3, batch=1"
    assert weight_shares({"a": 3, "b": 1}) == {"a": 0.75, "b": 0.25}
    assert parse_weights("") == {}
    with pytest.raises(ValueError, match="name=weight"):
        parse_weights("interactive")
    with pytest.raises(ValueError, match="more than 0"):
        parse_weights("a=0")


def test_queue_document_from_the_form():
    doc, problems = queue_document(
        " q1 ", " shared ", {"max_requests_per_minute": 60.0, "tokens_per_minute": None}, "reject", "chat=3, batch=1"
    )
    assert problems == []
    assert doc == {
        "id": "q1",
        "on_limit": "reject",
        "subqueues": {"chat": 3.0, "batch": 1.0},
        "max_requests_per_minute": 60.0,
        "description": "shared",
    }
    QueueSpec.model_validate(doc)
    _, problems = queue_document("", "", {"max_wait_s": 0.0}, "wait", "x")
    assert [p["path"] for p in problems] == ["id", "subqueues", "max_wait_s"]


def test_queue_meters_from_live_stats():
    from agentflow.runtime.rate_limiter import get_queue_manager

    spec = QueueSpec(id="ui-meters", max_requests_per_minute=100, subqueues={"a": 3, "b": 1})
    limiter = get_queue_manager().get(spec)
    for _ in range(3):
        limiter.acquire(subqueue="a").settle()
    m = queue_meters(limiter.stats())
    assert m["granted"] == 3 and m["waiters"] == 0
    rpm = next(lim for lim in m["limits"] if lim["window"] == "minute")
    assert rpm["used"] == 3 and rpm["limit"] == 100 and rpm["fraction"] == pytest.approx(0.03)


def test_test_traffic_goes_through_the_queue():
    import time

    from agentflow.runtime.rate_limiter import get_queue_manager

    spec = QueueSpec(id="ui-traffic", subqueues={"x": 1, "y": 1})
    assert send_test_traffic(spec, 6) == 6
    deadline = time.monotonic() + 5
    while get_queue_manager().find("ui-traffic").stats()["granted"] < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert get_queue_manager().find("ui-traffic").stats()["granted"] == 6
