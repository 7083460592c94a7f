"""Schema migrations: ordered SQL per backend, applied once, recorded in ``af_schema_version``.

A migration is never edited once released; a change is a new, higher-numbered step for
*both* backends. Every table is prefixed ``af_`` so the store can share a database with the
LangGraph checkpoint tables and with other applications. Columns holding big JSON (final
states with base64 images) come last in their row, so listing queries never read them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Migration = tuple[int, str, Sequence[str]]

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS af_schema_version ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


def _core(ts: str, real: str, bigint: str, serial_pk: str) -> list[str]:
    """Version 1 for one backend; type names differ, shapes do not."""
    return [
        "CREATE TABLE af_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE af_workflows (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            latest_version INTEGER NOT NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            updated_by TEXT)""",
        "CREATE INDEX af_workflows_updated ON af_workflows (updated_at, id)",
        f"""CREATE TABLE af_workflow_versions (
            workflow_id TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            message TEXT,
            author TEXT,
            created_at {ts} NOT NULL,
            document TEXT NOT NULL,
            PRIMARY KEY (workflow_id, version))""",
        f"""CREATE TABLE af_workflow_drafts (
            id {serial_pk},
            workflow_id TEXT NOT NULL,
            base_version INTEGER,
            latest_version INTEGER,
            message TEXT,
            author TEXT,
            created_at {ts} NOT NULL,
            document TEXT NOT NULL)""",
        "CREATE INDEX af_workflow_drafts_wf ON af_workflow_drafts (workflow_id, id)",
        f"""CREATE TABLE af_sources (
            id TEXT PRIMARY KEY, updated_at {ts} NOT NULL, spec TEXT NOT NULL)""",
        f"""CREATE TABLE af_queues (
            id TEXT PRIMARY KEY, updated_at {ts} NOT NULL, spec TEXT NOT NULL)""",
        f"""CREATE TABLE af_secrets (
            name TEXT PRIMARY KEY,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            ciphertext TEXT NOT NULL)""",
        f"""CREATE TABLE af_runs (
            run_id TEXT PRIMARY KEY,
            workflow_id TEXT,
            workflow_version INTEGER,
            status TEXT NOT NULL,
            user_name TEXT,
            started_at {ts} NOT NULL,
            ended_at {ts},
            recorded_at {ts} NOT NULL,
            total_runtime_ms {real},
            tokens_prompt {bigint},
            tokens_completion {bigint},
            tokens_total {bigint},
            cost_usd {real},
            error TEXT,
            input TEXT,
            trace TEXT,
            final_state TEXT)""",
        "CREATE INDEX af_runs_started ON af_runs (started_at, run_id)",
        "CREATE INDEX af_runs_workflow ON af_runs (workflow_id, started_at, run_id)",
        "CREATE INDEX af_runs_status ON af_runs (status, started_at, run_id)",
        "CREATE INDEX af_runs_user ON af_runs (user_name, started_at, run_id)",
        f"""CREATE TABLE af_users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            password_hash TEXT NOT NULL)""",
        f"""CREATE TABLE af_api_tokens (
            name TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
            created_at {ts} NOT NULL,
            expires_at {ts},
            last_used_at {ts})""",
    ]


def _cancels(ts: str) -> list[str]:
    """Version 2: cancel requests, so one process can stop a run another process runs."""
    return [
        f"""CREATE TABLE af_cancel_requests (
            run_id TEXT PRIMARY KEY,
            requested_at {ts} NOT NULL,
            requested_by TEXT)""",
    ]


