"""Step-by-step inspection on the Graph, Run and Runs pages under AppTest: breakpoints, the
paused state and its editor, Resume / Step / Cancel, picking a paused run up again, time
travel (fork from a checkpoint) and a fork compared with its parent."""

from __future__ import annotations

import json

import streamlit as st
from streamlit.testing.v1 import AppTest

from agentflow.ui.theme import STATUS_COLORS
from tests.ui.conftest import APP, PAGES, TIMEOUT, no_exception, texts, wait_for_run

WF = "triage-demo"


def _run_page(app, workflow: str = WF) -> AppTest:
    at = app.run()
    at.session_state["focus_workflow"] = workflow
    at.switch_page(PAGES["Run"]).run()
    return at


def _start(at: AppTest, text: str, *, before=(), after=(), step=False, workflow: str = WF):
    for node in before:
        at.multiselect(key=f"run_break_before_{workflow}").select(node).run()
    for node in after:
        at.multiselect(key=f"run_break_after_{workflow}").select(node).run()
    if step:
        at.toggle(key=f"run_step_{workflow}").set_value(True).run()
    at.text_input(key=f"run_input_{workflow}").input(text)
    at.button(key="run_go").click().run()
    view = wait_for_run(at)
    no_exception(at)
    return view


def _editor(at: AppTest):
    boxes = [t for t in at.text_area if t.key.startswith("run_dbg_state_")]
    assert len(boxes) == 1, [t.key for t in at.text_area]
    return boxes[0]


def _graph_nodes(at: AppTest) -> dict:
    comp = at.get("component_instance")[0]
    return {n["id"]: n for n in json.loads(json.loads(comp.proto.json_args)["data"])["nodes"]}


def test_set_a_breakpoint_run_see_the_pause_edit_a_value_resume_and_see_the_changed_result(app, store):
    at = _run_page(app)
    view = _start(at, "what is a fox", before=["answer"])
    assert view.status == "interrupted" and view.interrupt["node"] == "answer"
    shown = texts(at)
    assert "Paused before **answer**" in shown
    assert "`intent`" in shown and "changed by **router**" in shown
    state_json = "\n".join(h.proto.body for h in at.get("html"))
    assert '<mark data-key="intent"' in state_json  # the key the last node changed, highlighted
    assert "&quot;user_input&quot;: &quot;what is a fox&quot;" in state_json
    assert "branch:to" not in state_json  # LangGraph's own channels are not the user's state
    assert store.get_run(view.run_id)["status"] == "interrupted"
    nodes = _graph_nodes(at)
    assert nodes["answer"]["color"]["background"] == STATUS_COLORS["paused"]
    assert nodes["router"]["color"]["background"] == STATUS_COLORS["succeeded"]

    editor = _editor(at)
    state = json.loads(editor.value)
    assert state == {"intent": "text", "user_input": "what is a fox"}
    editor.input(json.dumps({**state, "user_input": "what is an owl"}, indent=2)).run()
    at.button(key="run_dbg_resume").click().run()
    no_exception(at)
    view = wait_for_run(at)
    assert view.status == "succeeded" and view.run_id == store.get_run(view.run_id)["run_id"]
    assert view.final["text_result"] == "You asked: what is an owl"
    assert "You asked: what is an owl" in texts(at)
    assert [(s.node, s.type, s.status) for s in view.steps][2:] == [
        ("answer", "pause", "resumed"),
        ("answer", "llm", "succeeded"),
        ("agg", "aggregator", "succeeded"),
    ]
    assert "state edited: `user_input`" in texts(at)
    assert store.get_run(view.run_id)["status"] == "succeeded"


def test_a_json_error_in_the_state_shows_line_and_column_and_sends_nothing(app, store):
    at = _run_page(app)
    view = _start(at, "hello", before=["answer"])
    _editor(at).input('{\n  "intent": "text",\n  "user_input": "x"\n  "oops": 1\n}').run()
    at.button(key="run_dbg_resume").click().run()
    no_exception(at)
    shown = texts(at)
    assert "Nothing was sent" in shown and "(line 4, column 3)" in shown
    assert at.session_state["run_handle"].view.run_id == view.run_id
    assert at.session_state["run_handle"].view.status == "interrupted"
    assert store.get_run(view.run_id)["status"] == "interrupted"
    _editor(at).input('{"intent": "text"}').run()  # a removed key is refused too
    at.button(key="run_dbg_step").click().run()
    assert "`$.user_input`" in texts(at) and "set it to null" in texts(at)
    assert store.get_run(view.run_id)["status"] == "interrupted"


def test_step_through_a_workflow_node_by_node(app, store):
    at = _run_page(app)
    view = _start(at, "tell me", step=True)
    seen = []
    while view.status == "interrupted":
        seen.append(view.interrupt["node"])
        assert f"Paused before **{seen[-1]}**" in texts(at)
        at.button(key="run_dbg_step").click().run()
        no_exception(at)
        view = wait_for_run(at)
    assert seen == ["input", "router", "answer", "agg"]
    assert view.status == "succeeded" and view.final["text_result"] == "You asked: tell me"
    pauses = [s for s in view.steps if s.type == "pause"]
    assert len(pauses) == 4 and {s.status for s in pauses} == {"resumed"}
    assert [s.node for s in view.steps if s.type != "pause"] == ["input", "router", "answer", "agg"]


