"""``GET /health``: is this process able to serve (store and queue state reachable)?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from agentflow import __version__
from agentflow.api.auth import Context
from agentflow.api.errors import ServiceUnavailable, errors
from agentflow.api.responses import Health
from agentflow.runtime.rate_limiter import get_queue_manager

router = APIRouter(tags=["health"])


def _redis(manager: Any) -> tuple[bool, str]:
    try:
        manager.client.ping()
    except Exception:
        return False, "redis: unreachable"
    return True, "redis: ok"


@router.get("/health", response_model=Health, responses=errors(503))
async def health(ctx: Context) -> Health:
    """Whether the store answers and the queue state is reachable; no token needed.
    503 (section 9 shape, the figures under ``details``) when either does not."""
    try:
        store = ctx.store
        store_ok = await ctx.call(store.ping)
    except Exception:
        store_ok = False
    manager = get_queue_manager()
    queues_ok, queues = await run_in_threadpool(_redis, manager) if manager.backend == "redis" else (True, "in-process")
    if not (store_ok and queues_ok):
        raise ServiceUnavailable(
            "this server cannot serve: " + ("the store does not answer" if not store_ok else queues),
            {"version": __version__, "store": "ok" if store_ok else "unreachable", "queues": queues},
        )
    return Health(status="ok", version=__version__, store="ok", queues=queues)
