"""The workbench store: workflows (versioned), sources, queues, secrets, runs, users, keys.

``default_store()`` is the store ``AGENTFLOW_DB_URL`` names (SQLite under the AgentFlow home
by default), opened and migrated on first use and then shared by every thread; the URL is
read at each call, so a changed environment (a test, a CLI flag) gets its own store.
``open_store(url)`` opens a private one that the caller closes.
"""

from __future__ import annotations

import atexit
import threading
from collections import OrderedDict

from agentflow.errors import ValidationError
from agentflow.settings import get_settings
from agentflow.store.base import Store

__all__ = ["Store", "close_default_stores", "default_store", "open_store"]

#: Stores kept open by :func:`default_store`; beyond this many URLs (which only tests
#: reach), the least recently used is closed.
_MAX_CACHED = 16
_cache: OrderedDict[str, Store] = OrderedDict()
_cache_lock = threading.Lock()


def open_store(url: str) -> Store:
    """Open (creating and migrating if needed) the store at ``url``: ``sqlite:///`` or ``postgresql://``."""
    scheme = url.partition("://")[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        from agentflow.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        from agentflow.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValidationError(
        "AGENTFLOW_DB_URL must be sqlite:///path/to/file.db or postgresql://user@host:port/db",
        errors=[{"path": "AGENTFLOW_DB_URL", "message": f"unsupported scheme {scheme!r}"}],
    )


def default_store() -> Store:
    """The shared store for the current ``AGENTFLOW_DB_URL``; one per URL, thread-safe."""
    url = get_settings().db_url
    with _cache_lock:
        store = _cache.get(url)
        if store is not None:
            _cache.move_to_end(url)
            return store
        store = open_store(url)
        _cache[url] = store
        while len(_cache) > _MAX_CACHED:
            _, old = _cache.popitem(last=False)
            old.close()
        return store


def close_default_stores() -> None:
    """Close every store :func:`default_store` opened (at exit, and between tests if wanted)."""
    with _cache_lock:
        stores = list(_cache.values())
        _cache.clear()
    for store in stores:
        store.close()


atexit.register(close_default_stores)
