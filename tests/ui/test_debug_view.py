"""Step-by-step inspection's plain functions: breakpoint choices, the paused state and its
edit, checkpoints and diffs, a fork compared with its parent."""

from __future__ import annotations

import json

import pytest

from agentflow import ValidationError, fork_run, list_checkpoints, resume_run, run_workflow
from agentflow.ui.debugview import (
    BREAKS_KEY,
    CHANGED_STYLE,
    INHERITED_STYLE,
    ONLY_ONE_STYLE,
    WORSE_STYLE,
    BreakChoice,
    break_choice,
    checkpoint_frame,
    checkpoint_label,
    default_checkpoint,
    fork_compare_frame,
    fork_compare_styles,
    fork_compare_totals,
    forked_from,
    pause_text,
    paused_frame,
    paused_runs,
    paused_view,
    set_break_choice,
    state_diff,
    state_diff_frame,
    state_html,
    state_patch,
    visible_state,
    was_debugged,
)


@pytest.fixture
def triage(examples_dir) -> dict:
    doc = json.loads((examples_dir / "triage.json").read_text())
    doc["sources"][0]["config"]["latency_ms"] = 0
    return doc


# -- breakpoints -------------------------------------------------------------------------------


def test_a_break_choice_is_kept_per_workflow_and_becomes_run_arguments():
    state: dict = {}
    assert break_choice(state, "wf") == BreakChoice() and BreakChoice().run_kwargs() == {}
    set_break_choice(state, "wf", BreakChoice(("answer", "gone"), ("router",)))
    set_break_choice(state, "other", BreakChoice(step=True))
    choice = break_choice(state, "wf").within(["input", "router", "answer"])
    assert choice == BreakChoice(("answer",), ("router",))
    assert choice.run_kwargs() == {"breakpoints": ["answer"], "break_after": ["router"], "step": False}
    assert choice.describe() == "pauses before answer; after router"
    assert break_choice(state, "other").describe() == "pauses before every node"
    assert set(state[BREAKS_KEY]) == {"wf", "other"}


# -- the paused state and its edit -------------------------------------------------------------


def test_a_state_edit_sends_only_the_keys_that_changed():
    current = {"user_input": "hi", "intent": "text", "n": 1}
    text = json.dumps({"user_input": "changed", "intent": "text", "n": 1, "new": [1, 2]}, indent=2)
    assert state_patch(text, current) == {"user_input": "changed", "new": [1, 2]}
    assert state_patch(json.dumps(current), current) == {}
    assert state_patch('{"user_input": "hi", "intent": null, "n": 1}', current) == {"intent": None}


def test_invalid_json_is_refused_with_its_line_and_column():
    with pytest.raises(ValidationError, match="line 3, column 3") as info:
        state_patch('{\n  "a": 1\n  "b": 2\n}', {"a": 1})
    problem = info.value.errors[0]
    assert (problem["line"], problem["column"], problem["path"]) == (3, 3, "$")
    assert "Expecting ',' delimiter" in problem["message"]


def test_a_state_that_is_not_an_object_or_lost_a_key_is_refused():
    with pytest.raises(ValidationError, match="not a JSON object") as info:
        state_patch("[1, 2]", {})
    assert info.value.errors[0]["line"] == 1
    with pytest.raises(ValidationError, match="lost 1 key") as info:
        state_patch('{"a": 1}', {"a": 1, "b": 2})
    assert info.value.errors == [
        {"path": "$.b", "message": "was removed; a state key cannot be removed, set it to null instead"}
    ]


def test_the_state_is_shown_as_json_with_the_changed_keys_highlighted():
    html = state_html({"user_input": "<b>hi</b>", "intent": "text", "image": "x" * 1000}, ["intent"])
    assert html.startswith('<pre class="af-state"') and html.endswith("</pre>")
    assert '<mark data-key="intent"' in html and "&quot;intent&quot;: &quot;text&quot;," in html
    assert html.count("<mark") == 1
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>" not in html  # escaped
    assert "(1,000 characters)" in html and "x" * 500 not in html  # long values cut for display


def test_langgraph_channels_are_not_the_users_state():
    assert visible_state({"branch:to:answer": None, "__start__": 1, "intent": "text"}) == {"intent": "text"}


def test_a_paused_run_reads_back_with_what_its_last_step_changed(store, triage):
    paused = run_workflow(triage, "hello", breakpoints=["answer"], store=store)
    run_id = paused["metadata"]["run_id"]
    pv = paused_view(run_id, store)
    assert pv.paused_before == "answer" and pv.next == ["answer"]
    assert pv.state == {"intent": "text", "user_input": "hello"}
    assert pv.changed_keys == ["intent"] and pv.changed_by == "router"
    assert pv.breakpoints == {"before": ["answer"], "after": [], "step": False}
    assert pv.pauses == 1 and json.loads(pv.editor_text) == pv.state
    assert [r["run_id"] for r in paused_runs(store)] == [run_id]
    assert list(paused_frame(paused_runs(store))["run_id"]) == [run_id]


