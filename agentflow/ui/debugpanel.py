"""Streamlit pieces of step-by-step inspection: breakpoint inputs, the paused-run panel
(state, editor, Resume / Step / Cancel), paused runs to pick up, time travel (checkpoints,
diffs, fork from one) and a fork compared with its parent.

The data behind them comes from :mod:`agentflow.ui.debugview`; runs go on in the
background through :mod:`agentflow.ui.runner`. Functions that start something return the
new :class:`~agentflow.ui.runner.RunHandle` and leave it to the page to keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from agentflow.errors import AgentFlowError, NotFoundError, ValidationError
from agentflow.ui.debugview import (
    BreakChoice,
    break_choice,
    checkpoint_frame,
    checkpoint_label,
    default_checkpoint,
    fork_compare_frame,
    fork_compare_styler,
    fork_compare_totals,
    forked_from,
    paused_frame,
    paused_runs,
    paused_view,
    pretty,
    set_break_choice,
    state_diff_frame,
    state_html,
    state_patch,
    visible_state,
)
from agentflow.ui.graph import document_nodes
from agentflow.ui.render import error_dict, show_error
from agentflow.ui.runner import RunHandle, attach_run, start_fork, start_resume

# -- breakpoints ---------------------------------------------------------------------------------


def breakpoint_inputs(document: Mapping[str, Any], workflow_id: str, prefix: str) -> BreakChoice:
    """Pause before / after which nodes, and step mode, for ``workflow_id``. The choice is
    kept per workflow in the session, so the Graph page's choice is the Run page's."""
    ids = [n["id"] for n in document_nodes(document)]
    choice = break_choice(st.session_state, workflow_id).within(ids)
    keys = {
        "before": f"{prefix}_break_before_{workflow_id}",
        "after": f"{prefix}_break_after_{workflow_id}",
        "step": f"{prefix}_step_{workflow_id}",
    }
    # A page's widgets start from the shared choice; while they are on screen they are the
    # truth (writing their state on every run would race with the browser's own copy).
    initial = {"before": list(choice.before), "after": list(choice.after), "step": choice.step}
    for name, key in keys.items():
        if key not in st.session_state:
            st.session_state[key] = initial[name]
        elif name != "step" and any(n not in ids for n in st.session_state[key]):
            st.session_state[key] = [n for n in st.session_state[key] if n in ids]  # the workflow changed
    left, mid, right = st.columns([2, 2, 1], vertical_alignment="bottom")
    before = left.multiselect(
        "Pause before",
        ids,
        key=keys["before"],
        placeholder="no breakpoint",
        help="The run stops before these nodes: look at the state, edit it, then resume.",
    )
    after = mid.multiselect(
        "Pause after",
        ids,
        key=keys["after"],
        placeholder="no breakpoint",
        help="The run stops once these nodes have run.",
    )
    step = right.toggle("Step mode", key=keys["step"], help="Pause before every node.")
    chosen = BreakChoice(tuple(before), tuple(after), bool(step))
    set_break_choice(st.session_state, workflow_id, chosen)
    return chosen


# -- a paused run --------------------------------------------------------------------------------


def paused_panel(
    run_id: str,
    store: Any,
    *,
    prefix: str,
    can_run: bool,
    can_cancel: bool,
    user: str | None,
    document: Mapping[str, Any] | None = None,
) -> RunHandle | None:
    """The paused run's state (the keys its last step changed highlighted), an editor for
    it, and Resume / Step / Cancel. Returns the handle of what the user started."""
    try:
        pv = paused_view(run_id, store)
    except AgentFlowError as exc:
        show_error(error_dict(exc), title="Cannot read the paused run")
        return None
    with st.container(border=True, key=f"{prefix}_dbg_panel"):
        nxt = ", ".join(f"**{n}**" for n in pv.next) or f"**{pv.paused_before}**"
        st.markdown(f"#### :violet[:material/pause_circle:] Paused before {nxt}")
        where = _breaks_text(pv.breakpoints)
        st.caption(
            f"Run `{run_id}` is saved in the store: it waits here across page reloads and workbench "
            f"restarts (pick it up again under **Paused runs**). It {where}."
        )
        left, right = st.columns(2, gap="medium")
        with left:
            if pv.changed_keys:
                changed = ", ".join(f"`{k}`" for k in pv.changed_keys)
                st.markdown(f"**State** · :orange-background[{changed}] changed by **{pv.changed_by}**")
            else:
                st.markdown(f"**State** · nothing changed by **{pv.changed_by or 'the last step'}**")
            st.html(state_html(pv.state, pv.changed_keys))
        with right:
            text = st.text_area(
                "Edit the state (JSON), then resume",
                value=pv.editor_text,
                key=f"{prefix}_dbg_state_{run_id}_{pv.pauses}",
                height=min(420, max(140, 40 + 21 * pv.editor_text.count("\n"))),
                help="Change values (or set them to null); the changed keys are applied before the next node runs.",
            )
        b1, b2, b3, _ = st.columns([1, 1, 1, 2])
        resume = b1.button(
            "Resume",
            key=f"{prefix}_dbg_resume",
            type="primary",
            icon=":material/play_arrow:",
            disabled=not can_run,
            width="stretch",
            help="Go on to the end (or the next breakpoint).",
        )
        step = b2.button(
            "Step",
            key=f"{prefix}_dbg_step",
            icon=":material/skip_next:",
            disabled=not can_run,
            width="stretch",
            help="Run the next node, then pause again.",
        )
        cancel = b3.button(
            "Cancel run",
            key=f"{prefix}_dbg_cancel",
            icon=":material/stop_circle:",
            disabled=not can_cancel,
            width="stretch",
        )
        if not can_run:
            st.caption("Your role can look at paused runs but not resume them.")
        if resume or step:
            try:
                patch = state_patch(text, pv.state)
            except ValidationError as exc:
                show_error(exc.to_dict(), title="Nothing was sent")
                return None
            try:
                return start_resume(run_id, patch or None, store=store, step=bool(step), document=document)
            except AgentFlowError as exc:
                show_error(error_dict(exc), title="Could not resume")
                return None
        if cancel:
            from agentflow.runtime.remote_cancel import request_cancel

            request_cancel(run_id, store, by=user)
            return attach_run(run_id, store, document)
    return None


def _breaks_text(breaks: Mapping[str, Any]) -> str:
    choice = BreakChoice(tuple(breaks.get("before") or ()), tuple(breaks.get("after") or ()), bool(breaks.get("step")))
    return choice.describe()


def paused_runs_picker(store: Any, *, prefix: str, expanded: bool = False, disabled: bool = False) -> str | None:
    """Runs waiting at a breakpoint in the store (from any session or an earlier start of
    the workbench); returns the id of the one the user picks up."""
    runs = paused_runs(store)
    if not runs:
        return None
    with st.expander(f":material/pause_circle: Paused runs ({len(runs)})", expanded=expanded):
        st.dataframe(paused_frame(runs), hide_index=True, width="stretch")
        labels = {r["run_id"]: f"{r['workflow_id']} · {r['run_id'][:8]} · {r.get('user') or '?'}" for r in runs}
        pick, go = st.columns([3, 1], vertical_alignment="bottom")
        chosen = pick.selectbox("Paused run", list(labels), key=f"{prefix}_paused_pick", format_func=labels.get)
        if go.button(
            "Pick up", key=f"{prefix}_paused_open", icon=":material/play_circle:", width="stretch", disabled=disabled
        ):
            return chosen
    return None


# -- time travel --------------------------------------------------------------------------------


def time_travel(
    run_id: str, store: Any, *, prefix: str, can_run: bool, document: Mapping[str, Any] | None = None
) -> RunHandle | None:
    """A debugged run's checkpoints, what each changed, and a re-run from one of them (with
    an optional state edit) as a new run; the original stays. Returns the fork's handle."""
    from agentflow import checkpoint_state, list_checkpoints

    try:
        checkpoints = list_checkpoints(run_id, store=store)
    except NotFoundError:
        st.caption("This run was not debugged (no breakpoints or step mode), so it has no checkpoints.")
        return None
    if not checkpoints:
        st.caption("No checkpoints.")
        return None
    st.dataframe(
        checkpoint_frame(checkpoints),
        hide_index=True,
        width="stretch",
        column_config={"checkpoint_id": st.column_config.TextColumn("checkpoint id", width="small")},
    )
    idx = st.selectbox(
        "Checkpoint",
        list(range(len(checkpoints))),
        index=default_checkpoint(checkpoints),
        key=f"{prefix}_tt_cp_{run_id}",
        format_func=lambda i: checkpoint_label(checkpoints[i], i),
        help="Re-running from a checkpoint runs the nodes listed under next, and the rest of the workflow.",
    )
    cp = checkpoints[idx]
    after = visible_state(checkpoint_state(run_id, cp["checkpoint_id"], store=store))
    before = checkpoint_state(run_id, checkpoints[idx - 1]["checkpoint_id"], store=store) if idx > 0 else {}
    diff = state_diff_frame(before, after)
    st.markdown(f"**What checkpoint #{idx} changed** (against #{idx - 1})" if idx else "**The state it started with**")
    if diff.empty:
        st.caption("Nothing: the state is the same as at the checkpoint before.")
    else:
        st.dataframe(diff, hide_index=True, width="stretch")
    text = st.text_area(
        "State to re-run from (edit it, or leave it as it was)",
        value=pretty(after),
        key=f"{prefix}_tt_state_{run_id}_{idx}",
        height=220,
    )
    left, right = st.columns([1, 2], vertical_alignment="center")
    pausing = right.radio(
        "The re-run",
        list(FORK_PAUSES),
        key=f"{prefix}_tt_pause",
        format_func=FORK_PAUSES.get,
        horizontal=True,
    )
    if left.button(
        "Re-run from here",
        key=f"{prefix}_tt_fork",
        type="primary",
        icon=":material/fork_right:",
        disabled=not can_run,
        help="A new run (a fork) from this checkpoint; this run stays as it is.",
    ):
        try:
            patch = state_patch(text, after)
        except ValidationError as exc:
            show_error(exc.to_dict(), title="Nothing was sent")
            return None
        try:
            return start_fork(
                run_id, cp["checkpoint_id"], patch or None, store=store, document=document, **fork_pauses(pausing)
            )
        except AgentFlowError as exc:
            show_error(error_dict(exc), title="Could not fork")
    return None


