"""Per-run context: what one run's nodes share, passed through LangGraph's ``context``.

This replaces the seed's process-global registry: each run gets its own ``RunContext``
(trace, totals, cancel flag, workspace, streaming switch), so runs in different browser
sessions (threads) never see each other's state. What *is* shared by design lives behind
thread-safe objects: the provider client cache and the queue manager.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agentflow.errors import BudgetExceeded, ExecutionError
from agentflow.runtime.workspace import EMPTY, Workspace
from agentflow.sending import Departure, calling
from agentflow.sources.base import Provider, Usage
from agentflow.sources.clients import clients
from agentflow.spec import templates as tpl
from agentflow.spec.models import NodeSpec, SourceSpec, WorkflowSpec

if TYPE_CHECKING:
    from agentflow.nodes.base import Estimator
    from agentflow.runtime.rate_limiter import Grant, QueueLimiter, QueueManager


def utc_now() -> str:
    return iso(time.time())


_second: tuple[int, str] = (-1, "")


def iso(ts: float) -> str:
    """An epoch time as ``2026-11-29T06:27:13.401Z`` (the trace's format).

    Timestamps of one run mostly share their second, so its text is reused.
    """
    global _second
    whole = int(ts)
    cached = _second
    if cached[0] != whole:
        cached = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _second = cached
    return f"{cached[1]}.{int((ts - whole) * 1000):03d}Z"


def new_run_id() -> str:
    return uuid.uuid4().hex


class RunCancelled(Exception):
    """Raised at a node boundary after ``cancel_run``; ends the run as ``cancelled``."""


@dataclass
class RunContext:
    """Everything one run shares between its nodes."""

    workflow: WorkflowSpec
    run_id: str = field(default_factory=new_run_id)
    workspace: Workspace = EMPTY
    subqueue: str | None = None
    streaming: bool = False
    user: str | None = None
    started_at: str = field(default_factory=utc_now)
    started: float = field(default_factory=time.perf_counter)
    deadline: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    trace: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: float = 0.0
    #: For a resumed run: milliseconds between the run's first start and this segment's.
    offset_base_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queues: QueueManager | None = field(default=None, repr=False)

    @property
    def queues(self) -> QueueManager:
        if self._queues is None:
            from agentflow.runtime.rate_limiter import get_queue_manager

            self._queues = get_queue_manager()
        return self._queues

    def offset_ms(self, at: float | None = None) -> float:
        """Milliseconds since the run started (across pauses), for the timeline."""
        return round(self.offset_base_ms + ((at or time.perf_counter()) - self.started) * 1000, 3)

    def add_cost(self, cost: float) -> None:
        with self._lock:
            self.cost_usd += cost

    def source(self, source_id: str) -> SourceSpec:
        source = self.workflow.source(source_id) or self.workspace.get_source(source_id)
        if source is None:
            raise ExecutionError(f'source "{source_id}" is not defined', source=source_id)
        return source

    def provider(self, source_id: str) -> Provider:
        return clients.get(self.source(source_id), self.workspace, self.workspace.workspace_key)


class Meter:
    """One provider call, as a sync or async context manager.

    Entering picks the provider (budget, ``fallback_source``) and takes a queue grant;
    the node sets ``usage`` and ``cost_usd``; leaving records them in the trace and settles
    the grant. A class, not a generator-based context manager: it is on every call's path.
    """

    __slots__ = ("_estimate", "_grant", "_run", "_token", "cost_usd", "provider", "usage")

    def __init__(self, run: NodeRun, estimate: Estimator | None) -> None:
        self._run = run
        self._estimate = estimate
        self._grant: Grant | None = None
        self._token: contextvars.Token[Departure | None] | None = None
        self.usage: Usage | None = None
        self.cost_usd = 0.0

    def _enter(self) -> tuple[QueueLimiter | None, int, float]:
        run = self._run
        self.provider, tokens, cost = run._choose(self._estimate)
        return run._limiter(), tokens, cost

    def __enter__(self) -> Meter:
        limiter, tokens, cost = self._enter()
        if limiter is not None:
            self.provider.prepare()  # setup before the grant, not between grant and call
            run = self._run
            self._grant = limiter.acquire(
                subqueue=run.subqueue, tokens=tokens, cost_usd=cost, max_wait_s=run.timeout_s, cancel=run.run.cancel
            )
            run._waited(self._grant)
            self._token = calling.set(self._grant)  # the HTTP layer reports when it leaves
        return self

    def _unset(self) -> None:
        if self._token is not None:
            try:
                calling.reset(self._token)
            except ValueError:  # left in another context (a stream closed elsewhere)
                calling.set(None)
            self._token = None

    def __exit__(self, *exc: object) -> None:
        self._unset()
        self._run._settle(self, self._grant)

    async def __aenter__(self) -> Meter:
        limiter, tokens, cost = self._enter()
        if limiter is not None:
            await self.provider.aprepare()  # setup before the grant, not between grant and call
            run = self._run
            self._grant = await limiter.aacquire(
                subqueue=run.subqueue, tokens=tokens, cost_usd=cost, max_wait_s=run.timeout_s
            )
            run._waited(self._grant)
            self._token = calling.set(self._grant)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._unset()
        self._run._settle(self, self._grant)


class NodeRun:
    """The :class:`agentflow.nodes.base.NodeContext` of one node execution (one attempt)."""

    __slots__ = ("_deadline", "_emit", "entry", "node", "run")

    def __init__(self, run: RunContext, node: NodeSpec, entry: dict[str, Any], emit, deadline: float | None) -> None:
        self.run = run
        self.node = node
        self.entry = entry
        self._emit = emit
        self._deadline = deadline

    @property
    def node_id(self) -> str:
        return self.node.id

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def streaming(self) -> bool:
        return self.run.streaming

    @property
    def timeout_s(self) -> float | None:
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.001)

    @property
    def expired(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    # --- templates --------------------------------------------------------------------

    def render(self, template: tpl.Template | str, state: dict[str, Any], field: str) -> str:
        parsed = tpl.parse(template) if isinstance(template, str) else template
        try:
            return parsed.render(state)
        except tpl.MissingKey as exc:
            raise self._missing(exc.key, field, state) from None

    def render_value(self, value: Any, state: dict[str, Any], field: str) -> Any:
        try:
            return tpl.render_tree(value, state)
        except tpl.MissingKey as exc:
            raise self._missing(exc.key, field, state) from None

    def _missing(self, key: str, field: str, state: dict[str, Any]) -> ExecutionError:
        have = ", ".join(sorted(k for k, v in state.items() if v not in (None, "", [], {}))) or "none"
        return ExecutionError(
            f'node "{self.node.id}": template key "{key}" in {field} has no value in the state '
            f"(keys with values: {have}); write it in an earlier node or pass it in the initial state",
            node=self.node.id,
        )

    # --- providers, queues, usage -----------------------------------------------------

    def provider(self) -> Provider:
        if not self.node.source:
            raise ExecutionError(f'node "{self.node.id}" has no source', node=self.node.id)
        return self.run.provider(self.node.source)

    def _choose(self, estimate: Estimator | None) -> tuple[Provider, int, float]:
        """Pick the provider for a call under the run's cost budget (spec: budgets).

        The estimate (a token count over the prompt) is only made when something uses it:
        a queue to reserve tokens on, or a budget to check.
        """
        provider = self.provider()
        limit = self.run.workflow.settings.max_cost_usd
        if estimate is None or (limit is None and not self.node.queue):
            return provider, 0, 0.0
        tokens, cost = estimate(provider)
        if limit is not None and cost > 0 and self.run.cost_usd + cost > limit:
            spent = self.run.cost_usd
            if self.node.fallback_source:
                fallback = self.run.provider(self.node.fallback_source)
                f_tokens, f_cost = estimate(fallback)
                if spent + f_cost <= limit:
                    self.note(fallback={"source": self.node.fallback_source, "reason": "max_cost_usd"})
                    self.entry["source"] = self.node.fallback_source
                    return fallback, f_tokens, f_cost
            raise BudgetExceeded(
                f'node "{self.node.id}": the call would cost about ${cost:.6f}, taking the run past '
                f"settings.max_cost_usd=${limit:g} (spent ${spent:.6f}); raise the budget"
                + ("" if self.node.fallback_source else ' or name a cheaper "fallback_source"'),
                node=self.node.id,
                details={"max_cost_usd": limit, "spent_usd": spent, "estimate_usd": cost},
            )
        return provider, tokens, cost

    def _limiter(self) -> QueueLimiter | None:
        if not self.node.queue:
            return None
        spec = self.run.workflow.queue(self.node.queue) or self.run.workspace.get_queue(self.node.queue)
        if spec is None:
            raise ExecutionError(f'queue "{self.node.queue}" is not defined', node=self.node.id)
        return self.run.queues.get(spec)

    @property
    def subqueue(self) -> str:
        """The run's override (batch runs use "batch"), else the node's, else "default"."""
        return self.run.subqueue or self.node.subqueue or "default"

    def metered(self, estimate: Estimator | None = None) -> Meter:
        """Around one provider call (``with`` or ``async with``): budget, queue, usage."""
        return Meter(self, estimate)

    ametered = metered

    def _waited(self, grant: Grant) -> None:
        self.entry["queue_wait_ms"] = round(self.entry.get("queue_wait_ms", 0.0) + grant.wait_ms, 3)
        self.entry["subqueue"] = grant.subqueue

    def _settle(self, meter: Meter, grant: Grant | None) -> None:
        usage = meter.usage
        if usage is not None:
            tokens = self.entry.setdefault("tokens", {"prompt": 0, "completion": 0, "total": 0})
            tokens["prompt"] += usage.prompt
            tokens["completion"] += usage.completion
            tokens["total"] += usage.total
        if meter.cost_usd:
            self.entry["cost_usd"] = round(self.entry.get("cost_usd", 0.0) + meter.cost_usd, 10)
            self.run.add_cost(meter.cost_usd)
        if grant is not None:
            grant.settle(usage.total if usage is not None else None, meter.cost_usd)

    # --- events and notes -------------------------------------------------------------

    def emit_token(self, text: str) -> None:
        if self._emit is not None:
            self._emit({"type": "token", "run_id": self.run.run_id, "node": self.node.id, "data": text})

    def note(self, **fields: Any) -> None:
        self.entry.setdefault("output", {}).update(fields)
