"""Bearer tokens as dependencies: who calls (:func:`principal`) and what they may do (:func:`need`).

A bearer token is either a session JWT from ``POST /auth/token`` or an API key from
``python -m agentflow tokens create`` (they start with ``af_``). Both are checked against
the store on every request, so a revoked key, a deleted user or a lowered role takes
effect at the next request in every process sharing the store. Roles and what they allow
are :class:`agentflow.security.Principal`'s, the same the workbench and CLI use.

Two OpenAPI security schemes are declared, either of which is enough: the OAuth2 password
flow (so the ``/docs`` page's Authorize button signs in) and a plain bearer (for API keys).
They are added to the document by :func:`declare_security` rather than resolved as FastAPI
security dependencies on every request: one dependency reads the header instead of three
(a run's request pays for each).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPBearer, OAuth2PasswordBearer

from agentflow.api.context import ApiContext
from agentflow.errors import AuthenticationError
from agentflow.security import tokens
from agentflow.security.principal import ACTIONS, Principal

oauth2 = OAuth2PasswordBearer(
    tokenUrl="/auth/token",
    auto_error=False,
    scheme_name="session",
    description="a session token: sign in with a user name and password",
)
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="api_key",
    description="an API key from `python -m agentflow tokens create`, or a session token",
)


async def context(request: Request) -> ApiContext:
    """The app's shared :class:`ApiContext` (``async``: a plain function would run in a thread)."""
    return request.app.state.agentflow


Context = Annotated[ApiContext, Depends(context)]


def _bearer_token(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


async def caller(ctx: ApiContext, authorization: str) -> Principal:
    """Who sends ``Authorization: <authorization>``; 401 when nobody or refused."""
    token = _bearer_token(authorization)
    if not token:
        raise AuthenticationError(
            "this route needs Authorization: Bearer <token>: a session token from POST /auth/token "
            "or an API key from `python -m agentflow tokens create`"
        )
    store = ctx.store
    if tokens.is_api_key(token):
        who = await ctx.call(store.verify_api_key, token)
        if who is None:
            raise AuthenticationError("the API key is not valid: unknown, revoked or expired")
        return who
    return await ctx.call(tokens.verify, token, store=store)


async def principal(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 when there is none or it is refused."""
    return await caller(request.app.state.agentflow, request.headers.get("authorization", ""))


Caller = Annotated[Principal, Depends(principal)]


def _requirement(action: str) -> Callable[[Request], Awaitable[Principal]]:
    async def check(request: Request) -> Principal:
        who = await principal(request)
        who.require(action)
        return who

    check.__name__ = f"need_{action}"
    return check


_NEEDS = {action: _requirement(action) for action in ACTIONS}
_AUTH_CALLS = {principal, *_NEEDS.values()}


def need(action: str) -> object:
    """A dependency: the caller, if their role allows ``action`` (403 otherwise)."""
    return Depends(_NEEDS[action])


def _needs_auth(dependant: Any) -> bool:
    return dependant.call in _AUTH_CALLS or any(_needs_auth(d) for d in dependant.dependencies)


def declare_security(app: FastAPI) -> None:
    """Declare both schemes in the OpenAPI document, and require them on every route whose
    dependencies check a token."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.routing import APIRoute

    from agentflow.api.errors import flat_routes

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for scheme in (oauth2, bearer):
            schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        requirement = [{oauth2.scheme_name: []}, {bearer.scheme_name: []}]
        for route in flat_routes(app.router.routes):
            if isinstance(route, APIRoute) and _needs_auth(route.dependant):
                for method in route.methods:
                    operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        operation["security"] = requirement
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