#: How a re-run from a checkpoint pauses.
FORK_PAUSES = {
    "end": "runs to the end",
    "same": "pauses at this run's breakpoints",
    "step": "pauses before every node",
}


def fork_pauses(choice: str) -> dict[str, Any]:
    """``stream_fork``'s keyword arguments for a :data:`FORK_PAUSES` choice (the runtime
    keeps the original run's breakpoints unless told otherwise)."""
    if choice == "same":
        return {}
    return {"breakpoints": [], "break_after": [], "step": choice == "step"}


# -- a fork and its parent -----------------------------------------------------------------------


def fork_comparison(run: Mapping[str, Any], store: Any) -> None:
    """A fork next to its parent, node by node, with the fork's deltas highlighted."""
    origin = forked_from(run)
    if origin is None:
        return
    try:
        parent = store.get_run(origin["run_id"])
    except NotFoundError:
        st.caption(f"Forked from run `{origin['run_id']}`, which is no longer in the store.")
        return
    st.subheader(":material/fork_right: Fork vs parent")
    st.caption(
        f"Forked from run `{origin['run_id']}` at checkpoint `{origin.get('checkpoint_id')}`. Grey rows were "
        "copied from the parent (not run again); yellow outputs differ; red deltas: the fork was slower or "
        "dearer, green: faster or cheaper."
    )
    st.dataframe(fork_compare_totals(parent, run), width="stretch")
    frame = fork_compare_frame(parent, run)
    st.dataframe(
        fork_compare_styler(frame),
        hide_index=True,
        width="stretch",
        column_config={
            "inherited": st.column_config.CheckboxColumn("inherited"),
            "same output": st.column_config.CheckboxColumn("same output"),
            "Δ latency (ms)": st.column_config.NumberColumn("Δ latency (ms)", format="%+.1f"),
            "Δ tokens": st.column_config.NumberColumn("Δ tokens", format="%+d"),
            "Δ cost (USD)": st.column_config.NumberColumn("Δ cost (USD)", format="%+.6f"),
            "cost parent (USD)": st.column_config.NumberColumn("cost parent (USD)", format="%.6f"),
            "cost fork (USD)": st.column_config.NumberColumn("cost fork (USD)", format="%.6f"),
        },
    )
