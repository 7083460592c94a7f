"""Runs over HTTP: a JSON answer from ``arun_workflow``, or live events from ``astream_workflow``.

Every run stays on the event loop (nodes run as coroutines, no thread per node) and is
recorded in the run history with the caller as user, failed runs included, as the
workbench records its runs: while it runs (once it has lasted a quarter of a second, so
other processes can list and cancel it; a streamed run from its first event) and when it
ends. Debug runs (breakpoints) record their own end, as in-process.

A streamed run is driven by a task of its own, not by the response: a client that hangs
up stops receiving events, but the run goes on to its end and is recorded (its
``run_start`` event carried the run id to look it up by).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response, StreamingResponse

from agentflow.api.context import ApiContext
from agentflow.api.requests import RunRequest
from agentflow.errors import AgentFlowError
from agentflow.runtime.context import new_run_id
from agentflow.runtime.executor import arun_workflow, astream_workflow
from agentflow.security.principal import Principal
from agentflow.spec.models import WorkflowSpec
from agentflow.store import codec

log = logging.getLogger("agentflow.api")

#: A run answered as JSON is recorded as ``running`` once it has lasted this long: its
#: caller learns its id only from the answer, so a shorter run needs no such record.
RECORD_RUNNING_AFTER_S = 0.25
#: Comment lines sent on a quiet event stream, so proxies do not close it as idle.
KEEPALIVE_S = 15.0

_END = object()


def wants_events(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def dumps(obj: Any) -> str:
    """Compact JSON; a non-finite number (a state can hold one: JSON parsers accept
    ``1e999``) becomes null, since ``Infinity`` is not JSON."""
    return codec.dumps_bytes(obj, default=str).decode("utf-8")


def json_answer(obj: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response without FastAPI's generic encoder (final states can be large)."""
    return Response(codec.dumps_bytes(obj, default=str), status_code=status_code, media_type="application/json",
                    headers=headers)


class RunRecorder:
    """Writes one run's history row: ``running`` while it runs, then its final state."""

    def __init__(
        self, ctx: ApiContext, run_id: str, workflow_id: str, state: dict[str, Any], user: str | None,
        version: int | None,
    ) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.input = state
        self.user = user
        self.version = version
        self._started: asyncio.Future[Any] | None = None

    def _start_now(self, started_at: str | None = None) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._write_start(started_at))

    async def running(self, started_at: str | None) -> None:
        """Record the run as ``running`` now."""
        self._start_now(started_at)
        await self._started  # type: ignore[misc]

    async def _write_start(self, started_at: str | None) -> None:
        state = dict(self.input)
        state["metadata"] = {
            "run_id": self.run_id, "workflow_id": self.workflow_id, "status": "running", "started_at": started_at,
        }
        try:
            await self.ctx.call(self.ctx.store.record_run, state, user=self.user, input=self.input,
                                workflow_version=self.version)
        except Exception as exc:
            log.warning("could not record the start of run %s: %s", self.run_id, exc)

    async def end(self, final: dict[str, Any] | None, error: AgentFlowError | None = None) -> None:
        """Record the final state (a debug run records its own)."""
        if self._started is not None:
            await self._started
        if final is None:
            if self._started is None:
                return  # it never started, and nobody saw it
            final = dict(self.input)
            final["metadata"] = {"run_id": self.run_id, "workflow_id": self.workflow_id, "status": "failed",
                                 "error": error.to_dict() if error else None}
        meta = final.get("metadata") or {}
        if meta.get("breakpoints") is not None and self._started is None:
            return  # a debug run recorded itself (again below if a "running" row may have come after)
        try:
            await self.ctx.history.record(final, user=self.user, input=self.input, workflow_version=self.version)
        except Exception as exc:
            log.warning("could not record run %s: %s", self.run_id, getattr(exc, "message", exc))


