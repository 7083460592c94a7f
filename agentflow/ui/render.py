"""Streamlit pieces the pages share: errors in the spec's shape, run steps, results, the
trace table and timeline, the graph component, node details.

Each function draws one thing from plain data (a RunView, a trace, a document), so the
Run and Runs pages show a run the same way and the Graph and Run pages the same graph.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from agentflow.ui.debugview import pause_text
from agentflow.ui.graph import graph_model, legend_html, node_details, to_agraph
from agentflow.ui.runview import RunView, StepView
from agentflow.ui.tables import timeline_chart, trace_frame
from agentflow.ui.theme import STATUS_COLORS, node_style, status_icon

# -- errors (spec section 9) ---------------------------------------------------------------


def error_dict(exc: Any) -> dict[str, Any]:
    """The section 9 shape of an exception (AgentFlowError or not)."""
    if hasattr(exc, "to_dict"):
        return exc.to_dict()
    from agentflow.errors import InternalServerError

    return InternalServerError(f"internal error: {type(exc).__name__}").to_dict()


def show_error(error: Mapping[str, Any], *, node: str | None = None, title: str | None = None) -> None:
    """An error as ``error_type``, ``message`` and folded ``details``; problems with a path
    (validation) listed one per line."""
    error_type = error.get("error_type") or "Error"
    where = f" in node **{node}**" if node else ""
    head = f"{title}: " if title else ""
    st.error(f"{head}**{error_type}**{where}: {error.get('message', '')}", icon=":material/error:")
    details = error.get("details")
    if isinstance(details, Mapping) and details.get("errors"):
        show_problems(details.get("errors") or [], details.get("warnings") or [])
        details = {k: v for k, v in details.items() if k not in ("errors", "warnings")}
    if isinstance(details, Mapping):
        details = {k: v for k, v in details.items() if k != "trace"}  # the trace is shown below
    if details:
        with st.expander("Error details", expanded=False):
            if isinstance(details, (Mapping, list)):
                st.json(details, expanded=True)
            else:
                st.code(str(details), language=None)


def problem_text(p: Mapping[str, Any]) -> str:
    where = f" (line {p['line']}, column {p.get('column', 1)})" if p.get("line") else ""
    return f"`{p.get('path') or '$'}`{where}: {p.get('message', '')}"


def show_problems(errors: Sequence[Mapping[str, Any]], warnings: Sequence[Mapping[str, Any]] = ()) -> None:
    """Validation findings, each with its JSON path (and line when known)."""
    for p in errors:
        st.markdown(f":red[:material/error:] {problem_text(p)}")
    for p in warnings:
        st.markdown(f":orange[:material/warning:] {problem_text(p)}")


# -- values ----------------------------------------------------------------------------------


def image_bytes(value: Any) -> bytes | None:
    """The bytes of a base64 PNG/JPEG/GIF/WEBP (with or without a ``data:`` prefix), else None."""
    if not isinstance(value, str) or len(value) < 64:
        return None
    text = value.split(",", 1)[1] if value.startswith("data:image/") else value
    if not text.startswith(("iVBOR", "/9j/", "R0lGOD", "UklGR")):
        return None
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and " " not in value


def is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, Mapping) for r in value)


def is_api_response(value: Any) -> bool:
    return isinstance(value, Mapping) and "status" in value and "body" in value


def show_value(value: Any, *, key: str | None = None, image_hint: bool = False) -> None:
    """A result drawn by what it is: image, table of rows, folded API response, JSON, text."""
    if value is None:
        st.caption("(nothing)")
        return
    data = image_bytes(value)
    if data is not None:
        st.image(data, caption=key, width=360)
        return
    if image_hint and is_url(value):
        st.image(value, caption=key, width=360)
        return
    if is_rows(value):
        st.dataframe(value, hide_index=True, width="stretch")
        st.caption(f"{len(value)} row{'s' if len(value) != 1 else ''}")
        return
    if isinstance(value, list) and not value:
        st.caption("no rows")
        return
    if is_api_response(value):
        with st.expander(f"HTTP {value.get('status')} response", expanded=False, icon=":material/public:"):
            st.json(value.get("body"), expanded=1)
            if value.get("headers"):
                st.caption("Headers")
                st.json(value.get("headers"), expanded=False)
        return
    if isinstance(value, Mapping):
        _show_record(value)
        return
    if isinstance(value, list):
        st.json(value, expanded=1)
        return
    st.markdown(str(value))


def _show_record(record: Mapping[str, Any]) -> None:
    """A dict of results (an aggregator's output): each field by what it holds."""
    shown = False
    for name, value in record.items():
        if value in (None, "", [], {}):
            continue
        shown = True
        st.markdown(f"**{name}**")
        show_value(value, key=str(name), image_hint=name in ("image", "image_result"))
    if not shown:
        st.caption("(every field is empty)")


# -- run steps -------------------------------------------------------------------------------


def step_header(step: StepView) -> str:
    style = node_style(step.type)
    t = step.trace
    bits = [f"{status_icon(step.status)} {style.icon} **{step.node}**", f"`{step.type}`"]
    if step.latency_ms is not None:
        bits.append(f"{step.latency_ms:.0f} ms" if step.latency_ms >= 10 else f"{step.latency_ms:.1f} ms")
    tokens = (t.get("tokens") or {}).get("total")
    if tokens:
        bits.append(f"{tokens} tokens")
    if (t.get("attempts") or 0) > 1:
        bits.append(f"{t['attempts']} attempts")
    if t.get("queue_wait_ms"):
        bits.append(f"waited {t['queue_wait_ms']:.0f} ms in queue {t.get('queue')}")
    if t.get("inherited"):
        bits.append(":gray[inherited from the parent run]")
    if step.status in ("running", "retrying"):
        bits.append(f"_{step.status}…_")
    return " · ".join(bits)


def show_step(step: StepView, *, highlight: bool = False) -> None:
    """One node execution: header, streamed text or result, retries, error (a pause of a
    debugged run: one line saying where it stopped and what the user changed)."""
    if step.type == "pause":
        st.markdown(f"{status_icon(step.status)} {pause_text({**step.trace, 'status': step.status})}")
        return
    with st.container(border=True):
        st.markdown(step_header(step))
        for r in step.retries:
            err = r.get("error") or {}
            delay = float(r.get("delay_s") or 0)
            st.caption(
                f":material/autorenew: attempt {r.get('attempt')} failed ({err.get('message', '')}); "
                f"retrying in {delay:.1f} s"
            )
        update = step.update or {}
        if step.type == "llm" and (step.text or update):
            text = step.text or next((v for v in update.values() if isinstance(v, str)), "")
            st.markdown(text + (" ▌" if step.status in ("running", "retrying") else ""))
        elif step.type == "router" and update:
            intent = next(iter(update.values()), None)
            st.markdown(f":material/arrow_forward: intent **{intent}**")
        elif step.type == "input":
            st.caption("input received")
        elif update:
            for key, value in update.items():
                if key == "errors":
                    continue
                show_value(value, key=key, image_hint=step.type == "image")
        elif step.text:
            st.markdown(step.text)
        if step.error:
            if highlight:
                show_error(step.error, node=step.node)
            else:
                st.warning(f"{step.error.get('error_type')}: {step.error.get('message')}", icon=":material/warning:")


def show_steps(view: RunView) -> None:
    if not view.steps:
        st.caption("Waiting for the first node…" if not view.done else "No node ran.")
    failed = set(view.failed_nodes)
    for step in view.steps:
        show_step(step, highlight=step.node in failed)


def show_totals(view: RunView) -> None:
    t = view.totals()
    cols = st.columns(5)
    cols[0].metric("Status", t["status"])
    ms = t["total_runtime_ms"]
    cols[1].metric("Total time", f"{ms:.0f} ms" if ms is not None else "…")
    cols[2].metric("Nodes run", t["nodes"])
    cols[3].metric("Tokens", t["tokens"])
    cols[4].metric("Cost", f"${t['cost_usd']:.6f}")


def show_final(view: RunView) -> None:
    """The run's output (``final_output`` or its last result)."""
    output = view.final_output()
    if output is None:
        st.caption("This run produced no output.")
        return
    show_value(output, key="final_output")


def show_trace(view: RunView) -> None:
    """The trace table (pandas) and the latency timeline (Altair Gantt)."""
    trace = view.trace
    if not trace:
        st.caption("No trace: no node ran.")
        return
    frame = trace_frame(trace)
    failed = set(view.failed_nodes)

    def mark(row: Any) -> list[str]:
        bad = row["status"] == "failed" or row["node"] in failed
        return ["background-color: #fee2e2" if bad else ""] * len(row)

    st.dataframe(
        frame.style.apply(mark, axis=1),
        hide_index=True,
        width="stretch",
        column_config={
            "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.1f"),
            "start_ms": st.column_config.NumberColumn("start (ms)", format="%.1f"),
            "queue_wait_ms": st.column_config.NumberColumn("queue wait (ms)", format="%.1f"),
            "cost_usd": st.column_config.NumberColumn("cost (USD)", format="%.6f"),
        },
    )
    chart = timeline_chart(trace, failed_nodes=list(failed))
    if chart is not None:
        st.markdown("**Timeline** (bars that overlap ran in parallel)")
        st.altair_chart(chart, width="stretch")