def test_a_fan_out_step_changes_several_keys_at_once(store, examples_dir):
    paused = run_workflow(examples_dir / "fanout.json", "foxes", breakpoints=["draft"], store=store)
    pv = paused_view(paused["metadata"]["run_id"], store)
    assert set(pv.changed_keys) >= {"outline", "keywords", "facts"}
    assert set(pv.changed_by.split(", ")) >= {"outline", "keywords", "facts"}


# -- checkpoints and diffs ----------------------------------------------------------------------


def test_checkpoints_as_a_table_with_a_sensible_default(store, triage):
    paused = run_workflow(triage, "hello", breakpoints=["answer"], store=store)
    run_id = paused["metadata"]["run_id"]
    resume_run(run_id, {"user_input": "edited"}, store=store)
    cps = list_checkpoints(run_id, store=store)
    frame = checkpoint_frame(cps)
    assert list(frame.columns) == ["#", "after", "time", "changed keys", "next", "kind", "checkpoint_id"]
    assert list(frame["kind"]) == ["input", "step", "step", "step", "state edit", "step", "step"]
    edit = frame[frame["kind"] == "state edit"].iloc[0]
    assert edit["changed keys"] == "user_input" and edit["next"] == "answer"
    assert frame.iloc[-1]["next"] == "(end)" and frame.iloc[-1]["after"] == "agg"
    assert frame.iloc[0]["next"] == "(start)"
    assert default_checkpoint(cps) == len(cps) - 2  # before the last node (agg)
    assert checkpoint_label(cps[3], 3).startswith("#3 · after router · next answer · ")


def test_a_state_diff_names_each_key_that_changed():
    before = {"a": 1, "b": "x", "gone": True, "later": None}
    after = {"a": 1, "b": "y", "new": [1], "later": "now", "branch:to:x": None}
    assert state_diff(before, after) == [
        {"key": "b", "change": "changed", "before": "x", "after": "y"},
        {"key": "gone", "change": "removed", "before": True, "after": None},
        {"key": "later", "change": "added", "before": None, "after": "now"},
        {"key": "new", "change": "added", "before": None, "after": [1]},
    ]
    frame = state_diff_frame(before, after)
    assert frame.to_dict("records")[0] == {"key": "b", "change": "changed", "before": "x", "after": "y"}
    assert state_diff_frame({}, {}).empty


# -- a fork and its parent ----------------------------------------------------------------------


def _entry(node: str, *, latency: float, tokens: int = 0, cost: float = 0.0, writes=(), **extra) -> dict:
    return {
        "node": node,
        "type": extra.pop("type", "llm"),
        "status": extra.pop("status", "succeeded"),
        "latency_ms": latency,
        "tokens": {"prompt": 0, "completion": tokens, "total": tokens},
        "cost_usd": cost,
        "writes": list(writes),
        **extra,
    }


def _pause(node: str) -> dict:
    return {"node": node, "type": "pause", "status": "resumed", "latency_ms": 9999.0, "tokens": {}, "cost_usd": 0.0}


PARENT = {
    "run_id": "p",
    "trace": [
        _entry("input", latency=1, type="input"),
        _entry("refine", latency=10, tokens=5, cost=0.001, writes=["draft"]),
        _pause("refine"),
        _entry("refine", latency=20, tokens=5, cost=0.001, writes=["draft"]),
        _entry("answer", latency=30, tokens=7, cost=0.002, writes=["text_result"]),
    ],
    "final_state": {"draft": "v2", "text_result": "old answer", "metadata": {"breakpoints": {"before": ["refine"]}}},
}
FORK = {
    "run_id": "f",
    "trace": [
        _entry("input", latency=1, type="input", inherited=True),
        _entry("refine", latency=10, tokens=5, cost=0.001, writes=["draft"], inherited=True),
        _pause("(fork)"),
        _entry("refine", latency=15, tokens=5, cost=0.001, writes=["draft"]),
        _entry("draw", latency=40, writes=["image_result"]),
    ],
    "final_state": {
        "draft": "v2",
        "image_result": "img",
        "metadata": {"forked_from": {"run_id": "p", "checkpoint_id": "cp1"}},
    },
}


