"""Run: run a saved workflow in this session and watch each step as it happens; with
breakpoints or step mode, stop, look at and edit the state, resume, step, or re-run from a
checkpoint (time travel)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import json  # noqa: E402

import streamlit as st  # noqa: E402

from agentflow.errors import NotFoundError  # noqa: E402
from agentflow.ui import debugpanel, nav, page  # noqa: E402
from agentflow.ui.debugview import was_debugged  # noqa: E402
from agentflow.ui.render import draw_graph, show_run, show_steps  # noqa: E402
from agentflow.ui.runner import RunHandle, attach_run, start_run  # noqa: E402
from agentflow.ui.seed import sample_input  # noqa: E402

ctx = page.setup_page("Run", "Runs inside this session on the shared runtime: every node appears as it starts.")
store = ctx.store

pick, ver = st.columns([3, 2], vertical_alignment="bottom")
with pick:
    wf_id = page.workflow_picker(store, "run_wf")
if wf_id is None:
    st.info("Nothing to run yet: create a workflow on the Home page or in the Editor.", icon=":material/play_arrow:")
    nav.link("Editor", "Open the editor")
    st.stop()
with ver:
    version = page.version_picker(store, wf_id, "run_version")
document = page.load_document(store, wf_id, version)
if document.get("description"):
    st.caption(document["description"])

handle = st.session_state.get("run_handle")
running = handle is not None and not handle.view.done


def keep(new: RunHandle, doc: dict | None) -> None:
    """Make ``new`` the session's run (drawn on ``doc``, else the focused workflow's latest
    version) and redraw the page around it."""
    st.session_state["run_handle"] = new
    st.session_state["run_document"] = doc
    st.rerun()


text = st.text_input(
    "Input (user_input)",
    value=sample_input(wf_id, document.get("description")),
    key=f"run_input_{wf_id}",
    placeholder="What should the workflow work on?",
)
with st.expander("Extra state (JSON) and subqueue", expanded=False):
    extra_text = st.text_area(
        "Extra initial state, as a JSON object",
        value="{}",
        key=f"run_state_{wf_id}",
        height=90,
        help='Keys besides user_input, e.g. {"topic": "owls"}.',
    )
    subqueue = st.text_input(
        "Subqueue",
        value="",
        key="run_subqueue",
        placeholder="default",
        help="Which subqueue the run's calls wait in on queues that have several.",
    )
with st.expander(":material/pause_circle: Breakpoints and step mode", expanded=False):
    breaks = debugpanel.breakpoint_inputs(document, wf_id, "run")
    st.caption(
        f"This run {breaks.describe()}. Breakpoints chosen on the Graph page show here too; a paused run "
        "is saved in the store, so it can be resumed after a reload."
    )

go, _ = st.columns([1, 4])
clicked = go.button(
    ":material/play_arrow: Run", key="run_go", type="primary", width="stretch", disabled=running or not ctx.can("run")
)
if not ctx.can("run"):
    st.caption("Your role can look at runs but not start them.")

if clicked:
    try:
        extra = json.loads(extra_text or "{}")
    except json.JSONDecodeError as exc:
        st.error(f"The extra state is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.")
        st.stop()
    if not isinstance(extra, dict):
        st.error('The extra state must be a JSON object, like {"topic": "owls"}.')
        st.stop()
    initial = {**extra, "user_input": text}
    keep(
        start_run(
            document,
            initial,
            store=store,
            user=ctx.principal.name,
            workflow_version=version,
            subqueue=subqueue.strip(),
            **breaks.run_kwargs(),
        ),
        document,
    )

with st.container():  # always one element here, so the run view below keeps its place
    picked = debugpanel.paused_runs_picker(store, prefix="run", expanded=handle is None, disabled=running)
if picked:
    record = store.get_run(picked)
    try:
        picked_doc = page.load_document(store, record["workflow_id"], record.get("workflow_version"))
    except NotFoundError:
        picked_doc = None
    page.set_focus(record["workflow_id"])
    keep(attach_run(picked, store, picked_doc), picked_doc)

if handle is None:
    st.info(
        "Pick a workflow, type an input and press **Run**. The steps appear here as they happen.",
        icon=":material/touch_app:",
    )
    st.stop()

run_doc = st.session_state.get("run_document") or document


def label_of(view) -> str:
    return f"{view.workflow_id}" + (f" v{view.workflow_version}" if view.workflow_version else "")


@st.fragment(run_every=0.3)
def live_view() -> None:
    """The run going on, redrawn a few times a second (only this part of the page)."""
    view = handle.view.snapshot()
    if view.done:  # it just ended or paused: redraw the whole page (the Run button comes back)
        st.rerun()
    with st.status(f"Running {label_of(view)}…", expanded=True, state="running"):
        draw_graph(run_doc, view=view, height=260)
        show_steps(view)
        if st.button(":material/stop_circle: Stop the run", key="run_cancel"):
            handle.cancel()
            st.toast("Stopping at the next node…", icon=":material/stop_circle:")


def finished_view() -> None:
    """The run once it ended or paused; a paused run's panel, a debugged run's checkpoints."""
    view = handle.view.snapshot()
    label = label_of(view)
    st.subheader(f"Run {view.run_id or ''}".strip())
    st.caption(f"{label} · input: {json.dumps(view.input, ensure_ascii=False)[:200]}")
    if view.status == "interrupted" and view.run_id:
        new = debugpanel.paused_panel(
            view.run_id,
            store,
            prefix="run",
            can_run=ctx.can("run"),
            can_cancel=ctx.can("cancel"),
            user=ctx.principal.name,
            document=run_doc,
        )
        if new is not None:
            keep(new, run_doc)
    show_run(view, run_doc)
    if view.run_id and was_debugged({"final_state": view.final, "trace": view.trace}):
        with st.expander(
            ":material/history: Time travel: checkpoints of this run", expanded=view.status != "interrupted"
        ):
            fork = debugpanel.time_travel(view.run_id, store, prefix="run", can_run=ctx.can("run"), document=run_doc)
        if fork is not None:
            keep(fork, run_doc)


if running:
    live_view()
else:
    finished_view()
