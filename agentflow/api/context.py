"""What one app shares between its requests: the store, validated workflows, background runs.

The store is opened on first use, not when the app is built, so importing
``agentflow.api.main`` (and building ``app``) touches no database. Store methods are
synchronous; :meth:`ApiContext.call` runs them on the event loop for the embedded SQLite
store and in the thread pool for Postgres: a database across a network can stop answering,
and that must not stall every other request. SQLite in WAL mode answers in tens of
microseconds, far less than a thread hop costs (measured: the run-history write in the pool
took a run through the API from 2.8 to 3.9 ms of CPU); the price is that a write waiting for
another process's write (SQLite has one writer at a time) holds the loop for that wait, a
millisecond or so. The hops make Postgres runs dearer (bench/results/api.md).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool

from agentflow.runtime.workspace import Workspace
from agentflow.settings import Settings, get_settings
from agentflow.spec.models import QueueSpec, SourceSpec, WorkflowSpec
from agentflow.store.base import Store

log = logging.getLogger("agentflow.api")

T = TypeVar("T")

#: Sign-ins hash passwords (argon2, ~64 MiB each) and sleep on failures: at most this many
#: run at once, so a flood of wrong passwords cannot take every worker thread.
SIGNIN_THREADS = 4
#: Validated saved workflows kept per process (versions never change, so no expiry).
SPEC_CACHE_SIZE = 256


class _RecordingWorkspace:
    """A workspace that notes whether validation looked anything up in it."""

    def __init__(self, inner: Workspace) -> None:
        self.inner = inner
        self.workspace_key = inner.workspace_key
        self.used = False

    def get_source(self, source_id: str) -> SourceSpec | None:
        self.used = True
        return self.inner.get_source(source_id)

    def get_queue(self, queue_id: str) -> QueueSpec | None:
        self.used = True
        return self.inner.get_queue(queue_id)

    def get_secret(self, name: str) -> str | None:
        self.used = True
        return self.inner.get_secret(name)


class ApiContext:
    """The shared state of one app (one per ``create_app`` call)."""

    def __init__(self, store: Store | None = None, settings: Settings | None = None) -> None:
        self._store = store
        self._owns_store = False
        self._given_settings = settings is not None
        self._settings = settings if settings is not None else get_settings()
        self._lock = threading.Lock()
        self._specs: OrderedDict[tuple[str, int, str | None], WorkflowSpec] = OrderedDict()
        self._specs_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recording: dict[str, asyncio.Task[Any]] = {}
        self._signin_limiter: anyio.CapacityLimiter | None = None
        self._inline: bool | None = None
        from agentflow.api.running import InFlight

        #: Runs answered as JSON that are still going (see :class:`~agentflow.api.running.InFlight`).
        self.in_flight = InFlight()
        from agentflow.api.history import HistoryWriter

        #: Finished runs' history rows, written in groups (see :mod:`agentflow.api.history`).
        self.history = HistoryWriter(self)

    # -- configuration -------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings given to the app, else the environment's when the app was built."""
        return self._settings

    @property
    def store(self) -> Store:
        """The store, opened (with the cross-process cancel poller) on first use."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    from agentflow.store import default_store, open_store

                    # The process's shared store, when the settings are the environment's.
                    if not self._given_settings:
                        self._store = default_store()
                    else:
                        self._store = open_store(self._settings.db_url)
                        self._owns_store = True
                store = self._store
        self._start_watcher(store)
        return store

    def _start_watcher(self, store: Store) -> None:
        if self._inline is None:
            from agentflow.runtime.remote_cancel import watch_cancel_requests

            watch_cancel_requests(store)
            self._inline = store.backend == "sqlite"

    # -- calling the (synchronous) store and library -------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` for a store call: inline on SQLite, else in a thread."""
        if self._inline is None:
            _ = self.store
        if self._inline:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    async def signin(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a sign-in in a thread of its own small pool (see :data:`SIGNIN_THREADS`)."""
        if self._signin_limiter is None:
            self._signin_limiter = anyio.CapacityLimiter(SIGNIN_THREADS)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._signin_limiter)

    # -- validated saved workflows --------------------------------------------------------

    async def validate(self, document: dict[str, Any]) -> WorkflowSpec:
        """``validate_workflow(document)`` with the store as workspace; in a thread when the
        store is remote, since resolving registered sources and queues queries it."""
        from agentflow.spec.validate import validate_workflow

        return await self.call(validate_workflow, document, workspace=self.store)

    def saved_spec(self, saved: dict[str, Any]) -> WorkflowSpec:
        """The validated spec of a stored version (``store.get_workflow``'s answer).

        A version's document never changes, so its spec is cached, unless validation
        resolved something from the workspace (a registered source or queue): that can
        change under it, so such a workflow is validated again at every run. Validates on
        the calling thread; in async code prefer :meth:`load_spec`.
        """
        spec = self._specs.get(self._key(saved))
        return spec if spec is not None else self._validate_saved(saved)

    async def find_spec(self, workflow_id: str, version: int | None = None) -> tuple[dict[str, Any], WorkflowSpec]:
        """The stored version (latest by default) and its validated spec. The version is
        looked up without its document first: a run of a version this process has already
        validated reads and parses no document."""
        saved = await self.call(self.store.get_workflow, workflow_id, version, document=False)
        spec = self._specs.get(self._key(saved))
        if spec is None:
            saved = await self.call(self.store.get_workflow, workflow_id, saved["version"])
            spec = await self.load_spec(saved)
        return saved, spec

    async def load_spec(self, saved: dict[str, Any]) -> WorkflowSpec:
        """:meth:`saved_spec` for async routes: a cache miss on a remote store validates in a
        thread (resolving registered sources and queues queries the store)."""
        spec = self._specs.get(self._key(saved))
        return spec if spec is not None else await self.call(self._validate_saved, saved)

    @staticmethod
    def _key(saved: dict[str, Any]) -> tuple[str, int, str | None]:
        return (saved["id"], int(saved["version"]), saved.get("created_at"))

    def _validate_saved(self, saved: dict[str, Any]) -> WorkflowSpec:
        from agentflow.spec.validate import validate_workflow

        recorder = _RecordingWorkspace(self.store)
        spec = validate_workflow(saved["document"], workspace=recorder)
        if not recorder.used:
            with self._specs_lock:
                self._specs[self._key(saved)] = spec
                while len(self._specs) > SPEC_CACHE_SIZE:
                    self._specs.popitem(last=False)
        return spec

    # -- background work -----------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` to its end even if the request that started it goes away."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def record_later(self, run_id: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Write a run's history row in the background (see :meth:`settled`)."""
        task = self.spawn(coro)
        self._recording[run_id] = task

        def done(_: Any) -> None:
            if self._recording.get(run_id) is task:
                del self._recording[run_id]

        task.add_done_callback(done)

    async def settled(self, run_id: str | None = None) -> None:
        """Wait until this process has written what it owes the run history (for one run,
        or all), so a client reads what it was just answered."""
        if run_id is None:
            tasks = list(self._recording.values())
        else:
            task = self._recording.get(run_id)
            tasks = [task] if task is not None else []
        if tasks:
            await asyncio.wait(tasks)

    async def drain(self, timeout_s: float = 60.0) -> None:
        """Wait (up to ``timeout_s``) for background runs, at shutdown."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            log.info("waiting for %d background run(s) to finish", len(pending))
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()

    def close(self) -> None:
        """Close the store if this context opened it."""
        with self._lock:
            store, owned = self._store, self._owns_store
            if owned:
                self._store, self._owns_store, self._inline = None, False, None
        if owned and store is not None:
            from agentflow.runtime.remote_cancel import stop_watchers

            stop_watchers()
            store.close()
