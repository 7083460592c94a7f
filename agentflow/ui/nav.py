"""The workbench's pages, in sidebar order, and moving between them.

``app.py`` builds the sidebar navigation from :data:`PAGES`; a page asks to show another one
with :func:`go` or :func:`link`, which degrade to a hint when the page runs on its own
(``streamlit run pages/4_Graph.py``) and the others are not registered.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from agentflow.ui.theme import PAGE_ICONS

ROOT = Path(__file__).resolve().parents[2]

#: (file relative to app.py, title, url path)
PAGES: list[tuple[str, str, str]] = [
    ("pages/1_Editor.py", "Editor", "editor"),
    ("pages/2_Sources.py", "Sources", "sources"),
    ("pages/3_Queues.py", "Queues", "queues"),
    ("pages/4_Graph.py", "Graph", "graph"),
    ("pages/5_Run.py", "Run", "run"),
    ("pages/6_Runs.py", "Runs", "runs"),
    ("pages/8_Batch.py", "Batch", "batch"),
]
_BY_TITLE = {title: path for path, title, _ in PAGES}


def navigation_pages(home) -> list:
    """``st.Page`` objects: the home page (a function of app.py) and every page file."""
    pages = [st.Page(home, title="Home", icon=PAGE_ICONS["Home"], default=True)]
    for path, title, url in PAGES:
        pages.append(st.Page(str(ROOT / path), title=title, icon=PAGE_ICONS[title], url_path=url))
    return pages


def go(title: str) -> None:
    """Switch to the page titled ``title`` (or say where to find it)."""
    try:
        st.switch_page(_BY_TITLE[title])
    except StreamlitAPIException:
        st.info(f"Open the {PAGE_ICONS.get(title, '')} {title} page from the sidebar.")


def link(title: str, label: str | None = None) -> None:
    """A link to the page titled ``title``."""
    icon = PAGE_ICONS.get(title)
    try:
        st.page_link(_BY_TITLE[title], label=label or title, icon=icon)
    except (StreamlitAPIException, KeyError):
        st.caption(f"{icon} {label or title}: open it from the sidebar.")
