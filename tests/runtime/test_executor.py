"""Runs through the executor: results, traces, retries, errors, threads, streaming."""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agentflow import (
    BudgetExceeded,
    ExecutionError,
    SourceConnectionError,
    arun_workflow,
    astream_workflow,
    build_graph_from_json,
    cancel_run,
    load_workflow,
    run_workflow,
    stream_workflow,
)


def chain(*nodes: dict[str, Any], sources: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    """input -> nodes... -> END, with an echo source "e"."""
    all_nodes = [{"id": "input", "type": "input"}, *nodes]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(all_nodes)]
    return {
        "id": "chain",
        "sources": sources or [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": all_nodes,
        "edges": edges,
        **top,
    }


def llm(node_id: str, prompt: str = "{user_input}", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "llm", "source": extra.pop("source", "e"), "config": {"prompt": prompt, **extra.pop("config", {})}, **extra}


# --- results ------------------------------------------------------------------------------


def test_triage_image_branch_gives_png_and_full_trace(examples_dir) -> None:
    state = run_workflow(examples_dir / "triage.json", {"user_input": "img: a red fox"})
    png = base64.b64decode(state["image_result"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    meta = state["metadata"]
    assert meta["status"] == "succeeded"
    assert meta["nodes_executed"] == ["input", "router", "draw", "agg"]
    assert [e["status"] for e in meta["trace"]] == ["succeeded"] * 4
    for entry in meta["trace"]:
        for key in ("node", "type", "status", "started_at", "ended_at", "latency_ms", "source", "queue",
                    "queue_wait_ms", "attempts", "tokens", "cost_usd", "error"):
            assert key in entry
        assert entry["started_at"].endswith("Z") and entry["latency_ms"] >= 0
    assert state["final_output"]["image"] == state["image_result"]
    assert meta["total_runtime_ms"] >= sum(e["latency_ms"] for e in meta["trace"]) * 0.5


def test_triage_text_and_db_branches(examples_dir) -> None:
    text = run_workflow(examples_dir / "triage.json", "what is a fox?")
    assert text["text_result"] == "You asked: what is a fox?"
    assert text["metadata"]["tokens"]["total"] > 0
    rows = run_workflow(examples_dir / "triage.json", "sql: which desk lamp?")
    assert rows["db_result"] == [{"name": "desk lamp", "price": 24.5, "stock": 12}]


def test_router_fallback_takes_star_edge() -> None:
    doc = {
        "id": "fallback",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "r", "type": "router", "config": {"rules": [{"contains": "weather", "intent": "weather"}], "default": "other"}},
            llm("weather", "W: {user_input}"),
            llm("anything", "A: {user_input}"),
        ],
        "edges": [
            {"from": "input", "to": "r"},
            {"from": "r", "to": "weather", "when": "weather"},
            {"from": "r", "to": "anything", "when": "*"},
        ],
    }
    assert run_workflow(doc, "weather today?")["text_result"] == "W: weather today?"
    state = run_workflow(doc, "tell me a joke")
    assert state["intent"] == "other" and state["text_result"] == "A: tell me a joke"


def test_router_intent_without_edge_fails_clearly() -> None:
    doc = {
        "id": "nofallback",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": [{"id": "input", "type": "input"}, {"id": "r", "type": "router"}, llm("t")],
        "edges": [{"from": "input", "to": "r"}, {"from": "r", "to": "t", "when": "text"}],
    }
    with pytest.raises(ExecutionError, match=r'router "r": intent \'image\' has no edge and there is no "\*" fallback') as info:
        run_workflow(doc, "img: cat")
    assert info.value.details["run_id"] and [e["node"] for e in info.value.details["trace"]] == ["input", "r"]


def test_fan_in_runs_once_after_unequal_branches(examples_dir) -> None:
    state = run_workflow(examples_dir / "fanout.json", "foxes")
    executed = state["metadata"]["nodes_executed"]
    assert executed.count("report") == 1 and executed[-1] == "report"
    trace = {e["node"]: e for e in state["metadata"]["trace"]}
    assert trace["report"]["offset_ms"] >= trace["draft"]["offset_ms"] + trace["draft"]["latency_ms"] - 1
    report = state["final_output"]
    assert report["draft"] == "Draft from: Outline about foxes"
    assert report["keywords"] == "keywords: foxes"
    assert len(report["facts"]) == 2
    # parallel branches overlap in time: the run is shorter than the sum of its nodes
    assert state["metadata"]["total_runtime_ms"] < sum(e["latency_ms"] for e in trace.values())


def test_fan_in_after_router_runs_once() -> None:
    doc = load_workflow("examples/triage.json")
    for text in ("hello", "img: owl", "sql: pen"):
        executed = run_workflow(doc, text)["metadata"]["nodes_executed"]
        assert executed.count("agg") == 1 and executed[-1] == "agg"


def test_loop_with_router_exit(examples_dir) -> None:
    state = run_workflow(examples_dir / "refine_loop.json", "draft")
    assert state["final_output"] == {"text": "draft + + +"}
    assert state["metadata"]["nodes_executed"].count("refine") == 3


def test_loop_bounded_by_recursion_limit(examples_dir) -> None:
    doc = load_workflow(examples_dir / "refine_loop.json").to_document()
    doc["settings"] = {"recursion_limit": 5}
    with pytest.raises(ExecutionError, match="recursion_limit=5") as info:
        run_workflow(doc, "draft")
    assert info.value.details["trace"]


# --- retries, errors, timeouts ---------------------------------------------------------------


def test_retry_recovers_from_provider_errors() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 2}}]
    doc = chain(llm("a", retry={"max_attempts": 3, "backoff_s": 0.01}), sources=sources)
    prompt = f"hi {uuid.uuid4()}"
    state = run_workflow(doc, prompt)
    (entry,) = [e for e in state["metadata"]["trace"] if e["node"] == "a"]
    assert entry["attempts"] == 3 and entry["status"] == "succeeded"
    assert state["text_result"] == prompt


