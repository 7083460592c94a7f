"""One error shape for every non-2xx answer, FastAPI's own included; an honest OpenAPI document."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from agentflow.api.main import ROUTERS, create_app
from agentflow.errors import QueueRateLimitExceeded
from agentflow.settings import get_settings
from agentflow.store import Store
from tests.api.conftest import Client, assert_error_shape


async def test_unknown_route_and_wrong_method(client: Client) -> None:
    r = await client.get("/api/v1/nothing-here", headers=client.as_("viewer"))
    assert r.status_code == 404
    assert_error_shape(r.json(), "NotFoundError")
    r = await client.patch("/api/v1/workflows/triage-demo", headers=client.as_("editor"))
    assert r.status_code == 405
    assert_error_shape(r.json(), "MethodNotAllowed")
    assert r.headers["allow"] == "DELETE, GET, PUT"
    r = await client.delete("/health")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


async def test_malformed_bodies(client: Client, saved: dict) -> None:
    ed = client.as_("editor", **{"Content-Type": "application/json"})
    for raw in (b"{not json", b"", b"[1, 2", "\u00ff".encode("latin-1")):
        r = await client.post("/api/v1/workflows/triage-demo/runs", content=raw, headers=ed)
        assert r.status_code == 422, raw
        assert_error_shape(r.json(), "ValidationError")
    r = await client.post("/api/v1/workflows/triage-demo/runs", content=b"{bad", headers=ed)
    assert "not valid JSON" in r.json()["message"]
    r = await client.post("/api/v1/workflows/triage-demo/runs", content=b"input=hi",
                          headers=client.as_("editor", **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert r.status_code == 422


async def test_bodies_over_the_limit_get_413(store: Store, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_MAX_BODY_BYTES", "1000")
    app = create_app(store=store)
    headers = {"Authorization": f"Bearer {keys['editor']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        big = {"document": {"id": "x", "description": "y" * 2000, "nodes": [], "edges": []}, "input": "hi"}
        r = await c.post("/api/v1/runs", json=big, headers=headers)
        assert r.status_code == 413
        assert_error_shape(r.json(), "PayloadTooLarge")
        assert r.json()["details"] == {"max_body_bytes": 1000}

        async def chunks():  # no Content-Length: counted as it arrives
            for _ in range(5):
                yield b'{"input": "' + b"z" * 400

        r = await c.post("/api/v1/runs", content=chunks(), headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 413
        assert_error_shape(r.json(), "PayloadTooLarge")
        r = await c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]},
                         headers=headers)
        assert r.status_code == 413 and r.json()["error"]["agentflow_error_type"] == "PayloadTooLarge"
        r = await c.post("/api/v1/validate", json={"id": "small"}, headers=headers)
        assert r.status_code == 422  # under the limit: judged normally


def _failing_app(store: Store) -> Any:
    app = create_app(store=store)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom with sk-live-abcdefghijklmnopqrstuvwx inside")

    @router.get("/v1/boom")
    async def boom_v1() -> None:
        raise RuntimeError("kaboom")

    @router.get("/busy")
    async def busy() -> None:
        raise QueueRateLimitExceeded("queue q is full", retry_after_s=2.2)

    app.include_router(router)
    return app


async def test_bugs_answer_500_in_the_shape_with_the_traceback_only_in_the_log(
    store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _failing_app(store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        with caplog.at_level(logging.ERROR, logger="agentflow.api"):
            r = await c.get("/boom")
        assert r.status_code == 500
        body = r.json()
        assert_error_shape(body, "InternalServerError")
        assert "kaboom" not in r.text and "RuntimeError" in body["message"]
        ref = body["details"]["reference"]
        assert any(ref in rec.getMessage() and rec.exc_info for rec in caplog.records)
        r = await c.get("/v1/boom")
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        r = await c.get("/busy")
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert_error_shape(r.json(), "QueueRateLimitExceeded")
        monkeypatch.setenv("AGENTFLOW_DEBUG", "1")
        r = await c.get("/boom")
        assert "Traceback" in r.json()["details"]["traceback"]
        assert "sk-live-abcdefghijklmnopqrstuvwx" not in r.text


async def test_health_is_503_in_the_shape_when_the_store_is_gone(tmp_path: Any) -> None:
    from agentflow.store import open_store

    st = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    app = create_app(store=st)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/health")).json() == {"status": "ok", "version": "0.1.0", "store": "ok",
                                                    "queues": "in-process"}
        st.close()
        r = await c.get("/health")
    assert r.status_code == 503
    assert_error_shape(r.json(), "InternalServerError")
    assert r.json()["details"]["store"] == "unreachable"


async def test_cors_is_off_unless_origins_are_listed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(store=store)), base_url="http://t") as c:
        r = await c.options("/api/v1/workflows", headers=pre)
        assert "access-control-allow-origin" not in r.headers
    monkeypatch.setenv("AGENTFLOW_CORS_ORIGINS", "https://app.example, https://other.example")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(store=store)), base_url="http://t") as c:
        r = await c.options("/api/v1/workflows", headers=pre)
        assert r.headers["access-control-allow-origin"] == "https://app.example"


def test_the_openapi_document_declares_bodies_and_errors(store: Store) -> None:
    doc = create_app(store=store).openapi()
    assert set(ROUTERS) >= {"agentflow.api.routes.workflows", "agentflow.api.routes.openai_compat"}
    schemes = doc["components"]["securitySchemes"]
    assert schemes["session"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert schemes["api_key"]["scheme"] == "bearer"
    public = {("/health", "get"), ("/auth/token", "post")}
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert len(ops) == 40  # 33 + the 7 batch routes
    for path, method, op in ops:
        codes = set(op["responses"])
        where = f"{method.upper()} {path}"
        assert "500" in codes, where
        assert any(c.startswith("2") for c in codes), where
        for code, resp in op["responses"].items():
            assert resp.get("description"), (where, code)
            if code != "204":
                assert "content" in resp, (where, code)
        if (path, method) not in public:
            assert "401" in codes and op.get("security"), where
        if "requestBody" in op:
            assert {"413", "422"} <= codes, where
            assert op["requestBody"]["content"], where
        if op.get("parameters"):
            assert "422" in codes, where
        if method in ("put", "post") and path not in ("/api/v1/runs/{run_id}/cancel",
                                                      "/api/v1/sources/{source_id}/check",
                                                      "/api/v1/runs/{run_id}/resume",
                                                      "/api/v1/batches/{batch_id}/cancel",
                                                      "/api/v1/batches/{batch_id}/resume"):
            assert "requestBody" in op and op["requestBody"].get("required"), where
        error_schema = op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"]
        assert error_schema.endswith("OpenAIErrorBody" if path.startswith("/v1/") else "ErrorBody"), where
    run = doc["paths"]["/api/v1/workflows/{workflow_id}/runs"]["post"]
    assert set(run["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert {"409", "422", "429", "502"} <= set(run["responses"])
    secret = doc["components"]["schemas"]["SecretValue"]["properties"]["value"]
    assert secret["writeOnly"] is True
    assert json.dumps(doc)  # serialisable as served at /openapi.json


async def test_settings_are_the_environment_s_when_none_are_given(store: Store) -> None:
    app = create_app(store=store)
    assert app.state.agentflow.settings == get_settings()
