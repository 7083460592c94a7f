"""Batch operations every interface calls: the CLI, the workbench page, the HTTP routes.

    create_batch   validate the workflow and options, read the data, store batch and rows
    execute_batch  run it to its end here (local) or hand it to workers and wait (celery)
    run_batch      both, returning the per-row results (the Python entry point)
    start_batch    both on a background thread, returning at once (workbench, HTTP API)
    resume_batch   run the rows not yet recorded; cancel_batch: stop handing rows out
    batch_status, batch_results, compare_batches: what a batch did
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from agentflow.batch.dataset import read_dataset
from agentflow.batch.options import BatchOptions
from agentflow.batch.rows import prepare_rows, row_line
from agentflow.errors import AgentFlowError, ConflictError, InternalServerError
from agentflow.store.batches import ACTIVE_STATUSES

log = logging.getLogger("agentflow.batch")

Progress = Callable[[dict[str, Any]], None]

#: The keys of ``batch status`` (spec section 13), and ``waiting``: rows waiting on a queue.
STATUS_FIELDS = ("batch_id", "workflow_id", "status", "total", "done", "failed", "running", "pending",
                 "mean_score", "waiting")


class BatchResults(list):
    """The per-row results of a batch, in row order, with the batch's id and status."""

    def __init__(self, rows: list[dict[str, Any]], batch_id: str, status: dict[str, Any]) -> None:
        super().__init__(rows)
        self.batch_id = batch_id
        self.status = status

    @property
    def mean_score(self) -> float | None:
        return self.status.get("mean_score")


def _store(store: Any) -> Any:
    if store is not None:
        return store
    from agentflow.store import default_store

    return default_store()


def public_status(counts: dict[str, Any]) -> dict[str, Any]:
    """The ``batch status`` object: the four counts add up to ``total`` (rows at a broker
    but not yet taken by a worker count as pending)."""
    out = {k: counts.get(k) for k in STATUS_FIELDS}
    out["pending"] = int(counts.get("pending", 0)) + int(counts.get("dispatched", 0))
    return out


def new_batch_id() -> str:
    return uuid.uuid4().hex[:16]


def create_batch(
    workflow: Any,
    data: Any,
    *,
    store: Any = None,
    user: str | None = None,
    workflow_version: int | None = None,
    dataset_name: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Validate everything, then store the batch and its rows (status ``queued``).

    ``workflow``: a spec, document, JSON text or path. ``data``: a CSV/JSONL path, file bytes
    (``dataset_name`` tells the format), a DataFrame or a list of objects. ``options``: the
    fields of :class:`~agentflow.batch.options.BatchOptions`. Raises ValidationError (bad
    workflow, data, options, or the celery backend without Redis) before storing anything.
    """
    from agentflow.spec.validate import validate_workflow

    store = _store(store)
    opts = BatchOptions(**options).checked()
    spec = validate_workflow(workflow, workspace=store)
    dataset = read_dataset(data, name=dataset_name)
    rows = prepare_rows(dataset, opts)
    if opts.backend == "celery":
        from agentflow.batch import celery_backend

        celery_backend.check_ready()
        celery_backend.check_services(celery_backend.get_app(opts.queue))
    batch = {
        "batch_id": new_batch_id(),
        "workflow_id": spec.id,
        "workflow_version": workflow_version,
        "document": spec.to_document(),
        "backend": opts.backend,
        "user": user,
        "dataset": dataset.name,
        "options": opts.to_dict(),
    }
    record = store.create_batch(batch, rows)
    log.info("batch %s created: workflow %s, %d rows (%d malformed), backend %s", record["batch_id"], spec.id,
             len(rows), sum(1 for r in rows if r.get("result")), opts.backend)
    return record


async def aexecute_batch(
    batch_id: str,
    *,
    store: Any = None,
    progress: Progress | None = None,
    progress_s: float = 0.25,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """Run a batch to its end: in this event loop (local), or by workers (celery, waited
    on in a thread). Returns the final counts."""
    store = _store(store)
    batch = await asyncio.to_thread(store.get_batch, batch_id)
    if batch["backend"] == "celery":
        from agentflow.batch import celery_backend

        stop = threading.Event()
        try:
            return await asyncio.to_thread(celery_backend.drive, store, batch_id, progress=progress, stop=stop)
        finally:
            stop.set()
    from agentflow.batch.local import run_local

    watcher = asyncio.create_task(_watch(store, batch_id, progress, progress_s)) if progress else None
    try:
        counts = await run_local(store, batch, concurrency=concurrency)
    finally:
        if watcher is not None:
            watcher.cancel()
    if progress is not None:
        progress(counts)
    return counts


async def _watch(store: Any, batch_id: str, progress: Progress, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            progress(await asyncio.to_thread(store.batch_counts, batch_id))
        except Exception:
            log.debug("progress of batch %s unavailable", batch_id, exc_info=True)


def execute_batch(
    batch_id: str,
    *,
    store: Any = None,
    progress: Progress | None = None,
    detach: bool = False,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """Blocking :func:`aexecute_batch`; ``detach`` (celery only) returns once rows are handed out."""
    store = _store(store)
    if detach:
        from agentflow.batch import celery_backend

        return celery_backend.drive(store, batch_id, detach=True)
    return _run_sync(aexecute_batch(batch_id, store=store, progress=progress, concurrency=concurrency))


def _run_sync(coro: Any) -> Any:
    """``asyncio.run``, or on a fresh thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="agentflow-batch")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_batch(spec: Any, rows: Any, **options: Any) -> BatchResults:
    """Run ``spec`` over every row and return the per-row results in row order (spec §13).

    ``rows``: a CSV/JSONL path, a DataFrame or a list of objects. Keywords: the fields of
    :class:`~agentflow.batch.options.BatchOptions` (``column``, ``backend``, ``concurrency``,
    ``subqueue``, ``expected``, ``scorer``, ``output_key``, ...) and ``store``, ``user``,
    ``workflow_version``, ``dataset_name``, ``progress`` (called with the counts as rows
    finish). The results carry ``.batch_id``, ``.status`` and ``.mean_score``.
    """
    store = _store(options.pop("store", None))
    progress = options.pop("progress", None)
    batch = create_batch(spec, rows, store=store, **options)
    counts = execute_batch(batch["batch_id"], store=store, progress=progress)
    return BatchResults([row_line(r) for r in store.batch_results(batch["batch_id"])], batch["batch_id"],
                        public_status(counts))