def test_retry_gives_up_after_max_attempts() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 5}}]
    doc = chain(llm("a", retry={"max_attempts": 2, "backoff_s": 0.01}), sources=sources)
    with pytest.raises(SourceConnectionError, match="simulated failure 2 of 5") as info:
        run_workflow(doc, f"x {uuid.uuid4()}")
    entry = info.value.details["trace"][-1]
    assert entry["attempts"] == 2 and entry["status"] == "failed"
    assert entry["error"]["error_type"] == "SourceConnectionError"


def test_on_error_continue_records_and_goes_on() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 100}},
               {"id": "ok", "kind": "llm", "provider": "echo"}]
    doc = chain(llm("flaky", on_error="continue"), llm("after", "after: {user_input}", source="ok"), sources=sources)
    state = run_workflow(doc, f"go {uuid.uuid4()}")
    assert state["metadata"]["status"] == "succeeded"
    assert state["text_result"].startswith("after: go")
    (err,) = state["errors"]
    assert err["node"] == "flaky" and err["error_type"] == "SourceConnectionError"
    flaky = state["metadata"]["trace"][1]
    assert flaky["status"] == "failed" and flaky["error"]["message"] == err["message"]


def test_template_error_names_node_and_key() -> None:
    doc = chain(llm("a", "About {topic.name}"))
    with pytest.raises(ExecutionError) as info:
        run_workflow(doc, {"user_input": "x", "topic": {"id": 1}})
    msg = info.value.message
    assert msg.startswith('node "a": template key "topic.name" in config.prompt has no value in the state')
    assert info.value.node == "a" and info.value.to_dict()["details"]["node"] == "a"


def test_input_required_keys() -> None:
    doc = chain(llm("a"))
    doc["nodes"][0]["config"] = {"required": ["user_input"]}
    with pytest.raises(ExecutionError, match='node "input": required input "user_input" is missing'):
        run_workflow(doc, {})


def test_node_timeout_is_retried_then_fails() -> None:
    sources = [{"id": "slow", "kind": "llm", "provider": "echo", "config": {"latency_ms": 2000}}]
    doc = chain(llm("a", source="slow", timeout_s=0.05, retry={"max_attempts": 2, "backoff_s": 0}), sources=sources)
    started = time.perf_counter()
    with pytest.raises(SourceConnectionError, match="timed out") as info:
        run_workflow(doc, "x")
    assert time.perf_counter() - started < 1.0
    assert info.value.details["trace"][-1]["attempts"] == 2


async def test_async_node_timeout() -> None:
    sources = [{"id": "slow", "kind": "llm", "provider": "echo", "config": {"latency_ms": 2000}}]
    doc = chain(llm("a", source="slow", timeout_s=0.05), sources=sources)
    with pytest.raises(SourceConnectionError, match="timed out"):
        await arun_workflow(doc, "x")


