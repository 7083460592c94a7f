"""The ``local`` backend: every row in this process, ``arun_workflow`` at most N at once.

One :class:`~agentflow.batch.runner.Runner` leases rows as it needs them, so a second
process resuming the same batch (or a crashed run's leases expiring) never makes a row
run twice at once. When the runner finds nothing left to lease but rows are still held by
someone else, it waits for them: they get recorded, or their leases expire and it takes
them over.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agentflow.batch.runner import LEASE_S, Runner, new_owner
from agentflow.store.batches import ACTIVE_STATUSES

log = logging.getLogger("agentflow.batch")

#: How often to look again while other processes hold the batch's last rows.
WAIT_FOR_OTHERS_S = 1.0


def left(counts: dict[str, Any]) -> int:
    return int(counts["pending"]) + int(counts["dispatched"]) + int(counts["running"])


async def run_local(
    store: Any,
    batch: dict[str, Any],
    *,
    concurrency: int | None = None,
    spec: Any = None,
    lease_s: float = LEASE_S,
) -> dict[str, Any]:
    """Run the batch's unrecorded rows here until none is left (or it is cancelled);
    returns the final counts. On an error or interruption the batch is marked failed and
    its unrecorded rows go back to pending (``resume`` runs them)."""
    batch_id = batch["batch_id"]
    runner = Runner(store, batch, owner=new_owner("local"), concurrency=concurrency, spec=spec, lease_s=lease_s)
    await asyncio.to_thread(store.set_batch_status, batch_id, "running", only_from=("queued",))
    try:
        while True:
            await runner.run(claim=True)
            counts = await asyncio.to_thread(store.batch_counts, batch_id)
            if counts["status"] not in ACTIVE_STATUSES or left(counts) == 0:
                break
            await asyncio.sleep(WAIT_FOR_OTHERS_S)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)) else str(exc)
        log.warning("batch %s could not finish: %s", batch_id, reason)
        await asyncio.shield(asyncio.to_thread(_mark_failed, store, batch_id, reason))
        raise
    await asyncio.to_thread(store.finish_batch_if_done, batch_id)
    return await asyncio.to_thread(store.batch_counts, batch_id)


def _mark_failed(store: Any, batch_id: str, reason: str) -> None:
    from agentflow.errors import ExecutionError

    error = ExecutionError(
        f"the batch stopped before every row ran ({reason}); `batch resume {batch_id}` runs the rest"
    )
    try:
        store.set_batch_status(batch_id, "failed", only_from=ACTIVE_STATUSES, error=error.to_dict())
    except Exception:
        log.warning("could not mark batch %s failed", batch_id, exc_info=True)
