"""``db/postgres``: queries through ``psycopg`` 3 and one ``psycopg_pool`` pool per source.

Safety, in layers:

- Parameters are bound by the driver (``%(name)s``), never spliced into the SQL.
- Every query runs in its own explicit transaction, ``BEGIN READ ONLY`` unless the source
  says ``"read_only": false``, with ``SET LOCAL statement_timeout``. The transaction is
  rolled back afterwards (committed only on writable sources), so nothing a query changes
  in the session outlives it.
- The query goes through the extended protocol (``cursor.stream``), which takes exactly one
  statement, so ``SELECT 1; COMMIT; DROP TABLE t`` is refused by the server rather than
  run after our transaction ends.
- Rows are streamed and reading stops at ``max_rows`` + 1 (the extra row only says the
  result was cut), so a huge result never lands in memory.

Read-only is a guard, not a sandbox: functions with side effects still run. Give the source
a database role that may only read what the workflows need.

The async form runs the same code on a small thread pool of the provider's own (as many
threads as pool connections). One pool then serves every thread and every event loop, which
per-loop async pools could not: sync callers start a new loop per call with ``asyncio.run``,
which would open (and leak) a pool of fresh connections each time.

Results are JSON-safe (:func:`agentflow.sources._pg_values.json_safe`); ``columns`` is empty
when a query returns no rows (the driver reports no columns then).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from agentflow.errors import AgentFlowError
from agentflow.sources._pg_errors import PgErrors, connect_kwargs
from agentflow.sources._pg_values import json_safe, unique_names
from agentflow.sources._support import SecretRefConfig
from agentflow.sources.base import DBProvider, DBResult
from agentflow.sources.registry import providers

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

    from agentflow.sources.base import SecretResolver
    from agentflow.spec.models import SourceSpec


class PostgresConfig(SecretRefConfig):
    secret_fields = ("dsn",)

    #: Environment variable holding the DSN (``postgresql://user:pw@host:5432/db`` or
    #: ``host=... dbname=...``). A literal ``dsn`` is refused: it usually holds a password.
    dsn_env: str | None = None
    #: Name of a stored secret holding the DSN (wins over ``dsn_env``).
    dsn_secret: str | None = None
    #: Every query in a READ ONLY transaction; ``false`` lets queries write (and commit).
    read_only: bool = True
    #: Server-side limit per query; a node's ``timeout_s`` can only lower it. None: the
    #: server's own setting.
    statement_timeout_ms: int | None = Field(30_000, gt=0)
    connect_timeout_s: int = Field(10, ge=1, le=300)
    pool_min_size: int = Field(1, ge=0, le=100)
    pool_max_size: int = Field(10, ge=1, le=100)
    #: How long a query waits for a free pooled connection.
    pool_timeout_s: float = Field(30.0, gt=0, le=600)
    application_name: str = "agentflow"

    @model_validator(mode="after")
    def _sane(self) -> PostgresConfig:
        if not (self.dsn_env or self.dsn_secret):
            raise ValueError('set "dsn_env" (an environment variable) or "dsn_secret" (a stored secret)')
        if self.pool_max_size < self.pool_min_size:
            raise ValueError('"pool_max_size" must be at least "pool_min_size"')
        return self


class PostgresDB(DBProvider):
    """PostgreSQL through a shared connection pool; read-only unless configured otherwise."""

    name: ClassVar[str] = "postgres"
    paramstyle: ClassVar[str] = "pyformat"
    Config: ClassVar[type[PostgresConfig]] = PostgresConfig
    config: PostgresConfig

    def __init__(self, source: SourceSpec, config: PostgresConfig, secrets: SecretResolver | None) -> None:
        super().__init__(source, config, secrets)
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._errors = PgErrors(self)

    # -- pool -------------------------------------------------------------------------

    def _get_pool(self) -> psycopg_pool.ConnectionPool:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                import psycopg_pool

                dsn = self.secret("dsn") or ""
                self._errors.dsn = dsn
                # One direct connection first: a wrong DSN, password or port fails now with
                # the server's reason, instead of a pool retrying in the background until
                # pool_timeout_s and then saying only "couldn't get a connection".
                cfg = self.config
                self._errors.probe(connect_kwargs(cfg))
                pool = psycopg_pool.ConnectionPool(
                    dsn,
                    min_size=cfg.pool_min_size,
                    max_size=cfg.pool_max_size,
                    timeout=cfg.pool_timeout_s,
                    kwargs=connect_kwargs(cfg),
                    check=psycopg_pool.ConnectionPool.check_connection,
                    name=f"agentflow:{self.source_id}",
                    open=False,
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _timeout_ms(self, timeout_s: float | None) -> int | None:
        ms = self.config.statement_timeout_ms
        if timeout_s:
            ms = min(ms, int(timeout_s * 1000)) if ms else int(timeout_s * 1000)
        return max(1, ms) if ms else None

    # -- queries ----------------------------------------------------------------------

    def query(self, sql: str, params: dict[str, Any], *, max_rows: int, timeout_s: float | None) -> DBResult:
        ms = self._timeout_ms(timeout_s)
        try:
            pool = self._get_pool()
            with pool.connection() as conn:
                return self._run(conn, sql, params, max(0, max_rows), ms)
        except AgentFlowError:
            raise
        except Exception as exc:
            raise self._errors.map(exc, timeout_ms=ms) from exc

    async def aquery(self, sql: str, params: dict[str, Any], *, max_rows: int, timeout_s: float | None) -> DBResult:
        call = functools.partial(self.query, sql, params, max_rows=max_rows, timeout_s=timeout_s)
        return await asyncio.get_running_loop().run_in_executor(self._threads(), call)

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.config.pool_max_size,
                    thread_name_prefix=f"agentflow-pg-{self.source_id}",
                )
            return self._executor

    def _run(
        self, conn: psycopg.Connection, sql: str, params: dict[str, Any], max_rows: int, ms: int | None
    ) -> DBResult:
        begin = "BEGIN READ ONLY" if self.read_only else "BEGIN READ WRITE"
        with conn.cursor() as cur:
            # Our statements only, no parameters: one simple-protocol round trip for both.
            cur.execute(f"{begin}; SET LOCAL statement_timeout = {int(ms)}" if ms else begin)
            try:
                raw, truncated, columns = self._fetch(cur, sql, params, max_rows)
                cur.execute("ROLLBACK" if self.read_only else "COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # a broken connection: the pool drops it
                    cur.execute("ROLLBACK")
                raise
        rows = [{c: json_safe(v) for c, v in zip(columns, row, strict=False)} for row in raw]
        return DBResult(rows=rows, columns=columns, truncated=truncated)

    def _fetch(
        self, cur: psycopg.Cursor, sql: str, params: dict[str, Any], max_rows: int
    ) -> tuple[list[tuple[Any, ...]], bool, list[str]]:
        """Up to ``max_rows`` rows, whether more were left, and the column names."""
        # No params: no placeholder parsing, so a literal % needs no doubling.
        rows = cur.stream(sql, params or None, size=_chunk_size(max_rows))
        out: list[tuple[Any, ...]] = []
        columns: list[str] = []
        try:
            for row in rows:
                if not out:
                    columns = unique_names([c.name for c in cur.description or ()])
                out.append(row)
                if len(out) > max_rows:
                    break
            if len(out) > max_rows and not self.read_only:
                # A write must finish before COMMIT: read (and drop) the rest rather than
                # cancel it, which would abort the transaction.
                collections.deque(rows, maxlen=0)
        except Exception as exc:
            if self._errors.is_rowless_command(exc):
                return [], False, []
            raise
        finally:
            rows.close()  # on a read-only source, cancels the query if rows are left
        return out[:max_rows], len(out) > max_rows, columns

    # -- lifecycle --------------------------------------------------------------------

    def _check(self) -> str:
        """``SELECT 1`` on a pooled connection, naming the server's version."""
        try:
            with self._get_pool().connection() as conn:
                conn.execute("SELECT 1")
                version = conn.info.server_version
        except AgentFlowError:
            raise
        except Exception as exc:
            raise self._errors.map(exc, timeout_ms=None) from exc
        mode = "read-only" if self.read_only else "read-write"
        return f"{self._errors.target()}: connected, PostgreSQL {version // 10000}.{version % 10000} ({mode})"

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if pool is not None:
            pool.close(timeout=5.0)


def _chunk_size(max_rows: int) -> int:
    """Rows per network chunk: chunked reads need libpq 17+, older ones read row by row."""
    import psycopg

    return min(max_rows + 1, 256) if psycopg.pq.version() >= 170000 else 1


providers.register(PostgresDB)
