"""Batch runs (spec section 13): the batch, its work list with leases, results written once.

Three tables (migration 3):

- ``af_batches``: one row per batch, with the workflow document (and version) it runs, so
  any worker on any machine runs the same thing, and its options.
- ``af_batch_rows``: the work list. Each row's input and its state: ``pending`` (nobody has
  it), ``leased`` (someone has it until ``lease_expires_at``), ``done`` or ``failed``
  (recorded). The store, not the broker, knows which rows are done: a broker may lose a
  message or park it for an hour, but a lease that expires makes the row available again.
  Leases whose owner starts with ``send:`` are rows handed to the broker and not yet taken
  by a runner (they count as pending in the progress figures).
- ``af_batch_results``: one record per (batch, row), inserted with ``ON CONFLICT DO
  NOTHING``: a row that ran twice (its worker died after writing, before acknowledging)
  keeps its first record.

``af_batch_workers`` holds what each runner last reported (rows running, rows waiting on a
queue), for the progress figures and for how many chunks to keep at the broker.

Rows are *not* recorded in the run history (``af_runs``): a batch of 10,000 rows would
bury every interactive run there and cost a full final-state write per row. A row's
result (status, run id, output, error, latency, tokens, cost, score, and the trace of a
failed row) lives here instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from agentflow.errors import ConflictError, NotFoundError, ValidationError
from agentflow.store import codec
from agentflow.store.core import DuplicateKey, SQLCore, Tx

log = logging.getLogger("agentflow.store")

#: A batch's statuses (spec section 13); rows are handed out only while it is active.
BATCH_STATUSES = ("queued", "running", "finished", "cancelled", "failed")
ACTIVE_STATUSES = ("queued", "running")
#: Lease owners of rows handed to a broker but not yet taken by a runner.
DISPATCH_PREFIX = "send:"
#: A runner that reported within this many seconds counts as present.
RUNNER_FRESH_S = 15.0

_INSERT_ROWS = 500  # rows per multi-row INSERT (SQLite allows 32,766 parameters)

_BATCH_COLS = (
    "batch_id, workflow_id, workflow_version, status, backend, total, user_name, dataset, "
    "created_at, updated_at, finished_at, error, options"
)
_RESULT_COLS = (
    "batch_id, row_no, status, run_id, latency_ms, tokens_prompt, tokens_completion, tokens_total, "
    "cost_usd, score, queue_wait_ms, recorded_at, recorded_by, error, output, trace"
)
_RESULT_WIDTH = 16


def _marks(width: int, count: int) -> str:
    one = "(" + ", ".join("?" for _ in range(width)) + ")"
    return ", ".join(one for _ in range(count))


def _in(values: Sequence[Any]) -> str:
    return "(" + ", ".join("?" for _ in values) + ")"


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _batch(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "batch_id": row["batch_id"],
        "workflow_id": row["workflow_id"],
        "workflow_version": row["workflow_version"],
        "status": row["status"],
        "backend": row["backend"],
        "total": row["total"],
        "user": row["user_name"],
        "dataset": row["dataset"],
        "created_at": codec.iso(row["created_at"]),
        "updated_at": codec.iso(row["updated_at"]),
        "finished_at": codec.iso(row["finished_at"]),
        "error": codec.loads(row["error"]),
        "options": codec.loads(row["options"]) or {},
    }
    if "document" in row:
        out["document"] = codec.loads(row["document"])
    return out


def _result_params(batch_id: str, r: dict[str, Any], now: Any, by: str | None) -> list[Any]:
    tokens = r.get("tokens") or {}
    return [
        batch_id,
        int(r["row"]),
        str(r["status"]),
        r.get("run_id"),
        r.get("latency_ms"),
        tokens.get("prompt"),
        tokens.get("completion"),
        tokens.get("total"),
        r.get("cost_usd"),
        r.get("score"),
        r.get("queue_wait_ms"),
        now,
        by,
        codec.dumps(r["error"]) if r.get("error") is not None else None,
        codec.dumps(r.get("output")),
        codec.dumps(r["trace"]) if r.get("trace") else None,
    ]


def _result(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "row": row["row_no"],
        "status": row["status"],
        "run_id": row["run_id"],
        "final_output": codec.loads(row["output"]),
        "error": codec.loads(row["error"]),
        "latency_ms": row["latency_ms"],
        "tokens": {
            "prompt": row["tokens_prompt"] or 0,
            "completion": row["tokens_completion"] or 0,
            "total": row["tokens_total"] or 0,
        },
        "cost_usd": row["cost_usd"],
        "score": row["score"],
        "queue_wait_ms": row["queue_wait_ms"],
    }


class BatchesMixin(SQLCore):
    """Batches, their leased work list and their write-once results."""

    # -- batches ------------------------------------------------------------------------

    def create_batch(self, batch: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Store a new batch and its rows in one transaction; returns the batch record.

        ``batch``: ``batch_id``, ``workflow_id``, ``document``, and optionally
        ``workflow_version``, ``backend``, ``user``, ``dataset``, ``options``, ``status``.
        ``rows``: ``{"row", "line", "input"}``; a row that cannot run (malformed) carries a
        ``result`` instead, recorded at once as failed.
        """
        now = codec.now()
        status = batch.get("status", "queued")
        if status not in BATCH_STATUSES:
            raise ValidationError(f"status: must be one of {', '.join(BATCH_STATUSES)}, not {status!r}")
        batch_id = str(batch["batch_id"])
        params = [
            batch_id,
            batch["workflow_id"],
            batch.get("workflow_version"),
            status,
            batch.get("backend", "local"),
            len(rows),
            batch.get("user"),
            batch.get("dataset"),
            now,
            now,
            None,
            None,
            codec.dumps(batch.get("options") or {}),
            codec.dumps(batch["document"]),
        ]
        failed = [r for r in rows if r.get("result") is not None]
        try:
            with self._write() as tx:
                tx.run(f"INSERT INTO af_batches ({_BATCH_COLS}, document) VALUES {_marks(14, 1)}", params)
                for part in _chunks(rows, _INSERT_ROWS):
                    values: list[Any] = []
                    for r in part:
                        done = r.get("result") is not None
                        values += [
                            batch_id,
                            int(r["row"]),
                            r.get("line"),
                            "failed" if done else "pending",
                            None if r.get("input") is None else codec.dumps(r["input"]),
                        ]
                    tx.run(
                        "INSERT INTO af_batch_rows (batch_id, row_no, line, status, input) "
                        f"VALUES {_marks(5, len(part))}",
                        values,
                    )
                if failed:
                    self._insert_results(tx, batch_id, [dict(r["result"], row=r["row"]) for r in failed], now, None)
        except DuplicateKey:
            raise ConflictError(f'batch "{batch_id}" already exists') from None
        return self.get_batch(batch_id, include_document=False)

    def get_batch(self, batch_id: str, *, include_document: bool = True) -> dict[str, Any]:
        """The batch record (its ``document`` too unless told not to); NotFoundError if unknown."""
        doc = ", document" if include_document else ""
        with self._read() as tx:
            row = tx.one(f"SELECT {_BATCH_COLS}{doc} FROM af_batches WHERE batch_id = ?", (batch_id,))
        if row is None:
            raise NotFoundError(f'batch "{batch_id}" not found')
        return _batch(row)

    def list_batches(
        self, *, workflow: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Batches, newest first, each with its progress counts (no documents)."""
        if not 1 <= int(limit) <= 1000:
            raise ValidationError("limit: must be 1..1000", errors=[{"path": "limit", "message": "must be 1..1000"}])
        where, params = [], []
        if workflow is not None:
            where.append("workflow_id = ?")
            params.append(workflow)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {_BATCH_COLS} FROM af_batches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, batch_id DESC LIMIT ? OFFSET ?"
        params += [int(limit), max(0, int(offset))]
        with self._read() as tx:
            batches = [_batch(r) for r in tx.all(sql, params)]
            ids = [b["batch_id"] for b in batches]
            counts: dict[str, dict[str, int]] = {i: {} for i in ids}
            means: dict[str, float | None] = {}
            if ids:
                for r in tx.all(
                    f"SELECT batch_id, status, COUNT(*) AS n FROM af_batch_rows WHERE batch_id IN {_in(ids)} "
                    "GROUP BY batch_id, status",
                    ids,
                ):
                    counts[r["batch_id"]][r["status"]] = int(r["n"])
                for r in tx.all(
                    f"SELECT batch_id, AVG(score) AS mean FROM af_batch_results WHERE batch_id IN {_in(ids)} "
                    "GROUP BY batch_id",
                    ids,
                ):
                    means[r["batch_id"]] = r["mean"]
        for b in batches:
            c = counts[b["batch_id"]]
            b.update(
                done=c.get("done", 0),
                failed=c.get("failed", 0),
                running=c.get("leased", 0),
                pending=c.get("pending", 0),
                mean_score=means.get(b["batch_id"]),
            )
        return batches

    def batch_counts(self, batch_id: str) -> dict[str, Any]:
        """Where the rows are: ``pending``, ``dispatched`` (at a broker, not yet taken),
        ``running`` (held by a runner), ``done``, ``failed``; with ``total``, ``status``,
        ``mean_score``, and the runners' latest reports: ``waiting`` (rows waiting on a
        queue) and ``runners`` (runners that reported lately)."""
        fresh = codec.now() - timedelta(seconds=RUNNER_FRESH_S)
        with self._read() as tx:
            batch = tx.one("SELECT status, total, workflow_id FROM af_batches WHERE batch_id = ?", (batch_id,))
            if batch is None:
                raise NotFoundError(f'batch "{batch_id}" not found')
            rows = tx.all(
                "SELECT status, CASE WHEN status = 'leased' AND lease_owner LIKE 'send:%' THEN 1 ELSE 0 END AS d, "
                "COUNT(*) AS n FROM af_batch_rows WHERE batch_id = ? GROUP BY status, d",
                (batch_id,),
            )
            score = tx.one("SELECT AVG(score) AS mean FROM af_batch_results WHERE batch_id = ?", (batch_id,))
            runners = tx.one(
                "SELECT COALESCE(SUM(waiting), 0) AS waiting, COUNT(*) AS runners FROM af_batch_workers "
                "WHERE batch_id = ? AND seen_at > ?",
                (batch_id, fresh),
            )
        out: dict[str, Any] = {"pending": 0, "dispatched": 0, "running": 0, "done": 0, "failed": 0}
        for r in rows:
            key = r["status"]
            if key == "leased":
                key = "dispatched" if int(r["d"]) else "running"
            out[key] += int(r["n"])
        out.update(
            batch_id=batch_id,
            workflow_id=batch["workflow_id"],
            status=batch["status"],
            total=int(batch["total"]),
            mean_score=None if score is None or score["mean"] is None else float(score["mean"]),
            waiting=int(runners["waiting"] or 0) if runners else 0,
            runners=int(runners["runners"] or 0) if runners else 0,
        )
        return out

    def set_batch_status(
        self,
        batch_id: str,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Move a batch to ``status`` (only from ``only_from`` when given); returns whether
        it moved. Cancelling also takes back the rows waiting at a broker."""
        if status not in BATCH_STATUSES:
            raise ValidationError(f"status: must be one of {', '.join(BATCH_STATUSES)}, not {status!r}")
        now = codec.now()
        ended = now if status in ("finished", "cancelled", "failed") else None
        sql = "UPDATE af_batches SET status = ?, updated_at = ?, finished_at = ?, error = ? WHERE batch_id = ?"
        params: list[Any] = [status, now, ended, codec.dumps(error) if error else None, batch_id]
        if only_from is not None:
            sql += f" AND status IN {_in(only_from)}"
            params += list(only_from)
        with self._write() as tx:
            moved = tx.run(sql, params) > 0
            if not moved and tx.one("SELECT 1 AS x FROM af_batches WHERE batch_id = ?", (batch_id,)) is None:
                raise NotFoundError(f'batch "{batch_id}" not found')
            if moved and status == "cancelled":
                tx.run(
                    "UPDATE af_batch_rows SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE batch_id = ? AND status = 'leased' AND lease_owner LIKE 'send:%'",
                    (batch_id,),
                )
        return moved

    def finish_batch_if_done(self, batch_id: str) -> bool:
        """Mark an active batch ``finished`` when no row is left to run; returns whether it did."""
        with self._write() as tx:
            return self._finish_if_done(tx, batch_id, codec.now())

    def _finish_if_done(self, tx: Tx, batch_id: str, now: Any) -> bool:
        return (
            tx.run(
                "UPDATE af_batches SET status = 'finished', updated_at = ?, finished_at = ? "
                "WHERE batch_id = ? AND status IN ('queued', 'running') AND NOT EXISTS ("
                "SELECT 1 FROM af_batch_rows WHERE batch_id = ? AND status IN ('pending', 'leased'))",
                (now, now, batch_id, batch_id),
            )
            > 0
        )

    def active_batches(self, backend: str | None = None) -> list[dict[str, Any]]:
        """Batches still queued or running (oldest first), without documents."""
        sql = f"SELECT {_BATCH_COLS} FROM af_batches WHERE status IN ('queued', 'running')"
        params: list[Any] = []
        if backend is not None:
            sql += " AND backend = ?"
            params.append(backend)
        with self._read() as tx:
            return [_batch(r) for r in tx.all(sql + " ORDER BY created_at, batch_id", params)]

    # -- the work list ------------------------------------------------------------------

    def lease_batch_rows(
        self,
        batch_id: str,
        owner: str,
        *,
        lease_s: float,
        limit: int | None = None,
        rows: Sequence[int] | None = None,
        take_from: str | None = None,
        pending: bool = True,
        count_attempt: bool = True,
        take_dispatched: bool = False,
    ) -> list[dict[str, Any]]:
        """Lease rows of an active batch to ``owner`` for ``lease_s`` seconds; returns
        ``[{"row", "line", "input", "attempts"}]`` in row order.

        A row is taken when it is pending (unless ``pending=False``), when its lease has
        expired, or when ``take_from`` holds it (a runner taking over the rows a broker
        message handed it). Rows held by anyone else, and recorded rows, are left alone, so
        two copies of one message never run a row twice at once. With ``take_dispatched``,
        rows handed to the broker and not yet taken by a worker are taken too (a chunk
        topping up: the message then finds them gone). ``rows`` limits the choice;
        ``limit`` caps how many. Nothing is leased once the batch is not active.
        """
        now = codec.now()
        until = now + timedelta(seconds=lease_s)
        conds, cparams = [], []
        if pending:
            conds.append("status = 'pending'")
        conds.append("(status = 'leased' AND lease_expires_at < ?)")
        cparams.append(now)
        if take_from is not None:
            conds.append("(status = 'leased' AND lease_owner = ?)")
            cparams.append(take_from)
        if take_dispatched:
            conds.append("(status = 'leased' AND lease_owner LIKE ?)")
            cparams.append(DISPATCH_PREFIX + "%")
        cond = "(" + " OR ".join(conds) + ")"
        inner = f"SELECT row_no FROM af_batch_rows WHERE batch_id = ? AND {cond}"
        iparams: list[Any] = [batch_id, *cparams]
        if rows is not None:
            if not rows:
                return []
            inner += f" AND row_no IN {_in(rows)}"
            iparams += [int(r) for r in rows]
        inner += " ORDER BY row_no"
        if limit is not None:
            inner += " LIMIT ?"
            iparams.append(int(limit))
        if self.backend == "postgres":
            inner += " FOR UPDATE SKIP LOCKED"
        # A materialized CTE picks the rows once: as an IN subquery, Postgres may run a
        # LIMIT ... SKIP LOCKED query more than once and lease more rows than asked.
        sql = (
            f"WITH picked AS MATERIALIZED ({inner}) "
            "UPDATE af_batch_rows SET status = 'leased', lease_owner = ?, lease_expires_at = ?, "
            f"attempts = attempts + ? WHERE batch_id = ? AND row_no IN (SELECT row_no FROM picked) AND {cond} "
            "RETURNING row_no, line, input, attempts"
        )
        params = [*iparams, owner, until, 1 if count_attempt else 0, batch_id, *cparams]
        # FOR SHARE: a cancel (which locks the batch row to update it) waits for leases in
        # progress, and they for it, so none can lease rows after the cancel took its own back.
        share = " FOR SHARE" if self.backend == "postgres" else ""
        with self._write() as tx:
            active = tx.one(f"SELECT status FROM af_batches WHERE batch_id = ?{share}", (batch_id,))
            if active is None:
                raise NotFoundError(f'batch "{batch_id}" not found')
            if active["status"] not in ACTIVE_STATUSES:
                if take_from is not None:  # a message of a batch no longer active: its rows go back
                    tx.run(
                        "UPDATE af_batch_rows SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL "
                        "WHERE batch_id = ? AND lease_owner = ? AND status = 'leased'",
                        (batch_id, take_from),
                    )
                return []
            got = tx.all(sql, params)
        out = [
            {"row": r["row_no"], "line": r["line"], "input": codec.loads(r["input"]), "attempts": r["attempts"]}
            for r in got
        ]
        out.sort(key=lambda r: r["row"])
        return out

    def renew_batch_leases(self, batch_id: str, owner: str, *, lease_s: float) -> int:
        """Extend every lease ``owner`` holds in the batch (a runner's heartbeat)."""
        until = codec.now() + timedelta(seconds=lease_s)
        with self._write() as tx:
            return tx.run(
                "UPDATE af_batch_rows SET lease_expires_at = ? "
                "WHERE batch_id = ? AND lease_owner = ? AND status = 'leased'",
                (until, batch_id, owner),
            )

    def release_batch_rows(self, batch_id: str, owner: str, rows: Sequence[int] | None = None) -> int:
        """Give rows ``owner`` holds back (pending again): rows it will not run after all."""
        sql = (
            "UPDATE af_batch_rows SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL "
            "WHERE batch_id = ? AND lease_owner = ? AND status = 'leased'"
        )
        params: list[Any] = [batch_id, owner]
        if rows is not None:
            if not rows:
                return 0
            sql += f" AND row_no IN {_in(rows)}"
            params += [int(r) for r in rows]
        with self._write() as tx:
            return tx.run(sql, params)

    # -- results ------------------------------------------------------------------------

    def record_batch_results(
        self, batch_id: str, results: Sequence[dict[str, Any]], *, recorded_by: str | None = None
    ) -> list[int]:
        """Record row results, each at most once: a row already recorded keeps its first
        record (``ON CONFLICT DO NOTHING``). Returns the rows recorded now. The batch is
        marked ``finished`` when this was its last row.

        A result: ``{"row", "status", "run_id", "output", "error", "latency_ms", "tokens",
        "cost_usd", "score", "queue_wait_ms", "trace"}`` (all but ``row`` and ``status``
        optional).
        """
        if not results:
            return []
        now = codec.now()
        with self._write() as tx:
            new = self._insert_results(tx, batch_id, results, now, recorded_by)
            if new:
                self._finish_if_done(tx, batch_id, now)
        return sorted(new)

    def _insert_results(
        self, tx: Tx, batch_id: str, results: Sequence[dict[str, Any]], now: Any, by: str | None
    ) -> list[int]:
        new: dict[int, str] = {}
        for part in _chunks(results, 200):
            params: list[Any] = []
            for r in part:
                params += _result_params(batch_id, r, now, by)
            for got in tx.all(
                f"INSERT INTO af_batch_results ({_RESULT_COLS}) VALUES {_marks(_RESULT_WIDTH, len(part))} "
                "ON CONFLICT (batch_id, row_no) DO NOTHING RETURNING row_no, status",
                params,
            ):
                new[int(got["row_no"])] = got["status"]
        for state, keep in (("done", True), ("failed", False)):
            rows = [r for r, s in new.items() if (s == "succeeded") is keep]
            for part in _chunks(rows, 500):
                tx.run(
                    "UPDATE af_batch_rows SET status = ?, lease_owner = NULL, lease_expires_at = NULL "
                    f"WHERE batch_id = ? AND row_no IN {_in(part)}",
                    [state, batch_id, *part],
                )
        return list(new)

    def batch_results(
        self,
        batch_id: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        include_trace: bool = False,
    ) -> list[dict[str, Any]]:
        """Recorded rows in row order: ``{"row", "status", "run_id", "final_output",
        "error", "latency_ms", "tokens", "cost_usd", "score", "queue_wait_ms"}`` (and
        ``trace``, kept for failed rows, with ``include_trace``)."""
        cols = _RESULT_COLS.replace(", trace", ", trace" if include_trace else "")
        sql = f"SELECT {cols} FROM af_batch_results WHERE batch_id = ? ORDER BY row_no"
        params: list[Any] = [batch_id]
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), max(0, int(offset))]
        elif offset:
            sql += " LIMIT -1 OFFSET ?" if self.backend == "sqlite" else " OFFSET ?"
            params.append(int(offset))
        with self._read() as tx:
            if tx.one("SELECT 1 AS x FROM af_batches WHERE batch_id = ?", (batch_id,)) is None:
                raise NotFoundError(f'batch "{batch_id}" not found')
            rows = tx.all(sql, params)
        out = []
        for r in rows:
            item = _result(r)
            if include_trace:
                item["trace"] = codec.loads(r["trace"])
            out.append(item)
        return out

    def batch_inputs(self, batch_id: str) -> list[dict[str, Any]]:
        """Every row's input and line, in row order (``input`` is None for malformed rows)."""
        with self._read() as tx:
            rows = tx.all(
                "SELECT row_no, line, input FROM af_batch_rows WHERE batch_id = ? ORDER BY row_no", (batch_id,)
            )
        return [{"row": r["row_no"], "line": r["line"], "input": codec.loads(r["input"])} for r in rows]

    # -- runners' reports ---------------------------------------------------------------

    def note_batch_runner(self, batch_id: str, owner: str, *, running: int, waiting: int) -> None:
        """What a runner holds right now (it reports with each heartbeat)."""
        with self._write() as tx:
            tx.run(
                "INSERT INTO af_batch_workers (batch_id, owner, running, waiting, seen_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (batch_id, owner) DO UPDATE SET running = excluded.running, "
                "waiting = excluded.waiting, seen_at = excluded.seen_at",
                (batch_id, owner, int(running), int(waiting), codec.now()),
            )

    def drop_batch_runner(self, batch_id: str, owner: str) -> None:
        with self._write() as tx:
            tx.run("DELETE FROM af_batch_workers WHERE batch_id = ? AND owner = ?", (batch_id, owner))
