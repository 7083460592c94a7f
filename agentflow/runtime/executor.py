"""Executor: validate, build (cached), run; trace, totals, status, errors (spec sections 8-10).

Four entry points share one :class:`_Run`: ``run_workflow`` / ``arun_workflow`` return the
final state; ``stream_workflow`` / ``astream_workflow`` yield the live events the Run page
draws (``run_start``, ``node_start``, ``token``, ``node_retry``, ``node_end``, ``run_end``).
Runs drive LangGraph's ``stream(stream_mode="values")`` (what ``invoke`` does inside), so
a failing run still has the state of its last finished step to return with its trace.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.errors import GraphRecursionError, InvalidUpdateError

from agentflow.errors import AgentFlowError, ExecutionError, InternalServerError, NotFoundError, ValidationError
from agentflow.logs import setup_logging
from agentflow.metrics import summarize_trace
from agentflow.runtime.builder import compile_workflow
from agentflow.runtime.context import RunCancelled, RunContext, utc_now
from agentflow.runtime.node_runner import NodeFailed, public_entry
from agentflow.runtime.state import CONFLICT_PREFIX
from agentflow.runtime.workspace import DefaultWorkspace, Workspace
from agentflow.settings import get_settings
from agentflow.spec.models import STATE_KEYS, WorkflowSpec
from agentflow.spec.suggest import did_you_mean
from agentflow.spec.validate import validate_workflow

log = logging.getLogger("agentflow.runtime")

_active: dict[str, RunContext] = {}
_active_lock = threading.Lock()


def cancel_run(run_id: str, *, store: Any = None) -> bool:
    """Stop a run at its next node boundary (status ``cancelled``), or cancel a paused run.

    Returns whether a running run of this process, or a paused run in the store, had that id.
    """
    with _active_lock:
        ctx = _active.get(run_id)
    if ctx is not None:
        ctx.cancel.set()
        return True
    store = store if store is not None else _default_store()
    try:
        record = store.get_run(run_id)
    except NotFoundError:
        return False
    if record["status"] != "interrupted" or not record.get("final_state"):
        return False
    final = dict(record["final_state"])
    meta = dict(final.get("metadata") or {})
    meta.update(status="cancelled", ended_at=utc_now())
    meta.pop("next", None)
    final["metadata"] = meta
    store.record_run(final, user=record.get("user"), input=record.get("input"),
                     workflow_version=record.get("workflow_version"))
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


@dataclass(frozen=True)
class Breaks:
    """Where a debug run pauses: before or after nodes, or before every node (step mode)."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    step: bool = False

    @property
    def active(self) -> bool:
        return bool(self.before or self.after or self.step)

    def stream_kwargs(self) -> dict[str, Any]:
        return {
            "interrupt_before": "*" if self.step else list(self.before),
            "interrupt_after": list(self.after),
            "durability": "sync",
        }

    def to_json(self) -> str:
        return json.dumps({"before": list(self.before), "after": list(self.after), "step": self.step})

    @classmethod
    def from_json(cls, text: str | None) -> Breaks:
        data = json.loads(text) if text else {}
        return cls(tuple(data.get("before", ())), tuple(data.get("after", ())), bool(data.get("step")))

    def check(self, spec: WorkflowSpec) -> None:
        ids = [n.id for n in spec.nodes]
        bad = [n for n in (*self.before, *self.after) if n not in ids]
        if bad:
            errors = [
                {"path": "breakpoints", "message": f'no node "{n}" in workflow "{spec.id}"{did_you_mean(n, ids)}'}
                for n in bad
            ]
            raise ValidationError.from_problems(errors)


@dataclass
class Resumption:
    """What a paused (or forked) run carries into its next segment."""

    run_id: str
    trace: list[dict[str, Any]]
    input: dict[str, Any]
    user: str | None
    subqueue: str | None
    started_at: str
    prior_runtime_ms: float
    workflow_version: int | None = None
    forked_from: dict[str, Any] | None = None


