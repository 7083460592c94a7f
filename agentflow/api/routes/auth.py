"""``POST /auth/token`` (OAuth2 password form) and ``GET /auth/me``.

Sign-in is :func:`agentflow.security.sign_in`, the workbench's own: failures for a (user,
client) pair are slowed (at most 2 s each), a right password always signs in. The client
is told apart by its address (behind a proxy: the forwarded address uvicorn trusts from
``FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from agentflow.api.auth import Caller, Context
from agentflow.api.errors import errors
from agentflow.api.responses import TokenAnswer, WhoAmI
from agentflow.security.signin import sign_in

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenAnswer, responses=errors(401, 413, 422))
async def token(
    request: Request, ctx: Context, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenAnswer:
    """A session token for a user name and password (``grant_type=password``); use it as
    ``Authorization: Bearer <access_token>`` until ``expires_in`` seconds have passed."""
    ttl = ctx.settings.token_ttl_s
    client = request.client.host if request.client else "unknown"
    store = ctx.store
    access = await ctx.signin(lambda: sign_in(store, form.username, form.password, client, ttl=ttl))
    return TokenAnswer(access_token=access, token_type="bearer", expires_in=ttl)


@router.get("/me", response_model=WhoAmI, responses=errors(401))
async def me(who: Caller) -> WhoAmI:
    """Who the token belongs to, and its role."""
    return WhoAmI(name=who.name, role=who.role, kind=who.kind)  # type: ignore[arg-type]
