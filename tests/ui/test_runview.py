"""Live events folded into the Run page's view model, and stored runs read back into it."""

from __future__ import annotations

import json

from agentflow import stream_workflow
from agentflow.ui.runview import RunView, fold


def _doc(examples_dir, name: str) -> dict:
    return json.loads((examples_dir / name).read_text())


def test_a_streamed_run_folds_into_steps_tokens_and_final_state(examples_dir):
    doc = _doc(examples_dir, "triage.json")
    doc["sources"][0]["config"]["latency_ms"] = 0
    events = list(stream_workflow(doc, {"user_input": "what is a fox"}))
    view = fold(events)
    assert view.status == "succeeded" and view.done
    assert [s.node for s in view.steps] == ["input", "router", "answer", "agg"]
    answer = view.steps[2]
    assert answer.type == "llm" and answer.status == "succeeded"
    assert answer.text == view.final["text_result"]  # joined tokens equal the node's text
    assert answer.update == {"text_result": view.final["text_result"]}
    statuses = view.node_statuses()
    assert statuses["answer"].status == "succeeded" and statuses["answer"].latency_ms is not None
    assert "draw" not in statuses
    assert view.final_output()["text"] == view.final["text_result"]
    assert view.totals()["nodes"] == 4


def test_partial_event_streams_show_running_steps():
    view = fold(
        [
            {"type": "run_start", "run_id": "r1", "data": {"run_id": "r1", "workflow_id": "w"}},
            {"type": "node_start", "node": "a", "data": {"node": "a", "type": "llm", "status": "running"}},
            {"type": "token", "node": "a", "data": "Hel"},
            {"type": "token", "node": "a", "data": "lo"},
        ]
    )
    assert view.status == "running" and not view.done
    assert view.steps[0].text == "Hello" and view.steps[0].status == "running"
    assert view.node_statuses()["a"].status == "running"


def test_retries_reset_the_streamed_text(examples_dir):
    view = fold(
        [
            {"type": "node_start", "node": "a", "data": {"node": "a", "type": "llm"}},
            {"type": "token", "node": "a", "data": "partial"},
            {"type": "node_retry", "node": "a", "data": {"attempt": 1, "error": {"message": "x"}, "delay_s": 0.1}},
        ]
    )
    step = view.steps[0]
    assert step.status == "retrying" and step.text == "" and step.retries[0]["attempt"] == 1


def test_a_real_retry_is_shown(examples_dir):
    doc = {
        "id": "flaky",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 1}}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "a", "type": "llm", "source": "e", "retry": {"max_attempts": 2, "backoff_s": 0}},
        ],
        "edges": [{"from": "input", "to": "a"}],
    }
    view = fold(list(stream_workflow(doc, {"user_input": "hi"})))
    step = view.steps[-1]
    assert view.status == "succeeded" and len(step.retries) == 1 and step.trace["attempts"] == 2


def test_a_failed_run_keeps_its_error_and_marks_the_failing_node():
    doc = {
        "id": "broken",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo", "config": {"fail_first": 5}}],
        "nodes": [{"id": "input", "type": "input"}, {"id": "a", "type": "llm", "source": "e"}],
        "edges": [{"from": "input", "to": "a"}],
    }
    view = fold(list(stream_workflow(doc, {"user_input": "hi"})))
    assert view.status == "failed"
    assert view.error["error_type"] and view.error["message"]
    assert view.failed_nodes == ["a"]
    assert view.node_statuses()["a"].status == "failed"


def test_interrupt_events_pause_the_view_and_resume_continues_it():
    view = fold(
        [
            {"type": "run_start", "data": {"run_id": "r"}},
            {"type": "interrupt", "node": "answer", "data": {"paused_before": "answer"}},
        ]
    )
    assert view.status == "interrupted" and view.done
    assert view.interrupt["node"] == "answer"
    assert view.node_statuses()["answer"].status == "paused"
    view.resume()
    assert view.status == "running" and view.interrupt is None
    view.apply({"type": "run_end", "data": {"metadata": {"status": "interrupted", "paused_before": "x", "trace": []}}})
    assert view.interrupt == {"node": "x"}


def test_loops_give_one_step_per_execution(examples_dir):
    view = fold(list(stream_workflow(_doc(examples_dir, "refine_loop.json"), {"user_input": "a"})))
    refines = [s for s in view.steps if s.node == "refine"]
    assert len(refines) == 3
    status = view.node_statuses()["refine"]
    assert status.runs == 3 and status.latency_ms >= sum(s.latency_ms for s in refines) - 0.01


def test_a_view_can_be_read_while_it_is_written():
    view = RunView()
    view.apply({"type": "node_start", "node": "a", "data": {"type": "llm"}})
    snap = view.snapshot()
    view.apply({"type": "token", "node": "a", "data": "x"})
    assert snap.steps[0].text == "" and view.steps[0].text == "x"


def test_fail_records_an_error_that_happened_before_the_run_started():
    view = RunView()
    view.fail({"status": "error", "error_type": "ValidationError", "message": "bad"})
    assert view.done and view.status == "failed" and view.error["message"] == "bad"


def test_stored_runs_read_back_into_the_same_view(examples_dir, agentflow_home):
    from agentflow.store import default_store

    store = default_store()
    events = list(stream_workflow(_doc(examples_dir, "triage.json"), {"user_input": "sql: desk lamp"}))
    final = events[-1]["data"]
    store.record_run(final, user="ann", workflow_version=1)
    view = RunView.from_record(store.get_run(final["metadata"]["run_id"]))
    assert view.status == "succeeded" and view.workflow_version == 1
    assert [s.node for s in view.steps] == ["input", "router", "lookup", "agg"]
    assert view.steps[2].update == {"db_result": [{"name": "desk lamp", "price": 24.5, "stock": 12}]}
    assert view.final_output()["db"][0]["name"] == "desk lamp"
