"""The public names of the store and security packages, pinned."""

from __future__ import annotations

import inspect

import agentflow.security
import agentflow.store
from agentflow.store.base import Store
from agentflow.store.postgres import PostgresStore
from agentflow.store.sqlite import SQLiteStore


def test_exported_members() -> None:
    assert sorted(agentflow.store.__all__) == [
        "Store",
        "close_default_stores",
        "default_store",
        "open_store",
    ]
    assert sorted(agentflow.security.__all__) == [
        "ACTIONS",
        "Principal",
        "ROLES",
        "SecretCipher",
        "SecretKeyError",
        "SignInThrottle",
        "check_role",
        "sign_in",
    ]
    for module in (agentflow.store, agentflow.security):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_both_backends_implement_the_whole_interface() -> None:
    for cls in (SQLiteStore, PostgresStore):
        assert issubclass(cls, Store) and not inspect.isabstract(cls)
        assert cls.__abstractmethods__ == frozenset()
