"""Executor: validate, build (cached), run; trace, totals, status, errors (spec sections 8-10).

Four entry points share one :class:`_Run`: ``run_workflow`` / ``arun_workflow`` return the
final state; ``stream_workflow`` / ``astream_workflow`` yield the live events the Run page
draws (``run_start``, ``node_start``, ``token``, ``node_retry``, ``node_end``, ``run_end``).
Runs drive LangGraph's ``stream(stream_mode="values")`` (what ``invoke`` does inside), so
a failing run still has the state of its last finished step to return with its trace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langgraph.errors import GraphRecursionError, InvalidUpdateError

from agentflow.errors import AgentFlowError, ExecutionError, InternalServerError
from agentflow.logs import setup_logging
from agentflow.metrics import summarize_trace
from agentflow.runtime.builder import compile_workflow
from agentflow.runtime.context import RunCancelled, RunContext, utc_now
from agentflow.runtime.node_runner import NodeFailed, public_entry
from agentflow.runtime.state import CONFLICT_PREFIX
from agentflow.runtime.workspace import DefaultWorkspace, Workspace
from agentflow.settings import get_settings
from agentflow.spec.models import STATE_KEYS, WorkflowSpec
from agentflow.spec.validate import validate_workflow

log = logging.getLogger("agentflow.runtime")

_active: dict[str, RunContext] = {}
_active_lock = threading.Lock()


def cancel_run(run_id: str) -> bool:
    """Stop a running run of this process at its next node boundary (status ``cancelled``).

    Returns whether a run with that id was running here.
    """
    with _active_lock:
        ctx = _active.get(run_id)
    if ctx is None:
        return False
    ctx.cancel.set()
    return True


def active_runs() -> list[str]:
    with _active_lock:
        return list(_active)


def _initial(initial_state: Any) -> dict[str, Any]:
    if initial_state is None:
        return {}
    if isinstance(initial_state, str):
        return {"user_input": initial_state}
    if not isinstance(initial_state, dict):
        raise ExecutionError(f"the initial state must be a JSON object; got {type(initial_state).__name__}")
    return dict(initial_state)


class _Run:
    """One run's setup and its translation of outcomes into the spec's result."""

    def __init__(
        self,
        spec: Any,
        initial_state: Any,
        *,
        streaming: bool,
        subqueue: str | None = None,
        run_id: str | None = None,
        workspace: Workspace | None = None,
        user: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        settings = get_settings()
        setup_logging(settings)
        workspace = workspace if workspace is not None else DefaultWorkspace(settings.db_url)
        self.spec: WorkflowSpec = validate_workflow(spec, workspace=workspace)
        self.compiled = compile_workflow(self.spec)
        self.input = _initial(initial_state)
        limit = timeout_s or self.spec.settings.timeout_s
        kw: dict[str, Any] = {}
        if run_id:
            kw["run_id"] = run_id
        self.ctx = RunContext(
            workflow=self.spec,
            workspace=workspace,
            subqueue=subqueue,
            streaming=streaming,
            user=user,
            deadline=time.monotonic() + limit if limit else None,
            **kw,
        )
        self.graph = self.compiled.graph(self.input.keys())
        self.config = {"recursion_limit": self.spec.settings.recursion_limit}
        self.values: dict[str, Any] = dict(self.input)
        self.error: AgentFlowError | None = None
        self.status = "succeeded"
        with _active_lock:
            _active[self.ctx.run_id] = self.ctx

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    def start_event(self) -> dict[str, Any]:
        data = {"run_id": self.run_id, "workflow_id": self.spec.id, "started_at": self.ctx.started_at}
        return {"type": "run_start", "run_id": self.run_id, "data": data}

    def end_event(self, final: dict[str, Any]) -> dict[str, Any]:
        return {"type": "run_end", "run_id": self.run_id, "data": final}

    def fail(self, exc: BaseException) -> None:
        """Record how the run ended abnormally (called with the exception LangGraph raised)."""
        if isinstance(exc, RunCancelled):
            self.status = "cancelled"
            return
        self.status = "failed"
        if isinstance(exc, NodeFailed):
            self.error = exc.error
        elif isinstance(exc, GraphRecursionError):
            limit = self.spec.settings.recursion_limit
            self.error = ExecutionError(
                f"the run did not finish within settings.recursion_limit={limit} steps: a loop may "
                "never reach its exit (check the router that should leave it), or raise the limit"
            )
        elif isinstance(exc, InvalidUpdateError) and CONFLICT_PREFIX in str(exc):
            self.error = self._conflict(str(exc).split(CONFLICT_PREFIX, 1)[1].split()[0])
        elif isinstance(exc, AgentFlowError):
            self.error = exc
        else:
            log.error("run %s failed unexpectedly", self.run_id, exc_info=exc)
            self.error = InternalServerError(f"internal error in run {self.run_id}: {type(exc).__name__}: {exc}")

    def _conflict(self, key: str) -> ExecutionError:
        steps = [e.get("step") for e in self.ctx.trace if key in e.get("writes", ())]
        last = max((s for s in steps if s is not None), default=None)
        nodes = [e["node"] for e in self.ctx.trace if key in e.get("writes", ()) and e.get("step") == last]
        names = " and ".join(f'"{n}"' for n in nodes) or "two nodes"
        return ExecutionError(
            f'nodes {names} wrote different values to "{key}" in the same step; give one of them '
            "another config.output_key",
            node=nodes[-1] if nodes else None,
        )

    def finish(self) -> dict[str, Any]:
        """The final state with its ``metadata`` (spec section 8)."""
        with _active_lock:
            _active.pop(self.run_id, None)
        ctx = self.ctx
        trace = []
        for entry in list(ctx.trace):
            entry = public_entry(entry)
            if entry["status"] == "running":  # a parallel branch cut short by the run's end
                entry["status"] = "cancelled"
            trace.append(entry)
        tokens, cost = summarize_trace(trace)
        final = {k: self.values.get(k) for k in STATE_KEYS}
        final.update(self.values)
        final["errors"] = list(self.values.get("errors") or [])
        metadata = dict(self.values.get("metadata") or {})
        metadata.update(
            run_id=self.run_id,
            workflow_id=self.spec.id,
            status=self.status,
            started_at=ctx.started_at,
            ended_at=utc_now(),
            total_runtime_ms=round((time.perf_counter() - ctx.started) * 1000, 3),
            nodes_executed=[e["node"] for e in trace],
            trace=trace,
            tokens=tokens,
            cost_usd=cost,
        )
        if ctx.user:
            metadata["user"] = ctx.user
        if ctx.subqueue:
            metadata["subqueue"] = ctx.subqueue
        if self.error is not None:
            metadata["error"] = self.error.to_dict()
        final["metadata"] = metadata
        self._log(metadata)
        return final

    def _log(self, meta: dict[str, Any]) -> None:
        level = logging.INFO if self.status != "failed" else logging.WARNING
        if not log.isEnabledFor(level):
            return
        if log.isEnabledFor(logging.DEBUG):
            for e in meta["trace"]:
                log.debug(
                    "run %s node %s %s %sms attempts=%s source=%s queue_wait=%sms tokens=%s",
                    self.run_id, e["node"], e["status"], e["latency_ms"], e["attempts"],
                    e["source"], e["queue_wait_ms"], e["tokens"]["total"],
                )
        nodes = " ".join(
            f"{e['node']}:{e['status']}:{e['latency_ms']}ms" + (f"@{e['source']}" if e["source"] else "")
            for e in meta["trace"]
        )
        error = f" error={self.error.error_type}: {self.error.message}" if self.error else ""
        log.log(
            level,
            "run %s workflow=%s status=%s %.1fms tokens=%d cost=$%.6f nodes=[%s]%s",
            self.run_id, self.spec.id, self.status, meta["total_runtime_ms"],
            meta["tokens"]["total"], meta["cost_usd"], nodes, error,
        )

    def result(self, final: dict[str, Any], raise_on_error: bool) -> dict[str, Any]:
        if self.error is not None and raise_on_error:
            raise self.raised(final)
        return final

    def raised(self, final: dict[str, Any]) -> AgentFlowError:
        """The run's error, carrying its run id and partial trace (spec section 9)."""
        err = self.error
        assert err is not None
        details: dict[str, Any] = {"cause": err.details} if err.details else {}
        if isinstance(err.details, dict):
            details = dict(err.details)
        details.update(run_id=self.run_id, status="failed", node=err.node, trace=final["metadata"]["trace"])
        err.details = details
        err.state = final  # type: ignore[attr-defined]
        return err


