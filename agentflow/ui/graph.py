"""The graph view's model: a workflow document as nodes and edges ready for ``streamlit-agraph``.

Built from the raw document (not a validated spec), so a half-written workflow in the
editor still draws: whatever has an id and a type is a node, whatever names two of them is
an edge. Levels are computed here (longest path from the entry, loops' back edges left
out) and handed to vis-network's hierarchical layout, which then draws left to right the
same way on every load, cycles included.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentflow.ui.theme import END_STYLE, NODE_STYLES, node_style, status_color

END = "END"
#: Node id used for the END marker on the canvas (cannot clash: node ids are lowercase slugs).
END_ID = "__END__"
#: Border of a node that has a breakpoint (before or after it).
BREAK_COLOR = "#dc2626"


@dataclass(frozen=True)
class NodeStatus:
    """What a run says about one node: its status and, once it ran, its latency."""

    status: str
    latency_ms: float | None = None
    runs: int = 0
    error: str | None = None


@dataclass
class GraphModel:
    """Plain dicts in vis-network's vocabulary, plus what the legend needs."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    entry: str | None = None

    def node(self, node_id: str) -> dict[str, Any]:
        for n in self.nodes:
            if n["id"] == node_id:
                return n
        raise KeyError(node_id)


def _items(doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = doc.get(key) if isinstance(doc, Mapping) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def document_nodes(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The document's nodes that have a string id (first of each id wins)."""
    seen: set[str] = set()
    out = []
    for n in _items(doc, "nodes"):
        nid = n.get("id")
        if isinstance(nid, str) and nid and nid not in seen:
            seen.add(nid)
            out.append(n)
    return out


def document_edges(doc: Mapping[str, Any], node_ids: set[str]) -> list[tuple[str, str, str | None]]:
    """``(from, to, when)`` for every edge whose ends exist (``to`` may be END)."""
    out = []
    for e in _items(doc, "edges"):
        src, dst, when = e.get("from"), e.get("to"), e.get("when")
        if src in node_ids and (dst in node_ids or dst == END):
            out.append((src, dst, when if isinstance(when, str) else None))
    return out


def entry_of(doc: Mapping[str, Any], nodes: list[dict[str, Any]]) -> str | None:
    entry = doc.get("entry") if isinstance(doc, Mapping) else None
    ids = [n["id"] for n in nodes]
    if isinstance(entry, str) and entry in ids:
        return entry
    inputs = [n["id"] for n in nodes if n.get("type") == "input"]
    if inputs:
        return inputs[0]
    return ids[0] if ids else None


def levels(entry: str | None, ids: list[str], edges: list[tuple[str, str, str | None]]) -> dict[str, int]:
    """Column of each node: the longest path to it from ``entry``, ignoring back edges.

    Nodes the entry does not reach continue in columns after their own roots, so nothing
    is left without a place.
    """
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst, _ in edges:
        if dst in succ:
            succ[src].append(dst)
    # Depth-first from the entry (then from any unvisited node) marks back edges.
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    order: list[str] = []
    roots = ([entry] if entry else []) + [i for i in ids if i != entry]
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(succ[node]):
                stack.append((node, i + 1))
                nxt = succ[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                order.append(node)
    level = dict.fromkeys(ids, 0)
    for node in reversed(order):  # topological order of the graph without back edges
        for nxt in succ[node]:
            if (node, nxt) not in back:
                level[nxt] = max(level[nxt], level[node] + 1)
    return level


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def graph_model(
    doc: Mapping[str, Any],
    statuses: Mapping[str, NodeStatus] | None = None,
    *,
    selected: str | None = None,
    run_finished: bool = False,
    break_before: Collection[str] = (),
    break_after: Collection[str] = (),
) -> GraphModel:
    """The drawable graph of ``doc``.

    Without ``statuses`` nodes are filled with their type's colour. With them (a run is
    being watched), the fill is the node's status colour and the border keeps the type's
    colour; nodes a finished run never reached show as ``skipped``, during a run as
    ``pending``. Nodes with a breakpoint get a thick red border and say where it is.
    """
    nodes = document_nodes(doc)
    ids = [n["id"] for n in nodes]
    edges = document_edges(doc, set(ids))
    entry = entry_of(doc, nodes)
    lv = levels(entry, ids, edges)
    model = GraphModel(entry=entry)
    types: list[str] = []
    for n in nodes:
        ntype = n.get("type") if isinstance(n.get("type"), str) else "?"
        if ntype not in types:
            types.append(ntype)
        style = node_style(ntype)
        label = n["id"] if ntype == n["id"] else f"{n['id']}\n{ntype}"
        color: dict[str, Any] = {
            "background": style.color,
            "border": style.color,
            "highlight": {"background": style.color, "border": "#111827"},
        }
        font = {"color": "#ffffff" if style.shape in ("box", "ellipse", "database") else "#111827", "size": 14}
        status = None
        if statuses is not None:
            st = statuses.get(n["id"])
            status = st.status if st else ("skipped" if run_finished else "pending")
            fill = status_color(status)
            color = {"background": fill, "border": style.color, "highlight": {"background": fill, "border": "#111827"}}
            font = {"color": "#111827", "size": 14}
            if st and st.latency_ms is not None:
                label += f"\n{_fmt_ms(st.latency_ms)}" + (f" ×{st.runs}" if st.runs > 1 else "")
            elif status not in (None, "pending", "skipped"):
                label += f"\n{status}"
        where = [w for w, ids_ in (("before", break_before), ("after", break_after)) if n["id"] in ids_]
        if where:
            label += "\n[pause " + " & ".join(where) + "]"
            color = {**color, "border": BREAK_COLOR, "highlight": {**color["highlight"], "border": BREAK_COLOR}}
        node: dict[str, Any] = {
            "id": n["id"],
            "label": label,
            "shape": style.shape,
            "color": color,
            "font": font,
            "level": lv.get(n["id"], 0),
            "borderWidth": 4 if n["id"] == selected or where else (3 if statuses is not None else 1),
            "size": 22,
            "type": ntype,
            "status": status,
            "breakpoint": " & ".join(where) or None,
            "margin": 10,
        }
        if statuses is not None and status == "skipped":
            node["shapeProperties"] = {"borderDashes": [5, 5]}
        model.nodes.append(node)
    if any(dst == END for _, dst, _ in edges):
        last = max(lv[s] for s, d, _ in edges if d == END)
        model.nodes.append(
            {
                "id": END_ID,
                "label": "END",
                "shape": END_STYLE.shape,
                "color": {"background": END_STYLE.color, "border": END_STYLE.color},
                "font": {"color": "#111827", "size": 14},
                "level": last + 1,
                "size": 10,
                "type": "END",
                "status": None,
                "borderWidth": 1,
            }
        )
    back = {(s, d) for s, d, _ in edges if d in lv and lv[d] <= lv[s]}
    for src, dst, when in edges:
        target = END_ID if dst == END else dst
        edge: dict[str, Any] = {"from": src, "to": target, "color": "#64748b", "width": 1.5, "arrows": "to"}
        if when is not None:
            edge["label"] = "otherwise" if when == "*" else when
            edge["dashes"] = when == "*"
            edge["font"] = {"align": "middle", "color": "#92400e", "background": "#fffbeb", "size": 12}
        if (src, dst) in back:
            edge["smooth"] = {"enabled": True, "type": "curvedCW", "roundness": 0.4}
            edge["color"] = "#f59e0b"
        if statuses is not None:
            a, b = statuses.get(src), statuses.get(dst)
            if a and a.status == "succeeded" and (dst == END or (b and b.status != "pending")):
                edge["color"] = "#16a34a"
                edge["width"] = 2.5
        model.edges.append(edge)
    model.types = types
    return model


def vis_options(*, height: int = 520, node_count: int = 0) -> dict[str, Any]:
    """vis-network options: hierarchical left to right, no physics (stable and fast)."""
    spacing = 90 if node_count < 60 else 60
    return {
        "height": f"{height}px",
        "width": "100%",
        "physics": {"enabled": False},
        "layout": {
            "randomSeed": 42,
            "hierarchical": {
                "enabled": True,
                "direction": "LR",
                "sortMethod": "directed",
                "levelSeparation": 190,
                "nodeSpacing": spacing,
                "treeSpacing": 120,
                "blockShifting": True,
                "edgeMinimization": node_count < 120,
                "parentCentralization": True,
                "shakeTowards": "roots",
            },
        },
        "groups": {},
        "edges": {"smooth": {"enabled": True, "type": "cubicBezier", "forceDirection": "horizontal", "roundness": 0.4}},
        "interaction": {"hover": True, "tooltipDelay": 150, "multiselect": False, "dragNodes": True},
    }


def to_agraph(model: GraphModel, *, height: int = 520) -> tuple[list[Any], list[Any], Any]:
    """``(nodes, edges, config)`` objects for ``streamlit_agraph.agraph``."""
    from streamlit_agraph import Config, Edge, Node

    nodes = []
    for n in model.nodes:
        skip = ("id", "label", "shape", "color", "size", "type", "status", "breakpoint")
        attrs = {k: v for k, v in n.items() if k not in skip}
        node = Node(id=n["id"], label=n["label"], shape=n["shape"], color=n["color"], size=n.get("size", 22), **attrs)
        # No hover title: the component turns titles into HTML and opens them on double
        # click; the page shows a selected node's details instead.
        node.title = ""
        nodes.append(node)
    edges = []
    for e in model.edges:
        attrs = {k: v for k, v in e.items() if k not in ("from", "to", "color")}
        edges.append(Edge(source=e["from"], target=e["to"], color=e["color"], **attrs))
    config = Config(height=height, width=750, directed=True, physics=False, hierarchical=True)
    for key, value in vis_options(height=height, node_count=len(model.nodes)).items():
        setattr(config, key, value)
    return nodes, edges, config


def legend_html(types: list[str] | None = None, *, statuses: list[str] | None = None) -> str:
    """Coloured chips naming each node type (and each status, when a run is shown)."""
    chips = []
    for t in types if types is not None else list(NODE_STYLES):
        style = node_style(t)
        chips.append(
            f'<span style="display:inline-block;margin:2px 6px 2px 0;padding:2px 10px;border-radius:12px;'
            f'background:{style.color};color:#fff;font-size:0.85em">{html.escape(t)}</span>'
        )
    for s in statuses or []:
        chips.append(
            f'<span style="display:inline-block;margin:2px 6px 2px 0;padding:2px 10px;border-radius:12px;'
            f'background:{status_color(s)};color:#111827;border:1px solid #cbd5e1;font-size:0.85em">'
            f"{html.escape(s)}</span>"
        )
    return "".join(chips)


def node_details(doc: Mapping[str, Any], node_id: str) -> dict[str, Any]:
    """What the graph page shows for a selected node: its spec, source, queue, and for a
    router the intents it can set."""
    node = next((n for n in document_nodes(doc) if n["id"] == node_id), None)
    if node is None:
        raise KeyError(node_id)
    out: dict[str, Any] = {"node": node, "source": None, "queue": None, "intents": None, "summary": ""}
    sources = {s.get("id"): s for s in _items(doc, "sources")}
    queues = {q.get("id"): q for q in _items(doc, "queues")}
    if isinstance(node.get("source"), str):
        out["source"] = sources.get(node["source"]) or {"id": node["source"], "registered": True}
    if isinstance(node.get("queue"), str):
        out["queue"] = queues.get(node["queue"]) or {"id": node["queue"], "registered": True}
    from agentflow.nodes.registry import node_class

    cls = node_class(str(node.get("type")))
    if cls is not None:
        out["summary"] = cls.summary
        if cls.is_router:
            try:
                from agentflow.spec.models import NodeSpec

                spec = NodeSpec.model_validate(node)
                impl = cls(spec, cls.Config.model_validate(spec.config))
                out["intents"] = impl.intents()  # type: ignore[attr-defined]
            except Exception:  # a half-written router: no intents to show
                out["intents"] = None
    outgoing = [{"to": e.get("to"), "when": e.get("when")} for e in _items(doc, "edges") if e.get("from") == node_id]
    out["edges_out"] = outgoing
    return out
