"""Run: run a saved workflow in this session and watch each step as it happens."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import json  # noqa: E402

import streamlit as st  # noqa: E402

from agentflow.ui import nav, page  # noqa: E402
from agentflow.ui.render import draw_graph, show_run, show_steps  # noqa: E402
from agentflow.ui.runner import start_run  # noqa: E402
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
    st.session_state["run_handle"] = start_run(
        document, initial, store=store, user=ctx.principal.name, workflow_version=version, subqueue=subqueue.strip()
    )
    st.session_state["run_document"] = document
    st.rerun()

if handle is None:
    st.info(
        "Pick a workflow, type an input and press **Run**. The steps appear here as they happen.",
        icon=":material/touch_app:",
    )
    st.stop()

run_doc = st.session_state.get("run_document") or document


@st.fragment(run_every=0.3 if running else None)
def run_view() -> None:
    view = handle.view.snapshot()
    label = f"{view.workflow_id}" + (f" v{view.workflow_version}" if view.workflow_version else "")
    if not view.done:
        with st.status(f"Running {label}…", expanded=True, state="running"):
            draw_graph(run_doc, view=view, height=260)
            show_steps(view)
            if st.button(":material/stop_circle: Stop the run", key="run_cancel"):
                handle.cancel()
                st.toast("Stopping at the next node…", icon=":material/stop_circle:")
        return
    if running:  # it just finished: redraw the whole page (the Run button comes back)
        st.rerun()
    st.subheader(f"Run {view.run_id or ''}".strip())
    st.caption(f"{label} · input: {json.dumps(view.input, ensure_ascii=False)[:200]}")
    show_run(view, run_doc)


run_view()