def run_workflow(
    spec: Any,
    initial_state: Any = None,
    *,
    subqueue: str | None = None,
    run_id: str | None = None,
    workspace: Workspace | None = None,
    user: str | None = None,
    timeout_s: float | None = None,
    raise_on_error: bool = True,
) -> dict[str, Any]:
    """Run a workflow to its end and return the final state (``metadata`` per spec section 8).

    ``spec`` is a validated spec, a dict, JSON text or a path; ``initial_state`` a dict (or a
    string, taken as ``user_input``). A failed run raises its error, whose ``details`` hold
    the run id and partial trace and whose ``state`` is the partial final state; with
    ``raise_on_error=False`` that state is returned with status ``failed`` instead.
    Safe to call from many threads at once.
    """
    run = _Run(spec, initial_state, streaming=False, subqueue=subqueue, run_id=run_id,
               workspace=workspace, user=user, timeout_s=timeout_s)
    try:
        for chunk in run.graph.stream(run.input, run.config, context=run.ctx, stream_mode="values"):
            run.values = chunk
    except Exception as exc:
        run.fail(exc)
    return run.result(run.finish(), raise_on_error)


async def arun_workflow(
    spec: Any,
    initial_state: Any = None,
    *,
    subqueue: str | None = None,
    run_id: str | None = None,
    workspace: Workspace | None = None,
    user: str | None = None,
    timeout_s: float | None = None,
    raise_on_error: bool = True,
) -> dict[str, Any]:
    """Async twin of :func:`run_workflow` (nodes run as coroutines, no thread per node)."""
    run = _Run(spec, initial_state, streaming=False, subqueue=subqueue, run_id=run_id,
               workspace=workspace, user=user, timeout_s=timeout_s)
    try:
        async for chunk in run.graph.astream(run.input, run.config, context=run.ctx, stream_mode="values"):
            run.values = chunk
    except Exception as exc:
        run.fail(exc)
    return run.result(run.finish(), raise_on_error)


