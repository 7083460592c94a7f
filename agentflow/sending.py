"""When a metered call really leaves: the link between a queue grant and the HTTP layer.

A queue grant says when a call may go; when it really goes can be later: the caller's event
loop may be busy with other runs (a Celery worker starting fifty rows at once delays some
calls by a few hundred ms under load). Counting such a call at its grant time would let the
next window's calls land next to it at the provider. So the node's meter publishes its
grant here for the duration of the call, the sources' HTTP clients report each request as
it is sent (an httpx request hook), and the queue backend that shares its log (Redis) moves
a late grant to the time it left (:meth:`agentflow.runtime.queue_base.Grant.gone_out`).

A module of its own, with no imports from the runtime or the sources, so both can use it
without an import cycle.
"""

from __future__ import annotations

import contextvars
from typing import Any, Protocol

__all__ = ["Departure", "agoing_out", "atrace_sending", "calling", "going_out", "trace_sending"]

#: httpcore's trace events for "the request's first bytes are being written".
_SENDING = frozenset({"http11.send_request_headers.started", "http2.send_request_headers.started"})


class Departure(Protocol):
    """What is told that its call leaves (a queue grant)."""

    def gone_out(self) -> None:
        """The call is being written to the provider now."""

    async def agone_out(self) -> None:
        """Like :meth:`gone_out`, from a coroutine."""


#: The grant of the provider call the current thread or task is making.
calling: contextvars.ContextVar[Departure | None] = contextvars.ContextVar("agentflow_calling", default=None)


def going_out(*_: Any) -> None:
    """A request of the current call is sent now (sync HTTP clients). Nothing happens
    outside a metered call; the SDK's own retries of the call change nothing."""
    grant = calling.get()
    if grant is not None:
        grant.gone_out()


async def agoing_out(*_: Any) -> None:
    """:func:`going_out` for async HTTP clients."""
    grant = calling.get()
    if grant is not None:
        await grant.agone_out()


def trace_sending(request: Any) -> None:
    """httpx ``request`` event hook (sync clients): report the request when it is written."""
    if calling.get() is None:
        return
    inner = request.extensions.get("trace")

    def trace(event: str, info: dict[str, Any]) -> None:
        if event in _SENDING:
            going_out()
        if inner is not None:
            inner(event, info)

    request.extensions["trace"] = trace


async def atrace_sending(request: Any) -> None:
    """httpx ``request`` event hook (async clients): report the request when it is written."""
    if calling.get() is None:
        return
    inner = request.extensions.get("trace")

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event in _SENDING:
            await agoing_out()
        if inner is not None:
            await inner(event, info)

    request.extensions["trace"] = trace
