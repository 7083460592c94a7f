"""Fixtures of the HTTP API tests: an app over a fresh store, clients with each role's key.

Most routes are driven in-process (``httpx.AsyncClient`` over ``ASGITransport``), so
coverage sees them; ``tests/api/servers.py`` starts real ``python -m agentflow serve``
processes for the tests that must speak HTTP to a server.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentflow.api.main import create_app
from agentflow.runtime.remote_cancel import stop_watchers
from agentflow.store import Store, open_store
from tests.conftest import EXAMPLES

PASSWORD = "correct horse battery staple"


def triage_doc(latency_ms: int = 0) -> dict[str, Any]:
    """``examples/triage.json`` with its simulated latencies set (0: as fast as it goes)."""
    doc = json.loads((EXAMPLES / "triage.json").read_text())
    for src in doc["sources"]:
        if "latency_ms" in src["config"]:
            src["config"]["latency_ms"] = latency_ms
    return doc


def slow_chain(wf_id: str = "slow-chain", latency_ms: int = 400, steps: int = 3) -> dict[str, Any]:
    """input -> s1 -> ... -> sN, each an echo llm that takes ``latency_ms``."""
    nodes: list[dict[str, Any]] = [{"id": "input", "type": "input"}]
    nodes += [
        {"id": f"s{i}", "type": "llm", "source": "slow", "config": {"prompt": "{user_input} " + str(i)}}
        for i in range(1, steps + 1)
    ]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {
        "id": wf_id,
        "sources": [{"id": "slow", "kind": "llm", "provider": "echo", "config": {"latency_ms": latency_ms}}],
        "nodes": nodes,
        "edges": edges,
    }


def failing_doc(wf_id: str = "fails") -> dict[str, Any]:
    """A workflow whose second node fails: its prompt names a key nobody writes."""
    return {
        "id": wf_id,
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "ok", "type": "llm", "source": "e", "config": {"prompt": "{user_input}", "output_key": "first"}},
            {"id": "broken", "type": "llm", "source": "e", "config": {"prompt": "{missing_key}"}},
        ],
        "edges": [{"from": "input", "to": "ok"}, {"from": "ok", "to": "broken"}],
    }


def assert_error_shape(body: Any, error_type: str | None = None) -> None:
    """Spec section 9: ``{"status": "error", "error_type", "message", "details"?}``."""
    assert isinstance(body, dict), body
    assert body["status"] == "error", body
    assert isinstance(body["error_type"], str) and isinstance(body["message"], str), body
    assert set(body) <= {"status", "error_type", "message", "details"}, body
    if error_type is not None:
        assert body["error_type"] == error_type, body
    assert "Traceback" not in json.dumps(body)


@pytest.fixture(autouse=True)
def _no_stray_watchers() -> Iterator[None]:
    """Apps start a cancel poller per store; none may outlive its test's store."""
    yield
    stop_watchers()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        yield st
    finally:
        stop_watchers()  # the app started one for this store; it must not outlive it
        st.close()


@pytest.fixture
def keys(store: Store) -> dict[str, str]:
    """An API key per role (named ``<role>-key``)."""
    return {role: store.create_token(f"{role}-key", role) for role in ("viewer", "editor", "admin")}


@pytest.fixture
def users(store: Store) -> list[str]:
    """A user per role (``<role>-user``, password :data:`PASSWORD`); argon2 makes these slow."""
    for role in ("editor", "admin"):
        store.add_user(f"{role}-user", PASSWORD, role)
    return ["editor-user", "admin-user"]


@pytest.fixture
def app(store: Store) -> Any:
    return create_app(store=store)


class Client(httpx.AsyncClient):
    """An in-process client; ``as_(role)`` gives the headers of that role's key."""

    keys: dict[str, str]

    def as_(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", **extra}


@pytest.fixture
async def client(app: Any, keys: dict[str, str]) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with Client(transport=transport, base_url="http://api.test", timeout=30) as c:
        c.keys = keys
        yield c


@pytest.fixture
def doc() -> dict[str, Any]:
    return triage_doc()


@pytest.fixture
async def saved(client: Client, doc: dict[str, Any]) -> dict[str, Any]:
    """The triage workflow saved (version 1) through the API."""
    r = await client.put(f"/api/v1/workflows/{doc['id']}", json={"document": doc}, headers=client.as_("editor"))
    assert r.status_code == 201, r.text
    return copy.deepcopy(doc)


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(event, data)]`` of a text/event-stream body (comments skipped)."""
    out = []
    for block in text.split("\n\n"):
        event, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            out.append((event or "message", json.loads(data)))
    return out
