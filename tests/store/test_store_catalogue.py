"""Registered sources and queues, and encrypted secrets, on both backends."""

from __future__ import annotations

import pytest

from agentflow import redact
from agentflow.errors import NotFoundError, ValidationError
from agentflow.runtime.workspace import Workspace
from agentflow.spec.models import QueueSpec, SourceSpec
from agentflow.store import Store, open_store

GPT = {
    "id": "gpt",
    "kind": "llm",
    "provider": "openai",
    "config": {"model": "gpt-4o-mini", "api_key_secret": "openai"},
}


def test_the_store_is_a_workspace(store: Store) -> None:
    assert isinstance(store, Workspace)
    assert store.workspace_key.startswith(("sqlite:///", "postgresql://"))


def test_sources_crud(store: Store) -> None:
    assert store.get_source("gpt") is None
    saved = store.put_source(GPT)
    assert isinstance(saved, SourceSpec) and saved.config["model"] == "gpt-4o-mini"
    assert store.get_source("gpt") == saved
    store.put_source({**GPT, "config": {**GPT["config"], "model": "gpt-4o"}})
    assert store.get_source("gpt").config["model"] == "gpt-4o"
    store.put_source(SourceSpec(id="echo", kind="llm", provider="echo"))
    assert [s.id for s in store.list_sources()] == ["echo", "gpt"]
    store.delete_source("gpt")
    assert store.get_source("gpt") is None
    with pytest.raises(NotFoundError, match='source "gpt" not found'):
        store.delete_source("gpt")


def test_bad_sources_are_refused_with_paths(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.put_source({"id": "Bad Id", "kind": "llm", "provider": "echo"})
    assert info.value.errors[0]["path"] == "id"
    with pytest.raises(ValidationError) as info:
        store.put_source({"id": "x", "kind": "nope", "provider": "echo", "extra": 1})
    assert {e["path"] for e in info.value.errors} == {"kind", "extra"}
    assert store.list_sources() == []


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"api_key": "sk-live-abcdefghijklmnop"}, "config.api_key"),
        ({"password": "hunter2hunter2"}, "config.password"),
        ({"dsn": "postgresql://me:pw@db/x"}, "config.dsn"),
        ({"headers": {"Authorization": "Bearer abc"}}, "config.headers.Authorization"),
    ],
)
def test_inline_secrets_in_sources_are_refused(store: Store, config: dict, path: str) -> None:
    with pytest.raises(ValidationError, match="secrets set") as info:
        store.put_source({"id": "db", "kind": "db", "provider": "postgres", "config": config})
    assert info.value.errors[0]["path"] == path
    ok = {"dsn_secret": "pg", "headers": {"Authorization": {"env": "TOKEN"}}}
    store.put_source({"id": "db", "kind": "db", "provider": "postgres", "config": ok})


def test_queues_crud(store: Store) -> None:
    q = store.put_queue({"id": "openai-q", "max_requests_per_minute": 300, "subqueues": {"a": 3}})
    assert isinstance(q, QueueSpec) and store.get_queue("openai-q") == q
    assert store.get_queue("missing") is None
    with pytest.raises(ValidationError):
        store.put_queue({"id": "q", "max_messages_per_second": 0})
    assert [x.id for x in store.list_queues()] == ["openai-q"]
    store.delete_queue("openai-q")
    assert store.list_queues() == []
    with pytest.raises(NotFoundError):
        store.delete_queue("openai-q")


def test_secrets_crud_never_lists_values(store: Store) -> None:
    assert store.get_secret("openai") is None
    store.set_secret("openai", "sk-test-value-0001")
    store.set_secret("pg.dsn", "postgresql://u:p@h/db")
    assert store.get_secret("openai") == "sk-test-value-0001"
    store.set_secret("openai", "sk-test-value-0002")
    assert store.get_secret("openai") == "sk-test-value-0002"
    listed = store.list_secrets()
    assert [s["name"] for s in listed] == ["openai", "pg.dsn"]
    assert all(set(s) == {"name", "updated_at"} for s in listed)
    assert "sk-test-value" not in repr(listed)
    store.delete_secret("openai")
    assert store.get_secret("openai") is None
    with pytest.raises(NotFoundError):
        store.delete_secret("openai")


def test_secret_names_and_values_are_checked(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.set_secret("bad name", "value")
    with pytest.raises(ValidationError):
        store.set_secret("empty", "")


def test_decrypted_secrets_are_masked_in_output(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set_secret("token", "zz-very-private-42")
    store.close()
    monkeypatch.setattr(redact, "_known", frozenset())  # a fresh process: nothing remembered
    monkeypatch.setattr(redact, "_known_re", None)
    again = open_store(store_url)
    try:
        assert again.get_secret("token") == "zz-very-private-42"
        assert redact.redact("value zz-very-private-42 here") == "value *** here"
    finally:
        again.close()


def test_rotation_reencrypts_with_the_newest_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", "the old passphrase, long enough")
    store.set_secret("a", "value-a-123")
    store.set_secret("b", "value-b-456")

    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", "the new passphrase, long enough")
    monkeypatch.setenv("AGENTFLOW_PREVIOUS_SECRET_KEY", "the old passphrase, long enough")
    assert store.get_secret("a") == "value-a-123"  # old key still decrypts
    assert store.rotate_secrets() == 2

    monkeypatch.delenv("AGENTFLOW_PREVIOUS_SECRET_KEY")
    assert store.get_secret("a") == "value-a-123"  # new key alone now suffices
    assert store.get_secret("b") == "value-b-456"
    store.set_secret("c", "value-c-789")