def show_run(view: RunView, document: Mapping[str, Any] | None = None, *, graph_height: int = 300) -> None:
    """A finished (or stored) run: totals, error, output, steps, graph, trace and timeline."""
    show_totals(view)
    if view.error:
        failed = view.failed_nodes
        show_error(
            view.error, node=failed[0] if failed else None, title="The run failed" if view.status == "failed" else None
        )
    if view.record_error:
        st.warning(view.record_error)
    if view.status == "interrupted" and view.interrupt:
        st.info(f":material/pause_circle: Paused before node **{view.interrupt.get('node')}**.")
    if document is not None:
        draw_graph(document, view=view, height=graph_height)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Steps")
        show_steps(view)
    with right:
        st.subheader("Output")
        show_final(view)
    st.subheader("Trace")
    show_trace(view)


# -- graph -----------------------------------------------------------------------------------


def draw_graph(
    document: Mapping[str, Any],
    *,
    view: RunView | None = None,
    selected: str | None = None,
    height: int = 520,
    legend: bool = True,
    break_before: Sequence[str] = (),
    break_after: Sequence[str] = (),
) -> str | None:
    """The workflow drawn with streamlit-agraph (coloured by status when a run is given,
    breakpoints outlined red); returns the id of a node the user clicked."""
    from streamlit_agraph import agraph

    statuses = view.node_statuses() if view is not None else None
    model = graph_model(
        document,
        statuses,
        selected=selected,
        run_finished=bool(view and view.done),
        break_before=break_before,
        break_after=break_after,
    )
    if not model.nodes:
        st.info("Nothing to draw yet: add nodes to the workflow.", icon=":material/account_tree:")
        return None
    nodes, edges, config = to_agraph(model, height=height)
    if legend:
        shown = sorted({n.get("status") for n in model.nodes if n.get("status")}, key=list(STATUS_COLORS).index)
        st.markdown(legend_html(model.types, statuses=shown), unsafe_allow_html=True)
    clicked = agraph(nodes=nodes, edges=edges, config=config)
    return clicked if isinstance(clicked, str) and clicked in {n["id"] for n in model.nodes} else None


