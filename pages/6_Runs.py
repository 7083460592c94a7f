"""Runs: the history, filtered; any run shown as the Run page showed it; two runs compared;
a fork compared with its parent; a debugged run's checkpoints, to re-run from one."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datetime import UTC, datetime, time, timedelta  # noqa: E402

import streamlit as st  # noqa: E402

from agentflow.errors import NotFoundError  # noqa: E402
from agentflow.store.runs import RUN_STATUSES  # noqa: E402
from agentflow.ui import debugpanel, nav, page  # noqa: E402
from agentflow.ui.debugview import forked_from, was_debugged  # noqa: E402
from agentflow.ui.render import show_final, show_run  # noqa: E402
from agentflow.ui.runner import RunHandle, attach_run  # noqa: E402
from agentflow.ui.runview import RunView  # noqa: E402
from agentflow.ui.tables import compare_frame, compare_totals, runs_frame  # noqa: E402

ctx = page.setup_page("Runs", "Every run of this workspace, newest first: open one, or compare two.")
store = ctx.store

names = page.workflow_names(store)
f1, f2, f3, f4 = st.columns([2, 1, 1, 2])
wf = f1.selectbox("Workflow", ["", *names], key="runs_wf", format_func=lambda w: w or "all workflows")
status = f2.selectbox("Status", ["", *RUN_STATUSES], key="runs_status", format_func=lambda s: s or "any status")
user = f3.text_input("User", key="runs_user", placeholder="anyone")
dates = f4.date_input("Started between", value=[], key="runs_dates", format="YYYY-MM-DD")

since = until = None
if isinstance(dates, (list, tuple)) and dates:
    since = datetime.combine(dates[0], time.min, tzinfo=UTC)
    last = dates[1] if len(dates) > 1 else dates[0]
    until = datetime.combine(last, time.min, tzinfo=UTC) + timedelta(days=1)
runs, more = store.list_runs(
    workflow=wf or None, status=status or None, user=user.strip() or None, since=since, until=until, limit=200
)

if not runs:
    st.info("No runs match. Start one on the Run page; every run is kept here.", icon=":material/history:")
    nav.link("Run", "Go to the Run page")
    st.stop()

st.dataframe(
    runs_frame(runs),
    hide_index=True,
    width="stretch",
    column_config={
        "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
        "total ms": st.column_config.NumberColumn("total ms", format="%.0f"),
        "cost (USD)": st.column_config.NumberColumn("cost (USD)", format="%.6f"),
    },
)
st.caption(
    f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    + (" (the newest 200; narrow the filters to see older ones)" if more else "")
)

labels = {r["run_id"]: f"{r['status']} · {r['workflow_id']} · {r['started_at']} · {r['run_id'][:8]}" for r in runs}
ids = list(labels)


def document_of(run: dict) -> dict | None:
    try:
        return page.load_document(store, run["workflow_id"], run.get("workflow_version"))
    except NotFoundError:
        return None


def on_run_page(handle: RunHandle, document: dict | None) -> None:
    """Follow (or pick up) a run on the Run page: the session's run becomes ``handle``."""
    st.session_state["run_handle"] = handle
    st.session_state["run_document"] = document
    if handle.view.workflow_id:
        page.set_focus(handle.view.workflow_id)
    nav.go("Run")


open_tab, compare_tab = st.tabs([":material/search: Open a run", ":material/compare_arrows: Compare two runs"])
with open_tab:
    chosen = st.selectbox("Run", ids, key="runs_open", format_func=labels.get)
    run = store.get_run(chosen)
    if run["status"] in ("running", "interrupted") and st.button(
        "Cancel this run", key="runs_cancel", icon=":material/stop_circle:", disabled=not ctx.can("cancel")
    ):
        from agentflow.runtime.remote_cancel import request_cancel

        here = request_cancel(chosen, store, by=ctx.principal.name)
        st.toast("Cancelled." if here else "Cancel requested: the process running it stops at its next node.")
        st.rerun()
    st.caption(
        f"user {run.get('user') or '?'} · workflow {run['workflow_id']} v{run.get('workflow_version') or '?'}"
        f" · input {run.get('input')}" + (f" · forked from `{forked_from(run)['run_id']}`" if forked_from(run) else "")
    )
    if run["status"] == "interrupted" and st.button(
        "Open on the Run page to inspect and resume", key="runs_pick_up", icon=":material/play_circle:"
    ):
        on_run_page(attach_run(chosen, store, document_of(run)), document_of(run))
    show_run(RunView.from_record(run), document_of(run))
    debugpanel.fork_comparison(run, store)
    if was_debugged(run):
        with st.expander(":material/history: Time travel: checkpoints of this run", expanded=False):
            fork = debugpanel.time_travel(
                chosen, store, prefix="runs", can_run=ctx.can("run"), document=document_of(run)
            )
        if fork is not None:
            on_run_page(fork, document_of(run))

with compare_tab:
    if len(ids) < 2:
        st.caption("Two runs are needed to compare.")
    else:
        a_col, b_col = st.columns(2)
        a_id = a_col.selectbox("Run A", ids, index=1, key="runs_cmp_a", format_func=labels.get)
        b_id = b_col.selectbox("Run B", ids, index=0, key="runs_cmp_b", format_func=labels.get)
        a, b = store.get_run(a_id), store.get_run(b_id)
        st.dataframe(compare_totals(a, b), width="stretch")
        frame = compare_frame(a, b)
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={
                "Δ latency (ms)": st.column_config.NumberColumn("Δ latency (ms)", format="%+.1f"),
                "same output": st.column_config.CheckboxColumn("same output"),
            },
        )
        out_a, out_b = st.columns(2)
        with out_a:
            st.markdown("**Output A**")
            show_final(RunView.from_record(a))
        with out_b:
            st.markdown("**Output B**")
            show_final(RunView.from_record(b))
