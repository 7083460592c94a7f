"""Secret encryption keys: the key file, passphrases, wrong keys, rotation, ciphertext at rest."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agentflow.security import crypto
from agentflow.security.crypto import SecretKeyError
from agentflow.store import Store, open_store

PASS_A = "first passphrase, 16+ chars"
PASS_B = "second passphrase, 16+ chars"


def test_key_file_is_created_on_first_start_with_mode_0600(
    store: Store, agentflow_home: Path
) -> None:
    key_file = agentflow_home / "secret.key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(agentflow_home.stat().st_mode) == 0o700
    before = key_file.read_bytes()
    store.set_secret("a", "value-one-1")
    assert key_file.read_bytes() == before  # never regenerated


def test_no_key_file_when_a_passphrase_is_set(
    store_url: str, agentflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", PASS_A)
    with open_store(store_url) as store:
        store.set_secret("a", "value-one-1")
        assert store.get_secret("a") == "value-one-1"
    assert not (agentflow_home / "secret.key").exists()


def test_short_passphrase_is_a_clear_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", "too short")
    with pytest.raises(SecretKeyError, match=r"AGENTFLOW_SECRET_KEY is too short \(9 characters\)"):
        store.set_secret("a", "value-one-1")


def test_wrong_passphrase_is_a_clear_error_never_garbage(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", PASS_A)
    store.set_secret("openai", "sk-real-value-000111")
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", PASS_B)
    for action in (lambda: store.get_secret("openai"), lambda: store.set_secret("x", "new-value")):
        with pytest.raises(SecretKeyError) as info:
            action()
        message = info.value.to_dict()["message"]
        assert "AGENTFLOW_SECRET_KEY" in message and "another key" in message
        assert "AGENTFLOW_PREVIOUS_SECRET_KEY" in message and "secrets rotate" in message
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", PASS_A)
    assert store.get_secret("openai") == "sk-real-value-000111"
    assert store.get_secret("x") is None  # the refused set stored nothing


def test_wrong_key_file_is_a_clear_error(store: Store, agentflow_home: Path) -> None:
    store.set_secret("a", "value-one-1")
    key_file = agentflow_home / "secret.key"
    key_file.unlink()
    crypto.ensure_key_file(agentflow_home)  # a new, different key
    with pytest.raises(SecretKeyError, match=r"key file .*secret\.key"):
        store.get_secret("a")


def test_damaged_key_file_names_the_file(store: Store, agentflow_home: Path) -> None:
    (agentflow_home / "secret.key").write_text("not a key\n")
    with pytest.raises(SecretKeyError, match=r"secret\.key cannot be used"):
        store.set_secret("a", "value-one-1")


def test_key_file_rotation(store: Store, agentflow_home: Path) -> None:
    store.set_secret("a", "value-one-1")
    old = (agentflow_home / "secret.key").read_bytes().split()
    crypto.rotate_key_file(agentflow_home)
    keys = (agentflow_home / "secret.key").read_bytes().split()
    assert len(keys) == 2 and keys[1:] == old
    assert stat.S_IMODE((agentflow_home / "secret.key").stat().st_mode) == 0o600
    assert store.get_secret("a") == "value-one-1"
    assert store.rotate_secrets() == 1
    (agentflow_home / "secret.key").write_bytes(keys[0] + b"\n")  # drop the old key
    assert store.get_secret("a") == "value-one-1"


def test_moving_from_the_key_file_to_a_passphrase(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set_secret("a", "value-one-1")
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", PASS_A)
    assert store.get_secret("a") == "value-one-1"  # the file's key still decrypts
    assert store.rotate_secrets() == 1


def test_secret_values_are_encrypted_at_rest(store: Store, database_bytes) -> None:
    value = "sk-plaintext-must-not-appear-7734"
    store.set_secret("openai", value)
    assert store.get_secret("openai") == value
    data = database_bytes(store)
    assert b"openai" in data  # the name is there...
    assert value.encode() not in data  # ...the value is not