class _Run:
    """One run (or one segment of a paused run) and its translation into the spec's result."""

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
        breakpoints: list[str] | tuple[str, ...] | None = None,
        break_after: list[str] | tuple[str, ...] | None = None,
        step: bool = False,
        store: Any = None,
        workflow_version: int | None = None,
        resume: Resumption | None = None,
    ) -> None:
        settings = get_settings()
        setup_logging(settings)
        workspace = workspace if workspace is not None else DefaultWorkspace(settings.db_url)
        self.spec: WorkflowSpec = validate_workflow(spec, workspace=workspace)
        self.compiled = compile_workflow(self.spec)
        self.breaks = Breaks(tuple(breakpoints or ()), tuple(break_after or ()), bool(step))
        if self.breaks.active:
            self.breaks.check(self.spec)
        self.resume = resume
        self.workflow_version = workflow_version if resume is None else resume.workflow_version
        self.input = _initial(initial_state) if resume is None else dict(resume.input)
        limit = timeout_s or self.spec.settings.timeout_s
        kw: dict[str, Any] = {}
        if resume is not None:
            run_id, user, subqueue = resume.run_id, resume.user, resume.subqueue
            kw.update(trace=resume.trace, started_at=resume.started_at)
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
        if resume is not None:
            self.ctx.offset_base_ms = _since_ms(resume.started_at)
        self.config: dict[str, Any] = {"recursion_limit": self.spec.settings.recursion_limit}
        self.stream_kwargs: dict[str, Any] = {}
        self.store = store
        self.debug = self.breaks.active or resume is not None
        self.next: list[str] = []
        if self.debug:
            self.store = store if store is not None else _default_store()
            self.config["configurable"] = {"thread_id": self.ctx.run_id}
            self.config["metadata"] = {
                "agentflow_document": json.dumps(self.spec.to_document()),
                "agentflow_breaks": self.breaks.to_json(),
                "agentflow_subqueue": subqueue or "",
                "agentflow_user": user or "",
            }
            self.stream_kwargs = self.breaks.stream_kwargs()
        self.graph: Any = None
        #: Keys a resumed run's checkpoint or state patch brings beyond the input's.
        self.extra_keys: set[str] = set()
        self.values: dict[str, Any] = dict(self.input)
        self.error: AgentFlowError | None = None
        self.status = "succeeded"
        with _active_lock:
            _active[self.ctx.run_id] = self.ctx

    def bind(self, async_saver: Any = None) -> Any:
        """Compile (or fetch) the graph for this run; debug runs are checkpointed."""
        keys = set(self.input) | set(self.extra_keys)
        if async_saver is not None:
            self.graph = self.compiled.graph(keys, checkpointer=async_saver, cache=False)
        else:
            saver = self.store.checkpointer() if self.debug else None
            self.graph = self.compiled.graph(keys, checkpointer=saver)
        return self.graph

    @property
    def graph_input(self) -> dict[str, Any] | None:
        """What the graph starts from: the input, or nothing (go on from the checkpoint)."""
        return None if self.resume is not None else self.input

    def after_stream(self) -> None:
        """A debug run that stopped without error may have paused at a breakpoint."""
        if not self.debug or self.status != "succeeded":
            return
        snapshot = self.graph.get_state(self.config)
        self._paused(snapshot)

    async def aafter_stream(self) -> None:
        if not self.debug or self.status != "succeeded":
            return
        self._paused(await self.graph.aget_state(self.config))

    def _paused(self, snapshot: Any) -> None:
        if not snapshot.next:
            return
        self.status = "interrupted"
        self.next = list(snapshot.next)
        self.values = dict(snapshot.values)
        now = time.time()
        self.ctx.trace.append(
            {
                "node": self.next[0],
                "type": "pause",
                "status": "interrupted",
                "started_at": now,
                "ended_at": None,
                "latency_ms": None,
                "offset_ms": self.ctx.offset_ms(),
                "step": snapshot.metadata.get("step") if snapshot.metadata else None,
                "source": None,
                "queue": None,
                "queue_wait_ms": 0.0,
                "attempts": 0,
                "tokens": {"prompt": 0, "completion": 0, "total": 0},
                "cost_usd": 0.0,
                "error": None,
                "next": self.next,
            }
        )

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    def interrupt_event(self) -> dict[str, Any]:
        data = {"next": self.next, "paused_before": self.next[0], "state": dict(self.values)}
        return {"type": "interrupt", "run_id": self.run_id, "node": self.next[0], "data": data}

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
        """The final state with its ``metadata`` (spec section 8); debug runs are recorded."""
        with _active_lock:
            _active.pop(self.run_id, None)
        ctx = self.ctx
        trace = []
        for entry in list(ctx.trace):
            # A branch cut short may still be finishing in another thread: copy those only.
            entry = public_entry(entry, copy=entry["status"] == "running")
            if entry["status"] == "running":  # a parallel branch cut short by the run's end
                entry["status"] = "cancelled"
            trace.append(entry)
        tokens, cost = summarize_trace(trace)
        final = {k: self.values.get(k) for k in STATE_KEYS}
        final.update(self.values)
        final["errors"] = list(self.values.get("errors") or [])
        metadata = dict(self.values.get("metadata") or {})
        runtime_ms = (time.perf_counter() - ctx.started) * 1000
        if self.resume is not None:
            runtime_ms += self.resume.prior_runtime_ms
        metadata.update(
            run_id=self.run_id,
            workflow_id=self.spec.id,
            status=self.status,
            started_at=ctx.started_at,
            ended_at=utc_now(),
            total_runtime_ms=round(runtime_ms, 3),
            nodes_executed=[e["node"] for e in trace if e["type"] != "pause"],
            trace=trace,
            tokens=tokens,
            cost_usd=cost,
        )
        if self.workflow_version is not None:
            metadata["workflow_version"] = self.workflow_version
        if ctx.user:
            metadata["user"] = ctx.user
        if ctx.subqueue:
            metadata["subqueue"] = ctx.subqueue
        if self.debug:
            metadata["breakpoints"] = {"before": list(self.breaks.before), "after": list(self.breaks.after),
                                       "step": self.breaks.step}
        if self.resume is not None and self.resume.forked_from:
            metadata["forked_from"] = self.resume.forked_from
        if self.status == "interrupted":
            metadata["paused_before"] = self.next[0]
            metadata["next"] = self.next
        if self.error is not None:
            metadata["error"] = self.error.to_dict()
        final["metadata"] = metadata
        self._log(metadata)
        if self.debug:
            self.store.record_run(final, user=ctx.user, input=self.input, workflow_version=self.workflow_version)
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
            f"(pause before {e['node']}: {e['status']})"
            if e["type"] == "pause"
            else f"{e['node']}:{e['status']}:{e['latency_ms']}ms" + (f"@{e['source']}" if e["source"] else "")
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


