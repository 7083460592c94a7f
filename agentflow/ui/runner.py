"""Runs started from the workbench: ``stream_workflow`` on a thread, folded into a RunView.

The page never loops over events itself: it starts a :class:`RunHandle` and draws the
handle's view from a fragment that refreshes while the run goes on. So the run survives
the page's reruns (a click, moving to the Graph page to watch it) and can be cancelled.
The run is recorded in the store when it starts (status ``running``) and when it ends.

Step-by-step inspection uses the same handle: a run with breakpoints or in step mode ends
its thread when it pauses (status ``interrupted``, checkpointed in the store);
:class:`ResumeHandle` goes on with it (``stream_resume``) and :class:`ForkHandle` re-runs it
from a checkpoint as a new run (``stream_fork``), each continuing the stored run's view.
:func:`attach_run` picks up a stored run (a paused one after a reload or a restart) without
running anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agentflow.errors import AgentFlowError, InternalServerError
from agentflow.ui.runview import RunView

log = logging.getLogger("agentflow.ui")


class RunHandle:
    """One run of a workflow in the background, and its live view."""

    def __init__(
        self,
        document: Mapping[str, Any] | str,
        initial_state: Mapping[str, Any],
        *,
        store: Any = None,
        user: str | None = None,
        workflow_version: int | None = None,
        subqueue: str | None = None,
        breakpoints: Sequence[str] | None = None,
        break_after: Sequence[str] | None = None,
        step: bool = False,
    ) -> None:
        self.document = document
        self.initial_state = dict(initial_state)
        self.store = store
        self.user = user
        self.workflow_version = workflow_version
        self.subqueue = subqueue or None
        #: Where the run pauses (``stream_workflow``'s ``breakpoints``, ``break_after``, ``step``).
        self.breaks: dict[str, Any] = {
            "breakpoints": list(breakpoints or ()),
            "break_after": list(break_after or ()),
            "step": bool(step),
        }
        wf_id = document.get("id") if isinstance(document, Mapping) else None
        self.view = RunView(workflow_id=wf_id, workflow_version=workflow_version, input=dict(initial_state))
        self._thread = threading.Thread(target=self._run, name="agentflow-ui-run", daemon=True)
        self._cancel = threading.Event()
        self._attached = False

    @property
    def debug(self) -> bool:
        """Whether the run is checkpointed (the executor then records it in the store)."""
        return bool(self.breaks["breakpoints"] or self.breaks["break_after"] or self.breaks["step"])

    # -- control ---------------------------------------------------------------------------

    def start(self) -> RunHandle:
        self._thread.start()
        return self

    def cancel(self) -> bool:
        """Ask the run to stop at its next node boundary."""
        from agentflow import cancel_run

        self._cancel.set()
        run_id = self.view.run_id
        return bool(run_id) and cancel_run(run_id, store=self.store)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (tests, scripts); returns whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def done(self) -> bool:
        if self._thread.ident is None:
            return self._attached
        return not self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _events(self) -> Iterator[dict[str, Any]]:
        from agentflow import stream_workflow

        kwargs: dict[str, Any] = {"user": self.user, "subqueue": self.subqueue}
        if self.workflow_version is not None:
            kwargs["workflow_version"] = self.workflow_version
        if self.store is not None:
            kwargs["workspace"] = self.store
        if self.debug:
            kwargs.update(self.breaks)
            if self.store is not None:
                kwargs["store"] = self.store
        return stream_workflow(self.document, self.initial_state, **kwargs)

    def _before_start(self, event: Mapping[str, Any]) -> None:
        """Called with ``run_start`` before the view sees it."""

    def _run(self) -> None:
        try:
            for event in self._events():
                if event.get("type") == "run_start":
                    self._before_start(event)
                self.view.apply(event)
                if event.get("type") == "run_start":
                    self._record_start(event)
                    if self._cancel.is_set():
                        self.cancel()
        except AgentFlowError as exc:  # could not start: invalid document, bad input
            self.view.fail(exc.to_dict())
        except Exception as exc:  # a bug: the traceback goes to the log, not the page
            log.exception("workbench run failed unexpectedly")
            self.view.fail(InternalServerError(f"internal error: {type(exc).__name__}: {exc}").to_dict())
        if not self.debug:  # a checkpointed run is recorded by the executor when it pauses or ends
            self._record_end()

    def _record_start(self, event: Mapping[str, Any]) -> None:
        if self.store is None:
            return
        data = event.get("data") or {}
        state = dict(self.initial_state)
        state["metadata"] = {
            "run_id": data.get("run_id"),
            "workflow_id": data.get("workflow_id"),
            "status": "running",
            "started_at": data.get("started_at"),
        }
        try:
            self.store.record_run(
                state, user=self.user, input=self.initial_state, workflow_version=self.workflow_version
            )
        except Exception as exc:
            log.warning("could not record the start of run %s: %s", data.get("run_id"), exc)

    def _record_end(self) -> None:
        if self.store is None or self.view.final is None:
            return
        try:
            self.store.record_run(
                self.view.final, user=self.user, input=self.initial_state, workflow_version=self.workflow_version
            )
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc)
            self.view.record_error = f"the run finished but could not be saved to the history: {message}"
            log.warning("could not record run %s: %s", self.view.run_id, message)


class _Continuation(RunHandle):
    """A stored, checkpointed run going on: a resumed run or a fork. Breakpoints and step
    mode that are not given stay as the run had them."""

    def __init__(
        self,
        record: Mapping[str, Any],
        *,
        store: Any,
        step: bool | None,
        breakpoints: Sequence[str] | None,
        break_after: Sequence[str] | None,
        document: Mapping[str, Any] | None,
    ) -> None:
        super().__init__(
            document or {"id": record.get("workflow_id")},
            record.get("input") or {},
            store=store,
            user=record.get("user"),
            workflow_version=record.get("workflow_version"),
        )
        given = {"step": step, "breakpoints": breakpoints, "break_after": break_after}
        self.more: dict[str, Any] = {
            k: (bool(v) if k == "step" else list(v)) for k, v in given.items() if v is not None
        }

    @property
    def debug(self) -> bool:
        return True

    def _record_start(self, event: Mapping[str, Any]) -> None:
        _record_running(self.store, self.view.run_id)


class ResumeHandle(_Continuation):
    """A paused run going on from its checkpoint (``stream_resume``), first applying the
    user's state edit; ``step=True`` pauses again before the next node, ``step=False`` goes
    on to the end or the next breakpoint. Its view starts as the stored run's, so the steps
    before the pause stay on the page."""

    def __init__(
        self,
        run_id: str,
        state_patch: Mapping[str, Any] | None = None,
        *,
        store: Any,
        step: bool | None = None,
        breakpoints: Sequence[str] | None = None,
        break_after: Sequence[str] | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> None:
        record = store.get_run(run_id)
        super().__init__(
            record, store=store, step=step, breakpoints=breakpoints, break_after=break_after, document=document
        )
        self.run_id = run_id
        self.state_patch = dict(state_patch) if state_patch else None
        self.view.continue_from(record)

    def _events(self) -> Iterator[dict[str, Any]]:
        from agentflow import stream_resume

        return stream_resume(self.run_id, self.state_patch, store=self.store, workspace=self.store, **self.more)


class ForkHandle(_Continuation):
    """A new run copied from a checkpoint of ``run_id`` (``stream_fork``), with the user's
    state edit, run to its end or next breakpoint; the original run stays as it was."""

    def __init__(
        self,
        run_id: str,
        checkpoint_id: str,
        state_patch: Mapping[str, Any] | None = None,
        *,
        store: Any,
        step: bool | None = None,
        breakpoints: Sequence[str] | None = None,
        break_after: Sequence[str] | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            store.get_run(run_id),
            store=store,
            step=step,
            breakpoints=breakpoints,
            break_after=break_after,
            document=document,
        )
        self.parent_id = run_id
        self.checkpoint_id = checkpoint_id
        self.state_patch = dict(state_patch) if state_patch else None

    def _events(self) -> Iterator[dict[str, Any]]:
        from agentflow import stream_fork

        return stream_fork(
            self.parent_id, self.checkpoint_id, self.state_patch, store=self.store, workspace=self.store, **self.more
        )

    def _before_start(self, event: Mapping[str, Any]) -> None:
        # The fork's record (inherited trace, the "(fork)" pause) exists once it has an id.
        run_id = (event.get("data") or {}).get("run_id") or event.get("run_id")
        try:
            self.view.continue_from(self.store.get_run(run_id))
        except AgentFlowError as exc:
            log.warning("could not read fork %s back from the store: %s", run_id, exc)


def _record_running(store: Any, run_id: str | None) -> None:
    """Mark a stored paused run ``running`` while it goes on (so nobody resumes it twice)."""
    if store is None or not run_id:
        return
    try:
        record = store.get_run(run_id)
        state = dict(record.get("final_state") or {})
        meta = {k: v for k, v in (state.get("metadata") or {}).items() if k not in ("paused_before", "next")}
        meta.update(run_id=run_id, status="running", ended_at=None)
        meta.setdefault("workflow_id", record.get("workflow_id"))
        meta.setdefault("started_at", record.get("started_at"))
        state["metadata"] = meta
        store.record_run(
            state, user=record.get("user"), input=record.get("input"), workflow_version=record.get("workflow_version")
        )
    except Exception as exc:
        log.warning("could not record that run %s goes on: %s", run_id, exc)


def start_run(
    document: Mapping[str, Any] | str,
    initial_state: Mapping[str, Any],
    **kwargs: Any,
) -> RunHandle:
    """Start ``document`` on ``initial_state`` in the background; see :class:`RunHandle`.
    ``breakpoints``, ``break_after`` and ``step`` make it pause (step-by-step inspection)."""
    return RunHandle(document, initial_state, **kwargs).start()


def start_resume(run_id: str, state_patch: Mapping[str, Any] | None = None, **kwargs: Any) -> RunHandle:
    """Go on with a paused run in the background; see :class:`ResumeHandle`."""
    return ResumeHandle(run_id, state_patch, **kwargs).start()


def start_fork(
    run_id: str, checkpoint_id: str, state_patch: Mapping[str, Any] | None = None, **kwargs: Any
) -> RunHandle:
    """Re-run ``run_id`` from one of its checkpoints as a new run; see :class:`ForkHandle`."""
    return ForkHandle(run_id, checkpoint_id, state_patch, **kwargs).start()


def attach_run(run_id: str, store: Any, document: Mapping[str, Any] | None = None) -> RunHandle:
    """A finished handle showing a stored run (a paused run picked up after a reload or a
    restart, or one just cancelled): nothing runs until it is resumed or forked."""
    record = store.get_run(run_id)
    handle = RunHandle(
        document or {"id": record.get("workflow_id")},
        record.get("input") or {},
        store=store,
        user=record.get("user"),
        workflow_version=record.get("workflow_version"),
    )
    handle.view = RunView.from_record(record)
    handle._attached = True
    return handle
