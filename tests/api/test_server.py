"""A real ``python -m agentflow serve`` on a free localhost port, spoken to over HTTP.

One server for the module (its store is a SQLite file the tests also open, to add keys and
read what was recorded); it logs at DEBUG with the access log on, so the secret test
reads the most it could ever write.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import pytest

from agentflow.store import Store, open_store
from tests.api.conftest import PASSWORD, assert_error_shape, failing_doc, slow_chain, triage_doc
from tests.api.servers import Serve, cli, free_port, server_env
from tests.servers.openai_compat import OpenAICompatServer

pytestmark = pytest.mark.slow


class Served:
    def __init__(self, srv: Serve, store: Store, keys: dict[str, str], home: Path) -> None:
        self.srv, self.store, self.keys, self.home = srv, store, keys, home
        self.url = srv.url
        self.http = httpx.Client(base_url=srv.url, timeout=30)
        self.seen: list[str] = []  # every response body, for the secret test

    def h(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", **extra}

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.http.request(method, path, **kw)
        self.seen.append(r.text + json.dumps(dict(r.headers)))
        return r


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("served")
    env = server_env(home, LOG_LEVEL="DEBUG")
    store = open_store(f"sqlite:///{home / 'agentflow.db'}")
    keys = {role: store.create_token(f"{role}-key", role) for role in ("viewer", "editor")}
    store.add_user("alice", PASSWORD, "editor")
    srv = Serve(env, "--access-log").start()
    try:
        yield Served(srv, store, keys, home)
    finally:
        srv.stop()
        store.close()


def test_serve_refuses_to_start_with_nobody_to_call_it(tmp_path: Path) -> None:
    done = cli(server_env(tmp_path / "empty"), "serve", "--port", str(free_port()))
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert_error_shape(error, "ValidationError")
    assert "users add NAME --role admin" in error["message"] and "tokens create NAME" in error["message"]
    assert "users add" in done.stderr


def test_serve_refuses_several_workers_without_redis(served: Served) -> None:
    done = cli(served.srv.env, "serve", "--port", str(free_port()), "--workers", "2")
    assert done.returncode == 2
    assert "AGENTFLOW_REDIS_URL" in json.loads(done.stdout)["message"]


def test_credentials_over_http(served: Served) -> None:
    assert served.call("GET", "/health").json()["status"] == "ok"
    r = served.call("GET", "/api/v1/workflows")
    assert r.status_code == 401
    assert_error_shape(r.json(), "AuthenticationError")
    # A session token from the password form.
    r = served.call("POST", "/auth/token", data={"username": "alice", "password": PASSWORD})
    token = r.json()["access_token"]
    assert served.call("GET", "/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "alice"
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    assert served.call("GET", "/auth/me", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401
    now = int(time.time())
    expired = jwt.encode({"sub": "alice", "role": "editor", "iss": "agentflow", "iat": now - 100, "exp": now - 1},
                         served.srv.env["JWT_SECRET"], algorithm="HS256")
    r = served.call("GET", "/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["message"]
    r = served.call("POST", "/auth/token", data={"username": "alice", "password": "not the password"})
    assert r.status_code == 401
    assert_error_shape(r.json(), "AuthenticationError")
    # An API key from the command line, shown once; revoked from the command line.
    made = cli(served.srv.env, "tokens", "create", "ci-bot", "--role", "editor")
    key = made.stdout.strip()
    assert made.returncode == 0 and key.startswith("af_") and "\n" not in key
    assert served.call("GET", "/auth/me", headers={"Authorization": f"Bearer {key}"}).json()["kind"] == "api_key"
    listed = json.loads(cli(served.srv.env, "tokens", "list").stdout)
    bot = next(t for t in listed if t["name"] == "ci-bot")
    assert bot["last_used_at"] and key not in json.dumps(listed)
    assert cli(served.srv.env, "tokens", "revoke", "ci-bot").returncode == 0
    r = served.call("GET", "/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    # Roles: a viewer reads, but neither saves nor runs.
    doc = triage_doc()
    r = served.call("PUT", "/api/v1/workflows/triage-demo", json={"document": doc}, headers=served.h("viewer"))
    assert r.status_code == 403
    assert_error_shape(r.json(), "PermissionDenied")
    r = served.call("POST", "/api/v1/runs", json={"document": doc, "input": "hi"}, headers=served.h("viewer"))
    assert r.status_code == 403


def test_workflow_life_cycle_over_http(served: Served) -> None:
    ed = served.h("editor")
    doc = triage_doc()
    doc["id"] = "life"
    r = served.call("PUT", "/api/v1/workflows/life", json={"document": doc, "base_version": 0}, headers=ed)
    assert r.status_code == 201 and r.json()["version"] == 1
    doc["name"] = "second"
    assert served.call("PUT", "/api/v1/workflows/life", json={"document": doc, "base_version": 1},
                       headers=ed).json()["version"] == 2
    doc["name"] = "stale"
    r = served.call("PUT", "/api/v1/workflows/life", json={"document": doc, "base_version": 1}, headers=ed)
    assert r.status_code == 409 and r.json()["details"]["latest_version"] == 2
    versions = served.call("GET", "/api/v1/workflows/life/versions", headers=ed).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert served.call("GET", "/api/v1/workflows/life", headers=ed).json()["document"]["name"] == "second"
    # Run, history.
    r = served.call("POST", "/api/v1/workflows/life/runs", json={"input": "hello"}, headers=ed)
    assert r.status_code == 200 and r.json()["text_result"] == "You asked: hello"
    run_id = r.json()["metadata"]["run_id"]
    history = served.call("GET", "/api/v1/runs", params={"workflow": "life"}, headers=ed).json()["runs"]
    assert history[0]["run_id"] == run_id and history[0]["user"] == "editor-key"
    assert history[0]["workflow_version"] == 2
    # Breakpoint and resume.
    r = served.call("POST", "/api/v1/workflows/life/runs", json={"input": "hi", "breakpoints": ["answer"]},
                    headers=ed)
    paused = r.json()["metadata"]
    assert paused["status"] == "interrupted" and paused["paused_before"] == "answer"
    r = served.call("POST", f"/api/v1/runs/{paused['run_id']}/resume",
                    json={"state_patch": {"user_input": "edited"}}, headers=ed)
    assert r.json()["metadata"]["status"] == "succeeded" and r.json()["text_result"] == "You asked: edited"
    assert served.store.get_run(paused["run_id"])["status"] == "succeeded"


def _events(
    served: Served, body: dict[str, Any], stop_after: str | None = None, out: list[tuple[float, dict]] | None = None
) -> list[tuple[float, dict]]:
    """The run's events as they arrive: ``[(arrival time, event)]`` (appended to ``out`` live)."""
    out = [] if out is None else out
    with served.http.stream("POST", "/api/v1/runs", json=body,
                            headers=served.h("editor", Accept="text/event-stream")) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["type"] == kind
                out.append((time.monotonic(), event))
                if stop_after and kind == stop_after:
                    break
    return out