class InFlight:
    """Runs answered as JSON that are still going; those older than
    :data:`RECORD_RUNNING_AFTER_S` are recorded as ``running`` by one sweeping task (a timer
    per run would cost more than the run's own bookkeeping)."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[RunRecorder, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, recorder: RunRecorder) -> None:
        loop = asyncio.get_running_loop()
        self.runs[recorder.run_id] = (recorder, loop.time())
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._sweep())

    def remove(self, recorder: RunRecorder) -> None:
        self.runs.pop(recorder.run_id, None)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self.runs:
            await asyncio.sleep(RECORD_RUNNING_AFTER_S / 2)
            now = loop.time()
            for recorder, since in list(self.runs.values()):
                if now - since >= RECORD_RUNNING_AFTER_S:
                    recorder._start_now()


def _run_kwargs(ctx: ApiContext, run_id: str, user: str | None, version: int | None, subqueue: str | None,
                breakpoints: list[str] | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"run_id": run_id, "user": user, "workspace": ctx.store, "store": ctx.store,
                          "workflow_version": version, "subqueue": subqueue}
    if breakpoints:
        kw["breakpoints"] = breakpoints
    return kw


async def run_to_end(
    ctx: ApiContext,
    spec: WorkflowSpec,
    state: dict[str, Any],
    *,
    user: str | None,
    version: int | None = None,
    subqueue: str | None = None,
    breakpoints: list[str] | None = None,
) -> dict[str, Any]:
    """Run to the end (or a breakpoint) and return the final state; a failed run raises its
    error, whose ``details`` hold the run id and partial trace (recorded before it is raised).

    A finished run's history row is written by a task of its own while the answer goes out,
    so a client that hangs up does not lose it and the write adds nothing to the answer's
    time; reads of the history in this process wait for it (:meth:`ApiContext.settled`).
    """
    run_id = new_run_id()
    recorder = RunRecorder(ctx, run_id, spec.id, state, user, version)
    ctx.in_flight.add(recorder)
    try:
        final = await arun_workflow(spec, state, **_run_kwargs(ctx, run_id, user, version, subqueue, breakpoints))
    except AgentFlowError as exc:
        ctx.in_flight.remove(recorder)
        await recorder.end(getattr(exc, "state", None), exc)
        raise
    finally:
        ctx.in_flight.remove(recorder)
    ctx.record_later(run_id, recorder.end(final))
    return final


async def run_saved(
    ctx: ApiContext, who: Principal, workflow_id: str, body: RunRequest, version: int | None, *, events: bool
) -> Response:
    """``POST /api/v1/workflows/{id}/runs``: run the saved workflow (``body.version``, else
    ``version``, else the latest) for ``who``; its final state as JSON, or its live events.
    The route and its fast path (:mod:`agentflow.api.fast_runs`) both answer with this."""
    saved, spec = await ctx.find_spec(workflow_id, body.version or version)
    kw = {"user": who.name, "version": saved["version"], "subqueue": body.subqueue, "breakpoints": body.breakpoints}
    if events:
        return event_stream(await start_stream(ctx, spec, body.initial_state(), **kw))
    return json_answer(await run_to_end(ctx, spec, body.initial_state(), **kw))


class _Sink:
    """Events from the run's task to the response; dropped once the client has gone."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.detached = False

    def put(self, item: Any) -> None:
        if not self.detached:
            self.queue.put_nowait(item)

    async def events(self) -> AsyncIterator[dict[str, Any] | None]:
        """The run's events; None when the run has been quiet for :data:`KEEPALIVE_S`."""
        try:
            while True:
                try:
                    item = await asyncio.wait_for(self.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield None
                    continue
                if item is _END:
                    return
                yield item
        finally:
            self.detached = True


async def _drive(first: dict[str, Any], events: AsyncIterator[dict[str, Any]], sink: _Sink,
                 recorder: RunRecorder) -> None:
    try:
        sink.put(first)
        async for event in events:
            if event["type"] == "run_end":
                await recorder.end(event["data"])
            sink.put(event)
    except Exception:
        log.exception("streamed run %s failed unexpectedly", recorder.run_id)
        await recorder.end(None)
    finally:
        sink.put(_END)


async def start_stream(
    ctx: ApiContext,
    spec: WorkflowSpec,
    state: dict[str, Any],
    *,
    user: str | None,
    version: int | None = None,
    subqueue: str | None = None,
    breakpoints: list[str] | None = None,
) -> AsyncIterator[dict[str, Any] | None]:
    """Start a run in a task of its own; its live events (``run_start`` first, ``run_end``
    last; None for a keep-alive). A run that cannot start raises here, before any event."""
    run_id = new_run_id()
    events = astream_workflow(spec, state, **_run_kwargs(ctx, run_id, user, version, subqueue, breakpoints))
    first = await events.__anext__()  # the run exists (or its input was refused) from here
    recorder = RunRecorder(ctx, run_id, spec.id, state, user, version)
    await recorder.running(first["data"].get("started_at"))
    sink = _Sink()
    ctx.spawn(_drive(first, events, sink, recorder))
    return sink.events()


def sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def event_stream(
    events: AsyncIterator[dict[str, Any] | None], render: Callable[[dict[str, Any]], list[bytes]] | None = None,
    trailer: bytes | None = None,
) -> StreamingResponse:
    """A ``text/event-stream`` response of ``events`` (as ``event: <type>`` / ``data: <json>``
    unless ``render`` turns each event into other lines)."""

    async def body() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if event is None:
                    yield b": keep-alive\n\n"
                elif render is None:
                    yield sse(event["type"], dumps(event))
                else:
                    for piece in render(event):
                        yield piece
        if trailer:
            yield trailer

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
