"""The shared cache of provider clients: one per source configuration per process.

Creating a client (an SDK object, a connection pool) is far dearer than a call, and pools
only help when shared, so every run in the process reuses the client of an identical
source config. Clients are thread-safe by contract (:class:`agentflow.sources.base.Provider`).
A changed config is a new key, so edits on the Sources page take effect on the next call;
:func:`invalidate` drops clients whose secrets changed.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import OrderedDict

from agentflow.errors import ValidationError
from agentflow.sources.base import Provider, SecretResolver
from agentflow.sources.registry import provider_class
from agentflow.spec.models import SourceSpec

log = logging.getLogger("agentflow.sources")

_MAX_CLIENTS = 256


class ClientCache:
    """LRU of live providers keyed by (workspace, kind, provider, config)."""

    def __init__(self, max_size: int = _MAX_CLIENTS) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Provider] = OrderedDict()
        self._max = max_size

    def get(self, source: SourceSpec, secrets: SecretResolver | None, workspace_key: str = "") -> Provider:
        key = (workspace_key, source.client_key)
        with self._lock:
            client = self._items.get(key)
            if client is not None:
                self._items.move_to_end(key)
                return client
        client = create_provider(source, secrets)
        evicted: list[Provider] = []
        with self._lock:
            existing = self._items.get(key)
            if existing is not None:  # another thread won the race: keep one
                evicted.append(client)
                client = existing
            else:
                self._items[key] = client
                while len(self._items) > self._max:
                    evicted.append(self._items.popitem(last=False)[1])
        for old in evicted:
            _close_quietly(old)
        return client

    def invalidate(self, source_id: str | None = None) -> None:
        """Drop (and close) clients of ``source_id``, or all of them."""
        with self._lock:
            keys = [k for k, v in self._items.items() if source_id is None or v.source_id == source_id]
            dropped = [self._items.pop(k) for k in keys]
        for client in dropped:
            _close_quietly(client)

    def __len__(self) -> int:
        return len(self._items)


def _close_quietly(client: Provider) -> None:
    try:
        client.close()
    except Exception:  # closing is best effort; a broken socket must not break a run
        log.debug("closing client of source %s failed", client.source_id, exc_info=True)


def create_provider(source: SourceSpec, secrets: SecretResolver | None) -> Provider:
    """A new provider for ``source`` (config validated by the provider's own model)."""
    cls = provider_class(source.kind, source.provider)
    if cls is None:
        raise ValidationError(
            f'source "{source.id}": no provider "{source.provider}" for kind "{source.kind}"',
            errors=[{"path": "provider", "message": f'unknown provider "{source.provider}"'}],
            source=source.id,
        )
    from pydantic import ValidationError as PydanticError

    try:
        config = cls.Config.model_validate(source.config)
    except PydanticError as exc:
        raise ValidationError(
            f'source "{source.id}": invalid config: {exc.errors()[0]["msg"]}', source=source.id
        ) from None
    return cls(source, config, secrets)


clients = ClientCache()
atexit.register(clients.invalidate)
