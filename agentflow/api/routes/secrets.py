"""Secrets: names only out, values only in (stored encrypted, never returned or logged)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from agentflow import redact
from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, errors
from agentflow.api.requests import SECRET_NAME, SecretValue
from agentflow.api.responses import SecretDeleted, SecretInfo, SecretStored

router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"])

SecretName = Annotated[str, Path(pattern=SECRET_NAME, description="the secret's name")]


@router.get("", response_model=list[SecretInfo], responses=errors(*AUTH), dependencies=[need("read")])
async def list_secrets(ctx: Context) -> Any:
    """Secret names and when they changed; never values."""
    return await ctx.call(ctx.store.list_secrets)


@router.put("/{name}", response_model=SecretStored, responses=errors(*AUTH, *BODY),
            dependencies=[need("register")])
async def put_secret(ctx: Context, name: SecretName, body: SecretValue) -> Any:
    """Store ``value`` encrypted under ``name`` (replacing an earlier value); sources name it
    as ``<field>_secret``. The value is masked in this process's logs from now on."""
    redact.remember(body.value)
    await ctx.call(ctx.store.set_secret, name, body.value)
    return {"name": name, "stored": True}


@router.delete("/{name}", response_model=SecretDeleted, responses=errors(*AUTH, 404, 422),
               dependencies=[need("register")])
async def delete_secret(ctx: Context, name: SecretName) -> Any:
    """Forget a secret."""
    await ctx.call(ctx.store.delete_secret, name)
    return {"name": name, "deleted": True}
