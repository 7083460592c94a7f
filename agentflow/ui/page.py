"""What every page does first: page config, the shared store, demo seeding, the sign-in gate,
the sidebar; and the pickers several pages share (workflow, version).

Shared, thread-safe things (the store, the queue manager) come through ``st.cache_resource``;
everything about one user lives in ``st.session_state``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from agentflow.security.principal import Principal
from agentflow.ui import auth
from agentflow.ui.seed import SeedResult, seed_demo
from agentflow.ui.theme import PAGE_ICONS

ROOT = Path(__file__).resolve().parents[2]

#: The workflow the user is working on, shared by the Editor, Graph and Run pages.
FOCUS_KEY = "focus_workflow"


@st.cache_resource(show_spinner=False)
def _store_for(db_url: str) -> Any:
    from agentflow.runtime.remote_cancel import watch_cancel_requests
    from agentflow.store import default_store

    store = default_store()
    # Runs of this process can be cancelled from another process sharing the store.
    watch_cancel_requests(store)
    return store


def get_store() -> Any:
    """The workspace store ``AGENTFLOW_DB_URL`` names, shared by every session.

    Without ``AGENTFLOW_HOME`` the embedded store lives in the repository's ``.agentflow/``
    whatever the working directory, so every page (and the CLI run from the repository)
    sees the same workspace.
    """
    from agentflow.settings import get_settings

    os.environ.setdefault("AGENTFLOW_HOME", str(ROOT / ".agentflow"))

    return _store_for(get_settings().db_url)


@st.cache_resource(show_spinner="Preparing the demo workspace…")
def _seeded(db_url: str) -> SeedResult:
    return seed_demo(get_store())


def get_queue_manager() -> Any:
    """The process's queue manager (thread-safe; Redis-backed when configured)."""
    from agentflow.runtime.rate_limiter import get_queue_manager as _get

    return _get()


@dataclass
class PageContext:
    """What a page gets from :func:`setup_page`."""

    store: Any
    principal: Principal
    mode: str
    seed: SeedResult

    def can(self, action: str) -> bool:
        return self.principal.can(action)


def setup_page(title: str, caption: str | None = None) -> PageContext:
    """Configure the page, open the store, seed the demo on first start, check the session
    (the sign-in form replaces the page until it is valid), draw the sidebar and title."""
    from agentflow.settings import get_settings

    icon = PAGE_ICONS.get(title, ":material/account_tree:")
    st.set_page_config(page_title=f"{title} · AgentFlow", page_icon=icon, layout="wide")
    store = get_store()
    seed = _seeded(get_settings().db_url)
    mode = auth.auth_mode(store)
    principal = auth.require_principal(store)
    with st.sidebar:
        if mode == "open":
            st.caption(":material/lock_open: Open workbench: no users configured, listening on localhost only.")
        else:
            st.caption(f"Signed in as **{principal.name}** ({principal.role})")
            if st.button("Sign out", key="auth_signout", icon=":material/logout:"):
                auth.sign_out()
                st.rerun()
    st.title(f"{icon} {title}")
    if caption:
        st.caption(caption)
    return PageContext(store=store, principal=principal, mode=mode, seed=seed)


def workflow_names(store: Any) -> dict[str, str]:
    """Workflow id -> display name, most recently changed first."""
    return {w["id"]: (w.get("name") or w["id"]) for w in store.list_workflows(limit=500)}


def workflow_picker(
    store: Any, key: str, label: str = "Workflow", on_change: Callable[[], None] | None = None
) -> str | None:
    """A select box of saved workflows that follows (and sets) the shared focus."""
    names = workflow_names(store)
    if not names:
        return None
    ids = list(names)
    focus = st.session_state.get(FOCUS_KEY)
    if focus in ids:
        st.session_state[key] = focus
    elif st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]

    def changed() -> None:
        st.session_state[FOCUS_KEY] = st.session_state[key]
        if on_change is not None:
            on_change()

    choice = st.selectbox(
        label, ids, key=key, on_change=changed, format_func=lambda i: f"{names[i]}  ·  {i}" if names[i] != i else i
    )
    st.session_state[FOCUS_KEY] = choice
    return choice


def set_focus(workflow_id: str) -> None:
    st.session_state[FOCUS_KEY] = workflow_id


def version_picker(store: Any, workflow_id: str, key: str, label: str = "Version") -> int | None:
    """A select box of the workflow's versions, newest first (None when it has none)."""
    versions = store.list_versions(workflow_id)
    if not versions:
        return None
    numbers = [v["version"] for v in versions]
    info = {v["version"]: v for v in versions}
    if st.session_state.get(key) not in numbers:
        st.session_state[key] = numbers[0]

    def fmt(n: int) -> str:
        v = info[n]
        latest = " (latest)" if n == numbers[0] else ""
        msg = f" · {v['message']}" if v.get("message") else ""
        return f"v{n}{latest}{msg}"

    return st.selectbox(label, numbers, key=key, format_func=fmt)


def load_document(store: Any, workflow_id: str, version: int | None = None) -> dict[str, Any]:
    """A saved version's document as a dict."""
    doc = store.get_workflow(workflow_id, version)["document"]
    return json.loads(doc) if isinstance(doc, str) else dict(doc)
