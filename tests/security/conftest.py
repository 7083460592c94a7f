"""Security tests that involve the store run on both backends, like tests/store.

The ``store`` fixtures (SQLite and a fresh Postgres schema per test) are in the root
``tests/conftest.py``; this adds a reader of everything a store's database holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from agentflow.store import Store


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
