"""Bearer tokens and roles: who may call what (spec section 12, Auth)."""

from __future__ import annotations

import time

import jwt
import pytest

from agentflow.security import signin
from agentflow.security.crypto import session_signing_key
from agentflow.store import Store
from tests.api.conftest import PASSWORD, Client, assert_error_shape


async def _token(client: Client, user: str, password: str = PASSWORD) -> str:
    r = await client.post("/auth/token", data={"grant_type": "password", "username": user, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    return body["access_token"]


async def test_health_and_openapi_need_no_token(client: Client) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer nonsense"},
     {"Authorization": "Bearer af_not-a-key"}],
    ids=["none", "empty", "basic", "garbage", "unknown-key"],
)
async def test_missing_or_bad_tokens_get_401_in_the_error_shape(client: Client, headers: dict[str, str]) -> None:
    r = await client.get("/api/v1/workflows", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error_shape(r.json(), "AuthenticationError")


async def test_session_token_from_the_password_form(client: Client, users: list[str]) -> None:
    token = await _token(client, "admin-user")
    r = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.json() == {"name": "admin-user", "role": "admin", "kind": "user"}
    r = await client.get("/auth/me", headers=client.as_("editor"))
    assert r.json() == {"name": "editor-key", "role": "editor", "kind": "api_key"}


async def test_tampered_and_expired_session_tokens_are_refused(client: Client, users: list[str]) -> None:
    token = await _token(client, "admin-user")
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
    r = await client.get("/auth/me", headers={"Authorization": f"Bearer {tampered}"})
    assert r.status_code == 401
    assert "not valid" in r.json()["message"]
    # A token whose lifetime has passed, signed with the real key: refused with no leeway.
    now = int(time.time())
    claims = {"sub": "admin-user", "role": "admin", "kind": "user", "iss": "agentflow", "iat": now - 61, "exp": now - 1}
    expired = jwt.encode(claims, session_signing_key(), algorithm="HS256")
    r = await client.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert_error_shape(r.json(), "AuthenticationError")
    assert "expired" in r.json()["message"]
    # A role claim raised by hand does not help: the signature no longer matches.
    forged = jwt.encode({**claims, "exp": now + 60}, "not the signing key, but long enough to pass", algorithm="HS256")
    assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_deleted_user_and_revoked_key_are_refused_at_the_next_request(
    client: Client, store: Store, users: list[str]
) -> None:
    token = await _token(client, "editor-user")
    assert (await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    store.delete_user("editor-user")
    r = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert (await client.get("/auth/me", headers=client.as_("viewer"))).status_code == 200
    store.revoke_token("viewer-key")
    r = await client.get("/auth/me", headers=client.as_("viewer"))
    assert r.status_code == 401
    assert "revoked" in r.json()["message"]


async def test_lowered_role_takes_effect_before_the_token_expires(
    client: Client, store: Store, users: list[str]
) -> None:
    token = await _token(client, "admin-user")
    store.set_role("admin-user", "viewer")
    r = await client.put("/api/v1/secrets/x", json={"value": "v" * 12}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


async def test_wrong_password_is_401_and_slowed(
    client: Client, users: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(signin, "DEFAULT_THROTTLE", signin.SignInThrottle(sleep=slept.append))
    for _ in range(3):
        r = await client.post("/auth/token", data={"username": "editor-user", "password": "wrong password!"})
        assert r.status_code == 401
        assert_error_shape(r.json(), "AuthenticationError")
    assert slept == [0.25, 0.5, 1.0]
    # The right password is never refused, and clears the count.
    await _token(client, "editor-user")
    r = await client.post("/auth/token", data={"username": "nobody", "password": "whatever it is"})
    assert r.status_code == 401


async def test_token_form_is_validated(client: Client) -> None:
    r = await client.post("/auth/token", data={"username": "x"})
    assert r.status_code == 422
    assert_error_shape(r.json(), "ValidationError")
    r = await client.post("/auth/token", data={"grant_type": "client_credentials", "username": "a", "password": "b"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/api/v1/workflows/triage-demo", {"document": {"id": "triage-demo", "nodes": [], "edges": []}}),
        ("delete", "/api/v1/workflows/triage-demo", None),
        ("post", "/api/v1/workflows/triage-demo/runs", {"input": "hi"}),
        ("post", "/api/v1/runs", {"document": {"id": "x", "nodes": [], "edges": []}, "input": "hi"}),
        ("post", "/api/v1/runs/abc/cancel", None),
        ("post", "/api/v1/runs/abc/resume", {}),
        ("post", "/api/v1/runs/abc/fork", {"checkpoint_id": "c"}),
        ("put", "/api/v1/sources/s", {"kind": "llm", "provider": "echo"}),
        ("delete", "/api/v1/sources/s", None),
        ("post", "/api/v1/sources/s/check", None),
        ("put", "/api/v1/queues/q", {"max_messages_per_second": 1}),
        ("delete", "/api/v1/queues/q", None),
        ("put", "/api/v1/secrets/s", {"value": "secret-value-1"}),
        ("delete", "/api/v1/secrets/s", None),
        ("post", "/v1/chat/completions", {"model": "triage-demo", "messages": [{"role": "user", "content": "hi"}]}),
    ],
)
async def test_viewer_is_refused_writes_and_runs(client: Client, method: str, path: str, body: object) -> None:
    kwargs = {"json": body} if body is not None else {}
    r = await client.request(method.upper(), path, headers=client.as_("viewer"), **kwargs)
    assert r.status_code == 403, r.text
    if path.startswith("/v1/"):
        assert r.json()["error"]["type"] == "permission_error"
    else:
        assert_error_shape(r.json(), "PermissionDenied")
        assert "editor role" in r.json()["message"]


async def test_viewer_reads(client: Client, saved: dict) -> None:
    for path in ("/api/v1/workflows", "/api/v1/workflows/triage-demo", "/api/v1/runs", "/api/v1/sources",
                 "/api/v1/queues", "/api/v1/secrets", "/v1/models"):
        r = await client.get(path, headers=client.as_("viewer"))
        assert r.status_code == 200, (path, r.text)
