"""Runs: inline documents, history, and the debugger's resume, checkpoints, fork and cancel.

``resume_run``, ``fork_run`` and ``list_checkpoints`` are synchronous (they use the store's
sync checkpointer); they run in the thread pool, which is fine for debugging. Plain runs
stay on the event loop (:mod:`agentflow.api.running`). Cancelling goes through
``request_cancel``, so it reaches a run that another process sharing the store is running.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agentflow.api import running
from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, RUN, errors
from agentflow.api.requests import ForkRequest, InlineRunRequest, ResumeRequest
from agentflow.api.responses import CancelAnswer, Checkpoint, RunPage, RunRecord, StoredRunStatus
from agentflow.api.routes.workflows import RUN_ANSWER, RUN_JSON
from agentflow.errors import ConflictError
from agentflow.runtime.debug import fork_run, list_checkpoints, resume_run
from agentflow.runtime.executor import active_runs
from agentflow.runtime.remote_cancel import request_cancel
from agentflow.security.principal import Principal

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$", description="a run id")]


@router.post("", response_model=None, responses={**RUN_ANSWER, **errors(*AUTH, *BODY, *RUN)})
async def run_document(
    request: Request, ctx: Context, body: InlineRunRequest, who: Principal = need("run")
) -> Response:
    """Run a workflow given inline (``document``), as ``POST /api/v1/workflows/{id}/runs``
    runs a saved one: the final state as JSON, or live events with ``Accept: text/event-stream``."""
    spec = await ctx.validate(body.document)
    kw = {"user": who.name, "subqueue": body.subqueue, "breakpoints": body.breakpoints}
    if running.wants_events(request):
        return running.event_stream(await running.start_stream(ctx, spec, body.initial_state(), **kw))
    return running.json_answer(await running.run_to_end(ctx, spec, body.initial_state(), **kw))


@router.get("", response_model=RunPage, responses=errors(*AUTH, 422), dependencies=[need("read")])
async def list_runs(
    ctx: Context,
    workflow: Annotated[str | None, Query(max_length=64, description="only this workflow's runs")] = None,
    status: Annotated[StoredRunStatus | None, Query(description="only runs with this status")] = None,
    user: Annotated[str | None, Query(max_length=64, description="only this user's runs")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
) -> Any:
    """The run history, newest first, a page at a time."""
    await ctx.settled()
    rows, next_cursor = await ctx.call(
        ctx.store.list_runs, workflow=workflow, status=status, user=user, limit=limit, cursor=cursor
    )
    return {"runs": rows, "next_cursor": next_cursor}


@router.get("/{run_id}", response_model=RunRecord, responses=errors(*AUTH, 404, 422), dependencies=[need("read")])
async def get_run(ctx: Context, run_id: RunId) -> Any:
    """A stored run: status, input, final state, trace, totals, user, workflow version."""
    await ctx.settled(run_id)
    return await ctx.call(ctx.store.get_run, run_id)


@router.post("/{run_id}/resume", response_model=None,
             responses={**RUN_JSON, **errors(*AUTH, 404, *BODY, *RUN)})
async def resume(ctx: Context, run_id: RunId, body: ResumeRequest | None = None,
                 who: Principal = need("run")) -> Response:
    """Go on with a paused run, first applying ``state_patch`` to its state (as ``resume_run``)."""
    patch = body.state_patch if body else None
    store = ctx.store
    final = await run_in_threadpool(lambda: resume_run(run_id, patch, store=store, workspace=store))
    return running.json_answer(final)


@router.get("/{run_id}/checkpoints", response_model=list[Checkpoint], responses=errors(*AUTH, 404, 422),
            dependencies=[need("read")])
async def checkpoints(ctx: Context, run_id: RunId) -> Any:
    """A debugged run's checkpoints, oldest first (as ``list_checkpoints``)."""
    store = ctx.store
    return await run_in_threadpool(lambda: list_checkpoints(run_id, store=store))


@router.post("/{run_id}/fork", response_model=None,
             responses={**RUN_JSON, **errors(*AUTH, 404, *BODY, *RUN)})
async def fork(ctx: Context, run_id: RunId, body: ForkRequest, who: Principal = need("run")) -> Response:
    """Copy a checkpoint of the run into a new run, apply ``state_patch`` and run it on (as ``fork_run``)."""
    store = ctx.store
    final = await run_in_threadpool(
        lambda: fork_run(run_id, body.checkpoint_id, body.state_patch, store=store, workspace=store)
    )
    return running.json_answer(final)


@router.post("/{run_id}/cancel", status_code=202, response_model=CancelAnswer,
             responses=errors(*AUTH, 404, 409, 422))
async def cancel(ctx: Context, run_id: RunId, who: Principal = need("cancel")) -> Any:
    """Stop a run at its next node boundary, wherever it runs (this process or another
    sharing the store), or cancel a paused run. 409 when the run has already ended."""
    store = ctx.store
    await ctx.settled(run_id)
    if run_id not in active_runs():
        record = await ctx.call(store.get_run, run_id)
        if record["status"] not in ("running", "interrupted"):
            raise ConflictError(
                f'run "{run_id}" has already ended ({record["status"]}); there is nothing to cancel',
                {"run_id": run_id, "status": record["status"]},
            )
        paused = record["status"] == "interrupted"
    else:
        paused = False
    await ctx.call(request_cancel, run_id, store, by=who.name)
    return {"run_id": run_id, "status": "cancelled" if paused else "cancelling"}
