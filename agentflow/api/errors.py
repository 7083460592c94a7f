"""One error shape for every non-2xx answer (spec sections 9 and 12).

Everything that can go wrong ends here: the package's own errors, FastAPI's (unknown
route, wrong method, request validation), a body over ``AGENTFLOW_MAX_BODY_BYTES``, and
bugs. The status follows ``error_type``; under ``/v1/`` (the OpenAI-compatible face) the
same errors take OpenAI's shape, so OpenAI clients report them as they would OpenAI's.
Tracebacks go to the log, never into an answer (unless ``AGENTFLOW_DEBUG`` is on).
"""

from __future__ import annotations

import logging
import math
import traceback
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentflow.errors import (
    AgentFlowError,
    AuthenticationError,
    InternalServerError,
    MethodNotAllowed,
    NotFoundError,
    PayloadTooLarge,
    PermissionDenied,
    QueueRateLimitExceeded,
    SourceConnectionError,
    ValidationError,
)
from agentflow.redact import redact

log = logging.getLogger("agentflow.api")

#: HTTP status of each ``error_type`` (spec section 12).
STATUS: dict[str, int] = {
    "ValidationError": 422,
    "ExecutionError": 422,
    "QueueRateLimitExceeded": 429,
    "SourceConnectionError": 502,
    "InternalServerError": 500,
    "AuthenticationError": 401,
    "PermissionDenied": 403,
    "NotFoundError": 404,
    "MethodNotAllowed": 405,
    "ConflictError": 409,
    "PayloadTooLarge": 413,
}

#: What each status means, for the OpenAPI document.
DESCRIPTIONS: dict[int, str] = {
    401: "AuthenticationError: missing, bad, tampered, expired or revoked token",
    403: "PermissionDenied: the caller's role does not allow this",
    404: "NotFoundError: no such workflow, version, run, source, queue or secret",
    405: "MethodNotAllowed",
    409: "ConflictError",
    413: "PayloadTooLarge: the body is over AGENTFLOW_MAX_BODY_BYTES",
    422: "ValidationError (the request or document) or ExecutionError (a failed run)",
    429: "QueueRateLimitExceeded: a queue refused the call (Retry-After when known)",
    500: "InternalServerError",
    502: "SourceConnectionError: a provider could not be reached or refused the call",
    503: "the store (or the shared queue state) does not answer",
}

_OPENAI_TYPES: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    405: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    413: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


class ServiceUnavailable(InternalServerError):
    """The store or the shared queue state does not answer (``/health``: 503)."""

    status_code = 503


def status_of(exc: AgentFlowError) -> int:
    return getattr(exc, "status_code", None) or STATUS.get(exc.error_type, 500)


def _headers(exc: AgentFlowError, status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry = getattr(exc, "retry_after_s", None)
    if status == 429 and isinstance(retry, (int, float)) and retry > 0:
        headers["Retry-After"] = str(max(1, math.ceil(retry)))
    allow = exc.context.get("allow") if exc.context else None
    if allow:
        headers["Allow"] = allow
    return headers


def openai_error(exc: AgentFlowError, status: int) -> dict[str, Any]:
    """OpenAI's error object for ``exc`` (the ``/v1/`` routes)."""
    kind, code = _OPENAI_TYPES.get(status, ("server_error", None))
    body = exc.to_dict()
    error: dict[str, Any] = {"message": body["message"], "type": kind, "param": None, "code": code}
    error["agentflow_error_type"] = exc.error_type
    if isinstance(body.get("details"), dict) and "run_id" in body["details"]:
        error["run_id"] = body["details"]["run_id"]
    return {"error": error}


def is_openai_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_response(exc: AgentFlowError, path: str = "") -> JSONResponse:
    """The answer for ``exc``: section 9 shape, or OpenAI's under ``/v1/``."""
    status = status_of(exc)
    body = openai_error(exc, status) if is_openai_path(path) else exc.to_dict()
    return JSONResponse(body, status_code=status, headers=_headers(exc, status))


# -- handlers --------------------------------------------------------------------------------


def answer_error(exc: AgentFlowError, method: str, path: str) -> JSONResponse:
    """The answer for ``exc`` raised by ``method path``; a server-side failure is logged."""
    if status_of(exc) >= 500:
        log.warning("%s %s answered %s: %s", method, path, exc.error_type, exc.message)
    return error_response(exc, path)


async def _agentflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentFlowError)
    return answer_error(exc, request.method, request.url.path)


def _http_error_class(status: int) -> type[AgentFlowError]:
    return {
        401: AuthenticationError,
        403: PermissionDenied,
        404: NotFoundError,
        405: MethodNotAllowed,
        413: PayloadTooLarge,
        429: QueueRateLimitExceeded,
        502: SourceConnectionError,
    }.get(status, ValidationError if status < 500 else InternalServerError)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status, method, path = exc.status_code, request.method, request.url.path
    allow = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
    if status == 405:
        allow = _allowed(request) or allow
    if status == 404:
        message = f"no route {method} {path}; see /docs for the routes"
    elif status == 405:
        message = f"{method} is not allowed on {path}" + (f"; allowed: {allow}" if allow else "")
    elif status == 413:
        message = "the request body is too large"
    else:
        message = str(exc.detail) if exc.detail else f"HTTP {status}"
    err = _http_error_class(status)(message, allow=allow)
    return error_response(err, path)


