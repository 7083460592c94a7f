"""The Editor page's model: a text buffer per workflow, validation as annotations, saving
with conflict detection.

The buffer (text, the version it was loaded from, whether it changed) lives in the user's
session, so unsaved edits survive moving between pages. The code editor component is keyed
by a nonce that changes whenever the page replaces the text (load, restore, format), since
the component keeps its own copy of the text otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from agentflow.errors import ConflictError

BUFFERS_KEY = "ed_buffers"
EDITOR_KEY_PREFIX = "ed_code_"

NEW_WORKFLOW = {
    "schema_version": 1,
    "id": "my-workflow",
    "name": "My workflow",
    "description": "Echoes the question back; swap the echo source for a real model when you are ready.",
    "sources": [{"id": "echo", "kind": "llm", "provider": "echo", "config": {"latency_ms": 300}}],
    "nodes": [
        {"id": "input", "type": "input", "config": {"required": ["user_input"]}},
        {"id": "answer", "type": "llm", "source": "echo", "config": {"prompt": "{user_input}"}},
    ],
    "edges": [{"from": "input", "to": "answer"}, {"from": "answer", "to": "END"}],
}


@dataclass
class Buffer:
    """One workflow's text as the user is editing it."""

    workflow_id: str | None
    #: The version the text was loaded from (0: a workflow not saved yet); the save's base.
    base_version: int
    text: str
    #: The text as last loaded or saved (to tell whether there are unsaved changes).
    saved_text: str
    nonce: int = 0
    #: The last refused save: ``{"error", "theirs", "latest_version", "mine"}``.
    conflict: dict[str, Any] | None = None
    last_event: str | None = field(default=None, repr=False)
    #: The text handed to the editor component when it was (re)mounted.
    shown: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.shown is None:
            self.shown = self.text

    @property
    def dirty(self) -> bool:
        return self.text != self.saved_text

    @property
    def editor_key(self) -> str:
        return f"{EDITOR_KEY_PREFIX}{self.workflow_id or 'new'}_{self.nonce}"

    def replace(self, text: str, *, base_version: int | None = None, saved: bool = False) -> None:
        """Put new text in the editor (a load, restore or format)."""
        self.text = text
        self.shown = text
        if base_version is not None:
            self.base_version = base_version
        if saved:
            self.saved_text = text
        self.nonce += 1


def pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def formatted(text: str) -> str | None:
    """The text pretty-printed (keys and values untouched), or None if it is not JSON."""
    try:
        return pretty(json.loads(text))
    except json.JSONDecodeError:
        return None


def buffers(state: MutableMapping[str, Any]) -> dict[str, Buffer]:
    """The session's buffers by workflow id (``""`` for a new, unsaved workflow)."""
    if BUFFERS_KEY not in state:
        state[BUFFERS_KEY] = {}
    return state[BUFFERS_KEY]


def buffer_for(state: MutableMapping[str, Any], store: Any, workflow_id: str | None) -> Buffer:
    """The session's buffer for a workflow, loading its latest version on first use."""
    bufs = buffers(state)
    key = workflow_id or ""
    buf = bufs.get(key)
    if buf is None:
        if workflow_id:
            row = store.get_workflow(workflow_id)
            text = pretty(row["document"])
            buf = Buffer(workflow_id, int(row["version"]), text, text)
        else:
            text = pretty(NEW_WORKFLOW)
            buf = Buffer(None, 0, text, "")
        bufs[key] = buf
    return buf


def take_editor_value(buf: Buffer, response: Any) -> bool:
    """Apply what the code editor sent back; returns whether the text changed.

    The component answers ``{"id", "type", "text", ...}``; before the first edit its text is
    empty, which is not an edit.
    """
    if not isinstance(response, Mapping):
        return False
    text = response.get("text")
    event = response.get("id") or None
    if not isinstance(text, str) or (not text and not response.get("type")):
        return False
    if event is not None and event == buf.last_event:
        return False
    buf.last_event = event
    if text == buf.text:
        return False
    buf.text = text
    return True


def annotations(report: Any) -> list[dict[str, Any]]:
    """Ace annotations (0-based rows) for every error and warning that has a line."""
    out = []
    for kind, items in (("error", report.errors), ("warning", report.warnings)):
        for p in items:
            if p.get("line"):
                out.append(
                    {
                        "row": int(p["line"]) - 1,
                        "column": max(0, int(p.get("column") or 1) - 1),
                        "type": kind,
                        "text": f"{p.get('path')}: {p.get('message')}",
                    }
                )
    return out


def document_id(text: str) -> str | None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    wf_id = doc.get("id") if isinstance(doc, dict) else None
    return wf_id if isinstance(wf_id, str) else None


def save(buf: Buffer, store: Any, *, author: str | None, message: str | None) -> int:
    """Save the buffer as a new version on its base; a stale base raises ConflictError and
    keeps both texts on the buffer for the page to show."""
    doc_id = document_id(buf.text)
    base = buf.base_version
    if buf.workflow_id is not None and doc_id != buf.workflow_id:
        base = 0  # the id was changed: this is a new workflow (a copy)
    try:
        version = store.save_workflow(buf.text, author=author, message=message or None, base_version=base)
    except ConflictError as exc:
        latest = (exc.details or {}).get("latest_version") if isinstance(exc.details, dict) else None
        theirs = store.get_workflow(doc_id)["document"] if latest else None
        buf.conflict = {
            "error": exc.to_dict(),
            "latest_version": latest,
            "theirs": pretty(theirs) if theirs is not None else "",
            "mine": buf.text,
        }
        raise
    buf.conflict = None
    buf.base_version = version
    buf.saved_text = buf.text
    buf.workflow_id = doc_id
    return version


def adopt(state: MutableMapping[str, Any], buf: Buffer) -> None:
    """File a buffer under its workflow id (after a new workflow's first save)."""
    bufs = buffers(state)
    for key, value in list(bufs.items()):
        if value is buf and key != (buf.workflow_id or ""):
            del bufs[key]
    bufs[buf.workflow_id or ""] = buf


def take_theirs(buf: Buffer) -> None:
    """Resolve a conflict by loading the latest saved text (mine is still in the drafts)."""
    if buf.conflict:
        buf.replace(buf.conflict["theirs"], base_version=buf.conflict["latest_version"], saved=True)
        buf.conflict = None


def keep_mine(buf: Buffer) -> None:
    """Resolve a conflict by rebasing my text on the latest version (the next save wins)."""
    if buf.conflict:
        buf.base_version = int(buf.conflict["latest_version"] or 0)
        buf.conflict = None
