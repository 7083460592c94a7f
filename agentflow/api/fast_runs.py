"""The hot route without the framework's per-request machinery: a run of a saved workflow.

``POST /api/v1/workflows/{id}/runs`` is what programs call all day; every other route is
called by people. Through FastAPI a run paid about 0.4 ms of CPU before and around
the run itself (routing over every route, the middleware stack, solving four dependencies,
validating path, query and body as separate fields), more than the run's own bookkeeping;
measured in-process over ASGI (``bench/api_asgi.py``), that was the largest share of what
the API added to a bare FastAPI endpoint (0.68-0.70 ms of CPU per run; 0.30-0.31 ms with
this; docs/architecture.md, decision 17).

:class:`RunFastPath` answers the **well-formed** call itself, with the same parts the route
uses: the body validated by the same :class:`~agentflow.api.requests.RunRequest`, the
caller checked by the same :func:`~agentflow.api.auth.caller`, the run made by the same
:func:`~agentflow.api.running.run_saved`, errors answered by the same
:func:`~agentflow.api.errors.answer_error`. Anything else goes to the FastAPI route
unchanged, with the body it has read replayed: streamed runs, chunked bodies, other content
types, any query but ``version``, a body that does not parse or validate. So every refusal
of a malformed request is FastAPI's own (and the route's OpenAPI declaration stays the one
truth about the contract), and tests check that both paths answer alike.

It sits inside :class:`~agentflow.api.errors.RequestLimits` (bodies over the limit are
refused before it sees them) and :class:`~agentflow.api.errors.CatchAll` (a bug is a 500 in
the error shape here as everywhere).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError as PydanticValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentflow.api.auth import caller
from agentflow.api.errors import answer_error
from agentflow.api.requests import MAX_INT, SLUG, RunRequest
from agentflow.api.running import run_saved
from agentflow.errors import AgentFlowError

_PATH = re.compile(r"^/api/v1/workflows/(" + SLUG.strip("^$") + r")/runs$")
_VERSION = re.compile(rb"^version=([0-9]{1,19})$")


class RunFastPath:
    """Serve well-formed runs of saved workflows directly (see the module docstring)."""

    def __init__(self, app: ASGIApp, ctx: Any) -> None:
        self.app = app
        self.ctx = ctx
        #: Requests answered here (tests check that the fast path is the one taken).
        self.served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        request = _plain_request(scope)
        if request is None:
            await self.app(scope, receive, send)
            return
        length, authorization = request
        query = scope.get("query_string") or b""
        version: int | None = None
        if query:
            found = _VERSION.match(query)
            version = int(found.group(1)) if found else 0
            if not 1 <= version <= MAX_INT:
                await self.app(scope, receive, send)
                return
        messages, body = await _read_body(receive, length)
        replay = _replaying(messages, receive)
        if body is None:
            await self.app(scope, replay, send)
            return
        try:
            run = RunRequest.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, PydanticValidationError, TypeError, ValueError):
            await self.app(scope, replay, send)  # FastAPI's own answer for a malformed body
            return
        self.served += 1
        try:
            who = await caller(self.ctx, authorization)
            who.require("run")
            response = await run_saved(self.ctx, who, match.group(1), run, version, events=False)
        except AgentFlowError as exc:
            response = answer_error(exc, "POST", scope["path"])
        await response(scope, replay, send)


def _plain_request(scope: Scope) -> tuple[int, str] | None:
    """``(content length, authorization)`` of a JSON request that wants a JSON answer, or
    None for anything else (streamed answers, chunked or non-JSON bodies)."""
    length = -1
    authorization = ""
    json_body = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
        elif name == b"content-type":
            json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name == b"accept":
            if b"text/event-stream" in value:
                return None
        elif name == b"authorization":
            if authorization:
                return None  # given twice: let the route decide, as it does
            authorization = value.decode("latin-1")
        elif name == b"transfer-encoding":
            return None
    if length < 0 or not json_body:
        return None
    return length, authorization


async def _read_body(receive: Receive, length: int) -> tuple[list[Message], bytes | None]:
    """The request's messages and body (None when the client went away or sent other than
    it declared: the route then sees the same messages)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            break
    if size != length:
        return messages, None
    return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then what ``receive`` gives."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