async def arun_batch(spec: Any, rows: Any, **options: Any) -> BatchResults:
    """Async twin of :func:`run_batch`."""
    store = _store(options.pop("store", None))
    progress = options.pop("progress", None)
    batch = await asyncio.to_thread(lambda: create_batch(spec, rows, store=store, **options))
    counts = await aexecute_batch(batch["batch_id"], store=store, progress=progress)
    results = await asyncio.to_thread(store.batch_results, batch["batch_id"])
    return BatchResults([row_line(r) for r in results], batch["batch_id"], public_status(counts))


class BatchHandle:
    """A batch running on a background thread of this process (workbench, HTTP API)."""

    def __init__(self, store: Any, batch_id: str) -> None:
        self.store = store
        self.batch_id = batch_id
        self.error: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name=f"agentflow-batch-{batch_id}", daemon=True)

    def start(self) -> BatchHandle:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            execute_batch(self.batch_id, store=self.store)
        except AgentFlowError as exc:
            self.error = exc.to_dict()
        except Exception as exc:  # a bug: traceback to the log
            log.exception("batch %s stopped unexpectedly", self.batch_id)
            self.error = InternalServerError(f"internal error: {type(exc).__name__}: {exc}").to_dict()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def done(self) -> bool:
        return self.started and not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return batch_status(self.batch_id, store=self.store)

    def cancel(self) -> dict[str, Any]:
        return cancel_batch(self.batch_id, store=self.store)


def start_batch(spec: Any, rows: Any, **options: Any) -> BatchHandle:
    """Create the batch now (errors raise here) and run it on a background thread."""
    store = _store(options.pop("store", None))
    batch = create_batch(spec, rows, store=store, **options)
    return BatchHandle(store, batch["batch_id"]).start()


def resume_batch(
    batch_id: str,
    *,
    store: Any = None,
    progress: Progress | None = None,
    detach: bool = False,
    background: bool = False,
) -> dict[str, Any] | BatchHandle:
    """Run the rows of a batch not yet recorded (after a cancel, a failure or a crash)."""
    store = _store(store)
    counts = store.batch_counts(batch_id)
    if counts["status"] == "finished":
        return BatchHandle(store, batch_id) if background else counts
    store.set_batch_status(batch_id, "running", only_from=("queued", "running", "cancelled", "failed"))
    if background:
        return BatchHandle(store, batch_id).start()
    return execute_batch(batch_id, store=store, progress=progress, detach=detach)


def cancel_batch(batch_id: str, *, store: Any = None) -> dict[str, Any]:
    """Stop handing rows out (rows already running finish); returns the status object.
    ConflictError for a batch that already ended."""
    from agentflow.batch.runner import notify_cancelled

    store = _store(store)
    if not store.set_batch_status(batch_id, "cancelled", only_from=ACTIVE_STATUSES):
        status = store.get_batch(batch_id, include_document=False)["status"]
        if status != "cancelled":
            raise ConflictError(f'batch "{batch_id}" already ended ({status}); nothing to cancel')
    notify_cancelled(batch_id)
    return batch_status(batch_id, store=store)


def batch_status(batch_id: str, *, store: Any = None) -> dict[str, Any]:
    """``{"batch_id", "workflow_id", "status", "total", "done", "failed", "running",
    "pending", "mean_score", "waiting"}``."""
    return public_status(_store(store).batch_counts(batch_id))


def batch_results(batch_id: str, *, store: Any = None) -> list[dict[str, Any]]:
    """The recorded rows' result lines, in row order."""
    return [row_line(r) for r in _store(store).batch_results(batch_id)]
