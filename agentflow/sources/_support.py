"""Small pieces the networked providers share: per-event-loop clients and config guards.

Why per loop: async clients (``AsyncOpenAI``, ``httpx.AsyncClient``) hold connections bound
to the event loop that opened them, yet one provider instance serves every thread and run in
the process, and sync callers (Streamlit threads) may each start a fresh loop with
``asyncio.run``. :class:`PerLoop` keeps one client per live loop and forgets the clients of
loops that have closed, so no call ever touches another loop's sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import model_validator

from agentflow.sources.base import ProviderConfig

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One object per running event loop, made by ``factory`` on first use in that loop."""

    def __init__(self, factory: Callable[[], T], aclose: Callable[[T], Awaitable[Any]]) -> None:
        self._factory = factory
        self._aclose = aclose
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        """The running loop's object (call only from a coroutine)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                # A new loop is the moment old ones are likely gone (asyncio.run per call):
                # drop their clients, whose sockets cannot be used or closed from here.
                for old in [lp for lp in self._items if lp.is_closed()]:
                    del self._items[old]
                item = self._factory()
                self._items[loop] = item
            return item

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for lp in self._items if not lp.is_closed())

    def close(self) -> None:
        """Close every live loop's object, best effort, from any thread."""
        with self._lock:
            items = list(self._items.items())
            self._items.clear()
        for loop, item in items:
            if loop.is_closed():
                continue
            # A loop running elsewhere gets the close scheduled on it; an idle one runs it
            # now; a loop in any other state keeps its client until garbage collection.
            with contextlib.suppress(RuntimeError):
                if loop.is_running():
                    asyncio.run_coroutine_threadsafe(self._aclose(item), loop)
                else:
                    loop.run_until_complete(self._aclose(item))


class SecretRefConfig(ProviderConfig):
    """A config whose secrets are written only as ``<name>_env`` / ``<name>_secret``.

    Subclasses list their secret fields in ``secret_fields``; a literal value under such a
    name (or under ``password``) is refused with a message that says how to store it.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in (*cls.secret_fields, "password"):
                if name in data:
                    raise ValueError(literal_secret_message(name))
        return data


def literal_secret_message(name: str) -> str:
    return (
        f'"{name}" must not be written in a source config: put the value in an environment '
        f'variable and set "{name}_env" to its name, or store it with '
        f'`python -m agentflow secrets set NAME` and set "{name}_secret"'
    )
