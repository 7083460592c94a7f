"""Runs started from the workbench: ``stream_workflow`` on a thread, folded into a RunView.

The page never loops over events itself: it starts a :class:`RunHandle` and draws the
handle's view from a fragment that refreshes while the run goes on. So the run survives
the page's reruns (a click, moving to the Graph page to watch it) and can be cancelled.
The run is recorded in the store when it starts (status ``running``) and when it ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
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
    ) -> None:
        self.document = document
        self.initial_state = dict(initial_state)
        self.store = store
        self.user = user
        self.workflow_version = workflow_version
        self.subqueue = subqueue or None
        wf_id = document.get("id") if isinstance(document, Mapping) else None
        self.view = RunView(workflow_id=wf_id, workflow_version=workflow_version, input=dict(initial_state))
        self._thread = threading.Thread(target=self._run, name="agentflow-ui-run", daemon=True)
        self._cancel = threading.Event()

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
        return not self._thread.is_alive() and self._thread.ident is not None

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        from agentflow import stream_workflow

        kwargs: dict[str, Any] = {"user": self.user, "subqueue": self.subqueue}
        if self.workflow_version is not None:
            kwargs["workflow_version"] = self.workflow_version
        if self.store is not None:
            kwargs["workspace"] = self.store
        try:
            for event in stream_workflow(self.document, self.initial_state, **kwargs):
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


def start_run(
    document: Mapping[str, Any] | str,
    initial_state: Mapping[str, Any],
    **kwargs: Any,
) -> RunHandle:
    """Start ``document`` on ``initial_state`` in the background; see :class:`RunHandle`."""
    return RunHandle(document, initial_state, **kwargs).start()