_RUN_KW = """
    Keyword arguments: ``subqueue`` (queue subqueue for every call, e.g. "batch"),
    ``run_id``, ``workspace``, ``user``, ``timeout_s`` (the whole run), ``workflow_version``
    (recorded in metadata), and for step-by-step inspection ``breakpoints`` (pause before
    these nodes), ``break_after`` (pause after them), ``step`` (pause before every node) and
    ``store`` (where the run is checkpointed; default: the workbench store).
"""


def run_workflow(spec: Any, initial_state: Any = None, *, raise_on_error: bool = True, **kw: Any) -> dict[str, Any]:
    """Run a workflow to its end (or its next breakpoint) and return the final state.

    ``spec`` is a validated spec, a dict, JSON text or a path; ``initial_state`` a dict (or a
    string, taken as ``user_input``). The state's ``metadata`` is spec section 8's. A failed
    run raises its error, whose ``details`` hold the run id and partial trace and whose
    ``state`` is the partial final state; with ``raise_on_error=False`` that state is
    returned with status ``failed`` instead. A run paused at a breakpoint returns with
    status ``interrupted`` and ``metadata.paused_before``. Safe to call from many threads.
    """
    return _drive(_Run(spec, initial_state, streaming=False, **kw), raise_on_error)


def _drive(run: _Run, raise_on_error: bool) -> dict[str, Any]:
    try:
        graph = run.bind()
        for chunk in graph.stream(run.graph_input, run.config, context=run.ctx, stream_mode="values",
                                  **run.stream_kwargs):
            run.values = chunk
        run.after_stream()
    except Exception as exc:
        run.fail(exc)
    return run.result(run.finish(), raise_on_error)