def stream_workflow(spec: Any, initial_state: Any = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Yield the run's live events, ``run_start`` first and ``run_end`` (final state) last.

    Takes the keyword arguments of :func:`run_workflow`; a failed run does not raise: its
    ``run_end`` state has status ``failed`` and ``metadata.error``.
    """
    kwargs.pop("raise_on_error", None)
    run = _Run(spec, initial_state, streaming=True, **kwargs)
    yield run.start_event()
    try:
        for mode, chunk in run.graph.stream(
            run.input, run.config, context=run.ctx, stream_mode=["values", "custom"]
        ):
            if mode == "custom":
                yield chunk
            else:
                run.values = chunk
    except Exception as exc:
        run.fail(exc)
    finally:
        with _active_lock:
            _active.pop(run.run_id, None)
    yield run.end_event(run.finish())


async def astream_workflow(spec: Any, initial_state: Any = None, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
    """Async twin of :func:`stream_workflow`."""
    kwargs.pop("raise_on_error", None)
    run = _Run(spec, initial_state, streaming=True, **kwargs)
    yield run.start_event()
    try:
        async for mode, chunk in run.graph.astream(
            run.input, run.config, context=run.ctx, stream_mode=["values", "custom"]
        ):
            if mode == "custom":
                yield chunk
            else:
                run.values = chunk
    except Exception as exc:
        run.fail(exc)
    finally:
        with _active_lock:
            _active.pop(run.run_id, None)
    yield run.end_event(run.finish())
