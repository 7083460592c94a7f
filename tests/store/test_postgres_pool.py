"""The Postgres store's pool: reads without a transaction block, idle connections checked.

A connection the server dropped (a restart, an idle timeout) must not fail a call after
the process was quiet; a busy process, whose connections were used a moment ago, skips the
check's round trip.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from agentflow.store import postgres
from agentflow.store.postgres import PostgresStore


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_schema_url, min_size=1, max_size=1)  # one connection: the one we drop
    try:
        yield store
    finally:
        store.close()


def _drop_the_pooled_connection(store: PostgresStore, dsn: str) -> None:
    with store._pool.connection() as conn:
        pid = conn.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    pg_store: PostgresStore, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_store.save_workflow({"id": "w", "nodes": [{"id": "input", "type": "input"}], "edges": []}, author="t")
    _drop_the_pooled_connection(pg_store, pg_dsn)
    monkeypatch.setattr(postgres, "CHECK_IDLE_S", 0.0)  # as after a quiet spell
    assert pg_store.get_workflow("w")["version"] == 1


def test_a_connection_used_a_moment_ago_is_not_checked(
    pg_store: PostgresStore, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the check the dropped connection is found by the call itself (which fails),
    and the pool replaces it for the next one: the check above is what saved that call."""
    pg_store.list_workflows()
    _drop_the_pooled_connection(pg_store, pg_dsn)
    monkeypatch.setattr(postgres, "CHECK_IDLE_S", 3600.0)
    with pytest.raises(psycopg.OperationalError):
        pg_store.list_workflows()
    assert pg_store.list_workflows() == []


def test_reads_run_outside_a_transaction_block_and_writes_inside_one(pg_store: PostgresStore) -> None:
    with pg_store._read() as tx:
        assert tx.one("SELECT now() = statement_timestamp() AS alone")["alone"] is True
    with pg_store._write() as tx:
        tx.one("SELECT pg_sleep(0.01)")
        assert tx.one("SELECT now() = statement_timestamp() AS alone")["alone"] is False
