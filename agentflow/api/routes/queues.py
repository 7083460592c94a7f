"""The workspace's queues (spec section 3) and their live figures.

Figures come from the process's queue manager: with ``AGENTFLOW_REDIS_URL`` set, the
windows, counts and spend are those of every process sharing the queue; waiters and wait
times are this process's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, errors
from agentflow.api.requests import SLUG, QueueBody
from agentflow.api.responses import Deleted, QueueStats
from agentflow.api.routes.sources import path_body_id
from agentflow.errors import NotFoundError
from agentflow.runtime.rate_limiter import get_queue_manager
from agentflow.spec.models import QueueSpec

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])

QueueId = Annotated[str, Path(pattern=SLUG, description="the queue's id")]


def _shape(spec: QueueSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


async def _get(ctx: Any, queue_id: str) -> QueueSpec:
    spec = await ctx.call(ctx.store.get_queue, queue_id)
    if spec is None:
        raise NotFoundError(f'queue "{queue_id}" not found', queue=queue_id)
    return spec


@router.get("", response_model=list[QueueSpec], response_model_exclude_none=True, responses=errors(*AUTH),
            dependencies=[need("read")])
async def list_queues(ctx: Context) -> Any:
    """Registered queues, by id."""
    return [_shape(q) for q in await ctx.call(ctx.store.list_queues)]


@router.get("/{queue_id}", response_model=QueueSpec, response_model_exclude_none=True,
            responses=errors(*AUTH, 404, 422), dependencies=[need("read")])
async def get_queue(ctx: Context, queue_id: QueueId) -> Any:
    """A registered queue."""
    return _shape(await _get(ctx, queue_id))


@router.put("/{queue_id}", response_model=QueueSpec, response_model_exclude_none=True,
            responses=errors(*AUTH, *BODY), dependencies=[need("register")])
async def put_queue(ctx: Context, queue_id: QueueId, body: QueueBody) -> Any:
    """Register (or replace) a queue; its new limits apply to every run sharing it."""
    path_body_id("queue", queue_id, body.id)
    data = body.model_dump(exclude_none=True)
    data["id"] = queue_id
    return _shape(await ctx.call(ctx.store.put_queue, data))


@router.delete("/{queue_id}", response_model=Deleted, responses=errors(*AUTH, 404, 422),
               dependencies=[need("register")])
async def delete_queue(ctx: Context, queue_id: QueueId) -> Any:
    """Remove a registered queue."""
    await ctx.call(ctx.store.delete_queue, queue_id)
    return {"id": queue_id, "deleted": True}


@router.get("/{queue_id}/stats", response_model=QueueStats, responses=errors(*AUTH, 404, 422),
            dependencies=[need("read")])
async def stats(ctx: Context, queue_id: QueueId) -> Any:
    """Live figures: grants, refusals, waiters, wait times, each window's use, today's spend."""
    spec = await _get(ctx, queue_id)
    manager = get_queue_manager()
    limiter = manager.get(spec)
    if manager.backend == "redis":
        return await run_in_threadpool(limiter.stats)
    return limiter.stats()
