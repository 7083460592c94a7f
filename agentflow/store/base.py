"""The workbench store's one interface; SQLite and Postgres implement it (same tests).

The store holds what a workspace keeps between runs: versioned workflows (and the texts of
refused saves), registered sources and queues, encrypted secrets, run history, batch runs,
users and API keys, and LangGraph checkpoints in the same database. It implements the runtime's
:class:`~agentflow.runtime.workspace.Workspace` protocol, so registered sources, queues and
secrets resolve by id. Pages, the CLI and the HTTP routes read runs through here, never
from executor internals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from agentflow.security.principal import Principal
from agentflow.spec.models import QueueSpec, SourceSpec

JSONDict = dict[str, Any]


class Store(ABC):
    """Everything a workspace keeps. Every method is safe to call from many threads."""

    #: ``"sqlite"`` or ``"postgres"``.
    backend: str
    #: The database URL without its password: names this workspace in shared caches.
    workspace_key: str

    # -- workflows ----------------------------------------------------------------------
    @abstractmethod
    def save_workflow(
        self,
        document: JSONDict | str,
        *,
        author: str | None,
        message: str | None = None,
        base_version: int | None = None,
    ) -> int:
        """Store a new version (1, 2, ...) of the document's workflow and return its number.

        With ``base_version`` (0 for a workflow expected to be new) the save is refused with
        ConflictError unless it is the latest version; the refused text is kept as a draft
        (:meth:`list_drafts`) and nothing enters the version history.
        """

    @abstractmethod
    def get_workflow(self, workflow_id: str, version: int | None = None, *, document: bool = True) -> JSONDict:
        """``{"id", "version", "document", "message", "created_at", "author"}``, latest by
        default; NotFoundError for an unknown id or version. ``document=False`` leaves the
        document out (``None``): enough to look a validated version up in a cache."""

    @abstractmethod
    def list_workflows(self, limit: int = 100, offset: int = 0) -> list[JSONDict]:
        """``[{"id", "name", "latest_version", "updated_at", "updated_by"}]``, recent first."""

    @abstractmethod
    def list_versions(self, workflow_id: str) -> list[JSONDict]:
        """``[{"version", "message", "author", "created_at"}]``, newest first."""

    @abstractmethod
    def restore_version(
        self, workflow_id: str, version: int, *, author: str | None, message: str | None = None
    ) -> int:
        """A new version whose document equals ``version``'s; returns its number."""

    @abstractmethod
    def delete_workflow(self, workflow_id: str) -> None:
        """Remove a workflow, its versions and drafts; its runs stay in the history."""

    @abstractmethod
    def list_drafts(self, workflow_id: str) -> list[JSONDict]:
        """Refused saves, newest first: ``[{"draft_id", "workflow_id", "base_version",
        "latest_version", "document", "message", "author", "created_at"}]``."""

    @abstractmethod
    def delete_draft(self, draft_id: int) -> None:
        """Forget a refused save once its text has been merged or discarded."""

    # -- catalogue: sources, queues, secrets (the Workspace protocol) -------------------
    @abstractmethod
    def put_source(self, spec: SourceSpec | JSONDict) -> SourceSpec: ...

    @abstractmethod
    def get_source(self, source_id: str) -> SourceSpec | None: ...

    @abstractmethod
    def list_sources(self) -> list[SourceSpec]: ...

    @abstractmethod
    def delete_source(self, source_id: str) -> None: ...

    @abstractmethod
    def put_queue(self, spec: QueueSpec | JSONDict) -> QueueSpec: ...

    @abstractmethod
    def get_queue(self, queue_id: str) -> QueueSpec | None: ...

    @abstractmethod
    def list_queues(self) -> list[QueueSpec]: ...

    @abstractmethod
    def delete_queue(self, queue_id: str) -> None: ...

    @abstractmethod
    def set_secret(self, name: str, value: str) -> None:
        """Store ``value`` encrypted under ``name`` (replacing any earlier value)."""

    @abstractmethod
    def get_secret(self, name: str) -> str | None:
        """The decrypted value, or None; the value is remembered for redaction."""

    @abstractmethod
    def list_secrets(self) -> list[JSONDict]:
        """``[{"name", "updated_at"}]``: never values."""

    @abstractmethod
    def delete_secret(self, name: str) -> None: ...

    @abstractmethod
    def rotate_secrets(self) -> int:
        """Re-encrypt every secret with the newest key; returns how many."""

    # -- runs ---------------------------------------------------------------------------
    @abstractmethod
    def record_run(
        self,
        state: JSONDict,
        *,
        user: str | None = None,
        input: JSONDict | None = None,
        workflow_version: int | None = None,
    ) -> str:
        """Insert or update (by ``metadata.run_id``) a run from its final state; returns the id.

        ``workflow_version`` defaults to ``metadata.workflow_version``, ``input`` to
        ``{"user_input": state["user_input"]}``. A resumed run updates its row and keeps its
        first ``started_at``, so the history does not reorder.
        """

    def record_runs(self, runs: Sequence[JSONDict]) -> list[str]:
        """Several runs (``{"state", "user", "input", "workflow_version"}`` each) in one
        transaction where the backend can; returns their ids."""
        return [
            self.record_run(r["state"], user=r.get("user"), input=r.get("input"),
                            workflow_version=r.get("workflow_version"))
            for r in runs
        ]

    @abstractmethod
    def get_run(self, run_id: str) -> JSONDict:
        """``{run_id, workflow_id, workflow_version, status, input, final_state, trace, tokens,
        cost_usd, total_runtime_ms, user, started_at, ended_at, error}``."""

    @abstractmethod
    def request_cancel(self, run_id: str, *, by: str | None = None) -> None:
        """Record that ``run_id`` should be cancelled by the process running it."""

    @abstractmethod
    def cancel_requests(self, run_ids: Sequence[str]) -> set[str]:
        """Which of ``run_ids`` have a cancel request."""

    @abstractmethod
    def clear_cancel_request(self, run_id: str) -> None: ...

    @abstractmethod
    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        user: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JSONDict], str | None]:
        """A page of run summaries (no states, no traces), newest first, and the next cursor."""

    # -- batch runs (spec section 13; agentflow/store/batches.py) -------------------------
    @abstractmethod
    def create_batch(self, batch: JSONDict, rows: Sequence[JSONDict]) -> JSONDict:
        """Store a new batch (``batch_id``, ``workflow_id``, ``document``, ...) and its rows
        (``{"row", "line", "input"}``, or ``result`` for a malformed row) at once."""

    @abstractmethod
    def get_batch(self, batch_id: str, *, include_document: bool = True) -> JSONDict:
        """The batch record; NotFoundError if unknown."""

    @abstractmethod
    def list_batches(
        self, *, workflow: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JSONDict]:
        """Batches, newest first, with their progress counts."""

    @abstractmethod
    def batch_counts(self, batch_id: str) -> JSONDict:
        """``pending``, ``dispatched``, ``running``, ``done``, ``failed``, ``total``,
        ``status``, ``mean_score``, ``waiting``, ``runners``."""

    @abstractmethod
    def set_batch_status(
        self,
        batch_id: str,
        status: str,
        *,
        only_from: Sequence[str] | None = None,
        error: JSONDict | None = None,
    ) -> bool:
        """Move a batch to ``status`` (only from ``only_from``); returns whether it moved."""

    @abstractmethod
    def finish_batch_if_done(self, batch_id: str) -> bool:
        """Mark an active batch ``finished`` when no row is left to run."""

    @abstractmethod
    def active_batches(self, backend: str | None = None) -> list[JSONDict]:
        """Batches still queued or running."""

    @abstractmethod
    def lease_batch_rows(
        self,
        batch_id: str,
        owner: str,
        *,
        lease_s: float,
        limit: int | None = None,
        rows: Sequence[int] | None = None,
        take_from: str | None = None,
        pending: bool = True,
        count_attempt: bool = True,
        take_dispatched: bool = False,
    ) -> list[JSONDict]:
        """Lease pending, expired (or ``take_from``'s, or with ``take_dispatched`` any
        broker message's) rows of an active batch to ``owner``."""

    @abstractmethod
    def renew_batch_leases(self, batch_id: str, owner: str, *, lease_s: float) -> int:
        """Extend every lease ``owner`` holds in the batch."""

    @abstractmethod
    def release_batch_rows(self, batch_id: str, owner: str, rows: Sequence[int] | None = None) -> int:
        """Give rows ``owner`` holds back to pending."""

    @abstractmethod
    def record_batch_results(
        self, batch_id: str, results: Sequence[JSONDict], *, recorded_by: str | None = None
    ) -> list[int]:
        """Record row results at most once each (first write wins); returns rows recorded now."""

    @abstractmethod
    def batch_results(
        self, batch_id: str, *, offset: int = 0, limit: int | None = None, include_trace: bool = False
    ) -> list[JSONDict]:
        """Recorded rows in row order."""

    @abstractmethod
    def batch_inputs(self, batch_id: str) -> list[JSONDict]:
        """Every row's input and line, in row order."""

    @abstractmethod
    def note_batch_runner(self, batch_id: str, owner: str, *, running: int, waiting: int) -> None:
        """A runner's heartbeat report: rows it runs, rows of them waiting on a queue."""

    @abstractmethod
    def drop_batch_runner(self, batch_id: str, owner: str) -> None: ...

    # -- users and API keys -------------------------------------------------------------
    @abstractmethod
    def add_user(self, name: str, password: str, role: str) -> JSONDict: ...

    @abstractmethod
    def get_user(self, name: str) -> JSONDict:
        """``{"name", "role", "created_at", "updated_at"}``; NotFoundError if unknown."""

    @abstractmethod
    def list_users(self) -> list[JSONDict]: ...

    @abstractmethod
    def set_role(self, name: str, role: str) -> JSONDict: ...

    @abstractmethod
    def set_password(self, name: str, password: str) -> None: ...

    @abstractmethod
    def delete_user(self, name: str) -> None: ...

    @abstractmethod
    def verify_password(self, name: str, password: str) -> JSONDict | None:
        """The user for a right password, else None (same cost for unknown names)."""

    @abstractmethod
    def create_token(self, name: str, role: str, *, expires_days: float | None = None) -> str:
        """A new API key, returned once; only its hash is stored."""

    @abstractmethod
    def verify_api_key(self, key: str) -> Principal | None:
        """The key's principal (recording its use), or None if unknown, revoked or expired."""

    @abstractmethod
    def revoke_token(self, name: str) -> None: ...

    @abstractmethod
    def list_tokens(self) -> list[JSONDict]:
        """``[{"name", "role", "created_at", "expires_at", "last_used_at"}]``."""

    @abstractmethod
    def has_principals(self) -> bool:
        """Whether any user or unexpired API key exists (``serve`` refuses to start otherwise)."""

    # -- LangGraph checkpoints, health, lifecycle ---------------------------------------
    @abstractmethod
    def checkpointer(self) -> BaseCheckpointSaver:
        """A thread-safe checkpoint saver on this database, created once per store."""

    @abstractmethod
    def acheckpointer(self) -> AbstractAsyncContextManager[BaseCheckpointSaver]:
        """``async with store.acheckpointer() as saver:`` a saver bound to the running loop."""

    @abstractmethod
    def ping(self) -> bool:
        """Whether the database answers (for ``/health``); never raises."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
