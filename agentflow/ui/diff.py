"""Differences between two versions of a workflow: a line diff and a list of changes.

The line diff compares both documents pretty-printed the same way, so formatting alone
never shows as a change; the change list names what a person thinks in (node "answer"
changed, edge router -> draw added).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any


def pretty(document: Any) -> str:
    """The canonical text of a document (2-space indent, keys in document order)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return document
    return json.dumps(document, indent=2, ensure_ascii=False)


def unified_diff(old: Any, new: Any, *, old_label: str = "old", new_label: str = "new", context: int = 3) -> str:
    """A unified diff of the two documents' canonical texts ("" when they are equal)."""
    lines = difflib.unified_diff(
        pretty(old).splitlines(),
        pretty(new).splitlines(),
        fromfile=old_label,
        tofile=new_label,
        lineterm="",
        n=context,
    )
    return "\n".join(lines)


def _by_id(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    items = doc.get(key) if isinstance(doc, Mapping) else None
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            out.setdefault(item["id"], item)
    return out


def _edges(doc: Mapping[str, Any]) -> dict[str, Any]:
    items = doc.get("edges") if isinstance(doc, Mapping) else None
    out: dict[str, Any] = {}
    for e in items if isinstance(items, list) else []:
        if isinstance(e, Mapping):
            label = f"{e.get('from')} -> {e.get('to')}" + (f" when {e.get('when')}" if e.get("when") else "")
            out[label] = e
    return out


def changes(old: Any, new: Any) -> list[dict[str, str]]:
    """``[{"what", "id", "change"}]``: sources, queues, nodes, edges and top-level fields
    added, removed or changed between two documents."""
    old = json.loads(old) if isinstance(old, str) else old
    new = json.loads(new) if isinstance(new, str) else new
    old = old if isinstance(old, Mapping) else {}
    new = new if isinstance(new, Mapping) else {}
    out: list[dict[str, str]] = []
    for key, what in (("sources", "source"), ("queues", "queue"), ("nodes", "node")):
        a, b = _by_id(old, key), _by_id(new, key)
        for item_id in b.keys() - a.keys():
            out.append({"what": what, "id": item_id, "change": "added"})
        for item_id in a.keys() - b.keys():
            out.append({"what": what, "id": item_id, "change": "removed"})
        for item_id in a.keys() & b.keys():
            if a[item_id] != b[item_id]:
                fields = sorted(k for k in set(a[item_id]) | set(b[item_id]) if a[item_id].get(k) != b[item_id].get(k))
                out.append({"what": what, "id": item_id, "change": "changed: " + ", ".join(fields)})
    ea, eb = _edges(old), _edges(new)
    for label in eb.keys() - ea.keys():
        out.append({"what": "edge", "id": label, "change": "added"})
    for label in ea.keys() - eb.keys():
        out.append({"what": "edge", "id": label, "change": "removed"})
    for key in sorted((set(old) | set(new)) - {"sources", "queues", "nodes", "edges"}):
        if old.get(key) != new.get(key):
            out.append(
                {
                    "what": "field",
                    "id": key,
                    "change": "changed" if key in old and key in new else ("added" if key in new else "removed"),
                }
            )
    order = {"field": 0, "source": 1, "queue": 2, "node": 3, "edge": 4}
    return sorted(out, key=lambda c: (order[c["what"]], c["id"]))
