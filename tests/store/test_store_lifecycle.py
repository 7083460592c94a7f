"""Opening, migrating, crashing, checkpointing and closing: both backends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from agentflow.errors import InternalServerError, ValidationError
from agentflow.runtime.workspace import default_workspace
from agentflow.store import Store, close_default_stores, default_store, migrations, open_store

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_are_recorded_and_idempotent(store: Store, store_url: str) -> None:
    store.save_workflow({"id": "kept", "nodes": [], "edges": []}, author=None)
    store.close()
    for _ in range(2):
        with open_store(store_url) as again:
            with again._read() as tx:
                rows = tx.all("SELECT version, description FROM af_schema_version ORDER BY version")
            assert [r["version"] for r in rows] == [n for n, _, _ in type(again).migrations]
            assert again.get_workflow("kept")["version"] == 1


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    opened: list[Store] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            opened.append(open_store(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(opened) == 4
        with opened[0]._read() as tx:
            assert len(tx.all("SELECT version FROM af_schema_version")) == len(migrations.SQLITE)
    finally:
        for s in opened:
            s.close()


def test_a_newer_schema_is_refused(store: Store, store_url: str) -> None:
    with store._write() as tx:
        tx.run(
            "INSERT INTO af_schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (999, "from the future", "2099-01-01T00:00:00Z"),
        )
    with pytest.raises(InternalServerError, match="upgrade AgentFlow"):
        open_store(store_url)


SAVER = """
import sys
from agentflow.store import open_store
store = open_store(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    i += 1
    store.save_workflow({"id": "loop", "seq": i, "nodes": [], "edges": [], "pad": "x" * 50000},
                        author="loop")
"""


def test_a_process_killed_mid_save_leaves_complete_versions(store: Store, store_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, store_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while store._latest_version("loop") < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.13)  # land somewhere inside a save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    store.close()

    with open_store(store_url) as again:
        versions = [v["version"] for v in again.list_versions("loop")]
        assert len(versions) >= 20
        assert versions == list(range(len(versions), 0, -1))  # numbered without gaps
        for n in (1, len(versions) // 2, len(versions)):
            document = again.get_workflow("loop", n)["document"]
            assert document["seq"] == n and len(document["pad"]) == 50000
        assert again.get_workflow("loop")["version"] == len(versions)
        assert again.save_workflow({"id": "loop", "nodes": [], "edges": []}, author=None) == len(
            versions
        ) + 1


class Count(TypedDict):
    n: int


def _graph(checkpointer):
    builder = StateGraph(Count)
    builder.add_node("inc", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "inc")
    builder.add_edge("inc", END)
    return builder.compile(checkpointer=checkpointer, interrupt_before=None)


def test_checkpointer_runs_a_graph_and_survives_reopen(store: Store, store_url: str) -> None:
    saver = store.checkpointer()
    assert store.checkpointer() is saver  # one per store
    graph = _graph(saver)
    cfg = {"configurable": {"thread_id": "t1"}}
    assert graph.invoke({"n": 1}, cfg) == {"n": 2}
    assert graph.get_state(cfg).values == {"n": 2}
    assert len(list(graph.get_state_history(cfg))) >= 2
    store.close()
    with open_store(store_url) as again:
        assert _graph(again.checkpointer()).get_state(cfg).values == {"n": 2}


def test_checkpointer_is_safe_from_many_threads(store: Store) -> None:
    graph = _graph(store.checkpointer())
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                cfg = {"configurable": {"thread_id": f"t{i}-{j}"}}
                assert graph.invoke({"n": i}, cfg) == {"n": i + 1}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_async_checkpointer(store: Store) -> None:
    async def main() -> tuple[dict, dict]:
        async with store.acheckpointer() as saver:
            graph = _graph(saver)
            cfg = {"configurable": {"thread_id": "async-1"}}
            out = await graph.ainvoke({"n": 5}, cfg)
            return out, (await graph.aget_state(cfg)).values

    assert asyncio.run(main()) == ({"n": 6}, {"n": 6})
    # the same checkpoints are visible to the synchronous saver
    state = _graph(store.checkpointer()).get_state({"configurable": {"thread_id": "async-1"}})
    assert state.values == {"n": 6}


def test_ping_and_close(store: Store) -> None:
    assert store.ping() is True
    store.close()
    assert store.ping() is False
    with pytest.raises(InternalServerError, match="closed"):
        store.list_workflows()


def test_default_store_follows_the_environment(
    store_url: str, agentflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOW_DB_URL", store_url)
    try:
        first = default_store()
        assert default_store() is first
        assert default_workspace() is first
        results: list[Store] = []
        threads = [threading.Thread(target=lambda: results.append(default_store())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert all(s is first for s in results)
        monkeypatch.delenv("AGENTFLOW_DB_URL")
        other = default_store()
        assert other is not first and other.backend == "sqlite"
        assert Path(other.workspace_key.removeprefix("sqlite:///")) == agentflow_home / "agentflow.db"
    finally:
        close_default_stores()


def test_default_sqlite_file_and_key_file_are_private(agentflow_home: Path) -> None:
    try:
        store = default_store()
        store.save_workflow({"id": "x", "nodes": [], "edges": []}, author=None)
        db = agentflow_home / "agentflow.db"
        assert db.exists() and (db.stat().st_mode & 0o777) == 0o600
        assert (agentflow_home / "secret.key").stat().st_mode & 0o777 == 0o600
        with store._read() as tx:
            mode = tx.one("PRAGMA journal_mode")
        assert next(iter(mode.values())).lower() == "wal"
    finally:
        close_default_stores()


@pytest.mark.parametrize(
    "url", ["sqlite:///:memory:", "mysql://x@y/z", "sqlite://relative-without-third-slash"]
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="AGENTFLOW_DB_URL"):
        open_store(url)


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(InternalServerError, match="cannot connect to the store database") as info:
        open_store("postgresql://postgres:hunter2secret@127.0.0.1:1/test")
    assert "hunter2secret" not in json.dumps(info.value.to_dict())


def test_public_url_hides_the_password() -> None:
    from agentflow.store.postgres import public_url

    assert public_url("postgresql://me:pw@db.local:6543/x?sslmode=require") == (
        "postgresql://me@db.local:6543/x?sslmode=require"
    )
    assert public_url("postgresql://db/x") == "postgresql://db/x"


def test_relative_sqlite_paths_resolve_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///sub/dir/af.db") as s:
        assert s.path == tmp_path / "sub" / "dir" / "af.db"
        assert os.path.exists(s.path)
