"""Run history: one row per run id, written from the final state a run returns.

A resumed run records again under the same id and updates its row (its first start time
stays, so the history does not reorder). Final states may hold megabytes of base64 images,
so they are kept as JSON text in the last column and only :meth:`get_run` reads them;
listing pages through an index on (started_at, run_id) with a keyset cursor, which costs
the same on page 1 and page 1,000.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agentflow.errors import NotFoundError, ValidationError
from agentflow.store import codec
from agentflow.store.core import SQLCore

log = logging.getLogger("agentflow.store")

#: Statuses a recorded run may have: spec section 8's four, and ``running`` for a run
#: recorded when it starts (so another process can see and cancel it).
RUN_STATUSES = ("succeeded", "failed", "interrupted", "cancelled", "running")

_SUMMARY = (
    "run_id, workflow_id, workflow_version, status, user_name, started_at, ended_at, "
    "total_runtime_ms, tokens_prompt, tokens_completion, tokens_total, cost_usd, error"
)


def _bad(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", errors=[{"path": path, "message": message}])


def _number(value: Any, path: str, kind: type = float) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(path, f"expected a number, got {type(value).__name__}")
    return kind(value)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "workflow_id": row["workflow_id"],
        "workflow_version": row["workflow_version"],
        "status": row["status"],
        "user": row["user_name"],
        "started_at": codec.iso(row["started_at"]),
        "ended_at": codec.iso(row["ended_at"]),
        "total_runtime_ms": row["total_runtime_ms"],
        "tokens": {
            "prompt": row["tokens_prompt"] or 0,
            "completion": row["tokens_completion"] or 0,
            "total": row["tokens_total"] or 0,
        },
        "cost_usd": row["cost_usd"],
        "error": codec.loads(row["error"]),
    }


_RUN_UPSERT = (
    "INSERT INTO af_runs (run_id, workflow_id, workflow_version, status, user_name, "
    "started_at, ended_at, recorded_at, total_runtime_ms, tokens_prompt, "
    "tokens_completion, tokens_total, cost_usd, error, input, trace, final_state) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET "
    "workflow_id = COALESCE(excluded.workflow_id, af_runs.workflow_id), "
    "workflow_version = COALESCE(excluded.workflow_version, af_runs.workflow_version), "
    "status = excluded.status, "
    "user_name = COALESCE(excluded.user_name, af_runs.user_name), "
    "ended_at = excluded.ended_at, recorded_at = excluded.recorded_at, "
    "total_runtime_ms = excluded.total_runtime_ms, "
    "tokens_prompt = excluded.tokens_prompt, "
    "tokens_completion = excluded.tokens_completion, "
    "tokens_total = excluded.tokens_total, cost_usd = excluded.cost_usd, "
    "error = excluded.error, input = COALESCE(excluded.input, af_runs.input), "
    "trace = excluded.trace, final_state = excluded.final_state"
)


class RunsMixin(SQLCore):
    def record_run(
        self,
        state: dict[str, Any],
        *,
        user: str | None = None,
        input: dict[str, Any] | None = None,
        workflow_version: int | None = None,
    ) -> str:
        params = self._run_params(state, user=user, input=input, workflow_version=workflow_version)
        with self._write() as tx:
            tx.run(_RUN_UPSERT, params)
        log.debug("recorded run %s (%s)", params[0], params[3])
        return params[0]

    def record_runs(self, runs: Sequence[dict[str, Any]]) -> list[str]:
        """Several runs in one transaction (``{"state", "user", "input", "workflow_version"}``
        each): a server answering many runs a second pays one commit, and another process
        one cache refresh, per group instead of per run. All or none are recorded."""
        rows = [
            self._run_params(r["state"], user=r.get("user"), input=r.get("input"),
                             workflow_version=r.get("workflow_version"))
            for r in runs
        ]
        if rows:
            with self._write() as tx:
                for params in rows:
                    tx.run(_RUN_UPSERT, params)
        return [params[0] for params in rows]

    @staticmethod
    def _run_params(
        state: dict[str, Any], *, user: str | None, input: dict[str, Any] | None, workflow_version: int | None
    ) -> tuple[Any, ...]:
        meta = state.get("metadata") if isinstance(state, dict) else None
        run_id = meta.get("run_id") if isinstance(meta, dict) else None
        if not isinstance(run_id, str) or not run_id or not isinstance(meta, dict):
            raise _bad("metadata.run_id", "a recorded run needs its final state's metadata.run_id")
        status = meta.get("status")
        if status not in RUN_STATUSES:
            known = ", ".join(RUN_STATUSES)
            raise _bad("metadata.status", f"must be one of {known}, not {status!r}")
        tokens = meta.get("tokens") if isinstance(meta.get("tokens"), dict) else {}
        started = meta.get("started_at")
        ended = meta.get("ended_at")
        version = workflow_version if workflow_version is not None else meta.get("workflow_version")
        if input is None and "user_input" in state:
            input = {"user_input": state["user_input"]}
        trace = meta.get("trace") if isinstance(meta.get("trace"), list) else []
        now = codec.now()
        params = (
            meta["run_id"],
            meta.get("workflow_id"),
            _number(version, "workflow_version", int),
            status,
            user,
            codec.parse_time(started, field="metadata.started_at") if started else now,
            codec.parse_time(ended, field="metadata.ended_at") if ended else None,
            now,
            _number(meta.get("total_runtime_ms"), "metadata.total_runtime_ms"),
            _number(tokens.get("prompt"), "metadata.tokens.prompt", int),
            _number(tokens.get("completion"), "metadata.tokens.completion", int),
            _number(tokens.get("total"), "metadata.tokens.total", int),
            _number(meta.get("cost_usd"), "metadata.cost_usd"),
            codec.dumps(meta["error"]) if meta.get("error") is not None else None,
            codec.dumps(input) if input is not None else None,
            codec.dumps(trace),
            codec.dumps(state),
        )
        return params

    def get_run(self, run_id: str, *, include_state: bool = True) -> dict[str, Any]:
        """The stored run; ``include_state=False`` skips parsing a possibly huge final state."""
        state_col = "final_state" if include_state else "NULL AS final_state"
        with self._read() as tx:
            row = tx.one(
                f"SELECT {_SUMMARY}, input, trace, {state_col} FROM af_runs WHERE run_id = ?",
                (run_id,),
            )
        if row is None:
            raise NotFoundError(f'run "{run_id}" not found')
        out = _summary(row)
        out["input"] = codec.loads(row["input"])
        out["trace"] = codec.loads(row["trace"]) or []
        out["final_state"] = codec.loads(row["final_state"])
        return out

    def request_cancel(self, run_id: str, *, by: str | None = None) -> None:
        """Ask whichever process runs ``run_id`` to stop it (see runtime/remote_cancel.py)."""
        with self._write() as tx:
            tx.run(
                "INSERT INTO af_cancel_requests (run_id, requested_at, requested_by) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, codec.now(), by),
            )

    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        """Which of ``run_ids`` someone asked to cancel."""
        if not run_ids:
            return set()
        marks = ", ".join("?" for _ in run_ids)
        with self._read() as tx:
            rows = tx.all(f"SELECT run_id FROM af_cancel_requests WHERE run_id IN ({marks})", list(run_ids))
        return {r["run_id"] for r in rows}

    def clear_cancel_request(self, run_id: str) -> None:
        with self._write() as tx:
            tx.run("DELETE FROM af_cancel_requests WHERE run_id = ?", (run_id,))

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        user: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if not 1 <= int(limit) <= 1000:
            raise _bad("limit", "must be 1..1000")
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("workflow_id", workflow), ("status", status), ("user_name", user)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("started_at >= ?")
            params.append(codec.parse_time(since, field="since"))
        if until is not None:
            where.append("started_at < ?")
            params.append(codec.parse_time(until, field="until"))
        if cursor:
            last_started, last_id = codec.decode_cursor(cursor, 2)
            where.append("(started_at, run_id) < (?, ?)")
            params += [codec.parse_time(last_started, field="cursor"), str(last_id)]
        sql = f"SELECT {_SUMMARY} FROM af_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        params.append(int(limit) + 1)
        with self._read() as tx:
            rows = tx.all(sql, params)
        page = [_summary(r) for r in rows[: int(limit)]]
        if len(rows) <= int(limit):
            return page, None
        return page, codec.encode_cursor(page[-1]["started_at"], page[-1]["run_id"])