def test_pause_after_a_node_then_resume_to_the_end(app, store):
    at = _run_page(app)
    view = _start(at, "sql: desk lamp", after=["router"])
    assert view.status == "interrupted" and view.interrupt["node"] == "lookup"
    at.button(key="run_dbg_resume").click().run()
    view = wait_for_run(at)
    assert view.status == "succeeded" and view.final["db_result"][0]["name"] == "desk lamp"


def test_breakpoints_chosen_on_the_graph_page_carry_over_to_the_run_page(app):
    at = app.run()
    at.session_state["focus_workflow"] = WF
    at.switch_page(PAGES["Graph"]).run()
    at.multiselect(key=f"gr_break_before_{WF}").select("answer").run()
    at.multiselect(key=f"gr_break_after_{WF}").select("router").run()
    no_exception(at)
    nodes = _graph_nodes(at)
    assert "[pause before]" in nodes["answer"]["label"] and "[pause after]" in nodes["router"]["label"]
    assert nodes["answer"]["color"]["border"] == "#dc2626"
    at.switch_page(PAGES["Run"]).run()
    assert at.multiselect(key=f"run_break_before_{WF}").value == ["answer"]
    assert at.multiselect(key=f"run_break_after_{WF}").value == ["router"]
    at.multiselect(key=f"run_break_before_{WF}").unselect("answer").run()
    at.switch_page(PAGES["Graph"]).run()
    assert at.multiselect(key=f"gr_break_before_{WF}").value == []


def test_a_paused_run_survives_a_reload_and_a_restart(app, bind_address, store):
    at = _run_page(app)
    view = _start(at, "what is a fox", before=["answer"])
    # A new session (a reload) after the workbench process let go of its shared store (a restart).
    st.cache_resource.clear()
    again = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    again.session_state["focus_workflow"] = "research-fanout"
    again.switch_page(PAGES["Run"]).run()
    no_exception(again)
    assert any("Paused runs (1)" in e.label for e in again.expander)
    assert again.selectbox(key="run_paused_pick").value == view.run_id
    again.button(key="run_paused_open").click().run()
    no_exception(again)
    assert again.session_state["focus_workflow"] == WF
    assert "Paused before **answer**" in texts(again)
    _editor(again).input(json.dumps({"intent": "text", "user_input": "after a restart"})).run()
    again.button(key="run_dbg_resume").click().run()
    view = wait_for_run(again)
    assert view.status == "succeeded" and view.final["text_result"] == "You asked: after a restart"
    assert [s.node for s in view.steps if s.type != "pause"] == ["input", "router", "answer", "agg"]


def test_cancel_a_paused_run(app, store):
    at = _run_page(app)
    view = _start(at, "hello", before=["answer"])
    at.button(key="run_dbg_cancel").click().run()
    no_exception(at)
    assert store.get_run(view.run_id)["status"] == "cancelled"
    assert at.session_state["run_handle"].view.status == "cancelled"
    assert not any(t.key.startswith("run_dbg_state_") for t in at.text_area)
    assert "Paused runs" not in " ".join(e.label for e in at.expander)


def test_fork_from_a_checkpoint_with_an_edited_state_keeps_the_original(app, store):
    at = _run_page(app)
    _start(at, "first question", before=["agg"])
    at.button(key="run_dbg_resume").click().run()
    parent = wait_for_run(at)
    assert parent.status == "succeeded"
    # Time travel: the checkpoints, what the chosen one changed, a re-run from it.
    table = next(d.value for d in at.dataframe if "changed keys" in d.value.columns)
    assert "router" in list(table["after"]) and "intent" in " ".join(table["changed keys"])
    cp_box = at.selectbox(key=f"run_tt_cp_{parent.run_id}")
    before_answer = next(i for i, row in table.iterrows() if row["next"] == "answer" and row["kind"] == "step")
    cp_box.select(before_answer).run()
    diff = next(d.value for d in at.dataframe if list(d.value.columns) == ["key", "change", "before", "after"])
    assert list(diff["key"]) == ["intent"] and list(diff["change"]) == ["added"]
    box = at.text_area(key=f"run_tt_state_{parent.run_id}_{before_answer}")
    state = json.loads(box.value)
    box.input(json.dumps({**state, "user_input": "second question"})).run()
    at.button(key="run_tt_fork").click().run()
    no_exception(at)
    fork = wait_for_run(at)
    assert fork.status == "succeeded" and fork.run_id != parent.run_id
    assert fork.final["text_result"] == "You asked: second question"
    assert fork.metadata["forked_from"]["run_id"] == parent.run_id
    assert [(s.node, bool(s.trace.get("inherited"))) for s in fork.steps if s.type != "pause"] == [
        ("input", True),
        ("router", True),
        ("answer", False),
        ("agg", False),
    ]
    original = store.get_run(parent.run_id)
    assert original["status"] == "succeeded" and original["final_state"]["text_result"] == "You asked: first question"


