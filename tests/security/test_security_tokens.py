"""Session tokens (JWT) and API keys: tampering, expiry with no leeway, storage, logs."""

from __future__ import annotations

import base64
import json
import logging
import time

import jwt
import pytest

from agentflow.errors import AuthenticationError, ValidationError
from agentflow.logs import flush_logs, setup_logging
from agentflow.security import crypto, tokens
from agentflow.security.principal import Principal
from agentflow.settings import get_settings
from agentflow.store import Store


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_issue_and_verify() -> None:
    token = tokens.issue("ann", "editor", ttl=60)
    assert tokens.verify(token) == Principal(name="ann", role="editor", kind="user")
    claims = tokens.decode(token)
    assert claims["exp"] - claims["iat"] == 60 and claims["iss"] == "agentflow"
    assert not tokens.is_api_key(token)
    with pytest.raises(ValidationError):
        tokens.issue("ann", "root")
    with pytest.raises(ValidationError):
        tokens.issue("ann", "viewer", ttl=0)


def test_default_lifetime_is_the_settings_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_TOKEN_TTL_S", "120")
    claims = tokens.decode(tokens.issue("ann", "viewer"))
    assert claims["exp"] - claims["iat"] == 120


def test_tampered_tokens_are_refused() -> None:
    token = tokens.issue("ann", "viewer", ttl=60)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = ".".join([header, _b64({**claims, "role": "admin"}), signature])
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64({**claims, "role": "admin"}), ""])
    other_key = jwt.encode({**claims, "role": "admin"}, "some other secret, 32 bytes long!!", "HS256")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (forged, unsigned, other_key, flipped, "not a token", ""):
        with pytest.raises(AuthenticationError, match="not valid"):
            tokens.verify(bad)


def test_expiry_has_no_leeway() -> None:
    key = crypto.session_signing_key()
    now = int(time.time())
    base = {"sub": "ann", "role": "viewer", "iss": "agentflow", "iat": now - 10}
    just_expired = jwt.encode({**base, "exp": now}, key, "HS256")
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(just_expired)  # exp == now: refused, where any leeway would accept it
    one_second_ago = jwt.encode({**base, "exp": now - 1}, key, "HS256")
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(one_second_ago)
    missing_exp = jwt.encode(base, key, "HS256")
    with pytest.raises(AuthenticationError):
        tokens.verify(missing_exp)


def test_a_token_is_refused_once_its_ttl_has_passed() -> None:
    issued = time.time()
    token = tokens.issue("ann", "viewer", ttl=1)
    while time.time() < issued + 1.05:  # margin for a second boundary between the two reads
        time.sleep(0.05)
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(token)


def test_signing_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    from_file = crypto.session_signing_key()
    token = tokens.issue("ann", "viewer", ttl=60)

    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", "a passphrase of enough length")
    from_passphrase = crypto.session_signing_key()
    assert from_passphrase != from_file and len(from_passphrase) == 32
    with pytest.raises(AuthenticationError):
        tokens.verify(token)  # signed with the key file's derivation

    monkeypatch.setenv("JWT_SECRET", "an explicit jwt secret of 32+ bytes")
    assert crypto.session_signing_key() == b"an explicit jwt secret of 32+ bytes"
    assert jwt.decode(tokens.issue("ann", "viewer", 60), get_settings().jwt_secret, ["HS256"])


def test_verify_against_the_store_follows_role_changes(store: Store) -> None:
    store.add_user("ann", "correct horse", "editor")
    token = tokens.issue("ann", "editor", ttl=60)
    assert tokens.verify(token, store=store).role == "editor"
    store.set_role("ann", "viewer")
    assert tokens.verify(token, store=store).role == "viewer"
    store.delete_user("ann")
    with pytest.raises(AuthenticationError, match="no longer exists"):
        tokens.verify(token, store=store)


def test_api_key_plaintext_is_nowhere_in_the_database_or_log(
    store: Store, database_bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    setup_logging()
    key = store.create_token("ci", "admin", expires_days=1)
    assert store.verify_api_key(key).name == "ci"
    logging.getLogger("agentflow.test").info("a caller sent %s", key)  # even if someone logs it
    flush_logs()

    data = database_bytes(store)
    assert tokens.hash_api_key(key).encode() in data  # the hash is what is kept
    assert key.encode() not in data
    assert key[3:].encode() not in data  # nor the random part without its prefix
    log_text = get_settings().log_file.read_text()
    assert "created API token ci" in log_text
    assert key not in log_text and key[3:] not in log_text