def _batches(ts: str, real: str, bigint: str) -> list[str]:
    """Version 3: batch runs (spec section 13).

    ``af_batch_rows`` is the work list: every row's input and who holds it (a lease that
    expires, so a lost worker's rows are handed out again); ``af_batch_results`` holds each
    row's result, written once (its primary key makes a second write a no-op);
    ``af_batch_workers`` is what each runner last reported (rows running, waiting on a queue).
    """
    return [
        f"""CREATE TABLE af_batches (
            batch_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            workflow_version INTEGER,
            status TEXT NOT NULL
                CHECK (status IN ('queued', 'running', 'finished', 'cancelled', 'failed')),
            backend TEXT NOT NULL,
            total INTEGER NOT NULL,
            user_name TEXT,
            dataset TEXT,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            finished_at {ts},
            error TEXT,
            options TEXT NOT NULL,
            document TEXT NOT NULL)""",
        "CREATE INDEX af_batches_created ON af_batches (created_at, batch_id)",
        "CREATE INDEX af_batches_status ON af_batches (status, backend)",
        f"""CREATE TABLE af_batch_rows (
            batch_id TEXT NOT NULL,
            row_no INTEGER NOT NULL,
            line INTEGER,
            status TEXT NOT NULL CHECK (status IN ('pending', 'leased', 'done', 'failed')),
            lease_owner TEXT,
            lease_expires_at {ts},
            attempts INTEGER NOT NULL DEFAULT 0,
            input TEXT,
            PRIMARY KEY (batch_id, row_no))""",
        "CREATE INDEX af_batch_rows_status ON af_batch_rows (batch_id, status, row_no)",
        f"""CREATE TABLE af_batch_results (
            batch_id TEXT NOT NULL,
            row_no INTEGER NOT NULL,
            status TEXT NOT NULL,
            run_id TEXT,
            latency_ms {real},
            tokens_prompt {bigint},
            tokens_completion {bigint},
            tokens_total {bigint},
            cost_usd {real},
            score {real},
            queue_wait_ms {real},
            recorded_at {ts} NOT NULL,
            recorded_by TEXT,
            error TEXT,
            output TEXT,
            trace TEXT,
            PRIMARY KEY (batch_id, row_no))""",
        f"""CREATE TABLE af_batch_workers (
            batch_id TEXT NOT NULL,
            owner TEXT NOT NULL,
            running INTEGER NOT NULL,
            waiting INTEGER NOT NULL,
            seen_at {ts} NOT NULL,
            PRIMARY KEY (batch_id, owner))""",
    ]


SQLITE: list[Migration] = [
    (1, "workbench store", _core("TEXT", "REAL", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT")),
    (2, "cancel requests", _cancels("TEXT")),
    (3, "batch runs", _batches("TEXT", "REAL", "INTEGER")),
]

POSTGRES: list[Migration] = [
    (
        1,
        "workbench store",
        _core(
            "TIMESTAMPTZ",
            "DOUBLE PRECISION",
            "BIGINT",
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        ),
    ),
    (2, "cancel requests", _cancels("TIMESTAMPTZ")),
    (3, "batch runs", _batches("TIMESTAMPTZ", "DOUBLE PRECISION", "BIGINT")),
]


def apply(
    execute: Callable[[str, Sequence[Any]], Any],
    query: Callable[[str], list[dict[str, Any]]],
    steps: Sequence[Migration],
    applied_at: str,
) -> list[int]:
    """Apply the steps not yet recorded, in order, inside the caller's transaction.

    The caller holds the backend's exclusive lock for the whole transaction, so two
    processes starting at once apply each step exactly once.
    """
    execute(VERSION_TABLE, ())
    done = {int(r["version"]) for r in query("SELECT version FROM af_schema_version")}
    known = [n for n, _, _ in steps]
    if done and max(done) > max(known):
        from agentflow.errors import InternalServerError

        raise InternalServerError(
            f"the store's schema is at version {max(done)}, newer than this AgentFlow knows "
            f"({max(known)}); upgrade AgentFlow before using this store"
        )
    applied = []
    for number, description, statements in sorted(steps, key=lambda s: s[0]):
        if number in done:
            continue
        for sql in statements:
            execute(sql, ())
        execute(
            "INSERT INTO af_schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (number, description, applied_at),
        )
        applied.append(number)
    return applied
