"""Debug runs from the workbench: paused, resumed and forked handles, their live views
lining up with the stored runs, paused nodes and breakpoints on the graph."""

from __future__ import annotations

import json

import pytest

from agentflow.ui.graph import BREAK_COLOR, graph_model
from agentflow.ui.runner import attach_run, start_fork, start_resume, start_run
from agentflow.ui.runview import RunView
from agentflow.ui.theme import STATUS_COLORS


@pytest.fixture
def triage(examples_dir) -> dict:
    doc = json.loads((examples_dir / "triage.json").read_text())
    doc["sources"][0]["config"]["latency_ms"] = 0
    return doc


def _steps(view: RunView) -> list[tuple[str, str, str]]:
    return [(s.node, s.type, s.status) for s in view.steps]


def _finished(handle):
    assert handle.join(30), "the run did not end in time"
    return handle.view


def test_the_live_view_of_a_paused_then_resumed_run_is_the_stored_one(store, triage):
    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, user="ann", breakpoints=["answer"]))
    assert view.status == "interrupted" and view.paused_nodes == ["answer"]
    assert _steps(view) == _steps(RunView.from_record(store.get_run(view.run_id)))
    assert _steps(view)[-1] == ("answer", "pause", "interrupted")
    assert view.node_statuses()["answer"].status == "paused"

    resumed = start_resume(view.run_id, {"user_input": "changed"}, store=store, step=False)
    assert resumed.view.run_id == view.run_id and resumed.view.steps[-1].status == "resumed"  # continues the view
    final = _finished(resumed)
    stored = store.get_run(view.run_id)
    assert final.status == stored["status"] == "succeeded" and stored["user"] == "ann"
    assert _steps(final) == _steps(RunView.from_record(stored))
    assert final.steps[3].trace["writes"] == ["text_result"]  # the llm step kept its own trace entry
    assert final.final["text_result"] == "You asked: changed"
    statuses = final.node_statuses()
    assert statuses["answer"].runs == 1 and statuses["answer"].status == "succeeded"  # pauses are not node runs
    assert final.totals()["nodes"] == 4


def test_resuming_a_run_that_is_not_paused_fails_without_touching_its_record(store, triage):
    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, breakpoints=["answer"]))
    _finished(start_resume(view.run_id, store=store))
    before = store.get_run(view.run_id)
    again = _finished(start_resume(view.run_id, store=store))
    assert again.status == "failed" and "is succeeded, not paused" in again.error["message"]
    after = store.get_run(view.run_id)
    assert after["status"] == "succeeded" and after["final_state"] == before["final_state"]


def test_a_fork_continues_from_its_inherited_steps_and_leaves_the_original(store, triage):
    from agentflow import list_checkpoints

    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, breakpoints=["agg"]))
    _finished(start_resume(view.run_id, store=store))
    cps = list_checkpoints(view.run_id, store=store)
    before_answer = next(c for c in cps if c["next"] == ["answer"])
    fork = _finished(
        start_fork(view.run_id, before_answer["checkpoint_id"], {"intent": "db"}, store=store, breakpoints=[])
    )
    assert fork.status == "succeeded" and fork.run_id != view.run_id
    assert fork.metadata["forked_from"] == {"run_id": view.run_id, "checkpoint_id": before_answer["checkpoint_id"]}
    assert _steps(fork) == _steps(RunView.from_record(store.get_run(fork.run_id)))
    assert [(s.node, bool(s.trace.get("inherited"))) for s in fork.steps] == [
        ("input", True),
        ("router", True),
        ("(fork)", False),
        ("lookup", False),
        ("agg", False),
    ]
    assert store.get_run(view.run_id)["final_state"]["text_result"] == "You asked: hi"


def test_a_stored_run_is_attached_without_running_anything(store, triage):
    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, step=True))
    handle = attach_run(view.run_id, store)
    assert handle.done and not handle.alive and handle.view.status == "interrupted"
    assert handle.view.paused_nodes == ["input"] and handle.view.workflow_id == "triage-demo"


def test_every_node_due_after_a_fan_out_shows_as_paused(store, examples_dir):
    view = _finished(
        start_run(examples_dir / "fanout.json", {"user_input": "owls"}, store=store, breakpoints=["keywords"])
    )
    assert sorted(view.paused_nodes) == ["facts", "keywords", "outline"]
    model = graph_model(json.loads((examples_dir / "fanout.json").read_text()), view.node_statuses())
    fills = {n["id"]: n["color"]["background"] for n in model.nodes}
    assert fills["outline"] == fills["keywords"] == fills["facts"] == STATUS_COLORS["paused"]
    assert fills["input"] == STATUS_COLORS["succeeded"] and fills["draft"] == STATUS_COLORS["pending"]
    assert STATUS_COLORS["paused"] not in (STATUS_COLORS["interrupted"], STATUS_COLORS["running"])


def test_breakpoints_are_drawn_on_the_graph(triage):
    model = graph_model(triage, break_before=["answer"], break_after=["router", "answer"])
    nodes = {n["id"]: n for n in model.nodes}
    assert nodes["answer"]["label"].endswith("[pause before & after]")
    assert nodes["router"]["breakpoint"] == "after" and nodes["router"]["color"]["border"] == BREAK_COLOR
    assert nodes["draw"]["breakpoint"] is None and nodes["draw"]["color"]["border"] != BREAK_COLOR


def test_pauses_are_rows_of_their_own_on_the_timeline(store, triage):
    from agentflow.ui.tables import timeline_frame

    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, breakpoints=["answer"]))
    final = _finished(start_resume(view.run_id, store=store))
    assert list(timeline_frame(final.trace)["row"]) == ["input", "router", "pause · answer", "answer", "agg"]


def test_a_re_run_from_a_checkpoint_without_an_edit_runs_the_next_nodes_again(store, triage):
    from agentflow import list_checkpoints

    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, breakpoints=["agg"]))
    _finished(start_resume(view.run_id, store=store))
    before_answer = next(c for c in list_checkpoints(view.run_id, store=store) if c["next"] == ["answer"])
    fork = _finished(start_fork(view.run_id, before_answer["checkpoint_id"], store=store, breakpoints=[]))
    assert [s.node for s in fork.steps if not s.trace.get("inherited") and s.type != "pause"] == ["answer", "agg"]


def test_comparing_two_runs_leaves_the_pauses_out(store, triage):
    from agentflow.ui.tables import compare_frame

    view = _finished(start_run(triage, {"user_input": "hi"}, store=store, breakpoints=["answer"]))
    _finished(start_resume(view.run_id, store=store))
    plain = _finished(start_run(triage, {"user_input": "hi"}, store=store))
    store.record_run(plain.final)
    rows = {
        r["node"]: r for r in compare_frame(store.get_run(view.run_id), store.get_run(plain.run_id)).to_dict("records")
    }
    assert list(rows) == ["input", "router", "answer", "agg"]
    llm = next(e for e in store.get_run(view.run_id)["trace"] if e["node"] == "answer" and e["type"] == "llm")
    assert rows["answer"]["latency A (ms)"] == round(llm["latency_ms"], 1) and rows["answer"]["same output"]
