"""PostgreSQL failures turned into the error tree, with the DSN's password never shown.

Connection problems are :class:`SourceConnectionError`s: retryable when the server may come
back (refused, timed out, starting up, too many connections), not when the configuration is
wrong (password, role, database name, host name, TLS, a malformed DSN). Problems with the
query itself (syntax, unknown table, a write on a read-only source, the statement timeout,
bad parameter values) are :class:`ExecutionError`s with a hint. psycopg reports connection
failures without a SQLSTATE, so those are told apart by libpq's message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentflow.errors import AgentFlowError, ExecutionError, SourceConnectionError
from agentflow.redact import redact

if TYPE_CHECKING:
    from agentflow.sources.base import Provider

#: libpq message fragment -> (what happened, retryable, what to do)
_CONNECT_FAILURES: list[tuple[str, str, bool, str]] = [
    ("password authentication failed", "the password was refused", False, "check the DSN's user and password"),
    ("no password supplied", "the server wants a password", False, "add the password to the DSN"),
    ("does not exist", "", False, "check the user and database names in the DSN"),
    ("pg_hba.conf", "the server refuses this user/host", False, "allow it in pg_hba.conf, or use another user"),
    ("authentication", "authentication failed", False, "check the DSN's credentials"),
    (
        "Temporary failure in name resolution",
        "the host name could not be resolved right now",
        True,
        "check DNS, then try again",
    ),
    ("resolve host", "the host name does not resolve", False, "check the host in the DSN"),
    ("translate host name", "the host name does not resolve", False, "check the host in the DSN"),
    ("SSL", "TLS/SSL negotiation failed", False, "check sslmode and the server's certificate"),
    ("Connection refused", "connection refused", True, "is PostgreSQL running, and are host and port right?"),
    ("timeout expired", "timed out connecting", True, 'check the host and network, or raise "connect_timeout_s"'),
    ("starting up", "the server is starting up", True, "try again in a moment"),
    ("shutting down", "the server is shutting down", True, "try again once it is back"),
    ("too many", "the server has too many connections", True, 'try again, or lower "pool_max_size"'),
]

#: SQLSTATE -> hint for query errors.
_QUERY_HINTS: dict[str, str] = {
    "42601": "check the SQL syntax; send one statement per query",
    "42P01": "check the table name (and its schema)",
    "42703": "check the column names",
    "42883": "check the function name and the types of its arguments",
    "42501": "the database user lacks a privilege; grant it, or use another user",
    "42P02": 'a query parameter is missing: bind it with %(name)s and list it in "params"',
}


class PgErrors:
    """Error mapping for one ``db/postgres`` provider (knows its DSN to describe it safely)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.dsn = ""

    def target(self) -> str:
        """``user@host:port/db`` of the DSN, never its password."""
        try:
            from psycopg.conninfo import conninfo_to_dict

            info = conninfo_to_dict(self.dsn)
        except Exception:
            return "the database"
        host = info.get("host") or "localhost"
        where = f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        return redact(f"{info['user']}@{where}" if info.get("user") else where)

    def probe(self, connect_kwargs: dict[str, Any]) -> None:
        """Connect once, directly, to raise the server's reason for a bad DSN."""
        import psycopg

        try:
            psycopg.connect(self.dsn, **connect_kwargs).close()
        except Exception as exc:
            raise self.map(exc, timeout_ms=None) from exc

    def connect_failure(self, exc: BaseException) -> SourceConnectionError:
        text = str(exc)
        for fragment, what, retryable, hint in _CONNECT_FAILURES:
            if fragment in text:
                detail = what or _server_line(text)
                return self.provider.fail(
                    redact(f"cannot connect to {self.target()}: {detail}; {hint}"), retryable=retryable
                )
        line = _server_line(text)
        return self.provider.fail(redact(f"connection to {self.target()} failed: {line}; try again"), retryable=True)

    def map(self, exc: BaseException, *, timeout_ms: int | None) -> AgentFlowError:
        """The AgentFlow error for ``exc`` raised by psycopg or the pool."""
        import psycopg
        import psycopg_pool

        if isinstance(exc, AgentFlowError):
            return exc
        sid = self.provider.source_id
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return self._pool_timeout()
        sqlstate = getattr(exc, "sqlstate", None) or ""
        message = _server_line(str(exc))
        if sqlstate == "57014":
            limit = f" ({timeout_ms} ms)" if timeout_ms else ""
            return ExecutionError(
                f'source "{sid}": the query ran past the statement timeout{limit} and was '
                'cancelled; make it cheaper or raise "statement_timeout_ms"',
                source=sid,
            )
        if sqlstate == "25006":
            return ExecutionError(
                redact(
                    f'source "{sid}": the query tried to write on a read-only source '
                    f'({message}); set "read_only": false on the source to allow writes'
                ),
                source=sid,
            )
        if sqlstate.startswith("28"):
            return self.provider.fail(redact(f"access refused by {self.target()}: {message}"), retryable=False)
        if sqlstate.startswith(("08", "53", "57P")) or sqlstate in ("40001", "40P01"):
            return self.provider.fail(redact(f"{self.target()}: {message}; try again"), retryable=True)
        if sqlstate:
            hint = _QUERY_HINTS.get(sqlstate) or (
                "check the parameter values and their types" if sqlstate.startswith("22") else ""
            )
            return ExecutionError(
                redact(f'source "{sid}": query failed: {message}' + (f"; {hint}" if hint else "")),
                {"sqlstate": sqlstate},
                source=sid,
            )
        if isinstance(exc, psycopg.OperationalError):
            return self.connect_failure(exc)
        if isinstance(exc, psycopg.ProgrammingError) and "connection info string" in str(exc):
            # libpq quotes the DSN back: do not repeat it.
            return self.provider.fail(
                "the DSN is not a valid connection string or postgresql:// URL; check the "
                "variable or secret that holds it",
                retryable=False,
            )
        if isinstance(exc, psycopg.Error):
            hint = ""
            if "placeholder" in message or "parameter" in message:
                hint = "; bind values as %(name)s, and write a literal % as %% when params are given"
            return ExecutionError(redact(f'source "{sid}": query failed: {message}{hint}'), source=sid)
        raise exc

    def _pool_timeout(self) -> SourceConnectionError:
        cfg: Any = self.provider.config
        try:
            self.probe(connect_kwargs(cfg))
        except SourceConnectionError as exc:
            return exc
        return self.provider.fail(
            f"no free database connection within {cfg.pool_timeout_s:g} s (all "
            f'{cfg.pool_max_size} in use); raise "pool_max_size" or "pool_timeout_s"',
            retryable=True,
        )

    @staticmethod
    def is_rowless_command(exc: BaseException) -> bool:
        """psycopg's complaint that a statement streamed no rows (an INSERT, a SET): not an error."""
        import psycopg

        return (
            isinstance(exc, psycopg.ProgrammingError)
            and getattr(exc, "sqlstate", None) is None
            and "didn't produce a result" in str(exc)
        )


def connect_kwargs(cfg: Any) -> dict[str, Any]:
    """Connection options for the pool and the probe: autocommit, since we BEGIN ourselves."""
    return {
        "autocommit": True,
        "connect_timeout": cfg.connect_timeout_s,
        "application_name": cfg.application_name,
    }


def _server_line(text: str) -> str:
    """The server's words, without libpq's "connection failed: ... failed:" preamble."""
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if "failed: " in line:
        line = line.rsplit("failed: ", 1)[1]
    return line.replace("FATAL:  ", "").strip()