def test_failed_run_returned_with_raise_on_error_false() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 100}}]
    state = run_workflow(chain(llm("a"), sources=sources), f"x {uuid.uuid4()}", raise_on_error=False)
    meta = state["metadata"]
    assert meta["status"] == "failed" and meta["error"]["error_type"] == "SourceConnectionError"
    assert [e["node"] for e in meta["trace"]] == ["input", "a"]
    assert state["user_input"].startswith("x ")


def test_runtime_parallel_conflict_names_both_nodes() -> None:
    # a and b run in one step; the loop back into a hides the conflict from static checks
    doc = {
        "id": "conflict",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": [
            {"id": "input", "type": "input"},
            llm("a", "A {user_input}"),
            llm("b", "B {user_input}"),
            {"id": "chk", "type": "router", "config": {"rules": [{"contains": "zzz", "intent": "again"}], "default": "done"}},
        ],
        "edges": [
            {"from": "input", "to": "a"}, {"from": "input", "to": "b"},
            {"from": "a", "to": "chk"}, {"from": "b", "to": "chk"},
            {"from": "chk", "to": "a", "when": "again"}, {"from": "chk", "to": "b", "when": "again"},
            {"from": "chk", "to": "END", "when": "done"},
        ],
    }
    with pytest.raises(ExecutionError, match=r'nodes "(a|b)" and "(a|b)" wrote different values to "text_result"'):
        run_workflow(doc, "x")


def test_parallel_lists_and_dicts_merge() -> None:
    doc = {
        "id": "merge",
        "sources": [{"id": "d", "kind": "db", "provider": "sqlite", "config": {"init_sql": "CREATE TABLE t(v INT); INSERT INTO t VALUES (1),(2);"}}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "one", "type": "db", "source": "d", "config": {"query": "SELECT v FROM t WHERE v = 1"}},
            {"id": "two", "type": "db", "source": "d", "config": {"query": "SELECT v FROM t WHERE v = 2"}},
        ],
        "edges": [{"from": "input", "to": "one"}, {"from": "input", "to": "two"}],
    }
    state = run_workflow(doc, {"user_input": "x", "metadata": {"caller": "test"}})
    assert sorted(r["v"] for r in state["db_result"]) == [1, 2]
    assert state["metadata"]["caller"] == "test"


# --- budgets ---------------------------------------------------------------------------------


def priced(source_id: str, price: float) -> dict[str, Any]:
    return {"id": source_id, "kind": "llm", "provider": "echo",
            "config": {"price_per_1k_tokens": {"input": price, "output": price}, "max_tokens": 100}}


def test_budget_stops_run_before_the_call() -> None:
    doc = chain(llm("first"), llm("second"), sources=[priced("e", 1.0)], settings={"max_cost_usd": 0.102})
    with pytest.raises(BudgetExceeded, match=r'node "second": the call would cost about .*settings.max_cost_usd') as info:
        run_workflow(doc, "hello")
    trace = info.value.details["trace"]
    assert [e["node"] for e in trace] == ["input", "first", "second"]
    assert trace[-1]["tokens"]["total"] == 0 and trace[1]["cost_usd"] > 0


def test_budget_falls_back_to_cheaper_source() -> None:
    doc = chain(
        llm("first"), llm("second", fallback_source="cheap"),
        sources=[priced("e", 1.0), priced("cheap", 0.0001)], settings={"max_cost_usd": 0.102},
    )
    state = run_workflow(doc, "hello")
    second = state["metadata"]["trace"][-1]
    assert second["source"] == "cheap" and second["output"]["fallback"]["source"] == "cheap"


# --- threads, async, streaming, cancel ---------------------------------------------------------


def test_hundred_concurrent_threads_get_separate_traces(examples_dir) -> None:
    spec = load_workflow(examples_dir / "triage.json").to_document()
    spec["sources"][0]["config"]["latency_ms"] = 20

    def one(i: int) -> dict[str, Any]:
        text = f"img: fox {i}" if i % 3 == 0 else (f"sql: pen {i}" if i % 3 == 1 else f"question {i}")
        return run_workflow(spec, {"user_input": text})

    with ThreadPoolExecutor(max_workers=100) as pool:
        states = list(pool.map(one, range(100)))
    run_ids = {s["metadata"]["run_id"] for s in states}
    assert len(run_ids) == 100
    for i, state in enumerate(states):
        executed = state["metadata"]["nodes_executed"]
        branch = {0: "draw", 1: "lookup", 2: "answer"}[i % 3]
        assert executed == ["input", "router", branch, "agg"], (i, executed)
        if branch == "answer":
            assert state["text_result"] == f"You asked: question {i}"
        if branch == "lookup":
            assert state["db_result"] == [{"name": "pen", "price": 1.1, "stock": 500}]
        assert len(state["metadata"]["trace"]) == 4


