"""What the SQL store's parts share: transactions, the backend's few dialect differences.

The domain code (workflows, catalogue, runs, accounts) is written once against :class:`Tx`
with ``?`` placeholders; each backend supplies transactions that translate placeholders and
driver errors. Keeping the differences this small is what lets one conformance suite prove
both backends.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from agentflow.errors import InternalServerError


class DuplicateKey(Exception):
    """A unique constraint refused a row. The transaction is over when this is raised."""


class Tx(Protocol):
    """A transaction's statements; ``?`` placeholders, rows as dicts, datetimes as params."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; returns the affected row count. Raises DuplicateKey on unique violations."""
        ...


class SQLCore:
    """Base of the store's parts: transactions and small shared helpers."""

    backend: str
    workspace_key: str
    #: Appended to a SELECT that must lock its row until commit ("" where the whole
    #: database is locked by a write transaction, as in SQLite's BEGIN IMMEDIATE).
    for_update: str = ""

    def __init__(self) -> None:
        self._closed = False
        self._meta_cache: dict[str, str] = {}
        self._meta_lock = threading.Lock()
        #: Fingerprints of key sets already proven against this store's key-check token.
        self._checked_keys: set[str] = set()

    def _transaction(self, write: bool) -> AbstractContextManager[Tx]:
        """A transaction: commits when the block ends, rolls back if it raises."""
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Tx]:
        self._check_open()
        return self._transaction(False)

    def _write(self) -> AbstractContextManager[Tx]:
        """A write transaction; on SQLite it holds the database's write lock from the start."""
        self._check_open()
        return self._transaction(True)

    def _check_open(self) -> None:
        if self._closed:
            raise InternalServerError(f"the store {self.workspace_key} is closed")

    def _meta(self, key: str, default: str) -> str:
        """A store-wide constant (e.g. the KDF salt): the first writer's value wins for good."""
        cached = self._meta_cache.get(key)
        if cached is not None:
            return cached
        with self._meta_lock:
            with self._read() as tx:
                row = tx.one("SELECT value FROM af_meta WHERE key = ?", (key,))
            if row is None:
                with self._write() as tx:
                    tx.run(
                        "INSERT INTO af_meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO NOTHING",
                        (key, default),
                    )
                    row = tx.one("SELECT value FROM af_meta WHERE key = ?", (key,))
            if row is None:
                raise InternalServerError(f"the store lost its {key} setting; try again")
            self._meta_cache[key] = row["value"]
            return row["value"]

    def _set_meta(self, tx: Tx, key: str, value: str) -> None:
        tx.run(
            "INSERT INTO af_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        self._meta_cache.pop(key, None)
