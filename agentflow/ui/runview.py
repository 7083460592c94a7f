"""The Run page's view model: live events (spec section 10) folded into what the page draws.

A :class:`RunView` is fed one event at a time (``apply``), by the thread that runs the
workflow, while the page reads :meth:`RunView.snapshot` copies to draw; a lock keeps the
two apart. The same view is rebuilt from a stored run (:meth:`RunView.from_record`), so the
Runs page shows a past run exactly as the Run page showed it live.

A step is one execution of a node (a node in a loop has several). Statuses:

- run: ``starting``, ``running``, then ``succeeded``, ``failed``, ``cancelled`` or
  ``interrupted`` (paused at a breakpoint);
- step: ``running``, ``retrying``, ``succeeded``, ``failed``, ``cancelled``, ``interrupted``;
  the graph adds ``pending`` (not reached yet), ``skipped`` (a finished run never got there)
  and ``paused`` (a paused run runs it next).

``interrupt`` events (breakpoints, step mode) set the run's status to ``interrupted``, record
where it paused in :attr:`RunView.interrupt` and add a step of type ``pause``, as the stored
trace has an entry of type ``pause``; so the live view and the stored one line up. A resumed
or forked run continues a view rebuilt from its stored record (:meth:`RunView.continue_from`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from agentflow.ui.graph import NodeStatus

RUN_DONE = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


@dataclass
class StepView:
    """One execution of one node, as the page shows it."""

    index: int
    node: str
    type: str
    status: str = "running"
    step: int | None = None
    #: Text streamed so far by ``token`` events (llm nodes).
    text: str = ""
    #: The node's state update (``node_end``), or what a stored run's final state holds
    #: for the keys the node wrote.
    update: dict[str, Any] | None = None
    #: The node's trace entry (spec section 8): latency, tokens, cost, queue wait, ...
    trace: dict[str, Any] = field(default_factory=dict)
    retries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def error(self) -> dict[str, Any] | None:
        return self.trace.get("error")

    @property
    def latency_ms(self) -> float | None:
        return self.trace.get("latency_ms")


@dataclass
class RunView:
    """Everything the Run page draws about one run."""

    run_id: str | None = None
    workflow_id: str | None = None
    workflow_version: int | None = None
    status: str = "starting"
    input: dict[str, Any] = field(default_factory=dict)
    steps: list[StepView] = field(default_factory=list)
    #: The final state (``run_end``), with ``metadata`` (spec section 8).
    final: dict[str, Any] | None = None
    #: The run's error in the spec's shape (section 9), if it failed or could not start.
    error: dict[str, Any] | None = None
    #: Where a paused run stopped (``interrupt`` event data), for step mode.
    interrupt: dict[str, Any] | None = None
    started_at: str | None = None
    events: int = 0
    #: Set when recording the finished run in the store failed (shown, not fatal).
    record_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- folding ---------------------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one live event into the view (thread-safe)."""
        handler = _HANDLERS.get(str(event.get("type")))
        with self._lock:
            self.events += 1
            if handler is not None:
                handler(self, event)

    def fail(self, error: Mapping[str, Any]) -> None:
        """The run could not start or broke outside a node: keep its error, end the view."""
        with self._lock:
            self.error = dict(error)
            self.status = "failed"

    def resume(self) -> None:
        """A paused run goes on (step mode): the following events continue this view."""
        with self._lock:
            self._resume()

    def _resume(self) -> None:
        self.status = "running"
        self.interrupt = None
        for step in self.steps:
            if step.type == "pause" and step.status == "interrupted":
                step.status = "resumed"

    def continue_from(self, run: Mapping[str, Any]) -> None:
        """Become the view of a stored paused run (or a fork's copy) that is going on now:
        its steps so far, then whatever the resumed run's events add."""
        stored = RunView.from_record(run)
        with self._lock:
            for name in ("run_id", "workflow_id", "workflow_version", "input", "final", "started_at", "steps"):
                setattr(self, name, getattr(stored, name))
            self.error = None
            self._resume()

    def _on_run_start(self, event: Mapping[str, Any]) -> None:
        data = event.get("data") or {}
        self.run_id = data.get("run_id") or event.get("run_id")
        self.workflow_id = data.get("workflow_id", self.workflow_id)
        self.started_at = data.get("started_at")
        self.status = "running"

    def _on_node_start(self, event: Mapping[str, Any]) -> None:
        data = dict(event.get("data") or {})
        self.steps.append(
            StepView(
                index=len(self.steps),
                node=str(event.get("node") or data.get("node")),
                type=str(data.get("type") or "?"),
                status="running",
                step=data.get("step"),
                trace=data,
            )
        )

    def _current(self, node: str | None) -> StepView | None:
        for step in reversed(self.steps):
            if step.node == node and step.status in ("running", "retrying"):
                return step
        for step in reversed(self.steps):
            if step.node == node:
                return step
        return None

    def _on_token(self, event: Mapping[str, Any]) -> None:
        step = self._current(event.get("node"))
        if step is not None:
            data = event.get("data")
            step.text += data if isinstance(data, str) else str((data or {}).get("text", ""))

    def _on_node_retry(self, event: Mapping[str, Any]) -> None:
        step = self._current(event.get("node"))
        if step is not None:
            step.retries.append(dict(event.get("data") or {}))
            step.status = "retrying"
            step.text = ""  # the next attempt streams its own reply

    def _on_node_end(self, event: Mapping[str, Any]) -> None:
        data = event.get("data") or {}
        step = self._current(event.get("node"))
        if step is None:  # an end without a start (should not happen): show it anyway
            self._on_node_start({"node": event.get("node"), "data": data.get("trace") or {}})
            step = self.steps[-1]
        step.trace = dict(data.get("trace") or step.trace)
        step.status = str(step.trace.get("status") or "succeeded")
        update = data.get("update")
        step.update = dict(update) if isinstance(update, Mapping) else None

    def _on_interrupt(self, event: Mapping[str, Any]) -> None:
        data = dict(event.get("data") or {})
        data.setdefault("node", event.get("node") or data.get("paused_before"))
        self.interrupt = data
        self.status = "interrupted"
        node = str(data.get("node"))
        pause = {"node": node, "type": "pause", "status": "interrupted", "next": data.get("next") or [node]}
        self.steps.append(StepView(index=len(self.steps), node=node, type="pause", status="interrupted", trace=pause))

    def _on_run_end(self, event: Mapping[str, Any]) -> None:
        final = dict(event.get("data") or {})
        self.final = final
        meta = final.get("metadata") or {}
        self.run_id = meta.get("run_id", self.run_id)
        self.status = str(meta.get("status") or "succeeded")
        self.error = meta.get("error")
        if self.status == "interrupted" and self.interrupt is None:
            self.interrupt = _paused_at(meta)
        by_node = {}
        for entry in meta.get("trace") or []:
            by_node.setdefault(entry.get("node"), []).append(entry)
        # The final trace is the truth: a branch cut short by the run's end is "cancelled".
        for node, entries in by_node.items():
            steps = [s for s in self.steps if s.node == node]
            for step, entry in zip(steps, entries, strict=False):
                step.trace = dict(entry)
                step.status = str(entry.get("status") or step.status)

    # -- reading ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status in RUN_DONE

    @property
    def metadata(self) -> dict[str, Any]:
        return dict((self.final or {}).get("metadata") or {})

    @property
    def trace(self) -> list[dict[str, Any]]:
        meta = self.metadata
        if meta.get("trace") is not None:
            return list(meta["trace"])
        return [s.trace for s in self.steps if s.trace]

    @property
    def failed_nodes(self) -> list[str]:
        return [s.node for s in self.steps if s.status == "failed"]

    @property
    def paused_nodes(self) -> list[str]:
        """The nodes a paused run runs next (several after a fan-out)."""
        if self.status != "interrupted" or not self.interrupt:
            return []
        nodes = self.interrupt.get("next") or [self.interrupt.get("node")]
        return [str(n) for n in nodes if n]

    def node_statuses(self) -> dict[str, NodeStatus]:
        """Per node id, for the graph: the latest step's status, total latency, count; the
        nodes a paused run runs next are ``paused`` (pauses themselves are not node runs)."""
        out: dict[str, NodeStatus] = {}
        for s in self.steps:
            if s.type == "pause":
                continue
            prev = out.get(s.node)
            latency = s.latency_ms
            total = (prev.latency_ms or 0.0) + latency if prev and latency is not None else latency
            error = (s.error or {}).get("message") if s.error else None
            out[s.node] = NodeStatus(s.status, total, (prev.runs if prev else 0) + 1, error)
        for node in self.paused_nodes:
            prev = out.get(node)
            out[node] = NodeStatus("paused", prev.latency_ms if prev else None, prev.runs if prev else 0)
        return out

    def totals(self) -> dict[str, Any]:
        """Figures for the page's metrics row."""
        meta = self.metadata
        trace = self.trace
        tokens = meta.get("tokens") or {"total": sum(int((e.get("tokens") or {}).get("total") or 0) for e in trace)}
        return {
            "status": self.status,
            "total_runtime_ms": meta.get("total_runtime_ms"),
            "nodes": sum(1 for e in trace if e.get("type") != "pause"),
            "tokens": int(tokens.get("total") or 0),
            "cost_usd": float(meta.get("cost_usd") or sum(float(e.get("cost_usd") or 0) for e in trace)),
        }

    def final_output(self) -> Any:
        """What the run produced: ``final_output``, else the last result key written."""
        final = self.final or {}
        if final.get("final_output") not in (None, {}, []):
            return final["final_output"]
        for key in ("text_result", "image_result", "db_result", "api_result"):
            if final.get(key) not in (None, "", []):
                return final[key]
        for s in reversed(self.steps):
            for key in s.trace.get("writes") or []:
                if final.get(key) is not None:
                    return final[key]
        return None

    def snapshot(self) -> RunView:
        """A copy safe to read while the run goes on."""
        with self._lock:
            copy = replace(self, steps=[replace(s, retries=list(s.retries)) for s in self.steps])
        copy._lock = threading.Lock()
        return copy

    # -- stored runs -----------------------------------------------------------------------

    @classmethod
    def from_record(cls, run: Mapping[str, Any]) -> RunView:
        """The view of a run read from the store (``Store.get_run``)."""
        final = dict(run.get("final_state") or {})
        meta = dict(final.get("metadata") or {})
        trace = list(run.get("trace") or meta.get("trace") or [])
        meta.setdefault("trace", trace)
        meta.setdefault("status", run.get("status"))
        meta.setdefault("run_id", run.get("run_id"))
        if run.get("error") and not meta.get("error"):
            meta["error"] = run["error"]
        final["metadata"] = meta
        view = cls(
            run_id=run.get("run_id"),
            workflow_id=run.get("workflow_id"),
            workflow_version=run.get("workflow_version"),
            status=str(run.get("status") or meta.get("status") or "succeeded"),
            input=dict(run.get("input") or {}),
            final=final,
            error=meta.get("error"),
            started_at=run.get("started_at"),
        )
        for i, entry in enumerate(trace):
            writes = entry.get("writes") or []
            update = {k: final.get(k) for k in writes if k in final} if writes else None
            view.steps.append(
                StepView(
                    index=i,
                    node=str(entry.get("node")),
                    type=str(entry.get("type") or "?"),
                    status=str(entry.get("status") or "succeeded"),
                    step=entry.get("step"),
                    text=final.get(writes[0]) if writes and isinstance(final.get(writes[0]), str) else "",
                    update=update,
                    trace=dict(entry),
                )
            )
        if view.status == "interrupted":
            view.interrupt = _paused_at(meta)
        return view


def _paused_at(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Where a stored or finished run paused, from its metadata."""
    out: dict[str, Any] = {"node": meta.get("paused_before")}
    if meta.get("next"):
        out["next"] = list(meta["next"])
    return out


_HANDLERS: dict[str, Callable[[RunView, Mapping[str, Any]], None]] = {
    "run_start": RunView._on_run_start,
    "node_start": RunView._on_node_start,
    "token": RunView._on_token,
    "node_retry": RunView._on_node_retry,
    "node_end": RunView._on_node_end,
    "interrupt": RunView._on_interrupt,
    "run_end": RunView._on_run_end,
}


def fold(events: list[Mapping[str, Any]], view: RunView | None = None) -> RunView:
    """Fold a list of events into a (new) view: what the page shows after them."""
    view = view if view is not None else RunView()
    for event in events:
        view.apply(event)
    return view
