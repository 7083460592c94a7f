"""Users and API keys on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentflow.errors import ConflictError, NotFoundError, ValidationError
from agentflow.security import passwords
from agentflow.security.principal import Principal
from agentflow.store import Store, codec


def test_users_crud(store: Store) -> None:
    assert store.has_principals() is False
    ann = store.add_user("ann", "correct horse", "admin")
    assert ann["name"] == "ann" and ann["role"] == "admin" and "password_hash" not in ann
    store.add_user("bob", "battery staple", "viewer")
    assert store.has_principals() is True
    assert [u["name"] for u in store.list_users()] == ["ann", "bob"]
    assert store.set_role("bob", "editor")["role"] == "editor"
    assert store.get_user("bob")["role"] == "editor"
    store.delete_user("bob")
    with pytest.raises(NotFoundError, match='user "bob" not found'):
        store.get_user("bob")
    with pytest.raises(NotFoundError):
        store.delete_user("bob")
    with pytest.raises(NotFoundError):
        store.set_role("bob", "viewer")


def test_user_input_is_checked(store: Store) -> None:
    with pytest.raises(ValidationError, match="unknown role"):
        store.add_user("ann", "correct horse", "owner")
    with pytest.raises(ValidationError, match="8 or more"):
        store.add_user("ann", "short", "viewer")
    with pytest.raises(ValidationError, match="invalid user name"):
        store.add_user("a b", "correct horse", "viewer")
    store.add_user("ann", "correct horse", "viewer")
    with pytest.raises(ConflictError, match="already exists"):
        store.add_user("ann", "other password", "viewer")
    with pytest.raises(ValidationError):
        store.set_role("ann", "root")


def test_verify_password(store: Store) -> None:
    store.add_user("ann", "correct horse", "editor")
    assert store.verify_password("ann", "correct horse")["role"] == "editor"
    assert store.verify_password("ann", "wrong horse") is None
    assert store.verify_password("nobody", "correct horse") is None
    store.set_password("ann", "new password!")
    assert store.verify_password("ann", "correct horse") is None
    assert store.verify_password("ann", "new password!") is not None


def test_password_hash_is_upgraded_when_parameters_change(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argon2 import PasswordHasher

    default = passwords._hasher
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))
    store.add_user("ann", "correct horse", "viewer")
    monkeypatch.setattr(passwords, "_hasher", default)

    def stored_hash() -> str:
        with store._read() as tx:
            return tx.one("SELECT password_hash FROM af_users WHERE name = ?", ("ann",))[
                "password_hash"
            ]

    old = stored_hash()
    assert "m=8192,t=1" in old and passwords.needs_rehash(old)
    assert store.verify_password("ann", "correct horse") is not None
    new = stored_hash()
    assert new != old and not passwords.needs_rehash(new)
    assert store.verify_password("ann", "correct horse") is not None


def test_api_tokens(store: Store) -> None:
    key = store.create_token("ci", "editor", expires_days=30)
    assert key.startswith("af_") and len(key) > 40
    assert store.has_principals() is True
    (row,) = store.list_tokens()
    assert row["name"] == "ci" and row["role"] == "editor" and row["last_used_at"] is None
    assert set(row) == {"name", "role", "created_at", "expires_at", "last_used_at"}

    assert store.verify_api_key(key) == Principal(name="ci", role="editor", kind="api_key")
    assert store.list_tokens()[0]["last_used_at"] is not None
    assert store.verify_api_key(key + "x") is None
    assert store.verify_api_key("af_unknown") is None
    assert store.verify_api_key("eyJhbGciOi.not.a.key") is None

    with pytest.raises(ConflictError, match="already exists"):
        store.create_token("ci", "viewer")
    store.revoke_token("ci")
    assert store.verify_api_key(key) is None
    assert store.list_tokens() == []
    with pytest.raises(NotFoundError):
        store.revoke_token("ci")
    assert store.create_token("ci", "viewer")  # the name is free again


def test_expired_tokens_are_refused(store: Store) -> None:
    key = store.create_token("old", "viewer", expires_days=1)
    with store._write() as tx:
        tx.run(
            "UPDATE af_api_tokens SET expires_at = ? WHERE name = ?",
            (codec.now() - timedelta(seconds=1), "old"),
        )
    assert store.verify_api_key(key) is None
    assert store.has_principals() is False
    with pytest.raises(ValidationError):
        store.create_token("bad", "viewer", expires_days=0)
    with pytest.raises(ValidationError):
        store.create_token("bad", "superuser")
