"""Sources, queues and secrets over HTTP: the workspace the workbench's pages manage."""

from __future__ import annotations

from agentflow.store import Store
from tests.api.conftest import Client, assert_error_shape


async def test_sources_register_read_check_and_remove(client: Client, store: Store) -> None:
    ed = client.as_("editor")
    r = await client.put("/api/v1/sources/echo-1", json={"kind": "llm", "provider": "echo",
                                                         "config": {"template": "E: {prompt}"}}, headers=ed)
    assert r.status_code == 200
    assert r.json() == {"id": "echo-1", "kind": "llm", "provider": "echo", "config": {"template": "E: {prompt}"}}
    assert store.get_source("echo-1") is not None
    r = await client.put("/api/v1/sources/echo-1", json={"id": "echo-1", "kind": "llm", "provider": "echo"},
                         headers=ed)
    assert r.json()["config"] == {}
    assert [s["id"] for s in (await client.get("/api/v1/sources", headers=ed)).json()] == ["echo-1"]
    assert (await client.get("/api/v1/sources/echo-1", headers=ed)).json()["provider"] == "echo"
    r = await client.post("/api/v1/sources/echo-1/check", headers=ed)
    assert r.status_code == 200
    assert r.json()["ok"] is True and set(r.json()) == {"ok", "latency_ms", "message"}
    # A misconfigured source fails its check with the reason, not with an error answer.
    await client.put("/api/v1/sources/odd", json={"kind": "llm", "provider": "no-such-provider"}, headers=ed)
    r = await client.post("/api/v1/sources/odd/check", headers=ed)
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["message"]
    # A registered source is used by a workflow that names it.
    doc = {"id": "uses-registered", "nodes": [{"id": "input", "type": "input"},
                                              {"id": "a", "type": "llm", "source": "echo-1",
                                               "config": {"prompt": "{user_input}"}}],
           "edges": [{"from": "input", "to": "a"}]}
    r = await client.post("/api/v1/runs", json={"document": doc, "input": "hi"}, headers=ed)
    assert r.json()["text_result"] == "hi"
    r = await client.delete("/api/v1/sources/echo-1", headers=ed)
    assert r.json() == {"id": "echo-1", "deleted": True}
    for call in (client.get("/api/v1/sources/echo-1", headers=ed), client.delete("/api/v1/sources/echo-1", headers=ed),
                 client.post("/api/v1/sources/echo-1/check", headers=ed)):
        r = await call
        assert r.status_code == 404
        assert_error_shape(r.json(), "NotFoundError")


async def test_sources_refuse_literal_secrets_and_mismatched_ids(client: Client) -> None:
    ed = client.as_("editor")
    body = {"kind": "llm", "provider": "openai", "config": {"api_key": "sk-test-abcdefghijklmnopqrstuv"}}
    r = await client.put("/api/v1/sources/gpt", json=body, headers=ed)
    assert r.status_code == 422
    assert "sk-test" not in r.text
    assert "api_key_secret" in r.json()["message"] or "_env" in r.json()["message"]
    r = await client.put("/api/v1/sources/gpt", json={"id": "other", "kind": "llm", "provider": "echo"}, headers=ed)
    assert r.status_code == 422
    assert r.json()["details"]["errors"][0]["path"] == "id"
    r = await client.put("/api/v1/sources/gpt", json={"kind": "video", "provider": "x"}, headers=ed)
    assert r.status_code == 422
    ok = {"kind": "llm", "provider": "openai", "config": {"model": "gpt-4o-mini", "api_key_secret": "openai"}}
    assert (await client.put("/api/v1/sources/gpt", json=ok, headers=ed)).status_code == 200


async def test_queues_register_read_stats_and_remove(client: Client) -> None:
    ed = client.as_("editor")
    spec = {"max_messages_per_second": 5, "subqueues": {"interactive": 3, "batch": 1}, "on_limit": "wait"}
    r = await client.put("/api/v1/queues/q1", json=spec, headers=ed)
    assert r.status_code == 200
    assert r.json() == {"id": "q1", **spec}
    assert [q["id"] for q in (await client.get("/api/v1/queues", headers=ed)).json()] == ["q1"]
    assert (await client.get("/api/v1/queues/q1", headers=ed)).json()["max_messages_per_second"] == 5
    # A run through the queue shows in its live figures.
    doc = {"id": "queued", "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
           "nodes": [{"id": "input", "type": "input"},
                     {"id": "a", "type": "llm", "source": "e", "queue": "q1", "config": {"prompt": "{user_input}"}}],
           "edges": [{"from": "input", "to": "a"}]}
    for _ in range(2):
        assert (await client.post("/api/v1/runs", json={"document": doc, "input": "hi"}, headers=ed)).status_code == 200
    stats = (await client.get("/api/v1/queues/q1/stats", headers=client.as_("viewer"))).json()
    assert stats["queue_id"] == "q1" and stats["backend"] == "memory"
    assert stats["granted"] >= 2
    assert stats["limits"]["max_messages_per_second"]["limit"] == 5
    r = await client.put("/api/v1/queues/q1", json={"max_messages_per_second": -1}, headers=ed)
    assert r.status_code == 422
    r = await client.put("/api/v1/queues/q1", json={"id": "q2"}, headers=ed)
    assert r.status_code == 422
    assert (await client.delete("/api/v1/queues/q1", headers=ed)).json() == {"id": "q1", "deleted": True}
    for path in ("/api/v1/queues/q1", "/api/v1/queues/q1/stats"):
        assert (await client.get(path, headers=ed)).status_code == 404
    assert (await client.delete("/api/v1/queues/q1", headers=ed)).status_code == 404


async def test_secrets_are_write_only(client: Client, store: Store) -> None:
    ed = client.as_("editor")
    value = "s3cr3t-value-for-the-api-0123"
    r = await client.put("/api/v1/secrets/openai-key", json={"value": value}, headers=ed)
    assert r.status_code == 200
    assert r.json() == {"name": "openai-key", "stored": True}
    assert store.get_secret("openai-key") == value
    listed = await client.get("/api/v1/secrets", headers=client.as_("viewer"))
    assert [s["name"] for s in listed.json()] == ["openai-key"]
    assert set(listed.json()[0]) == {"name", "updated_at"}
    # Refused bodies never echo what was sent.
    for body in ({"value": value, "extra": value}, {"value": [value]}, {"value": ""}, {"secret": value}):
        r = await client.put("/api/v1/secrets/openai-key", json=body, headers=ed)
        assert r.status_code == 422
        assert value not in r.text
    r = await client.put("/api/v1/secrets/bad name!", json={"value": value}, headers=ed)
    assert r.status_code == 422
    assert value not in r.text
    assert (await client.delete("/api/v1/secrets/openai-key", headers=ed)).json() == {
        "name": "openai-key", "deleted": True}
    assert (await client.delete("/api/v1/secrets/openai-key", headers=ed)).status_code == 404