def test_events_arrive_as_they_happen_in_order_ending_with_run_end(served: Served) -> None:
    events = _events(served, {"document": slow_chain(latency_ms=250, steps=3), "input": "go"})
    kinds = [e["type"] for _, e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert [e["node"] for _, e in events if e["type"] == "node_end"] == ["input", "s1", "s2", "s3"]
    assert kinds.index("node_end") < kinds.index("token")
    starts = {e["node"]: t for t, e in events if e["type"] == "node_start"}
    assert starts["s3"] - events[0][0] > 0.4  # streamed live, not gathered at the end
    assert events[-1][1]["data"]["metadata"]["status"] == "succeeded"


def test_a_client_that_hangs_up_does_not_lose_the_run(served: Served) -> None:
    events = _events(served, {"document": slow_chain(latency_ms=300, steps=3), "input": "bye"}, stop_after="run_start")
    run_id = events[0][1]["data"]["run_id"]
    assert served.store.get_run(run_id)["status"] == "running"
    deadline = time.monotonic() + 20
    while served.store.get_run(run_id)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    record = served.store.get_run(run_id)
    assert record["status"] == "succeeded"
    assert [e["node"] for e in record["trace"]] == ["input", "s1", "s2", "s3"]
    assert record["user"] == "editor-key"


def test_cancel_a_streamed_run(served: Served) -> None:
    body = {"document": slow_chain("cancel-me", latency_ms=400, steps=5), "input": "go"}
    got: list[tuple[float, dict]] = []
    reader = threading.Thread(target=_events, args=(served, body), kwargs={"out": got})
    reader.start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    run_id = got[0][1]["data"]["run_id"]
    r = served.call("POST", f"/api/v1/runs/{run_id}/cancel", headers=served.h("editor"))
    assert r.status_code == 202 and r.json()["status"] == "cancelling"
    reader.join(20)
    end = got[-1][1]
    assert end["type"] == "run_end" and end["data"]["metadata"]["status"] == "cancelled"
    assert len(end["data"]["metadata"]["nodes_executed"]) < 6
    assert served.store.get_run(run_id)["status"] == "cancelled"


def test_a_failed_run_answers_the_error_shape_with_run_id_and_trace(served: Served) -> None:
    r = served.call("POST", "/api/v1/runs", json={"document": failing_doc(), "input": "x"},
                    headers=served.h("editor"))
    assert r.status_code == 422
    body = r.json()
    assert_error_shape(body, "ExecutionError")
    assert body["details"]["run_id"] and [e["node"] for e in body["details"]["trace"]] == ["input", "ok", "broken"]
    assert served.store.get_run(body["details"]["run_id"])["status"] == "failed"


def test_http_errors_in_the_shape(served: Served) -> None:
    ed = served.h("editor")
    r = served.call("GET", "/api/v1/no-such-route", headers=ed)
    assert r.status_code == 404
    assert_error_shape(r.json(), "NotFoundError")
    r = served.call("DELETE", "/api/v1/runs", headers=ed)
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    assert_error_shape(r.json(), "MethodNotAllowed")
    r = served.call("POST", "/api/v1/runs", content=b"x" * (3 * 1024 * 1024),
                    headers={**ed, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert_error_shape(r.json(), "PayloadTooLarge")
    r = served.call("POST", "/api/v1/runs", content=b'{"document": {', headers={**ed, "Content-Type": "application/json"})
    assert r.status_code == 422
    assert_error_shape(r.json(), "ValidationError")
    # The server still serves after all of that.
    assert served.call("GET", "/health").status_code == 200


def test_the_openai_sdk_calls_workflows_as_models(served: Served) -> None:
    doc = triage_doc()
    doc["id"] = "assistant"
    served.call("PUT", "/api/v1/workflows/assistant", json={"document": doc}, headers=served.h("editor"))
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.keys["editor"], max_retries=0)
    assert "assistant" in [m.id for m in client.models.list()]
    answer = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi there"}])
    assert answer.choices[0].message.content == "You asked: hi there"
    assert answer.usage.total_tokens > 0 and answer.usage.completion_tokens > 0
    text, usage = "", None
    for chunk in client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "a b c"}],
                                                stream=True, stream_options={"include_usage": True}):
        usage = chunk.usage or usage
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "You asked: a b c" and usage.total_tokens > 0
    viewer = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.keys["viewer"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        viewer.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="af_wrong", max_retries=0).models.list()


