"""Saved workflows: validate, save a version (409 on a stale base), read, list, delete, run.

Each route is one store method or runtime function (the CLI's ``workflows`` and ``run``
commands call the same): documents are judged by ``validate_workflow`` with the store as
workspace, so registered sources and queues resolve as they do in the workbench.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from agentflow.api import running
from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, RUN, errors
from agentflow.api.requests import MAX_INT, SLUG, Document, RunRequest, SaveWorkflowRequest
from agentflow.api.responses import (
    Deleted,
    RunState,
    Saved,
    ValidateAnswer,
    VersionInfo,
    WorkflowSummary,
    WorkflowVersion,
)
from agentflow.errors import ValidationError
from agentflow.security.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["workflows"])

WorkflowId = Annotated[str, Path(pattern=SLUG, description="the workflow's id")]
Version = Annotated[int | None, Query(ge=1, le=MAX_INT, description="a version (default: the latest)")]

#: What a run answers: its final state as JSON, or its live events.
RUN_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "model": RunState,
        "description": (
            "the final state (spec section 8), for a run that succeeded, paused at a breakpoint or was "
            "cancelled; with `Accept: text/event-stream`, the live events as Server-Sent Events "
            "(`event: <type>`, `data: <json>`) from run_start to run_end"
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}
#: What a resumed or forked run answers.
RUN_JSON: dict[int | str, dict[str, Any]] = {
    200: {"model": RunState, "description": "the final state (spec section 8)"},
}


@router.post(
    "/validate", response_model=ValidateAnswer, responses=errors(*AUTH, *BODY), dependencies=[need("read")],
    tags=["workflows"],
)
async def validate(ctx: Context, document: Annotated[Document, Body(description="a workflow document")]) -> Any:
    """Check a document: 200 with its warnings, or 422 with every problem under ``details.errors``."""
    spec = await ctx.validate(document)
    return {"valid": True, "id": spec.id, "warnings": spec.warnings}


@router.get("/workflows", response_model=list[WorkflowSummary], responses=errors(*AUTH, 422),
            dependencies=[need("read")])
async def list_workflows(
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Any:
    """Saved workflows, recently changed first."""
    return await ctx.call(ctx.store.list_workflows, limit=limit, offset=offset)


@router.put("/workflows/{workflow_id}", status_code=201, response_model=Saved,
            responses=errors(*AUTH, 409, *BODY))
async def save_workflow(
    ctx: Context, workflow_id: WorkflowId, body: SaveWorkflowRequest, who: Principal = need("save")
) -> Any:
    """Save the document as the workflow's next version (201). With ``base_version``, refused
    with 409 unless that is the latest version: nothing is saved, ``details.latest_version``
    says which is."""
    doc_id = body.document.get("id")
    if doc_id != workflow_id:
        raise ValidationError(
            f'the document\'s id "{doc_id}" is not the path\'s "{workflow_id}"',
            errors=[{"path": "document.id", "message": f'must be "{workflow_id}", the id in the path'}],
        )
    spec = await ctx.validate(body.document)
    version = await ctx.call(
        ctx.store.save_workflow, body.document, author=who.name, message=body.message, base_version=body.base_version
    )
    return {"id": workflow_id, "version": version, "warnings": spec.warnings}


@router.get("/workflows/{workflow_id}", response_model=WorkflowVersion, responses=errors(*AUTH, 404, 422),
            dependencies=[need("read")])
async def get_workflow(ctx: Context, workflow_id: WorkflowId, version: Version = None) -> Any:
    """A version of the workflow with its document (the latest unless ``?version=``)."""
    return await ctx.call(ctx.store.get_workflow, workflow_id, version)


@router.get("/workflows/{workflow_id}/versions", response_model=list[VersionInfo],
            responses=errors(*AUTH, 404, 422), dependencies=[need("read")])
async def list_versions(ctx: Context, workflow_id: WorkflowId) -> Any:
    """The workflow's versions, newest first."""
    return await ctx.call(ctx.store.list_versions, workflow_id)


@router.delete("/workflows/{workflow_id}", response_model=Deleted, responses=errors(*AUTH, 404, 422),
               dependencies=[need("delete")])
async def delete_workflow(ctx: Context, workflow_id: WorkflowId) -> Any:
    """Remove the workflow and its versions; its runs stay in the history."""
    await ctx.call(ctx.store.delete_workflow, workflow_id)
    return {"id": workflow_id, "deleted": True}


@router.post("/workflows/{workflow_id}/runs", response_model=None,
             responses={**RUN_ANSWER, **errors(*AUTH, 404, *BODY, *RUN)})
async def run_workflow(
    request: Request, ctx: Context, workflow_id: WorkflowId, body: RunRequest, version: Version = None,
    who: Principal = need("run"),
) -> Response:
    """Run the saved workflow (the latest version, or ``version`` in the body or query) and
    answer its final state; a failed run answers its error, whose ``details`` hold its
    ``run_id`` and partial ``trace``. Recorded in the run history with the caller as user.
    With ``Accept: text/event-stream``, answers the live events as they happen instead."""
    return await running.run_saved(ctx, who, workflow_id, body, version, events=running.wants_events(request))
