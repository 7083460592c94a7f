"""``db/postgres`` against the real local PostgreSQL (``pg_dsn``); each test owns its table."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from agentflow.errors import ExecutionError, SourceConnectionError, ValidationError
from agentflow.sources._pg_values import json_safe
from agentflow.sources.clients import create_provider
from agentflow.spec.models import SourceSpec
from tests.conftest import ROOT

pytestmark = pytest.mark.services

ENV = "AF_TEST_PG_DSN_FOR_SOURCE"
Make = Callable[..., Any]


@pytest.fixture
def make(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """Providers on ``pg_dsn`` (or another DSN), closed after the test."""
    made: list[Any] = []

    def factory(dsn: str | None = None, **config: Any) -> Any:
        monkeypatch.setenv(ENV, dsn or pg_dsn)
        spec = SourceSpec(id="pg", kind="db", provider="postgres", config={"dsn_env": ENV, **config})
        made.append(create_provider(spec, None))
        return made[-1]

    yield factory
    for provider in made:
        provider.close()


@pytest.fixture
def table(pg_dsn: str) -> Iterator[str]:
    name = f"af_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, name text, price numeric, big numeric,"
            " at timestamptz, day date, uid uuid, data jsonb, raw bytea, tags text[], span interval)"
        )
        conn.execute(
            f"INSERT INTO {name} VALUES (1, 'alice', 12.50, 12345678901234567.891,"
            " '2026-01-02 03:04:05+00', '2026-01-02', 'a8098c1a-f86e-11da-bd1a-00112444be1e',"
            """ '{"k": [1, "two"]}', '\\x0001ff', '{x,y}', '90 seconds'), (2, 'bob', 3, 0.1,"""
            " null, null, null, null, null, null, null)"
        )
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def count(pg_dsn: str, table: str) -> int:
    with psycopg.connect(pg_dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_netloc(dsn: str, netloc: str | None = None, path: str | None = None) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=netloc or parts.netloc, path=path or parts.path))


def test_params_bound_and_rows_json_safe(make: Make, table: str) -> None:
    db = make()
    assert db.paramstyle == "pyformat"
    res = db.query(f"SELECT * FROM {table} WHERE name = %(name)s", {"name": "alice"}, max_rows=10, timeout_s=None)
    assert res.columns[:3] == ["id", "name", "price"] and not res.truncated
    assert res.rows == [
        {
            "id": 1,
            "name": "alice",
            "price": 12.5,
            "big": "12345678901234567.891",
            "at": "2026-01-02T03:04:05+00:00",
            "day": "2026-01-02",
            "uid": "a8098c1a-f86e-11da-bd1a-00112444be1e",
            "data": {"k": [1, "two"]},
            "raw": "AAH/",
            "tags": ["x", "y"],
            "span": 90.0,
        }
    ]
    json.dumps(res.rows)  # no custom encoder needed
    bob = db.query(f"SELECT price, big FROM {table} WHERE id = %(id)s", {"id": 2}, max_rows=10, timeout_s=None)
    assert bob.rows == [{"price": 3, "big": 0.1}]


def test_injection_strings_are_only_data(make: Make, table: str, pg_dsn: str) -> None:
    db = make()
    for evil in ("x' OR '1'='1", f"'; DROP TABLE {table}; --", "%(name)s", "alice\\"):
        res = db.query(f"SELECT id FROM {table} WHERE name = %(name)s", {"name": evil}, max_rows=10, timeout_s=None)
        assert res.rows == []
    assert count(pg_dsn, table) == 2


def test_read_only_refuses_writes_and_second_statements(make: Make, table: str, pg_dsn: str) -> None:
    db = make()
    for sql in (f"DROP TABLE {table}", f"DELETE FROM {table}", f"UPDATE {table} SET name = 'x'"):
        with pytest.raises(ExecutionError, match=r'read-only source.*"read_only": false') as info:
            db.query(sql, {}, max_rows=10, timeout_s=None)
        assert info.value.source == "pg"
    with pytest.raises(ExecutionError, match="one statement per query"):
        db.query(f"SELECT 1; COMMIT; DROP TABLE {table}", {}, max_rows=10, timeout_s=None)
    assert count(pg_dsn, table) == 2


def test_session_changes_do_not_outlive_a_query(make: Make) -> None:
    db = make(pool_min_size=1, pool_max_size=1)  # one connection: the next query reuses it
    db.query("SELECT set_config('search_path', 'evil', false)", {}, max_rows=1, timeout_s=None)
    db.query("COMMIT", {}, max_rows=1, timeout_s=None)  # ends our transaction early: harmless
    shown = db.query("SHOW search_path", {}, max_rows=1, timeout_s=None).rows[0]["search_path"]
    assert "evil" not in shown


def test_writable_source_commits(make: Make, table: str, pg_dsn: str) -> None:
    db = make(read_only=False)
    plain = db.query(
        f"INSERT INTO {table} (id, name) VALUES (%(id)s, %(n)s)", {"id": 3, "n": "c"}, max_rows=10, timeout_s=None
    )
    assert plain.rows == [] and plain.columns == []
    ret = db.query(
        f"INSERT INTO {table} (id, name) VALUES (4, 'd'), (5, 'e') RETURNING id", {}, max_rows=1, timeout_s=None
    )
    assert ret.rows == [{"id": 4}] and ret.truncated  # cut, but every row was still written
    assert count(pg_dsn, table) == 5


def test_max_rows_stops_reading(make: Make) -> None:
    db = make(pool_max_size=1)
    started = time.monotonic()
    res = db.query("SELECT g AS n, g AS n FROM generate_series(1, 5000000) g", {}, max_rows=3, timeout_s=None)
    assert res.rows == [{"n": 1, "n_2": 1}, {"n": 2, "n_2": 2}, {"n": 3, "n_2": 3}]
    assert res.truncated and time.monotonic() - started < 3.0
    empty = db.query("SELECT 1 AS a WHERE false", {}, max_rows=3, timeout_s=None)
    assert (empty.rows, empty.truncated) == ([], False)
    # The cancelled query left the single pooled connection usable.
    assert db.query("SELECT 2 AS b", {}, max_rows=3, timeout_s=None).rows == [{"b": 2}]


def test_statement_timeout(make: Make) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutionError, match=r"statement timeout \(200 ms\)"):
        make(statement_timeout_ms=200).query("SELECT pg_sleep(3)", {}, max_rows=1, timeout_s=None)
    with pytest.raises(ExecutionError, match=r"statement timeout \(150 ms\)"):
        make().query("SELECT pg_sleep(3)", {}, max_rows=1, timeout_s=0.15)  # the node's timeout
    assert time.monotonic() - started < 2.5


def test_query_errors_have_hints(make: Make, table: str) -> None:
    db = make()
    with pytest.raises(ExecutionError, match="syntax"):
        db.query("SELEC 1", {}, max_rows=1, timeout_s=None)
    with pytest.raises(ExecutionError, match="check the table name"):
        db.query("SELECT * FROM no_such_table_here", {}, max_rows=1, timeout_s=None)
    with pytest.raises(ExecutionError, match="bind values as %\\(name\\)s"):
        db.query(f"SELECT * FROM {table} WHERE id = %(id)s", {"other": 1}, max_rows=1, timeout_s=None)
    with pytest.raises(ExecutionError, match="parameter values"):
        db.query("SELECT %(n)s::int AS n", {"n": "not a number"}, max_rows=1, timeout_s=None)
    # a literal % needs no doubling when there are no params
    assert db.query("SELECT 'a%' AS p", {}, max_rows=1, timeout_s=None).rows == [{"p": "a%"}]


def test_connection_failures(make: Make, pg_dsn: str) -> None:
    password = "hunter2-very-secret"
    user = urlsplit(pg_dsn).username or "postgres"
    stopped = with_netloc(pg_dsn, netloc=f"{user}:{password}@127.0.0.1:{closed_port()}")
    with pytest.raises(SourceConnectionError, match="connection refused") as refused:
        make(stopped).query("SELECT 1", {}, max_rows=1, timeout_s=None)
    assert refused.value.retryable and refused.value.source == "pg"
    assert password not in refused.value.message and password not in json.dumps(refused.value.to_dict())
    with pytest.raises(SourceConnectionError, match="does not exist") as no_db:
        make(with_netloc(pg_dsn, path="/no_such_db_af")).query("SELECT 1", {}, max_rows=1, timeout_s=None)
    assert not no_db.value.retryable
    with pytest.raises(SourceConnectionError, match="not a valid connection string") as bad:
        make(f"nonsense {password}").query("SELECT 1", {}, max_rows=1, timeout_s=None)
    assert not bad.value.retryable and password not in bad.value.message
    assert not make(stopped).check().ok


def test_dsn_env_unset(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    db = make()
    monkeypatch.delenv(ENV)
    with pytest.raises(SourceConnectionError, match=f"environment variable {ENV}"):
        db.query("SELECT 1", {}, max_rows=1, timeout_s=None)


def test_config_refuses_literal_dsn() -> None:
    literal = SourceSpec(id="pg", kind="db", provider="postgres", config={"dsn": "postgresql://u:p@h/d"})
    with pytest.raises(ValidationError, match='"dsn_env"'):
        create_provider(literal, None)
    with pytest.raises(ValidationError, match='set "dsn_env"'):
        create_provider(SourceSpec(id="pg", kind="db", provider="postgres", config={}), None)


def test_async_queries_across_loops_and_threads(make: Make) -> None:
    db = make(pool_max_size=3)

    async def many() -> list[int]:
        results = await asyncio.gather(
            *(db.aquery("SELECT %(i)s::int AS i", {"i": i}, max_rows=1, timeout_s=None) for i in range(6))
        )
        return [r.rows[0]["i"] for r in results]

    assert asyncio.run(many()) == list(range(6))
    assert asyncio.run(many()) == list(range(6))  # a second loop shares the same pool
    got: list[int] = []
    threads = [
        threading.Thread(
            target=lambda i=i: got.append(
                db.query("SELECT %(i)s::int AS i", {"i": i}, max_rows=1, timeout_s=None).rows[0]["i"]
            )
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(8))


def test_check(make: Make) -> None:
    result = make().check()
    assert result.ok and "PostgreSQL" in result.message and "read-only" in result.message


def test_json_safe_edge_values() -> None:
    assert json_safe(Decimal("NaN")) == "NaN" and json_safe(float("-inf")) == "-Infinity"
    assert json_safe(Decimal("1E+2")) == 100 and json_safe(Decimal("2.5")) == 2.5
    assert json_safe(memoryview(b"\x00")) == "AA=="
    assert json_safe((1, {"a": Decimal("0.30000000000000000001")})) == [1, {"a": "0.30000000000000000001"}]


def test_import_is_cheap() -> None:
    """Importing the provider module (the registry does, for every run) loads no client library."""
    code = (
        "import sys, agentflow.sources.base; before = set(sys.modules);"
        "import agentflow.sources.db_postgres;"
        "heavy = {m.split('.')[0] for m in set(sys.modules) - before}"
        " & {'openai', 'httpx', 'httpx2', 'psycopg', 'psycopg_pool'};"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_example_workflow_runs(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/postgres_report.json against the test database."""
    from agentflow import run_workflow, validate_workflow

    monkeypatch.setenv("AGENTFLOW_EXAMPLE_PG_DSN", pg_dsn)
    spec = validate_workflow(ROOT / "examples" / "postgres_report.json")
    state = run_workflow(spec, {"user_input": "pg_stat_user_tables"})
    assert state["metadata"]["status"] == "succeeded"
    assert state["final_output"]["tables"] == [{"schema": "pg_catalog", "name": "pg_stat_user_tables", "type": "VIEW"}]
    injected = run_workflow(spec, {"user_input": "x' OR '1'='1"})
    assert injected["metadata"]["status"] == "succeeded" and injected["db_result"] == []