def test_a_secret_value_is_in_no_answer_log_line_or_file(served: Served) -> None:
    value = "sv-4f9e1c7a2b8d6e03-top-secret-value"
    ed = served.h("editor")
    with OpenAICompatServer(api_key=value) as provider:
        r = served.call("PUT", "/api/v1/secrets/provider-key", json={"value": value}, headers=ed)
        assert r.status_code == 200
        served.call("PUT", "/api/v1/secrets/provider-key", json={"value": value, "oops": value}, headers=ed)
        served.call("PUT", "/api/v1/secrets/provider-key", json={"value": [value]}, headers=ed)
        source = {"kind": "llm", "provider": "openai",
                  "config": {"model": "gpt-4o-mini", "base_url": provider.base_url, "api_key_secret": "provider-key",
                             "max_retries": 0}}
        assert served.call("PUT", "/api/v1/sources/vendor", json=source, headers=ed).status_code == 200
        assert served.call("POST", "/api/v1/sources/vendor/check", headers=ed).json()["ok"] is True
        doc = {"id": "uses-secret", "nodes": [
            {"id": "input", "type": "input"},
            {"id": "ask", "type": "llm", "source": "vendor", "config": {"prompt": "{user_input}"}}],
            "edges": [{"from": "input", "to": "ask"}]}
        r = served.call("POST", "/api/v1/runs", json={"document": doc, "input": "which key?"}, headers=ed)
        assert r.status_code == 200 and r.json()["text_result"] == "echo: which key?"
        # The key reached the provider, as the provider's own credential ...
        assert provider.requests_to("/v1/chat/completions")[-1].headers["authorization"] == f"Bearer {value}"
        run_id = r.json()["metadata"]["run_id"]
        for path in ("/api/v1/secrets", "/api/v1/sources", "/api/v1/sources/vendor", "/api/v1/runs",
                     f"/api/v1/runs/{run_id}", "/openapi.json"):
            served.call("GET", path, headers=ed)
    time.sleep(0.5)  # the log writer flushes every 0.2 s
    # ... and nowhere else: no answer (bodies and headers), no line the server wrote, no file.
    assert len(served.seen) > 10
    assert not [s for s in served.seen if value in s]
    assert value not in served.srv.output()
    for path in served.home.rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), path
