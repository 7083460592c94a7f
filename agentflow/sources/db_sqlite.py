"""``db/sqlite``: the embedded database provider (stdlib ``sqlite3``).

``path`` is a file or ``:memory:``; ``init_sql`` runs once when the client opens (so an
offline demo can carry its own table). Queries are read-only unless the source says
``read_only: false``: a read-only source opens files with ``mode=ro`` and sets
``PRAGMA query_only``, so even a query taken from the state cannot write. One connection
per client, guarded by a lock: SQLite serialises writers anyway, and reads are short.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from agentflow.errors import ExecutionError
from agentflow.sources.base import DBProvider, DBResult, ProviderConfig
from agentflow.sources.registry import providers


class SqliteConfig(ProviderConfig):
    path: str = Field(":memory:", min_length=1, description='A file path or ":memory:".')
    init_sql: str | None = Field(None, description="SQL script run once when the client opens.")
    read_only: bool = True
    timeout_s: float = Field(30.0, gt=0, description="Longest a query may run.")


class SqliteDB(DBProvider):
    name = "sqlite"
    Config = SqliteConfig
    paramstyle = "named"
    networked = False
    config: SqliteConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        cfg = self.config
        memory = cfg.path == ":memory:"
        try:
            if not memory and cfg.read_only and not cfg.init_sql:
                path = Path(cfg.path).expanduser().resolve()
                if not path.exists():
                    raise self.fail(f"database file {path} does not exist", retryable=False)
                conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
            else:
                target = cfg.path if memory else str(Path(cfg.path).expanduser())
                conn = sqlite3.connect(target, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            if cfg.init_sql:
                conn.executescript(cfg.init_sql)
                conn.commit()
            if cfg.read_only:
                conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise self.fail(f"cannot open {cfg.path}: {exc}", retryable=False) from None
        self._conn = conn
        return conn

    def _check(self) -> str:
        self.query("SELECT 1 AS ok", {}, max_rows=1, timeout_s=5)
        return f"sqlite {sqlite3.sqlite_version} at {self.config.path}"

    def query(self, sql: str, params: dict[str, Any], *, max_rows: int, timeout_s: float | None) -> DBResult:
        limit = min(timeout_s or self.config.timeout_s, self.config.timeout_s)
        with self._lock:
            conn = self._connect()
            deadline = time.monotonic() + limit
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                cur = conn.execute(sql, params)
                rows = cur.fetchmany(max_rows + 1)
                columns = [d[0] for d in cur.description or []]
                if not self.config.read_only:
                    conn.commit()
            except sqlite3.Error as exc:
                conn.rollback()
                raise self._query_error(exc, limit) from None
            finally:
                conn.set_progress_handler(None, 0)
        truncated = len(rows) > max_rows
        return DBResult(rows=[_row(r) for r in rows[:max_rows]], columns=columns, truncated=truncated)

    async def aquery(self, sql: str, params: dict[str, Any], *, max_rows: int, timeout_s: float | None) -> DBResult:
        return await asyncio.to_thread(self.query, sql, params, max_rows=max_rows, timeout_s=timeout_s)

    def _query_error(self, exc: sqlite3.Error, limit: float) -> ExecutionError:
        text = str(exc)
        if "interrupted" in text:
            hint = f"the query ran longer than {limit:g} s"
        elif "readonly" in text or "read-only" in text or "query_only" in text:
            hint = 'the source is read-only; set "read_only": false on the source to allow writes'
        else:
            hint = "check the SQL and that every :name parameter is in config.params"
        return ExecutionError(f'source "{self.source_id}": query failed: {text} ({hint})', source=self.source_id)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _row(row: sqlite3.Row) -> dict[str, Any]:
    values = zip(row.keys(), row, strict=True)
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in values}


providers.register(SqliteDB)