async def arun_workflow(
    spec: Any, initial_state: Any = None, *, raise_on_error: bool = True, **kw: Any
) -> dict[str, Any]:
    """Async twin of :func:`run_workflow` (nodes run as coroutines, no thread per node)."""
    return await _adrive(_Run(spec, initial_state, streaming=False, **kw), raise_on_error)


async def _adrive(run: _Run, raise_on_error: bool) -> dict[str, Any]:
    async with _async_saver(run) as saver:
        try:
            graph = run.bind(saver)
            async for chunk in graph.astream(run.graph_input, run.config, context=run.ctx, stream_mode="values",
                                             **run.stream_kwargs):
                run.values = chunk
            await run.aafter_stream()
        except Exception as exc:
            run.fail(exc)
    return run.result(run.finish(), raise_on_error)


def _async_saver(run: _Run) -> Any:
    """An async checkpointer for debug runs (savers are bound to one event loop)."""
    if not run.debug:
        return contextlib.nullcontext(None)
    return run.store.acheckpointer()


def stream_workflow(spec: Any, initial_state: Any = None, **kw: Any) -> Iterator[dict[str, Any]]:
    """Yield the run's live events, ``run_start`` first and ``run_end`` (final state) last.

    Takes the keyword arguments of :func:`run_workflow`; a failed run does not raise: its
    ``run_end`` state has status ``failed`` and ``metadata.error``. A run pausing at a
    breakpoint yields ``interrupt`` (data: ``paused_before``, ``next``, ``state``) before
    ``run_end``.
    """
    kw.pop("raise_on_error", None)
    return _stream(_Run(spec, initial_state, streaming=True, **kw))


def _stream(run: _Run) -> Iterator[dict[str, Any]]:
    yield run.start_event()
    try:
        graph = run.bind()
        for mode, chunk in graph.stream(run.graph_input, run.config, context=run.ctx,
                                        stream_mode=["values", "custom"], **run.stream_kwargs):
            if mode == "custom":
                yield chunk
            else:
                run.values = chunk
        run.after_stream()
    except Exception as exc:
        run.fail(exc)
    finally:
        with _active_lock:
            _active.pop(run.run_id, None)
    if run.status == "interrupted":
        yield run.interrupt_event()
    yield run.end_event(run.finish())


async def astream_workflow(spec: Any, initial_state: Any = None, **kw: Any) -> AsyncIterator[dict[str, Any]]:
    """Async twin of :func:`stream_workflow`."""
    kw.pop("raise_on_error", None)
    async for event in _astream(_Run(spec, initial_state, streaming=True, **kw)):
        yield event


async def _astream(run: _Run) -> AsyncIterator[dict[str, Any]]:
    yield run.start_event()
    async with _async_saver(run) as saver:
        try:
            graph = run.bind(saver)
            async for mode, chunk in graph.astream(run.graph_input, run.config, context=run.ctx,
                                                   stream_mode=["values", "custom"], **run.stream_kwargs):
                if mode == "custom":
                    yield chunk
                else:
                    run.values = chunk
            await run.aafter_stream()
        except Exception as exc:
            run.fail(exc)
        finally:
            with _active_lock:
                _active.pop(run.run_id, None)
    if run.status == "interrupted":
        yield run.interrupt_event()
    yield run.end_event(run.finish())


def _default_store() -> Any:
    from agentflow.store import default_store

    return default_store()


def _since_ms(iso_text: str) -> float:
    started = datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    return round((datetime.now(UTC) - started).total_seconds() * 1000, 3)
