"""Fixtures for the workbench tests: the store of the test's AGENTFLOW_HOME, AppTest apps,
and a way to read everything a page rendered.

Pages run in open mode (no users, bound to localhost) unless a test adds a user; the
``server.address`` option is what tells open from locked, so tests set it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGES = {
    "Editor": "pages/1_Editor.py",
    "Sources": "pages/2_Sources.py",
    "Queues": "pages/3_Queues.py",
    "Graph": "pages/4_Graph.py",
    "Run": "pages/5_Run.py",
    "Runs": "pages/6_Runs.py",
    "Batch": "pages/8_Batch.py",
}
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _forget_shared_resources() -> Iterator[None]:
    """Each test's store is its own: drop the cached one and its cancel watcher afterwards."""
    yield
    import streamlit as st

    from agentflow.runtime.remote_cancel import stop_watchers

    st.cache_resource.clear()
    stop_watchers()


@pytest.fixture
def bind_address() -> Iterator[Any]:
    """Set ``server.address`` for the test (AppTest reads the live option)."""
    before = st_config.get_option("server.address")

    def set_(value: str | None) -> None:
        st_config.set_option("server.address", value)

    set_("127.0.0.1")
    yield set_
    set_(before)


@pytest.fixture
def store(agentflow_home: Path) -> Any:
    from agentflow.store import default_store

    return default_store()


@pytest.fixture
def app(bind_address, agentflow_home) -> AppTest:
    """The whole workbench (``app.py`` with its navigation), not yet run."""
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def page_app(name: str) -> AppTest:
    """One page run on its own (as ``streamlit run pages/X.py`` would)."""
    return AppTest.from_file(str(ROOT / PAGES[name]), default_timeout=TIMEOUT)


def texts(at: AppTest) -> str:
    """Every markdown, caption, alert and title text the page shows, one per line."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "success", "info", "warning", "error", "code"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [str(m.value) for m in at.metric]
    return "\n".join(parts)


def rendered_blobs(at: AppTest) -> list[bytes]:
    """The serialized proto of every element on the page (dataframes included)."""
    out: list[bytes] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "SerializeToString"):
            out.append(proto.SerializeToString())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    for df in at.dataframe:
        with contextlib.suppress(Exception):
            out.append(df.value.to_csv().encode())
    for j in at.json:
        out.append(json.dumps(j.value).encode() if not isinstance(j.value, str) else j.value.encode())
    return out


def wait_for_run(at: AppTest, timeout: float = 30.0) -> Any:
    """Rerun the page until the session's background run has ended; returns its view."""
    deadline = time.monotonic() + timeout
    handle = at.session_state["run_handle"]
    while time.monotonic() < deadline:
        if handle.done:
            break
        time.sleep(0.05)
    assert handle.done, "the run did not finish in time"
    at.run()
    return handle.view


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