def show_node_details(document: Mapping[str, Any], node_id: str, *, view: RunView | None = None) -> None:
    """The selected node: what it does, its config, its source and queue, its last run."""
    try:
        info = node_details(document, node_id)
    except KeyError:
        st.caption("Click a node to see its configuration.")
        return
    node = info["node"]
    style = node_style(node.get("type"))
    st.markdown(f"### {style.icon} {node_id}")
    st.caption(f"`{node.get('type')}` · {info['summary']}" if info["summary"] else f"`{node.get('type')}`")
    if view is not None:
        st_ = view.node_statuses().get(node_id)
        if st_ is not None:
            lat = f" in {st_.latency_ms:.1f} ms" if st_.latency_ms is not None else ""
            st.markdown(
                f"Last run: {status_icon(st_.status)} **{st_.status}**{lat}"
                + (f" ({st_.runs} times)" if st_.runs > 1 else "")
            )
            if st_.error:
                st.error(st_.error)
    st.markdown("**Config**")
    st.json(node.get("config") or {}, expanded=True)
    extras = {k: v for k, v in node.items() if k not in ("id", "type", "config", "source", "queue")}
    if extras:
        st.json(extras, expanded=True)
    if info["source"] is not None:
        src = info["source"]
        if src.get("registered"):
            st.markdown(f"**Source** `{src['id']}` (registered on the Sources page)")
        else:
            st.markdown(f"**Source** `{src.get('id')}`: {src.get('kind')} / {src.get('provider')}")
            st.json(src.get("config") or {}, expanded=False)
    if info["queue"] is not None:
        q = info["queue"]
        label = " (registered on the Queues page)" if q.get("registered") else ""
        st.markdown(
            f"**Queue** `{q.get('id')}`{label}"
            + (f", subqueue `{node.get('subqueue')}`" if node.get("subqueue") else "")
        )
        if not q.get("registered"):
            st.json({k: v for k, v in q.items() if k != "id"}, expanded=False)
    if info["intents"]:
        st.markdown("**Intents** " + ", ".join(f"`{i}`" for i in info["intents"]))
    if info["edges_out"]:
        st.markdown(
            "**Next** "
            + ", ".join(f"`{e['to']}`" + (f" when `{e['when']}`" if e.get("when") else "") for e in info["edges_out"])
        )
