"""Wraps a node type into the callable LangGraph runs: trace, retries, timeouts, errors.

One wrapper per node, shared by every run of a build. The sync and async forms share all
bookkeeping (:class:`_Attempts`) and differ only in how they wait and call, so a run under
``invoke`` never needs an event loop and a run under ``ainvoke`` never hops threads.

Per node and attempt: the cancel flag is checked, the node's deadline set from its
``timeout_s`` and the run's, the node run; provider errors and timeouts are retried by
the node's ``retry`` policy; a final failure either stops the run (``on_error: fail``) or
is recorded in ``state.errors`` and the trace while the run goes on (``continue``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph._internal._runnable import RunnableCallable
from langgraph.runtime import Runtime

from agentflow.errors import AgentFlowError, ExecutionError, SourceConnectionError
from agentflow.nodes.base import NodeType
from agentflow.redact import redact
from agentflow.runtime.context import NodeRun, RunCancelled, RunContext, iso
from agentflow.spec.models import RetryPolicy, WorkflowSpec

log = logging.getLogger("agentflow.runtime")

_ONCE = RetryPolicy(max_attempts=1)


class NodeFailed(Exception):
    """Carries a node's final error out of LangGraph to the executor (``on_error: fail``)."""

    def __init__(self, error: AgentFlowError) -> None:
        super().__init__(error.message)
        self.error = error


def public_entry(entry: dict[str, Any], *, copy: bool = True) -> dict[str, Any]:
    """A trace entry as users see it (timestamps as ISO text): a copy for live events, the
    entry itself when the run has ended (no allocation on the hot path)."""
    out = dict(entry) if copy else entry
    for key in ("started_at", "ended_at"):
        if isinstance(out.get(key), float):
            out[key] = iso(out[key])
    return out


class _Attempts:
    """Bookkeeping of one node execution across its attempts."""

    __slots__ = ("ctx", "emit", "entry", "impl", "policy", "started", "state")

    def __init__(self, impl: NodeType, state: dict[str, Any], ctx: RunContext, emit, step: int | None) -> None:
        node = impl.spec
        if ctx.cancel.is_set():
            raise RunCancelled(ctx.run_id)
        self.impl, self.state, self.ctx = impl, state, ctx
        self.emit = emit if ctx.streaming else None
        self.policy = node.retry or _ONCE
        self.started = time.perf_counter()
        self.entry: dict[str, Any] = {
            "node": node.id,
            "type": node.type,
            "status": "running",
            "started_at": time.time(),  # epoch while running; ISO text once published
            "ended_at": None,
            "latency_ms": None,
            "offset_ms": ctx.offset_ms(self.started),
            "step": step,
            "source": node.source,
            "queue": node.queue,
            "queue_wait_ms": 0.0,
            "attempts": 0,
            "tokens": {"prompt": 0, "completion": 0, "total": 0},
            "cost_usd": 0.0,
            "error": None,
        }
        ctx.trace.append(self.entry)
        if self.emit is not None:
            self.emit({"type": "node_start", "run_id": ctx.run_id, "node": node.id, "data": public_entry(self.entry)})

    def next_run(self) -> NodeRun:
        self.entry["attempts"] += 1
        limits = [t for t in (self.impl.spec.timeout_s,) if t]
        deadline = time.monotonic() + min(limits) if limits else None
        if self.ctx.deadline is not None:
            deadline = self.ctx.deadline if deadline is None else min(deadline, self.ctx.deadline)
        return NodeRun(self.ctx, self.impl.spec, self.entry, self.emit, deadline)

    def classify(self, exc: BaseException) -> tuple[AgentFlowError, bool]:
        """The error as the user sees it, and whether the retry policy applies."""
        node = self.impl.spec
        if isinstance(exc, AgentFlowError):
            exc.node = exc.node or node.id
            return exc, bool(getattr(exc, "retryable", False))
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            limit = node.timeout_s or self.ctx.workflow.settings.timeout_s
            err = SourceConnectionError(
                f'node "{node.id}" timed out after {limit:g} s; raise its "timeout_s" or check the source',
                node=node.id,
                source=node.source,
            )
            return err, True
        log.error("node %s raised %s", node.id, type(exc).__name__, exc_info=exc)
        msg = redact(f"{type(exc).__name__}: {exc}")
        return ExecutionError(f'node "{node.id}" failed: {msg}', node=node.id), False

    def retry_delay(self, err: AgentFlowError, retryable: bool) -> float | None:
        """Seconds to wait before the next attempt, or None when there is none."""
        attempt = self.entry["attempts"]
        if not retryable or attempt >= self.policy.max_attempts or self.ctx.cancel.is_set():
            return None
        delay = self.policy.delay(attempt, getattr(err, "retry_after_s", None))
        if self.ctx.deadline is not None and time.monotonic() + delay >= self.ctx.deadline:
            return None
        log.info("node %s attempt %d failed (%s); retrying in %.2fs", self.impl.spec.id, attempt, err.message, delay)
        if self.emit is not None:
            self.emit(
                {
                    "type": "node_retry",
                    "run_id": self.ctx.run_id,
                    "node": self.impl.spec.id,
                    "data": {"attempt": attempt, "error": err.to_dict(), "delay_s": delay},
                }
            )
        return delay

    def _close(self, status: str) -> None:
        e = self.entry
        e["status"] = status
        e["ended_at"] = time.time()
        e["latency_ms"] = round((time.perf_counter() - self.started) * 1000, 3)

    def succeeded(self, update: dict[str, Any]) -> dict[str, Any]:
        self._close("succeeded")
        self.entry["writes"] = list(update)
        self._ended(update)
        return update

    def failed(self, err: AgentFlowError) -> dict[str, Any]:
        self._close("failed")
        self.entry["error"] = err.to_dict()
        node = self.impl.spec
        log.warning("node %s failed after %d attempt(s): %s", node.id, self.entry["attempts"], err.message)
        if node.on_error == "continue":
            update = {"errors": [{"node": node.id, **err.to_dict()}]}
            self.entry["writes"] = ["errors"]
            self._ended(update)
            return update
        self._ended(None)
        raise NodeFailed(err)

    def _ended(self, update: dict[str, Any] | None) -> None:
        if self.emit is not None:
            data = {"update": update, "trace": public_entry(self.entry)}
            self.emit({"type": "node_end", "run_id": self.ctx.run_id, "node": self.impl.spec.id, "data": data})


