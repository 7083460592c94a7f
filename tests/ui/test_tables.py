"""Trace tables, the Gantt timeline and run comparison."""

from __future__ import annotations

import json

from agentflow import run_workflow
from agentflow.ui.tables import (
    TRACE_COLUMNS,
    compare_frame,
    compare_totals,
    node_outputs,
    runs_frame,
    timeline_chart,
    timeline_frame,
    trace_frame,
)
from agentflow.ui.theme import NODE_STYLES


def _run(examples_dir, name: str, text: str) -> dict:
    return run_workflow(json.loads((examples_dir / name).read_text()), {"user_input": text})


def test_trace_frame_has_one_row_per_execution_in_start_order(examples_dir):
    state = _run(examples_dir, "fanout.json", "foxes")
    frame = trace_frame(state["metadata"]["trace"])
    assert list(frame.columns) == TRACE_COLUMNS
    assert len(frame) == 6 and frame["node"].iloc[0] == "input"
    assert frame["start_ms"].is_monotonic_increasing
    assert (frame["attempts"] >= 1).all() and frame["latency_ms"].notna().all()
    assert frame.loc[frame["node"] == "keywords", "tokens"].iloc[0] > 0


def test_timeline_shows_parallel_branches_overlapping(examples_dir):
    state = _run(examples_dir, "fanout.json", "foxes")
    frame = timeline_frame(state["metadata"]["trace"]).set_index("node")
    outline, keywords = frame.loc["outline"], frame.loc["keywords"]
    assert outline["start_ms"] < keywords["end_ms"] and keywords["start_ms"] < outline["end_ms"]
    assert frame.loc["report", "start_ms"] >= frame.loc["draft", "end_ms"] - 1


def test_timeline_chart_colours_by_node_type(examples_dir):
    state = _run(examples_dir, "fanout.json", "foxes")
    spec = timeline_chart(state["metadata"]["trace"], failed_nodes=["facts"]).to_dict()
    layer = spec["layer"][0]
    scale = layer["encoding"]["color"]["scale"]
    assert scale["range"][scale["domain"].index("llm")] == NODE_STYLES["llm"].color
    assert layer["encoding"]["x2"]["field"] == "end_ms"
    assert timeline_chart([]) is None


def test_loop_rows_are_numbered(examples_dir):
    state = _run(examples_dir, "refine_loop.json", "a")
    rows = list(timeline_frame(state["metadata"]["trace"])["row"])
    assert "refine" in rows and "refine #2" in rows and "refine #3" in rows


def test_trace_frame_without_offsets_uses_start_times():
    trace = [
        {"node": "b", "started_at": "2026-01-01T00:00:00.500Z", "latency_ms": 1},
        {"node": "a", "started_at": "2026-01-01T00:00:00.000Z", "latency_ms": 1, "error": {"message": "x"}},
    ]
    frame = trace_frame(trace)
    assert list(frame["node"]) == ["a", "b"] and frame["start_ms"].tolist() == [0.0, 500.0]
    assert frame["error"].iloc[0] == "x"


def test_compare_two_runs_per_node(examples_dir, agentflow_home):
    from agentflow.store import default_store

    store = default_store()
    a = _run(examples_dir, "triage.json", "hello")
    b = _run(examples_dir, "triage.json", "sql: desk lamp")
    for s in (a, b):
        store.record_run(s, user="ann")
    ra, rb = store.get_run(a["metadata"]["run_id"]), store.get_run(b["metadata"]["run_id"])
    frame = compare_frame(ra, rb).set_index("node")
    assert frame.loc["answer", "status B"] == "—" and frame.loc["lookup", "status A"] == "—"
    assert frame.loc["router", "output A"] == "text" and frame.loc["router", "output B"] == "db"
    assert not frame.loc["router", "same output"] and frame.loc["input", "same output"]
    assert frame.loc["agg", "Δ latency (ms)"] is not None
    totals = compare_totals(ra, rb)
    assert list(totals.columns) == ["A", "B"] and totals.loc["status", "A"] == "succeeded"
    listed, _ = store.list_runs()
    assert list(runs_frame(listed)["status"]) == ["succeeded", "succeeded"]


def test_node_outputs_summarise_images_and_errors():
    final = {"image_result": "iVBOR" + "A" * 4000}
    out = node_outputs(
        [{"node": "draw", "writes": ["image_result"]}, {"node": "x", "error": {"message": "boom"}}], final
    )
    assert out["draw"].startswith("<image") and out["x"] == "error: boom"
