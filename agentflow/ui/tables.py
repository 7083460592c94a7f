"""Traces as tables and charts: the trace DataFrame, the latency timeline, run comparison.

Plain functions of a run's trace (spec section 8) and final state, so they are tested
without a browser and give the Run and Runs pages the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from agentflow.ui.theme import NODE_STYLES, STATUS_COLORS, node_style

TRACE_COLUMNS = [
    "node",
    "type",
    "status",
    "start_ms",
    "latency_ms",
    "tokens",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "queue_wait_ms",
    "attempts",
    "source",
    "queue",
    "error",
]


def _time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return None


def _offsets(trace: Sequence[Mapping[str, Any]]) -> list[float]:
    """Start of each entry in ms from the run's first start (``offset_ms`` when present)."""
    if all(isinstance(e.get("offset_ms"), (int, float)) for e in trace):
        return [float(e["offset_ms"]) for e in trace]
    starts = [_time(e.get("started_at")) for e in trace]
    known = [s for s in starts if s is not None]
    first = min(known) if known else 0.0
    return [(s - first) if s is not None else 0.0 for s in starts]


def trace_frame(trace: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per node execution, in start order."""
    offsets = _offsets(trace)
    rows = []
    for entry, start in zip(trace, offsets, strict=True):
        tokens = entry.get("tokens") or {}
        error = entry.get("error")
        rows.append(
            {
                "node": entry.get("node"),
                "type": entry.get("type"),
                "status": entry.get("status"),
                "start_ms": round(start, 1),
                "latency_ms": entry.get("latency_ms"),
                "tokens": int(tokens.get("total") or 0),
                "prompt_tokens": int(tokens.get("prompt") or 0),
                "completion_tokens": int(tokens.get("completion") or 0),
                "cost_usd": float(entry.get("cost_usd") or 0.0),
                "queue_wait_ms": float(entry.get("queue_wait_ms") or 0.0),
                "attempts": int(entry.get("attempts") or 0),
                "source": entry.get("source"),
                "queue": entry.get("queue"),
                "error": (error or {}).get("message") if isinstance(error, Mapping) else error,
            }
        )
    frame = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    return frame.sort_values("start_ms", kind="stable").reset_index(drop=True)


def timeline_frame(trace: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """What the Gantt chart draws: one bar per execution, from its start to its end."""
    frame = trace_frame(trace)
    frame["latency_ms"] = frame["latency_ms"].fillna(0.0).astype(float)
    frame["end_ms"] = frame["start_ms"] + frame["latency_ms"]
    # Repeated executions of a node (loops) get their own row label: "refine #2"; a debugged
    # run's pauses (type "pause") are rows of their own: "pause · agg".
    counts: dict[str, int] = {}
    labels = []
    for node, kind in zip(frame["node"], frame["type"], strict=True):
        name = f"pause · {node}" if kind == "pause" else node
        counts[name] = counts.get(name, 0) + 1
        labels.append(name if counts[name] == 1 else f"{name} #{counts[name]}")
    frame["row"] = labels
    return frame


def type_scale() -> tuple[list[str], list[str]]:
    """Domain and colours of node types, shared with the graph legend."""
    domain = list(NODE_STYLES)
    return domain, [node_style(t).color for t in domain]


def timeline_chart(trace: Sequence[Mapping[str, Any]], *, failed_nodes: Sequence[str] = ()):
    """A Gantt-style Altair chart: a bar per node execution on a shared time axis, so
    branches that ran in parallel overlap. Coloured by node type; failures outlined red."""
    import altair as alt

    frame = timeline_frame(trace)
    if frame.empty:
        return None
    domain, colors = type_scale()
    extra = [t for t in frame["type"].dropna().unique() if t not in domain]
    domain += extra
    colors += [node_style(t).color for t in extra]
    frame["failed"] = frame["status"].eq("failed") | frame["node"].isin(list(failed_nodes))
    height = max(80, 28 * len(frame))
    base = alt.Chart(frame).encode(
        y=alt.Y("row:N", sort=list(frame["row"]), title=None),
        tooltip=[
            alt.Tooltip("node:N"),
            alt.Tooltip("type:N"),
            alt.Tooltip("status:N"),
            alt.Tooltip("start_ms:Q", title="start (ms)", format=".1f"),
            alt.Tooltip("latency_ms:Q", title="latency (ms)", format=".1f"),
            alt.Tooltip("queue_wait_ms:Q", title="queue wait (ms)", format=".1f"),
            alt.Tooltip("attempts:Q"),
            alt.Tooltip("tokens:Q"),
        ],
    )
    bars = base.mark_bar(cornerRadius=3, height=18).encode(
        x=alt.X("start_ms:Q", title="time since the run started (ms)"),
        x2="end_ms:Q",
        color=alt.Color("type:N", scale=alt.Scale(domain=domain, range=colors), legend=alt.Legend(title="node type")),
        stroke=alt.condition("datum.failed", alt.value(STATUS_COLORS["failed"]), alt.value(None)),
        strokeWidth=alt.condition("datum.failed", alt.value(3), alt.value(0)),
    )
    labels = base.mark_text(align="left", dx=4, fontSize=11, color="#334155").encode(
        x="end_ms:Q", text=alt.Text("latency_ms:Q", format=".0f")
    )
    return (bars + labels).properties(height=height)


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
        if len(text) > 200 and (text.startswith("iVBOR") or text.startswith("/9j/")):
            return f"<image, {len(text) * 3 // 4 // 1024} KiB>"
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def node_outputs(trace: Sequence[Mapping[str, Any]], final: Mapping[str, Any] | None) -> dict[str, str]:
    """A short text of what each node wrote (read from the final state)."""
    final = final or {}
    out: dict[str, str] = {}
    for entry in trace:
        writes = entry.get("writes") or []
        if writes:
            out[str(entry.get("node"))] = "; ".join(_short(final.get(k)) for k in writes)
        elif entry.get("error"):
            out[str(entry.get("node"))] = "error: " + _short((entry["error"] or {}).get("message"))
    return out


def _per_node(trace: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    agg: dict[str, dict[str, Any]] = {}
    for entry in trace:
        if entry.get("type") == "pause":  # a debugged run's wait at a breakpoint, not a node run
            continue
        node = str(entry.get("node"))
        row = agg.setdefault(node, {"latency_ms": 0.0, "tokens": 0, "runs": 0, "status": None, "cost_usd": 0.0})
        row["latency_ms"] += float(entry.get("latency_ms") or 0.0)
        row["tokens"] += int((entry.get("tokens") or {}).get("total") or 0)
        row["cost_usd"] += float(entry.get("cost_usd") or 0.0)
        row["runs"] += 1
        row["status"] = entry.get("status")
    return agg


def compare_frame(a: Mapping[str, Any], b: Mapping[str, Any]) -> pd.DataFrame:
    """Two stored runs (``Store.get_run``) side by side, per node: latency, tokens, output.

    Nodes that ran in only one of them show blanks on the other side; a loop's executions
    are summed (``runs`` says how many).
    """
    ta, tb = list(a.get("trace") or []), list(b.get("trace") or [])
    pa, pb = _per_node(ta), _per_node(tb)
    oa, ob = node_outputs(ta, a.get("final_state")), node_outputs(tb, b.get("final_state"))
    order = list(dict.fromkeys([*pa, *pb]))
    rows = []
    for node in order:
        ra, rb = pa.get(node), pb.get(node)
        la = round(ra["latency_ms"], 1) if ra else None
        lb = round(rb["latency_ms"], 1) if rb else None
        rows.append(
            {
                "node": node,
                "status A": ra["status"] if ra else "—",
                "status B": rb["status"] if rb else "—",
                "latency A (ms)": la,
                "latency B (ms)": lb,
                "Δ latency (ms)": round(lb - la, 1) if la is not None and lb is not None else None,
                "tokens A": ra["tokens"] if ra else None,
                "tokens B": rb["tokens"] if rb else None,
                "output A": oa.get(node, ""),
                "output B": ob.get(node, ""),
                "same output": oa.get(node) == ob.get(node) if ra and rb else False,
            }
        )
    return pd.DataFrame(rows)


def compare_totals(a: Mapping[str, Any], b: Mapping[str, Any]) -> pd.DataFrame:
    """Run-level figures of two runs, one column each."""

    def col(r: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "workflow": r.get("workflow_id"),
            "version": r.get("workflow_version"),
            "status": r.get("status"),
            "user": r.get("user"),
            "started": r.get("started_at"),
            "total ms": r.get("total_runtime_ms"),
            "tokens": (r.get("tokens") or {}).get("total"),
            "cost (USD)": r.get("cost_usd"),
        }

    return pd.DataFrame({"A": col(a), "B": col(b)}).astype(str)


def runs_frame(runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The Runs page's history table from run summaries (``Store.list_runs``)."""
    rows = [
        {
            "started": r.get("started_at"),
            "workflow": r.get("workflow_id"),
            "version": r.get("workflow_version"),
            "status": r.get("status"),
            "user": r.get("user"),
            "total ms": r.get("total_runtime_ms"),
            "tokens": (r.get("tokens") or {}).get("total"),
            "cost (USD)": r.get("cost_usd"),
            "error": ((r.get("error") or {}).get("message") if isinstance(r.get("error"), Mapping) else None),
            "run_id": r.get("run_id"),
        }
        for r in runs
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "started",
            "workflow",
            "version",
            "status",
            "user",
            "total ms",
            "tokens",
            "cost (USD)",
            "error",
            "run_id",
        ],
    )
