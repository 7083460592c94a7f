"""The workspace: sources, queues and secrets registered outside a document.

A document names sources and queues by id; an id not defined in the document resolves from
the workspace (the Sources and Queues pages, spec section 1). The store implements this
protocol; :data:`EMPTY` stands in where there is none, so the runtime works headless.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from agentflow.spec.models import QueueSpec, SourceSpec


@runtime_checkable
class Workspace(Protocol):
    #: Identity used to keep clients of different workspaces apart in shared caches.
    workspace_key: str

    def get_source(self, source_id: str) -> SourceSpec | None: ...

    def get_queue(self, queue_id: str) -> QueueSpec | None: ...

    def get_secret(self, name: str) -> str | None: ...


class EmptyWorkspace:
    """No registered sources, queues or secrets."""

    workspace_key = "empty"

    def get_source(self, source_id: str) -> SourceSpec | None:
        return None

    def get_queue(self, queue_id: str) -> QueueSpec | None:
        return None

    def get_secret(self, name: str) -> str | None:
        return None


EMPTY = EmptyWorkspace()


def default_workspace() -> Workspace:
    """The configured store's workspace (``AGENTFLOW_DB_URL``), or :data:`EMPTY`."""
    from agentflow import store

    opener = getattr(store, "default_store", None)
    return opener() if opener is not None else EMPTY


class DefaultWorkspace:
    """The configured store's workspace, opened on first use.

    Most runs resolve everything from their own document and never need the store, so
    opening it (and creating ``.agentflow/``) waits until a lookup actually happens.
    """

    def __init__(self, db_url: str | None = None) -> None:
        self._db_url = db_url
        self._ws: Workspace | None = None

    @property
    def workspace_key(self) -> str:
        if self._db_url is None:
            from agentflow.settings import get_settings

            self._db_url = get_settings().db_url
        return f"default:{self._db_url}"

    def _get(self) -> Workspace:
        if self._ws is None:
            self._ws = default_workspace()
        return self._ws

    def get_source(self, source_id: str) -> SourceSpec | None:
        return self._get().get_source(source_id)

    def get_queue(self, queue_id: str) -> QueueSpec | None:
        return self._get().get_queue(queue_id)

    def get_secret(self, name: str) -> str | None:
        return self._get().get_secret(name)