async def test_async_runs_concurrently(examples_dir) -> None:
    spec = load_workflow(examples_dir / "fanout.json")
    started = time.perf_counter()
    states = await asyncio.gather(*(arun_workflow(spec, f"topic {i}") for i in range(20)))
    assert time.perf_counter() - started < 3.0  # 20 runs of ~0.6 s overlap
    assert all(s["final_output"]["keywords"] == f"keywords: topic {i}" for i, s in enumerate(states))


def test_stream_events_in_order(examples_dir) -> None:
    events = list(stream_workflow(examples_dir / "triage.json", {"user_input": "tell me about owls"}))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    run_id = events[0]["data"]["run_id"]
    assert all(e["run_id"] == run_id for e in events)
    node_events = [(e["type"], e["node"]) for e in events if e["type"] in ("node_start", "node_end")]
    assert node_events == [
        ("node_start", "input"), ("node_end", "input"),
        ("node_start", "router"), ("node_end", "router"),
        ("node_start", "answer"), ("node_end", "answer"),
        ("node_start", "agg"), ("node_end", "agg"),
    ]
    start = kinds.index("node_start", kinds.index("node_end", kinds.index("node_end") + 1))
    tokens = [e for e in events if e["type"] == "token"]
    assert len(tokens) > 3 and all(e["node"] == "answer" for e in tokens)
    assert all(start < events.index(t) < kinds.index("node_end", start) for t in tokens)
    final = events[-1]["data"]
    assert "".join(t["data"] for t in tokens) == final["text_result"]
    end_answer = next(e for e in events if e["type"] == "node_end" and e["node"] == "answer")
    assert end_answer["data"]["update"] == {"text_result": final["text_result"]}
    assert end_answer["data"]["trace"]["status"] == "succeeded"


def test_stream_tokens_arrive_while_the_node_runs() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"latency_ms": 400}}]
    doc = chain(llm("a"), sources=sources)
    stamps = [(e["type"], time.perf_counter()) for e in stream_workflow(doc, "one two three four")]
    token_times = [t for k, t in stamps if k == "token"]
    assert token_times[-1] - token_times[0] > 0.2  # spread out, not delivered at the end


def test_stream_failed_run_ends_with_failed_state() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 100}}]
    events = list(stream_workflow(chain(llm("a"), sources=sources), f"x {uuid.uuid4()}"))
    assert events[-1]["type"] == "run_end"
    assert events[-1]["data"]["metadata"]["status"] == "failed"


def test_stream_retry_event_lets_consumers_reset() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 1}}]
    doc = chain(llm("a", retry={"max_attempts": 2, "backoff_s": 0}), sources=sources)
    kinds = [e["type"] for e in stream_workflow(doc, f"y {uuid.uuid4()}")]
    assert kinds.index("node_retry") < kinds.index("token")


async def test_astream_events(examples_dir) -> None:
    kinds = [e["type"] async for e in astream_workflow(examples_dir / "triage.json", "hello there")]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and "token" in kinds


def test_cancel_run_stops_at_next_node() -> None:
    sources = [{"id": "e", "kind": "llm", "provider": "echo", "config": {"latency_ms": 300}}]
    doc = chain(llm("a"), llm("b"), llm("c"), sources=sources)
    run_id = uuid.uuid4().hex
    result: dict[str, Any] = {}

    def go() -> None:
        result["state"] = run_workflow(doc, "x", run_id=run_id)

    thread = threading.Thread(target=go)
    thread.start()
    time.sleep(0.15)
    assert cancel_run(run_id) is True
    thread.join(5)
    meta = result["state"]["metadata"]
    assert meta["status"] == "cancelled"
    assert meta["nodes_executed"] == ["input", "a"]
    assert cancel_run(run_id) is False


def test_compiled_graph_runs_on_its_own(examples_dir) -> None:
    graph = build_graph_from_json(examples_dir / "triage.json")
    out = graph.invoke({"user_input": "hello"})
    assert out["text_result"] == "You asked: hello"
    assert out["final_output"]["text"] == "You asked: hello"
