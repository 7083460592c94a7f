"""The shared backend: Postgres through psycopg 3 and a connection pool.

Every workbench, API and worker process pointed at the same ``AGENTFLOW_DB_URL`` sees the
same workflows, secrets and runs. Writes run in transactions at READ COMMITTED, reads as
plain autocommit statements (:func:`_check_if_idle` says why); the one
read-then-write that must not interleave (the next workflow version) locks the workflow's
row with ``FOR UPDATE``. Schema changes are serialised across processes with advisory locks.
The LangGraph saver gets its own pool, configured as its documentation requires
(autocommit, ``prepare_threshold=0``, dict rows).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from agentflow.errors import InternalServerError, ValidationError
from agentflow.store.core import DuplicateKey, Tx
from agentflow.store.migrations import POSTGRES
from agentflow.store.sql import SQLStore

log = logging.getLogger("agentflow.store")

_SCHEMA_LOCK = 0x61665F736368656D  # "af_schem": serialises store migrations
_SAVER_LOCK = 0x61665F7361766572  # "af_saver": serialises LangGraph's saver setup
_SAVER_KWARGS = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


def _fast_commits(conn: Any) -> None:
    """Checkpoint writes need not wait for the server's disk flush: a paused run must survive
    the *workbench* restarting, which asynchronous commit still guarantees. (No connection
    check on checkout either: it cost one more round trip per checkpoint.)"""
    conn.execute("SET synchronous_commit = off")


#: A pooled connection idle longer than this is checked (one round trip) before use.
CHECK_IDLE_S = 2.0


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    """The pool's check on checkout, for connections that have been idle a while.

    A store call is a handful of round trips to the server, and each one counts: a read ran
    BEGIN, the query and COMMIT, after a ``SELECT 1`` that checked the connection, four
    round trips for one answer. Now the pool's connections are in autocommit mode and only
    writes open a transaction block; a read is its statements alone, which at READ COMMITTED
    (every statement sees what was committed when it began, inside a block or not) reads
    what it read before. And a connection is checked only when it has been idle for
    :data:`CHECK_IDLE_S`: a server restart is found on the first checkout after it, while a
    busy process, whose connections were used a moment ago, does not pay the check on every
    call. (Measured by bench/api.py on the local Postgres: see BENCHMARKS.md.)
    """
    if time.monotonic() - getattr(conn, "_agentflow_used_at", 0.0) > CHECK_IDLE_S:
        ConnectionPool.check_connection(conn)


def postgres_url(url: str) -> str:
    """Accept ``postgresql://``, ``postgres://`` and ``postgresql+psycopg://``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValidationError(
            "AGENTFLOW_DB_URL must be sqlite:///path or postgresql://user@host:port/db",
            errors=[{"path": "AGENTFLOW_DB_URL", "message": "unsupported scheme"}],
        )
    return f"postgresql://{rest}"


def public_url(url: str) -> str:
    """The URL without its password: safe to log and to use as a cache key."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (the shared SQL never holds a literal ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        try:
            self._cur.execute(_pg(sql), tuple(params))
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateKey(str(exc)) from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        self._execute(sql, params)
        return self._cur.fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._execute(sql, params)
        return self._cur.fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._execute(sql, params)
        return self._cur.rowcount


class PostgresStore(SQLStore):
    backend = "postgres"
    migrations = POSTGRES
    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        super().__init__()
        self.url = postgres_url(url)
        self.workspace_key = public_url(self.url)
        try:  # a direct connection first: its error says why (refused, auth, no database)
            psycopg.connect(self.url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise InternalServerError(
                f"cannot connect to the store database {self.workspace_key}: {exc}; check "
                f"AGENTFLOW_DB_URL and that the server is running"
            ) from None
        self._pool: ConnectionPool = ConnectionPool(
            self.url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            check=_check_if_idle,
            name="agentflow-store",
            open=False,
        )
        self._pool.open(wait=True, timeout=30)
        self._lock = threading.Lock()
        self._saver: PostgresSaver | None = None
        self._saver_pool: ConnectionPool | None = None
        try:
            self._start()
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_PgTx]:
        """Writes in a transaction block; reads without one (see :func:`_check_if_idle`
        for why that is the same thing here)."""
        with self._pool.connection() as conn:
            try:
                with conn.transaction() if write else nullcontext(), conn.cursor() as cur:
                    yield _PgTx(cur)
            finally:
                conn._agentflow_used_at = time.monotonic()  # type: ignore[attr-defined]

    def _lock_schema(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def checkpointer(self) -> PostgresSaver:
        """LangGraph's PostgresSaver over its own pool; tables set up once per store."""
        with self._lock:
            if self._saver is None:
                self._check_open()
                pool: ConnectionPool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=4,
                    kwargs=_SAVER_KWARGS,
                    configure=_fast_commits,
                    name="agentflow-checkpoints",
                    open=False,
                )
                pool.open(wait=True, timeout=30)
                saver = PostgresSaver(pool)
                try:
                    with pool.connection() as conn:
                        conn.execute("SELECT pg_advisory_lock(%s)", (_SAVER_LOCK,))
                        try:
                            saver.setup()
                        finally:
                            conn.execute("SELECT pg_advisory_unlock(%s)", (_SAVER_LOCK,))
                except BaseException:
                    pool.close()
                    raise
                self._saver, self._saver_pool = saver, pool
            return self._saver

    @asynccontextmanager
    async def acheckpointer(self) -> AsyncIterator[Any]:
        """An AsyncPostgresSaver on its own connection, bound to the running event loop."""
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        await asyncio.to_thread(self.checkpointer)  # tables exist before the first async call
        conn = await psycopg.AsyncConnection.connect(self.url, **_SAVER_KWARGS)
        async with conn:
            yield AsyncPostgresSaver(conn)

    def ping(self) -> bool:
        try:
            with self._read() as tx:
                return tx.one("SELECT 1 AS ok") is not None
        except Exception:
            log.exception("store %s does not answer", self.workspace_key)
            return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._saver_pool is not None:
                self._saver_pool.close()
                self._saver, self._saver_pool = None, None
            self._pool.close()
