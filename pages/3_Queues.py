"""Queues: bandwidth limits and subqueue weights, with live meters of every queue in use."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from agentflow.errors import AgentFlowError  # noqa: E402
from agentflow.ui import page  # noqa: E402
from agentflow.ui.overview import (  # noqa: E402
    format_weights,
    latest_documents,
    parse_weights,
    queue_document,
    send_test_traffic,
    usage,
    usage_text,
    weight_shares,
)
from agentflow.ui.render import error_dict, show_error, show_problems  # noqa: E402
from agentflow.ui.widgets import queue_card  # noqa: E402

ctx = page.setup_page("Queues", "Bandwidth limits shared by every run that names a queue, across all sessions.")
store = ctx.store
queues = {q.id: q for q in store.list_queues()}
manager = page.get_queue_manager()

live = st.toggle("Live meters (refresh every second)", value=True, key="q_live")


@st.fragment(run_every=1.0 if live else None)
def meters() -> None:
    stats = manager.stats()
    ids = list(dict.fromkeys([*queues, *stats]))
    if not ids:
        st.info('No queue yet: define one below, then name it on a node (`"queue": "id"`).', icon=":material/traffic:")
        return
    for qid in ids:
        queue_card(qid, stats.get(qid), queues.get(qid))


meters()

if queues:
    t1, t2, _ = st.columns([2, 1, 2], vertical_alignment="bottom")
    target = t1.selectbox("Try a queue", list(queues), key="q_traffic_queue")
    if t2.button("Send 20 test calls", key="q_traffic", disabled=not ctx.can("run")):
        n = send_test_traffic(queues[target], 20)
        st.toast(f"Sent {n} test calls to {target}: watch the meters.", icon=":material/traffic:")

st.divider()
used = usage(latest_documents(store), "queue")
if queues:
    st.subheader("Registered queues")
    st.dataframe(
        [
            {
                "id": q.id,
                "msgs/s": q.max_messages_per_second,
                "requests/min": q.max_requests_per_minute,
                "tokens/min": q.tokens_per_minute,
                "subqueues": format_weights(q.subqueues) or "default",
                "on limit": q.on_limit,
                "max wait (s)": q.max_wait_s,
                "used by": usage_text(used.get(q.id, [])) or "—",
            }
            for q in queues.values()
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("Define a queue")
flash = st.session_state.pop("q_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")
edit_col, del_col = st.columns([3, 1], vertical_alignment="bottom")
editing = edit_col.selectbox("Queue", ["", *queues], key="q_edit", format_func=lambda q: q or "(a new queue)")
current = queues.get(editing)
if current is not None and del_col.button("Delete queue", key="q_delete", disabled=not ctx.can("register")):
    store.delete_queue(current.id)
    st.rerun()


def num(label: str, value, key: str, help_text: str):
    return st.number_input(
        label, value=value, min_value=0.0, step=1.0, key=key, help=help_text, placeholder="unlimited"
    )


form_key = f"q_form_{editing or 'new'}"
with st.form(form_key):
    a, b = st.columns([1, 2])
    qid = a.text_input("Id *", value=editing, key=f"{form_key}_id", disabled=current is not None)
    description = b.text_input(
        "Description", value=(current.description or "") if current else "", key=f"{form_key}_desc"
    )
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        mps = num(
            "Messages per second",
            current.max_messages_per_second if current else None,
            f"{form_key}_mps",
            "No one-second window holds more calls than this.",
        )
    with c2:
        rpm = num(
            "Requests per minute",
            current.max_requests_per_minute if current else None,
            f"{form_key}_rpm",
            "No sixty-second window holds more calls than this.",
        )
    with c3:
        tpm = num(
            "Tokens per minute",
            current.tokens_per_minute if current else None,
            f"{form_key}_tpm",
            "Each call is charged its estimated tokens, settled to the real usage.",
        )
    with c4:
        cost = num(
            "Cost per day (USD)",
            current.max_cost_usd_per_day if current else None,
            f"{form_key}_cost",
            "Calls that would pass today's budget are refused.",
        )
    d1, d2, d3 = st.columns([1, 1, 2])
    on_limit = d1.radio(
        "When the limit is reached",
        ["wait", "reject"],
        horizontal=True,
        key=f"{form_key}_on",
        index=["wait", "reject"].index(current.on_limit) if current else 0,
    )
    with d2:
        max_wait = num(
            "Longest wait (s)",
            current.max_wait_s if current else None,
            f"{form_key}_wait",
            "A caller that would wait longer is refused instead.",
        )
    weights_text = d3.text_input(
        "Subqueue weights",
        value=format_weights(current.subqueues) if current else "interactive=3, batch=1",
        key=f"{form_key}_weights",
        help="name=weight pairs: waiting callers are served in proportion to them.",
    )
    saved = st.form_submit_button(
        ":material/save: Save queue", key="q_save", type="primary", disabled=not ctx.can("register")
    )

try:
    preview = weight_shares(parse_weights(weights_text))
except ValueError:
    preview = {}
if preview:
    st.caption("When every subqueue waits, turns go: " + ", ".join(f"**{k}** {v:.0%}" for k, v in preview.items()))

if saved:
    limits = {
        "max_messages_per_second": mps,
        "max_requests_per_minute": rpm,
        "tokens_per_minute": tpm,
        "max_cost_usd_per_day": cost,
        "max_wait_s": max_wait,
    }
    doc, problems = queue_document(qid, description, limits, on_limit, weights_text)
    if problems:
        st.error("The queue has problems:")
        show_problems(problems)
    else:
        try:
            spec = store.put_queue(doc)
        except AgentFlowError as exc:
            show_error(error_dict(exc), title="Not saved")
        else:
            if manager.find(spec.id) is not None:
                manager.get(spec)  # the new limits apply to everyone sharing it from now on
            st.session_state["q_flash"] = f"Saved queue **{spec.id}**: runs that use it get the new limits now."
            st.rerun()
