"""The workbench's look, in one place: one colour, shape and icon per node type and one
colour per status, shared by the graph, its legend, the run steps and the timeline chart.

Plugins' node types get a neutral style until they are listed here, so a new type never
breaks a page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeStyle:
    """How a node type is drawn (``shape`` is a vis-network shape name)."""

    color: str
    shape: str
    icon: str
    label: str


NODE_STYLES: dict[str, NodeStyle] = {
    "input": NodeStyle("#64748b", "ellipse", ":material/login:", "Input"),
    "router": NodeStyle("#f59e0b", "diamond", ":material/alt_route:", "Router"),
    "llm": NodeStyle("#6366f1", "box", ":material/chat:", "LLM"),
    "image": NodeStyle("#ec4899", "ellipse", ":material/image:", "Image"),
    "db": NodeStyle("#10b981", "database", ":material/database:", "Database"),
    "api": NodeStyle("#0ea5e9", "hexagon", ":material/public:", "HTTP API"),
    "aggregator": NodeStyle("#8b5cf6", "box", ":material/merge:", "Aggregator"),
}
DEFAULT_STYLE = NodeStyle("#94a3b8", "box", ":material/extension:", "Other")
END_STYLE = NodeStyle("#1f2937", "dot", ":material/flag:", "END")


def node_style(node_type: str | None) -> NodeStyle:
    """The style of a node type (a neutral one for types this table does not know)."""
    return NODE_STYLES.get(node_type or "", DEFAULT_STYLE)


#: Every status a node can show on the graph and in the run view. ``interrupted`` is a run
#: (or its pause step) stopped at a breakpoint; ``paused`` marks the nodes it will run next,
#: ``resumed`` a pause that is over.
STATUS_COLORS: dict[str, str] = {
    "pending": "#e5e7eb",
    "running": "#3b82f6",
    "retrying": "#f97316",
    "succeeded": "#22c55e",
    "failed": "#ef4444",
    "skipped": "#f1f5f9",
    "cancelled": "#9ca3af",
    "interrupted": "#facc15",
    "paused": "#c084fc",
    "resumed": "#ede9fe",
}

STATUS_ICONS: dict[str, str] = {
    "pending": ":gray[:material/radio_button_unchecked:]",
    "starting": ":blue[:material/hourglass_top:]",
    "running": ":blue[:material/progress_activity:]",
    "retrying": ":orange[:material/autorenew:]",
    "succeeded": ":green[:material/check_circle:]",
    "failed": ":red[:material/error:]",
    "skipped": ":gray[:material/skip_next:]",
    "cancelled": ":gray[:material/block:]",
    "interrupted": ":orange[:material/pause_circle:]",
    "paused": ":violet[:material/pause_circle:]",
    "resumed": ":violet[:material/play_circle:]",
}


def status_color(status: str | None) -> str:
    return STATUS_COLORS.get(status or "pending", STATUS_COLORS["pending"])


def status_icon(status: str | None) -> str:
    """A coloured Material icon (Streamlit markdown) for a status."""
    return STATUS_ICONS.get(status or "", ":gray[:material/circle:]")


#: Page icons (sidebar, titles, links): Material icons, which Streamlit ships, so they show
#: offline and on machines without an emoji font.
PAGE_ICONS: dict[str, str] = {
    "Home": ":material/home:",
    "Editor": ":material/edit_note:",
    "Sources": ":material/cable:",
    "Queues": ":material/traffic:",
    "Graph": ":material/account_tree:",
    "Run": ":material/play_arrow:",
    "Runs": ":material/history:",
    "Batch": ":material/playlist_play:",
}
