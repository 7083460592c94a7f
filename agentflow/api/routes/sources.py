"""The workspace's sources (spec section 2): list, read, register, remove, check.

Secrets appear by reference only (``api_key_secret``, ``dsn_env``, ...): the store refuses
a literal key or password in a source, as the validator refuses one in a document.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, errors
from agentflow.api.requests import SLUG, SourceBody
from agentflow.api.responses import CheckAnswer, Deleted
from agentflow.errors import NotFoundError, ValidationError
from agentflow.sources.helpers import check_source
from agentflow.spec.models import SourceSpec

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])

SourceId = Annotated[str, Path(pattern=SLUG, description="the source's id")]


def _shape(spec: SourceSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def path_body_id(kind: str, path_id: str, body_id: str | None) -> None:
    if body_id is not None and body_id != path_id:
        raise ValidationError(
            f'the {kind}\'s id "{body_id}" is not the path\'s "{path_id}"',
            errors=[{"path": "id", "message": f'must be "{path_id}", the id in the path (or left out)'}],
        )


@router.get("", response_model=list[SourceSpec], response_model_exclude_none=True, responses=errors(*AUTH),
            dependencies=[need("read")])
async def list_sources(ctx: Context) -> Any:
    """Registered sources, by id."""
    return [_shape(s) for s in await ctx.call(ctx.store.list_sources)]


async def _get(ctx: Any, source_id: str) -> SourceSpec:
    spec = await ctx.call(ctx.store.get_source, source_id)
    if spec is None:
        raise NotFoundError(f'source "{source_id}" not found', source=source_id)
    return spec


@router.get("/{source_id}", response_model=SourceSpec, response_model_exclude_none=True,
            responses=errors(*AUTH, 404, 422), dependencies=[need("read")])
async def get_source(ctx: Context, source_id: SourceId) -> Any:
    """A registered source."""
    return _shape(await _get(ctx, source_id))


@router.put("/{source_id}", response_model=SourceSpec, response_model_exclude_none=True,
            responses=errors(*AUTH, *BODY), dependencies=[need("register")])
async def put_source(ctx: Context, source_id: SourceId, body: SourceBody) -> Any:
    """Register (or replace) a source; workflows name it by id."""
    path_body_id("source", source_id, body.id)
    data = body.model_dump(exclude_none=True)
    data["id"] = source_id
    return _shape(await ctx.call(ctx.store.put_source, data))


@router.delete("/{source_id}", response_model=Deleted, responses=errors(*AUTH, 404, 422),
               dependencies=[need("register")])
async def delete_source(ctx: Context, source_id: SourceId) -> Any:
    """Remove a registered source (workflows that name it fail validation from then on)."""
    await ctx.call(ctx.store.delete_source, source_id)
    return {"id": source_id, "deleted": True}


@router.post("/{source_id}/check", response_model=CheckAnswer, responses=errors(*AUTH, 404, 422),
             dependencies=[need("register")])
async def check(ctx: Context, source_id: SourceId) -> Any:
    """Test the source's connection (the Sources page's "Test connection"): ``ok`` false with
    the reason in ``message`` when it cannot be reached or is misconfigured."""
    spec = await _get(ctx, source_id)
    store = ctx.store
    result = await run_in_threadpool(check_source, spec, store)
    return result.to_dict()