def test_the_runs_page_compares_a_fork_with_its_parent(app, store):
    from agentflow import fork_run, list_checkpoints, resume_run, run_workflow

    at = app.run()  # seeds the demo workflows
    doc = store.get_workflow(WF)["document"]
    paused = run_workflow(doc, "first", breakpoints=["answer"], store=store, workspace=store)
    run_id = paused["metadata"]["run_id"]
    cp = list_checkpoints(run_id, store=store)[-1]["checkpoint_id"]
    fork = fork_run(run_id, cp, {"user_input": "img: a red fox"}, store=store, workspace=store)
    resume_run(run_id, store=store, workspace=store)
    at.switch_page(PAGES["Runs"]).run()
    at.selectbox(key="runs_open").select(fork["metadata"]["run_id"]).run()
    no_exception(at)
    assert "Fork vs parent" in texts(at) and f"forked from `{run_id}`" in texts(at)
    frame = next(
        d.value for d in at.dataframe if "Δ latency (ms)" in d.value.columns and "inherited" in d.value.columns
    )
    rows = {r["node"]: r for r in frame.to_dict("records")}
    assert rows["input"]["inherited"] and rows["router"]["inherited"]
    assert rows["router"]["output parent"] == rows["router"]["output fork"] == "text"
    assert rows["answer"]["status parent"] == "succeeded" and rows["answer"]["status fork"] == "succeeded"
    assert rows["answer"]["output parent"] == "You asked: first"
    assert rows["answer"]["output fork"] == "You asked: img: a red fox" and not rows["answer"]["same output"]
    assert rows["answer"]["Δ latency (ms)"] is not None
    totals = next(d.value for d in at.dataframe if "fork's own steps" in d.value.columns)
    assert totals.loc["nodes run", "fork's own steps"] == 2
    # The parent was debugged too: its checkpoints can be re-run from, on the Run page.
    at.selectbox(key="runs_open").select(run_id).run()
    assert at.selectbox(key=f"runs_tt_cp_{run_id}") is not None
    at.button(key="runs_tt_fork").click().run()
    no_exception(at)
    handle = at.session_state["run_handle"]
    handle.join(30)
    assert handle.view.metadata["forked_from"]["run_id"] == run_id


def test_the_graph_page_colours_a_stored_paused_run(app, store):
    from agentflow import run_workflow

    at = app.run()
    doc = store.get_workflow("research-fanout")["document"]
    paused = run_workflow(doc, "owls", breakpoints=["draft"], store=store, workspace=store)
    assert paused["metadata"]["status"] == "interrupted"
    at.session_state["focus_workflow"] = "research-fanout"
    at.switch_page(PAGES["Graph"]).run()
    at.selectbox(key="gr_run").select(paused["metadata"]["run_id"]).run()
    no_exception(at)
    nodes = _graph_nodes(at)
    assert nodes["draft"]["color"]["background"] == STATUS_COLORS["paused"]
    assert nodes["outline"]["color"]["background"] == STATUS_COLORS["succeeded"]
    assert "paused" in " ".join(m.value for m in at.markdown)  # the legend names the status


def test_a_viewer_sees_a_paused_run_but_cannot_resume_cancel_or_fork_it(app, store, bind_address):
    from agentflow import run_workflow

    at = app.run()  # seeds the demo while the workbench is open
    paused = run_workflow(store.get_workflow(WF)["document"], "hello", breakpoints=["answer"], store=store)
    store.add_user("vic", "viewer password 123", "viewer")
    at = app.run()
    at.text_input(key="auth_user").input("vic")
    at.text_input(key="auth_password").input("viewer password 123")
    at.button(key="auth_submit").click().run()
    at.switch_page(PAGES["Run"]).run()
    at.button(key="run_paused_open").click().run()
    no_exception(at)
    assert "Paused before **answer**" in texts(at)
    assert at.button(key="run_dbg_resume").disabled and at.button(key="run_dbg_step").disabled
    assert at.button(key="run_dbg_cancel").disabled and at.button(key="run_tt_fork").disabled
    assert store.get_run(paused["metadata"]["run_id"])["status"] == "interrupted"


def test_a_paused_run_opened_on_the_runs_page_is_picked_up_on_the_run_page(app, store):
    from agentflow import run_workflow

    at = app.run()
    paused = run_workflow(store.get_workflow(WF)["document"], "sql: pen", break_after=["router"], store=store)
    at.switch_page(PAGES["Runs"]).run()
    at.selectbox(key="runs_status").select("interrupted").run()
    assert list(at.dataframe[0].value["run_id"]) == [paused["metadata"]["run_id"]]
    at.button(key="runs_pick_up").click().run()
    no_exception(at)
    assert at.title[0].value.endswith("Run") and "Paused before **lookup**" in texts(at)
    at.switch_page(PAGES["Run"]).run()  # AppTest stays on the page it was told to (the browser follows)
    at.button(key="run_dbg_resume").click().run()
    view = wait_for_run(at)
    assert view.status == "succeeded"
    assert view.final["db_result"] == [{"name": "pen", "price": 1.1, "stock": 500}]