def _context(runtime: Runtime | None, workflow: WorkflowSpec) -> RunContext:
    ctx = runtime.context if runtime is not None else None
    if isinstance(ctx, RunContext):
        return ctx
    # The compiled graph was invoked directly (not through run_workflow): run untraced.
    from agentflow.runtime.workspace import default_workspace

    return RunContext(workflow=workflow, workspace=default_workspace())


def _step(config: RunnableConfig | None) -> int | None:
    meta = (config or {}).get("metadata") or {}
    return meta.get("langgraph_step")


class _NodeCall:
    """The callable LangGraph runs for one node.

    A callable object rather than a closure: LangGraph scans the bytecode of closures for
    subgraphs at compile time (about 1 ms per node), and objects are not scanned.
    """

    __slots__ = ("impl", "workflow")

    def __init__(self, impl: NodeType, workflow: WorkflowSpec) -> None:
        self.impl = impl
        self.workflow = workflow

    def __call__(self, state: dict[str, Any], runtime: Runtime, config: RunnableConfig) -> dict[str, Any]:
        impl = self.impl
        ctx = _context(runtime, self.workflow)
        att = _Attempts(impl, state, ctx, runtime.stream_writer, _step(config))
        while True:
            nrun = att.next_run()
            try:
                update = impl.run(state, nrun)
                if nrun.expired:  # the provider ignored its timeout: the node still failed it
                    raise TimeoutError
                return att.succeeded(update)
            except (RunCancelled, NodeFailed):
                raise
            except Exception as exc:
                err, retryable = att.classify(exc)
                delay = att.retry_delay(err, retryable)
                if delay is None:
                    return att.failed(err)
                if ctx.cancel.wait(delay):
                    raise RunCancelled(ctx.run_id) from None


class _AsyncNodeCall(_NodeCall):
    __slots__ = ()

    async def __call__(self, state: dict[str, Any], runtime: Runtime, config: RunnableConfig) -> dict[str, Any]:  # type: ignore[override]
        impl = self.impl
        ctx = _context(runtime, self.workflow)
        att = _Attempts(impl, state, ctx, runtime.stream_writer, _step(config))
        while True:
            nrun = att.next_run()
            try:
                if nrun.timeout_s is None:
                    update = await impl.arun(state, nrun)
                else:
                    update = await asyncio.wait_for(impl.arun(state, nrun), nrun.timeout_s)
                return att.succeeded(update)
            except (RunCancelled, NodeFailed):
                raise
            except Exception as exc:
                err, retryable = att.classify(exc)
                delay = att.retry_delay(err, retryable)
                if delay is None:
                    return att.failed(err)
                await asyncio.sleep(delay)
                if ctx.cancel.is_set():
                    raise RunCancelled(ctx.run_id) from None


def make_node(impl: NodeType, workflow: WorkflowSpec) -> RunnableCallable:
    """The LangGraph node for ``impl``, with sync and async forms."""
    return RunnableCallable(
        _NodeCall(impl, workflow), _AsyncNodeCall(impl, workflow), name=impl.spec.id, trace=False
    )
