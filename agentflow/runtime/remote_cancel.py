"""Cancelling a run that another process is running.

``cancel_run`` stops runs of its own process directly. Several workbench and API processes
share one store, though, and a user may press "cancel" on a process that is not the one
running the run. That process records a cancel request in the store; every process that
called :func:`watch_cancel_requests` polls the store (twice a second, only while it has
runs going) and sets the cancel flag of its runs that were asked for. Plain library use
never starts the poller, so runs pay nothing for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("agentflow.runtime")

_lock = threading.Lock()
_watchers: dict[int, _Watcher] = {}


class _Watcher:
    def __init__(self, store: Any, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="agentflow-cancel-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        from agentflow.runtime.executor import _active, _active_lock

        while not self.stop.wait(self.interval_s):
            with _active_lock:
                running = dict(_active)
            if not running:
                continue
            try:
                asked = self.store.cancel_requests(list(running))
            except Exception:  # a store hiccup must not kill the watcher
                log.warning("could not read cancel requests", exc_info=True)
                continue
            for run_id in asked:
                running[run_id].cancel.set()
                log.info("run %s cancelled on request from another process", run_id)
                try:
                    self.store.clear_cancel_request(run_id)
                except Exception:
                    log.warning("could not clear the cancel request of run %s", run_id, exc_info=True)


def watch_cancel_requests(store: Any, interval_s: float = 0.5) -> None:
    """Start (once per store) the poller that applies other processes' cancel requests."""
    with _lock:
        if id(store) not in _watchers:
            _watchers[id(store)] = _Watcher(store, interval_s)


def request_cancel(run_id: str, store: Any, *, by: str | None = None) -> bool:
    """Cancel ``run_id`` wherever it runs: here at once, elsewhere through the store.

    Returns True when the run was running here or paused (now cancelled); False when a
    request was recorded for the process that runs it (it stops at its next node)."""
    from agentflow.runtime.executor import cancel_run

    if cancel_run(run_id, store=store):
        return True
    store.request_cancel(run_id, by=by)
    return False


def stop_watchers() -> None:
    with _lock:
        watchers = list(_watchers.values())
        _watchers.clear()
    for w in watchers:
        w.stop.set()
