"""Registries for node types and source providers.

A registry is filled once, from the package's own modules and from Python entry points,
and is only ever added to: no build or run clears it, so browser sessions (threads of one
process) can share it. A plugin that fails to load is recorded in ``failures`` and shown by
``python -m agentflow plugins``; it never stops the others from loading.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

log = logging.getLogger("agentflow.plugins")

K = TypeVar("K")
V = TypeVar("V")


class Registry(Generic[K, V]):
    """Thread-safe, add-only mapping of plugin keys to classes, loaded lazily."""

    def __init__(
        self,
        name: str,
        package: str,
        entry_point_group: str,
        key_of: Callable[[V], K],
        module_filter: Callable[[str], bool] = lambda m: True,
    ) -> None:
        self.name = name
        self._package = package
        self._group = entry_point_group
        self._key_of = key_of
        self._module_filter = module_filter
        self._items: dict[K, V] = {}
        self._lock = threading.RLock()
        self._loaded = False
        self.failures: dict[str, str] = {}

    def register(self, item: V) -> V:
        """Add ``item`` under its key; a second, different item for a key is refused."""
        key = self._key_of(item)
        with self._lock:
            existing = self._items.get(key)
            if existing is not None and existing is not item:
                qual = f"{getattr(item, '__module__', '?')}.{getattr(item, '__qualname__', item)}"
                raise ValueError(f"{self.name} {key!r} is already registered; not adding {qual}")
            self._items[key] = item
        return item

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            pkg = importlib.import_module(self._package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if info.name.startswith("_") or not self._module_filter(info.name):
                    continue
                self._import(f"{self._package}.{info.name}")
            for ep in entry_points(group=self._group):
                try:
                    obj = ep.load()
                    if obj is not None and not isinstance(obj, type(importlib)):
                        self.register(obj)
                except Exception as exc:  # a broken plugin must not break the product
                    self.failures[f"entry point {ep.name}"] = f"{type(exc).__name__}: {exc}"
                    log.warning("plugin %s failed to load: %s", ep.name, exc)
            self._loaded = True

    def _import(self, module: str) -> None:
        try:
            importlib.import_module(module)
        except Exception as exc:
            self.failures[module] = f"{type(exc).__name__}: {exc}"
            log.warning("plugin module %s failed to load: %s", module, exc)

    def get(self, key: K) -> V | None:
        self._ensure_loaded()
        return self._items.get(key)

    def keys(self) -> list[K]:
        self._ensure_loaded()
        return list(self._items)

    def __iter__(self) -> Iterator[V]:
        self._ensure_loaded()
        return iter(list(self._items.values()))

    def __contains__(self, key: object) -> bool:
        self._ensure_loaded()
        return key in self._items