def test_a_fork_and_its_parent_are_matched_by_node_and_occurrence():
    frame = fork_compare_frame(PARENT, FORK)
    keys = [(r["node"], r["#"]) for r in frame.to_dict("records")]
    assert keys == [("input", 1), ("refine", 1), ("refine", 2), ("answer", 1), ("draw", 1)]  # pauses left out
    rows = {(r["node"], r["#"]): r for r in frame.to_dict("records")}
    assert rows[("input", 1)]["inherited"] and rows[("refine", 1)]["inherited"]
    assert not rows[("refine", 2)]["inherited"]
    # A loop's earlier pass is overwritten in the final state; its last pass is not.
    assert rows[("refine", 1)]["output parent"] == "(earlier pass, not kept)"
    assert rows[("refine", 2)]["output parent"] == rows[("refine", 2)]["output fork"] == "v2"
    assert rows[("refine", 2)]["same output"]
    assert rows[("refine", 2)]["Δ latency (ms)"] == -5.0 and rows[("refine", 2)]["Δ tokens"] == 0
    # A node only one of them ran: blanks on the other side, no delta.
    assert rows[("answer", 1)]["status fork"] == "—" and pd_isna(rows[("answer", 1)]["latency fork (ms)"])
    assert pd_isna(rows[("answer", 1)]["Δ latency (ms)"]) and not rows[("answer", 1)]["same output"]
    assert rows[("draw", 1)]["status parent"] == "—" and rows[("draw", 1)]["output fork"] == "img"


def pd_isna(value) -> bool:
    import pandas as pd

    return value is None or pd.isna(value)


def test_the_comparison_is_highlighted_cell_by_cell():
    frame = fork_compare_frame(PARENT, FORK)
    styles = fork_compare_styles(frame)
    assert styles.shape == frame.shape
    assert set(styles.iloc[0]) == {INHERITED_STYLE}  # inherited: the whole row muted
    refine2 = styles.iloc[2]
    assert refine2["Δ latency (ms)"] == "color: #15803d" and refine2["output fork"] == ""  # faster, same output
    assert set(styles.iloc[3]) == {ONLY_ONE_STYLE}  # answer: the parent's only
    changed = fork_compare_frame(
        PARENT, {**FORK, "final_state": {**FORK["final_state"], "draft": "v3"}, "trace": FORK["trace"][:4]}
    )
    cstyles = fork_compare_styles(changed)
    assert cstyles.iloc[2]["output fork"] == CHANGED_STYLE
    slower = fork_compare_frame(
        {**PARENT, "trace": PARENT["trace"][:2]}, {**FORK, "trace": [_entry("input", latency=5, type="input")]}
    )
    assert fork_compare_styles(slower).iloc[0]["Δ latency (ms)"] == WORSE_STYLE


def test_run_level_totals_leave_pauses_out_and_say_what_the_fork_ran_itself():
    totals = fork_compare_totals(PARENT, FORK)
    assert totals.loc["nodes run", "parent"] == 4 and totals.loc["nodes run", "fork"] == 4
    assert totals.loc["nodes run", "fork's own steps"] == 2
    assert totals.loc["latency (ms)", "parent"] == 61.0 and totals.loc["latency (ms)", "fork"] == 66.0
    assert totals.loc["latency (ms)", "Δ (fork − parent)"] == 5.0
    assert totals.loc["tokens", "fork's own steps"] == 5


def test_forks_and_debugged_runs_are_recognised():
    assert forked_from(FORK) == {"run_id": "p", "checkpoint_id": "cp1"} and forked_from(PARENT) is None
    assert was_debugged(PARENT) and was_debugged(FORK)
    assert not was_debugged({"trace": [_entry("a", latency=1)], "final_state": {"metadata": {}}})
    assert not was_debugged(None)


def test_a_real_fork_compared_with_its_parent(store, triage):
    paused = run_workflow(triage, "first", breakpoints=["answer"], store=store)
    run_id = paused["metadata"]["run_id"]
    cp = list_checkpoints(run_id, store=store)[-1]["checkpoint_id"]
    fork = fork_run(run_id, cp, {"intent": "image"}, store=store)
    resume_run(run_id, store=store)
    frame = fork_compare_frame(store.get_run(run_id), store.get_run(fork["metadata"]["run_id"]))
    rows = {r["node"]: r for r in frame.to_dict("records")}
    assert list(rows) == ["input", "router", "answer", "draw", "agg"]
    assert rows["router"]["inherited"] and rows["router"]["output parent"] == "text"
    assert rows["router"]["output fork"] == "image"  # the state edit shows on the step that wrote the key
    assert rows["answer"]["status fork"] == "—" and rows["draw"]["status parent"] == "—"
    assert not rows["agg"]["same output"]


# -- pauses in a trace ------------------------------------------------------------------------


def test_a_pause_reads_as_one_line():
    assert pause_text({"node": "answer", "status": "interrupted"}) == "Paused before **answer** · waiting"
    text = pause_text({"node": "a", "next": ["a", "b"], "status": "resumed", "latency_ms": 2500, "changed_keys": ["x"]})
    assert text == "Paused before **a**, **b** · resumed after 2.5 s · state edited: `x`"
    assert pause_text({"node": "(fork)", "status": "resumed", "changed_keys": []}).startswith(
        "Forked from a checkpoint"
    )
