"""The app: ``uvicorn agentflow.api.main:app`` (or ``python -m agentflow serve``).

``create_app(store=..., settings=...)`` builds an app; ``app`` is the one built from the
environment. Building opens nothing: the store is opened on first use (or at startup under
a server), so importing this module is cheap and has no side effects.

Routers are included from :data:`ROUTERS`, one module per domain, each exposing ``router``.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from agentflow import __version__
from agentflow.api.auth import declare_security
from agentflow.api.context import ApiContext
from agentflow.api.errors import CatchAll, RequestLimits, install_handlers
from agentflow.api.fast_runs import RunFastPath
from agentflow.settings import Settings
from agentflow.store.base import Store

#: Router modules, in the order their routes appear in the OpenAPI document.
ROUTERS: tuple[str, ...] = (
    "agentflow.api.routes.health",
    "agentflow.api.routes.auth",
    "agentflow.api.routes.workflows",
    "agentflow.api.routes.runs",
    "agentflow.api.routes.sources",
    "agentflow.api.routes.queues",
    "agentflow.api.routes.secrets",
    "agentflow.api.routes.openai_compat",
    "agentflow.api.routes.batches",
)

DESCRIPTION = """\
AgentFlow's workflows, runs, sources, queues and secrets over HTTP: the same store, runtime
and roles as the workbench and the command line (spec section 12).

**Auth.** Every route but `/health`, `/auth/token` and this document needs
`Authorization: Bearer <token>`: a session token from `POST /auth/token` (the Authorize
button signs in), or an API key from `python -m agentflow tokens create`.

**Errors.** Every non-2xx answer has the shape
`{"status": "error", "error_type", "message", "details"}`; under `/v1/` (the
OpenAI-compatible routes) OpenAI's `{"error": {...}}`.
"""


def create_app(store: Store | None = None, settings: Settings | None = None, *, fast_runs: bool = True) -> FastAPI:
    """An app over ``store`` (default: ``AGENTFLOW_DB_URL``'s, opened on first use) with
    ``settings`` (default: the environment's, read now). ``fast_runs=False`` serves runs of
    saved workflows through their FastAPI route only (:mod:`agentflow.api.fast_runs`)."""
    ctx = ApiContext(store, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from agentflow.logs import setup_logging

        setup_logging(ctx.settings)
        _ = ctx.store  # open it (and start the cancel poller) before the first request
        # What is loaded by now (modules, compiled schemas) lives as long as the process:
        # keep the collector from walking it again at every full collection.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await ctx.drain()
            ctx.close()

    app = FastAPI(
        title="AgentFlow API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.agentflow = ctx
    install_handlers(app)
    if fast_runs:
        app.add_middleware(RunFastPath, ctx=ctx)
    app.add_middleware(
        RequestLimits, max_bytes=ctx.settings.max_body_bytes, upload_max_bytes=ctx.settings.max_upload_bytes
    )
    app.add_middleware(CatchAll)
    origins = ctx.settings.cors_origins
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            expose_headers=["Retry-After", "X-AgentFlow-Run-Id"],
        )
    for name in ROUTERS:
        app.include_router(importlib.import_module(name).router)
    declare_security(app)
    return app


#: The app the environment describes; building it opens nothing (see the module docstring).
app = create_app()

__all__ = ["ROUTERS", "app", "create_app"]
