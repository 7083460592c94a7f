"""Security tests that involve the store run on both backends, like tests/store.

Same fixtures as ``tests/store/conftest.py`` (conftest files are per directory): Postgres
tests get a fresh schema of the test database, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from agentflow.store import Store, close_default_stores, open_store


def schema_url(dsn: str, schema: str) -> str:
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url(pg_dsn: str) -> Iterator[str]:
    """A Postgres store URL whose tables live in a schema made for this test alone."""
    schema = f"af_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema_url(pg_dsn, schema)
    finally:
        close_default_stores()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'agentflow.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def database_bytes(store_url: str) -> Callable[[Store], bytes]:
    """Everything a store's database holds, as bytes: the SQLite files, or every row of
    every table in the test's Postgres schema (as text)."""

    def read(store: Store) -> bytes:
        if store.backend == "sqlite":
            path = Path(store.path)
            return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        chunks = []
        with psycopg.connect(store_url, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            ]
            assert "af_secrets" in tables and "af_api_tokens" in tables
            for table in tables:
                query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
                chunks += [row[0].encode() for row in conn.execute(query)]
        return b"\n".join(chunks)

    return read
