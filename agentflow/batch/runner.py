"""A runner: one process working on one batch's rows, used by both backends.

It runs leased rows concurrently under asyncio (``arun_workflow``, at most ``concurrency``
at once), records their results in groups (one transaction per ``FLUSH_ROWS`` rows or
``FLUSH_S`` seconds, not one per row), and sends a heartbeat every ``HEARTBEAT_S`` that
extends its leases, reports how many of its rows run and wait on a queue, and notices a
cancelled batch (rows not yet started are then given back; rows already running finish).

The local backend lets a runner lease more rows as it goes (``claim=True``); a Celery task
hands it the rows of its chunk. A runner that dies stops sending heartbeats: its leases
expire after ``LEASE_S`` and its rows are handed out again. A row started ``MAX_ATTEMPTS``
times without ever being recorded (it keeps killing its worker) is recorded as failed.

Pacing is not a runner's business: every provider call acquires its node's queue (shared
through Redis across processes when configured), so rows go exactly as fast as the
workflow's queues allow.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from agentflow.batch.options import BatchOptions
from agentflow.batch.rows import failed_result, state_result
from agentflow.batch.scorers import parse_scorer
from agentflow.errors import AgentFlowError, ExecutionError, InternalServerError
from agentflow.store.batches import ACTIVE_STATUSES

log = logging.getLogger("agentflow.batch")

#: How long a runner's hold on a row lasts without a heartbeat. A lost worker's rows are
#: handed out again this long after its last heartbeat (plus the next sweep).
LEASE_S = 15.0
HEARTBEAT_S = 2.0
FLUSH_ROWS = 50
FLUSH_S = 0.5
MAX_ATTEMPTS = 3


_running: dict[str, set[Runner]] = {}
_running_lock = threading.Lock()


def notify_cancelled(batch_id: str) -> int:
    """Tell this process's runners of ``batch_id`` at once that it was cancelled (other
    processes notice at their next heartbeat). Returns how many were told."""
    with _running_lock:
        runners = list(_running.get(batch_id, ()))
    for runner in runners:
        loop = runner.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(runner.stop_soon)
    return len(runners)


def new_owner(kind: str = "run", node: str | None = None) -> str:
    """A lease owner naming where it runs: ``run:<node or host>:<pid>:<random>``."""
    return f"{kind}:{node or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def load_spec(batch: dict[str, Any], store: Any) -> Any:
    """The batch's workflow, validated against this store's workspace."""
    from agentflow.spec.validate import validate_workflow

    return validate_workflow(batch["document"], workspace=store)


class Runner:
    """Runs rows of one batch in this process (see the module docstring)."""

    def __init__(
        self,
        store: Any,
        batch: dict[str, Any],
        *,
        owner: str,
        concurrency: int | None = None,
        spec: Any = None,
        lease_s: float = LEASE_S,
    ) -> None:
        self.store = store
        self.batch_id: str = batch["batch_id"]
        self.options = BatchOptions.from_dict(batch.get("options"))
        self.spec = spec if spec is not None else load_spec(batch, store)
        self.scorer = parse_scorer(self.options.scorer or "exact") if self.options.expected is not None else None
        self.owner = owner
        self.concurrency = max(1, int(concurrency or self.options.concurrency))
        self.lease_s = lease_s
        self.run_kw: dict[str, Any] = {
            "subqueue": self.options.subqueue,
            "workspace": store,
            "workflow_version": batch.get("workflow_version"),
            "user": batch.get("user"),
            "raise_on_error": False,
        }
        self.queue_ids = sorted({n.queue for n in self.spec.nodes if n.queue})
        self.queued: collections.deque[dict[str, Any]] = collections.deque()
        self.active = 0
        self.recorded = 0
        self.stopping = False
        self._claiming = False
        self._claim_until: float | None = None
        self._claim_step: int | None = None
        self._claim_task: asyncio.Task[None] | None = None
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._flush_lock: asyncio.Lock | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop_task: asyncio.Future[None] | None = None

    # -- the whole run ------------------------------------------------------------------

    async def run(
        self, rows: Sequence[dict[str, Any]] = (), *, claim: bool = False, top_up_s: float | None = None
    ) -> int:
        """Run ``rows`` (leased to this runner). With ``claim``, lease and run more until the
        batch has none left for it. With ``top_up_s`` (a Celery chunk), lease more, ``len(rows)``
        at a time, for that many seconds, when no node of the workflow waits on a queue (see
        :meth:`tops_up`). Returns how many rows it recorded."""
        self.queued.extend(rows)
        topping = top_up_s is not None and bool(rows) and self.tops_up
        self._claiming = (claim or topping) and not self.stopping
        self._claim_until = time.monotonic() + top_up_s if topping and top_up_s is not None else None
        self._claim_step = len(rows) if topping else None
        self._flush_lock = asyncio.Lock()
        recorded_before = self.recorded
        workers = self.concurrency if self._claiming else min(self.concurrency, len(self.queued))
        if workers == 0:
            return 0
        self.loop = asyncio.get_running_loop()
        with _running_lock:
            _running.setdefault(self.batch_id, set()).add(self)
        beat = asyncio.create_task(self._heartbeat())
        ok = False
        try:
            await asyncio.to_thread(self._note)
            self.warm()
            await asyncio.gather(*(self._work() for _ in range(workers)))
            ok = True
        finally:
            with _running_lock:
                mine = _running.get(self.batch_id)
                if mine is not None:
                    mine.discard(self)
                    if not mine:
                        _running.pop(self.batch_id, None)
            beat.cancel()
            if self._claim_task is not None and not self._claim_task.done():
                self._claim_task.cancel()
            await self._finish(ok)
        return self.recorded - recorded_before

    async def _finish(self, ok: bool) -> None:
        """Record what is buffered; give back whatever this runner still holds."""
        for attempt in range(3):
            try:
                await self._flush(force=True)
                break
            except Exception:
                log.warning("batch %s: could not record results (try %d of 3)", self.batch_id, attempt + 1,
                            exc_info=True)
                await asyncio.sleep(0.5 * (attempt + 1))
        self.queued.clear()
        try:
            await asyncio.to_thread(self._release_all)
        except Exception:  # the leases expire by themselves
            log.warning("batch %s: could not give back rows of %s", self.batch_id, self.owner, exc_info=True)
        if not ok:
            log.info("batch %s: runner %s stopped early; its unrecorded rows go back to pending",
                     self.batch_id, self.owner)

    def _release_all(self) -> None:
        self.store.release_batch_rows(self.batch_id, self.owner)
        self.store.drop_batch_runner(self.batch_id, self.owner)

    @property
    def tops_up(self) -> bool:
        """Whether a Celery chunk of this batch keeps ``concurrency`` rows in flight by
        leasing pending rows as its own finish. Only when no node waits on a queue: rows
        bound by latency and CPU then overlap their waits instead of running in lockstep,
        chunk after chunk (measured: 2 workers went from 1.7x to 1.07-1.11x the wall time
        of two plain processes, bench/batch.py). A queue sets the pace by itself; there, a
        chunk that took more rows would only hold them from other workers and from a
        cancel, and would spend an idle queue's burst all at once, harder to keep within
        the limit where the calls land."""
        return not self.queue_ids

    def warm(self) -> None:
        """Build the workflow's provider clients (and this loop's async SDK clients) before
        any row acquires a queue. Otherwise the first call of each process imports its SDK
        and builds its client *after* its grant, lands up to a second late, and bunches up
        with the next window's calls where the provider counts them."""
        from agentflow.sources.clients import clients

        for sid in sorted({n.source for n in self.spec.nodes if n.source}):
            try:
                source = self.spec.source(sid) or self.store.get_source(sid)
                if source is None:
                    continue
                provider = clients.get(source, self.store, self.store.workspace_key)
                sdk = getattr(provider, "_clients", None)  # the OpenAI providers' SDK clients
                if sdk is not None and callable(getattr(sdk, "async_", None)):
                    client = sdk.async_()
                    # the SDK imports its resources (and their pydantic models) on first use
                    getattr(getattr(client, "chat", None), "completions", None)
                    getattr(client, "images", None)
            except Exception:  # a broken source fails its rows with a proper error later
                log.debug("batch %s: could not prepare source %s", self.batch_id, sid, exc_info=True)
        try:  # httpx's async transport loads anyio's asyncio backend on its first request
            import anyio

            anyio.Event()
        except Exception:
            log.debug("anyio not ready", exc_info=True)

    # -- rows ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            row = await self._next()
            if row is None:
                return
            self.active += 1
            try:
                result = await self.run_row(row)
            finally:
                self.active -= 1
            self._buffer.append(result)
            if len(self._buffer) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_S:
                await self._flush()

    async def _next(self) -> dict[str, Any] | None:
        while True:
            if self.stopping:
                return None
            if self._claiming and self._claim_until is not None and time.monotonic() >= self._claim_until:
                self._claiming = False
            if self.queued:
                row = self.queued.popleft()
                if self._claiming and len(self.queued) < self.concurrency // 2:
                    self._refill()
                return row
            if not self._claiming:
                return None
            self._refill()
            assert self._claim_task is not None
            await asyncio.shield(self._claim_task)

    def _refill(self) -> None:
        if self._claim_task is None or self._claim_task.done():
            self._claim_task = asyncio.create_task(self._claim())

    async def _claim(self) -> None:
        want = max(1, self.concurrency + self.concurrency // 2 - len(self.queued) - self.active)
        if self._claim_step is not None:  # topping up a Celery chunk
            want = max(1, min(want, self._claim_step, self.concurrency - self.active))
        rows = await asyncio.to_thread(self._lease, want)
        if not rows:
            self._claiming = False
        self.queued.extend(rows)

    def _lease(self, want: int) -> list[dict[str, Any]]:
        """Up to ``want`` pending rows; a chunk topping up then takes rows still waiting at
        the broker (their messages will find them gone), so that the batch's last rows run
        in the chunks already running rather than in chunks of their own, one after another."""
        rows = self.store.lease_batch_rows(self.batch_id, self.owner, lease_s=self.lease_s, limit=want)
        if self._claim_step is not None and len(rows) < want:
            rows += self.store.lease_batch_rows(
                self.batch_id, self.owner, lease_s=self.lease_s, limit=want - len(rows), pending=False,
                take_dispatched=True,
            )
        return rows

    async def run_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row's result (never raises but for cancellation)."""
        from agentflow.runtime.executor import arun_workflow

        scoring = self.scorer is not None
        if row.get("attempts", 1) > MAX_ATTEMPTS:
            error = ExecutionError(
                f"row {row['row']} was started {row['attempts'] - 1} times and never finished: the process "
                "running it was lost each time (killed, or out of memory?)"
            )
            return dict(failed_result(error, scoring=scoring), row=row["row"])
        state = row["input"] or {}
        try:
            final = await arun_workflow(self.spec, state, **self.run_kw)
            expected = state.get(self.options.expected) if scoring else None
            result = state_result(final, output_key=self.options.output_key, scorer=self.scorer, expected=expected)
        except AgentFlowError as exc:
            result = failed_result(exc, scoring=scoring)
        except Exception as exc:  # a bug: the traceback goes to the log, the row fails
            log.exception("batch %s row %s failed unexpectedly", self.batch_id, row["row"])
            result = failed_result(InternalServerError(f"internal error: {type(exc).__name__}: {exc}"),
                                   scoring=scoring)
        result["row"] = row["row"]
        return result

    # -- recording ----------------------------------------------------------------------

    async def _flush(self, force: bool = False) -> None:
        assert self._flush_lock is not None
        if self._flush_lock.locked() and not force:
            return  # another flush is writing; these rows go with the next one
        async with self._flush_lock:
            items, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
            if not items:
                return
            try:
                await asyncio.to_thread(
                    self.store.record_batch_results, self.batch_id, items, recorded_by=self.owner
                )
            except BaseException:
                self._buffer[:0] = items  # keep them for the next try
                raise
            self.recorded += len(items)

    # -- heartbeat ----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                active = await asyncio.to_thread(self._beat)
            except Exception:
                log.warning("batch %s: heartbeat failed", self.batch_id, exc_info=True)
                continue
            if not active and not self.stopping:
                await self._stop()
            if self._buffer and time.monotonic() - self._last_flush >= FLUSH_S:
                try:
                    await self._flush()
                except Exception:
                    log.warning("batch %s: could not record results; will retry", self.batch_id, exc_info=True)

    def _beat(self) -> bool:
        """Extend the leases, report, and say whether the batch is still active."""
        self.store.renew_batch_leases(self.batch_id, self.owner, lease_s=self.lease_s)
        self._note()
        return self.store.get_batch(self.batch_id, include_document=False)["status"] in ACTIVE_STATUSES

    def _note(self) -> None:
        self.store.note_batch_runner(self.batch_id, self.owner, running=self.active, waiting=self.waiting())

    def waiting(self) -> int:
        """Calls of this process waiting in the batch's subqueue of the workflow's queues."""
        if not self.queue_ids:
            return 0
        from agentflow.runtime.rate_limiter import get_queue_manager

        mgr = get_queue_manager()
        total = 0
        for qid in self.queue_ids:
            lim = mgr.find(qid)
            if lim is None:
                continue
            try:
                total += int(lim.stats().get("waiting", {}).get(self.options.subqueue, 0))
            except Exception:  # figures only: never let them stop a heartbeat
                log.debug("no stats for queue %s", qid, exc_info=True)
        return total

    def stop_soon(self) -> None:
        """Called in the runner's loop: stop as for a cancelled batch."""
        if not self.stopping:
            self._stop_task = asyncio.ensure_future(self._stop())

    async def _stop(self) -> None:
        """The batch was cancelled: take no more rows, give back those not started."""
        self.stopping = True
        self._claiming = False
        rows = [r["row"] for r in self.queued]
        self.queued.clear()
        if rows:
            await asyncio.to_thread(self.store.release_batch_rows, self.batch_id, self.owner, rows)
        log.info("batch %s is no longer active: %d rows given back, %d running finish", self.batch_id,
                 len(rows), self.active)
