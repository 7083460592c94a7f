"""The embedded backend: one SQLite file (WAL) under the AgentFlow home by default.

One connection per thread (Streamlit serves sessions from threads of one process), each in
autocommit mode with explicit ``BEGIN IMMEDIATE`` for writes: a write transaction takes the
database's write lock at its first statement, so read-then-write sequences (the next version
number) cannot interleave, and waiting writers queue on ``busy_timeout`` instead of failing.
WAL lets readers run while one writer writes, and a process killed mid-write leaves the
last committed state intact. Connections of threads that have ended are closed when the
next thread connects.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from langgraph.checkpoint.sqlite import SqliteSaver

from agentflow.errors import ValidationError
from agentflow.store import codec
from agentflow.store.core import DuplicateKey
from agentflow.store.migrations import SQLITE
from agentflow.store.sql import SQLStore

log = logging.getLogger("agentflow.store")

BUSY_TIMEOUT_S = 30.0
_UNIQUE_CODES = {1555, 2067}  # SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///path`` URL names (``sqlite:////abs/path`` for absolute paths)."""
    prefix = "sqlite:///"
    raw = unquote(url[len(prefix) :].split("?", 1)[0]) if url.startswith(prefix) else ""
    if not raw or raw == ":memory:" or raw.startswith("file:"):
        raise ValidationError(
            f"AGENTFLOW_DB_URL {url!r} does not name a SQLite file: use sqlite:///path/to/file.db "
            f"(the store must outlive the process, so :memory: is not supported)",
            errors=[{"path": "AGENTFLOW_DB_URL", "message": "expected sqlite:///path"}],
        )
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL once; later connections find it so and change nothing.

    Changing the journal mode needs the file to itself and does not wait on busy_timeout,
    so connections racing to open a new file retry here for as long as they would wait.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @staticmethod
    def _params(params: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(codec.sqlite_time(p) if isinstance(p, datetime) else p for p in params)

    def _execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, self._params(params))
        except sqlite3.IntegrityError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _UNIQUE_CODES:
                raise DuplicateKey(str(exc)) from exc
            raise

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        cur = self._execute(sql, params)
        try:
            row = cur.fetchone()
        finally:
            cur.close()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._execute(sql, params).fetchall()]

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._execute(sql, params)
        count = cur.rowcount
        cur.close()
        return count


class SQLiteStore(SQLStore):
    backend = "sqlite"
    migrations = SQLITE

    def __init__(self, url: str) -> None:
        super().__init__()
        self.path = sqlite_path(url)
        self.workspace_key = f"sqlite:///{self.path}"
        if not self.path.exists():
            # Private from the start: the file holds password hashes and encrypted secrets.
            # SQLite gives its -wal and -shm files the same permissions.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._local = threading.local()
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._saver: SqliteSaver | None = None
        self._start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across crashes
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                alive = []
                for thread, other in self._conns:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        other.close()
                alive.append((threading.current_thread(), conn))
                self._conns = alive
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_SQLiteTx]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _SQLiteTx(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def checkpointer(self) -> SqliteSaver:
        """LangGraph's SqliteSaver on this file; it serialises its own calls with a lock."""
        with self._lock:
            if self._saver is None:
                self._check_open()
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                # WAL + NORMAL: a paused run survives a crash of the process; no fsync per step
                conn.execute("PRAGMA synchronous = NORMAL")
                saver = SqliteSaver(conn)
                saver.setup()
                self._saver = saver
            return self._saver

    @asynccontextmanager
    async def acheckpointer(self) -> AsyncIterator[Any]:
        """An AsyncSqliteSaver (needs ``aiosqlite``) on its own connection, for one event loop."""
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        self._check_open()
        async with aiosqlite.connect(self.path, timeout=BUSY_TIMEOUT_S) as conn:
            await conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            await conn.execute("PRAGMA synchronous = NORMAL")
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            yield saver

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
            for _, conn in self._conns:
                conn.close()
            self._conns = []
            if self._saver is not None:
                self._saver.conn.close()
                self._saver = None
        self._local = threading.local()
