"""Shared fixtures: an isolated AgentFlow home per test, and the real local services.

Tests that need Postgres, Redis or RabbitMQ use the fixtures below. When the service is
missing they fail if ``CI`` is set (CI must prove the real path) and skip otherwise.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

PG_DSN = os.environ.get("AGENTFLOW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("AGENTFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _reachable(url: str, default_port: int) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _need(name: str, url: str, port: int) -> str:
    if _reachable(url, port):
        return url
    msg = f"{name} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(f"{msg} (CI is set: service tests must run, not skip)")
    pytest.skip(msg)


@pytest.fixture(autouse=True)
def agentflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store, key file and log under a temporary AGENTFLOW_HOME."""
    home = tmp_path / "agentflow-home"
    monkeypatch.setenv("AGENTFLOW_HOME", str(home))
    for var in ("AGENTFLOW_DB_URL", "AGENTFLOW_REDIS_URL", "AGENTFLOW_LOG_FILE", "AGENTFLOW_SECRET_KEY", "JWT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def pg_dsn() -> str:
    return _need("PostgreSQL", PG_DSN, 5432)


@pytest.fixture
def redis_url() -> str:
    return _need("Redis", REDIS_URL, 6379)


@pytest.fixture
def amqp_url() -> str:
    return _need("RabbitMQ", AMQP_URL, 5672)


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


# --- stores on both backends (used by the store conformance suite and the debugger) ---


def schema_url(dsn: str, schema: str) -> str:
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url(pg_dsn: str) -> Iterator[str]:
    """A Postgres store URL whose tables live in a schema made for this test alone."""
    import psycopg
    from psycopg import sql

    from agentflow.store import close_default_stores

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
def store(store_url: str) -> Iterator[Any]:
    """A store on each backend, closed after the test."""
    from agentflow.store import open_store

    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