def flat_routes(routes: Any) -> Any:
    """Every route of ``routes``, those of included routers too (FastAPI includes them whole)."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # a router included as a whole
        if inner is not None:
            yield from flat_routes(inner.routes)
        elif hasattr(route, "path_regex"):
            yield route


def _allowed(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    path = request.url.path
    methods: set[str] = set()
    for route in flat_routes(request.app.router.routes):
        if route.path_regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _problem(error: dict[str, Any]) -> dict[str, str]:
    loc = [str(p) for p in error.get("loc", ())]
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error")
        message = "the body is not valid JSON" + (f" ({detail})" if detail else "")
        loc = loc[:1]
    elif kind == "dict_type" and (loc == ["body"] or loc[-1:] == ["document"]):
        message = "must be a JSON object" if loc[-1:] == ["document"] else "the body must be a JSON object"
    return {"path": ".".join(loc), "message": message}


def validation_error(errors: list[dict[str, Any]]) -> ValidationError:
    """A ValidationError from pydantic's errors, without the offending input values
    (they may be secrets: a PUT /secrets body with an extra field, for instance)."""
    problems: list[dict[str, str]] = []
    for e in errors:
        p = _problem(e)
        if p not in problems:
            problems.append(p)
    head = problems[0] if problems else {"path": "", "message": "invalid request"}
    where = f"{head['path']}: " if head["path"] else ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ValidationError(f"invalid request: {where}{head['message']}{more}", errors=problems)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(list(exc.errors())), request.url.path)


def unexpected(exc: BaseException, method: str, path: str) -> JSONResponse:
    """The answer for a bug: a reference to the log line that has the traceback."""
    ref = uuid.uuid4().hex[:12]
    log.error("internal error %s on %s %s", ref, method, path, exc_info=exc)
    details: Any = {"reference": ref}
    from agentflow.settings import get_settings

    if get_settings().debug:
        details["traceback"] = redact("".join(traceback.format_exception(exc)))
    err = InternalServerError(
        f"internal error ({type(exc).__name__}); the server log has the details under reference {ref}",
        details,
    )
    return error_response(err, path)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AgentFlowError, _agentflow_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)


class CatchAll:
    """Answer a bug with a 500 in the error shape, the traceback to the (redacting) log only.

    Outermost of the app's own middleware, so nothing unhandled reaches the server, which
    would log the traceback unredacted a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            response = unexpected(exc, scope.get("method", ""), scope.get("path", ""))
            if not started:
                await response(scope, receive, send)


# -- the body limit ----------------------------------------------------------------------------


class RequestLimits:
    """Refuse, before a route runs: bodies over ``max_bytes`` (413), and a query parameter
    given twice (422: every parameter takes one value, and taking the last one silently
    would hide the caller's mistake).

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is
    counted as it arrives and refused as soon as it passes the limit. Dataset uploads
    (``POST .../batches``) have their own, larger limit (``AGENTFLOW_MAX_UPLOAD_BYTES``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.upload_max_bytes = int(upload_max_bytes) if upload_max_bytes else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("query_string"):
            twice = _repeated_query(scope["query_string"])
            if twice:
                err = ValidationError(
                    f"query parameter {twice!r} is given more than once; give it once",
                    errors=[{"path": f"query.{twice}", "message": "given more than once"}],
                )
                await error_response(err, scope.get("path", ""))(scope, receive, send)
                return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.upload_max_bytes if path.endswith("/batches") else self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        err = PayloadTooLarge(
            f"the request body is over the limit of {limit} bytes (AGENTFLOW_MAX_BODY_BYTES; "
            "AGENTFLOW_MAX_UPLOAD_BYTES for dataset uploads)",
            {"max_body_bytes": limit},
        )
        response = error_response(err, scope.get("path", ""))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _repeated_query(raw: bytes) -> str | None:
    from urllib.parse import parse_qsl

    seen: set[str] = set()
    for name, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


# -- OpenAPI: the error responses each route declares -----------------------------------------


def errors(*statuses: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for ``statuses`` (every route also declares 500)."""
    from agentflow.api.responses import ErrorBody, OpenAIErrorBody

    model = OpenAIErrorBody if openai else ErrorBody
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 500}):
        entry: dict[str, Any] = {"model": model, "description": DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait, when known", "schema": {"type": "string"}}
            }
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[status] = entry
    return out


#: Statuses of every route that needs a token.
AUTH = (401, 403)
#: Statuses of every route with a JSON body.
BODY = (413, 422)
#: Statuses of a run: it may fail in any of these ways.
RUN = (409, 422, 429, 502)
