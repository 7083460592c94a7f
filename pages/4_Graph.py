"""Graph: the workflow drawn left to right, coloured by node type or by a run's statuses
(a paused run's next nodes as ``paused``); breakpoints chosen here carry over to the Run page."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import json  # noqa: E402

import streamlit as st  # noqa: E402

from agentflow.ui import debugpanel, editor, nav, page  # noqa: E402
from agentflow.ui.render import draw_graph, show_node_details  # noqa: E402
from agentflow.ui.runview import RunView  # noqa: E402

ctx = page.setup_page("Graph", "Click a node to see its config, source and queue. Colours follow the latest run.")
store = ctx.store

top = st.columns([3, 2, 3], vertical_alignment="bottom")
with top[0]:
    wf_id = page.workflow_picker(store, "gr_wf")
if wf_id is None:
    st.info("No workflows yet: create one on the Home page or in the Editor.", icon=":material/account_tree:")
    nav.link("Editor", "Open the editor")
    st.stop()
with top[1]:
    version = page.version_picker(store, wf_id, "gr_version")
document = page.load_document(store, wf_id, version)

buf = editor.buffers(st.session_state).get(wf_id)
if buf is not None and buf.dirty and st.toggle("Show my unsaved edits from the Editor", key="gr_draft"):
    try:
        document = json.loads(buf.text)
    except json.JSONDecodeError:
        st.warning("The unsaved text is not valid JSON yet; showing the saved version.")

# Which run colours the nodes: this session's run of the workflow (live), or a stored one.
handle = st.session_state.get("run_handle")
live_handle = handle if handle is not None and handle.view.workflow_id == wf_id else None
recent, _ = store.list_runs(workflow=wf_id, limit=10)
options = ["none"]
if live_handle is not None:
    options.append("session")
options += [r["run_id"] for r in recent if not live_handle or r["run_id"] != live_handle.view.run_id]
labels = {"none": "no run (colour by node type)", "session": "my latest run (live)"}
for r in recent:
    labels[r["run_id"]] = f"{r['status']} · {r['started_at']} · {r.get('user') or '?'}"
if st.session_state.get("gr_run") not in options:
    st.session_state["gr_run"] = options[1] if len(options) > 1 else "none"
with top[2]:
    shown_run = st.selectbox("Colour by run", options, key="gr_run", format_func=lambda o: labels.get(o, o))

running = shown_run == "session" and live_handle is not None and not live_handle.view.done

with st.expander(":material/pause_circle: Breakpoints (used when you run it on the Run page)", expanded=False):
    breaks = debugpanel.breakpoint_inputs(document, wf_id, "gr")
    st.caption(f"A run started on the Run page {breaks.describe()}. Nodes with a breakpoint have a red border.")


@st.fragment(run_every=0.5 if running else None)
def graph_view() -> None:
    view: RunView | None = None
    if shown_run == "session" and live_handle is not None:
        view = live_handle.view.snapshot()
    elif shown_run not in ("none", "session"):
        view = RunView.from_record(store.get_run(shown_run))
    n = len(document.get("nodes") or [])
    height = 520 if n < 40 else 760
    ids = [x.get("id") for x in document.get("nodes") or [] if isinstance(x, dict)]
    left, right = st.columns([3, 1.3], gap="medium")
    with left:
        if view is not None and not view.done:
            st.caption(f":material/hourglass_top: Run {view.run_id or ''} in progress: colours update live.")
        if view is not None and view.status == "interrupted":
            paused = ", ".join(f"**{n}**" for n in view.paused_nodes) or "its next node"
            st.caption(f":violet[:material/pause_circle:] Run {view.run_id or ''} is paused before {paused}.")
        clicked = draw_graph(
            document,
            view=view,
            selected=st.session_state.get("gr_node"),
            height=height,
            break_before=breaks.before if not breaks.step else [],
            break_after=breaks.after,
        )
        st.caption(f"{n} nodes · {len(document.get('edges') or [])} edges · drag to pan, scroll to zoom")
    with right:
        if clicked and clicked != st.session_state.get("gr_last_click") and clicked in ids:
            st.session_state["gr_node"] = clicked  # a click on the canvas selects the node
        st.session_state["gr_last_click"] = clicked
        if st.session_state.get("gr_node") not in ids:
            st.session_state.pop("gr_node", None)
        selected = st.selectbox("Node", ids, key="gr_node", help="Or click a node in the graph.") if ids else None
        if selected:
            show_node_details(document, selected, view=view)
    if view is not None and view.done and running:
        st.rerun()


graph_view()
