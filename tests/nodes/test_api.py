"""The api node, against a test-only provider that answers with the request it received."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from agentflow import ExecutionError, arun_workflow, check_workflow, run_workflow
from agentflow.sources.base import APIProvider, APIRequest, APIResponse, ProviderConfig
from agentflow.sources.registry import providers
from tests.nodes.helpers import at, chain, entry, impl_of


class EchoAPIConfig(ProviderConfig):
    status: int = 200


class EchoAPI(APIProvider):
    """Answers every request with the request itself as the body (no network)."""

    name = f"fake-{uuid.uuid4().hex[:8]}"
    Config = EchoAPIConfig
    networked = False
    config: EchoAPIConfig

    def _check(self) -> str:
        return "fake api"

    def _answer(self, request: APIRequest, mode: str) -> APIResponse:
        return APIResponse(self.config.status, {"x-mode": mode}, dataclasses.asdict(request))

    def request(self, request: APIRequest) -> APIResponse:
        return self._answer(request, "sync")

    async def arequest(self, request: APIRequest) -> APIResponse:
        return self._answer(request, "async")


providers.register(EchoAPI)

FAKE = {"id": "svc", "kind": "api", "provider": EchoAPI.name}


def api(**config: Any) -> dict[str, Any]:
    return {"id": "call", "type": "api", "source": "svc", "config": config}


FULL = {
    "method": "POST",
    "path": "/items/{item.id}/notes",
    "params": {"q": "{user_input}", "limit": "{limit}", "fixed": 3, "tags": ["a", "{tag}"]},
    "json": {"text": "Note: {user_input}", "count": "{limit}", "nested": [{"id": "{item.id}"}, True, None]},
    "headers": {"X-Request": "req-{item.id}", "Accept": "application/json"},
}
STATE = {"user_input": "a fox", "limit": 5, "tag": "wild", "item": {"id": 42}}
EXPECTED = {
    "method": "POST",
    "path": "/items/42/notes",
    "params": {"q": "a fox", "limit": 5, "fixed": 3, "tags": ["a", "wild"]},
    "json": {"text": "Note: a fox", "count": 5, "nested": [{"id": 42}, True, None]},
    "headers": {"X-Request": "req-42", "Accept": "application/json"},
    "timeout_s": None,
}


def test_request_rendered_from_state() -> None:
    state = run_workflow(chain(api(**FULL), sources=[FAKE]), STATE)
    assert state["api_result"] == {"status": 200, "headers": {"x-mode": "sync"}, "body": EXPECTED}
    assert entry(state, "call")["output"] == {"status": 200}


async def test_async_request_rendered_from_state() -> None:
    state = await arun_workflow(chain(api(**FULL), sources=[FAKE]), STATE)
    assert state["api_result"] == {"status": 200, "headers": {"x-mode": "async"}, "body": EXPECTED}


def test_defaults_get_with_no_body_and_output_key() -> None:
    source = {**FAKE, "config": {"status": 204}}
    state = run_workflow(chain(api(output_key="reply"), sources=[source]), "x")
    assert state["reply"] == {
        "status": 204,
        "headers": {"x-mode": "sync"},
        "body": {"method": "GET", "path": "", "params": {}, "json": None, "headers": {}, "timeout_s": None},
    }
    assert state["api_result"] is None
    assert entry(state, "call")["output"] == {"status": 204}


def test_node_timeout_reaches_the_provider() -> None:
    node = {**api(path="/x"), "timeout_s": 2}
    body = run_workflow(chain(node, sources=[FAKE]), "x")["api_result"]["body"]
    assert 0 < body["timeout_s"] <= 2


def test_header_values_render_as_text() -> None:
    state = run_workflow(chain(api(headers={"X-Count": "{limit}"}), sources=[FAKE]), {"limit": 5})
    assert state["api_result"]["body"]["headers"] == {"X-Count": "5"}


def test_missing_key_names_the_field() -> None:
    doc = chain(api(json={"a": ["{nope}"]}), sources=[FAKE])
    with pytest.raises(ExecutionError, match=r'node "call": template key "nope" in config.json has no value'):
        run_workflow(doc, "x")
    doc = chain(api(headers={"X-A": "{gone}"}), sources=[FAKE])
    with pytest.raises(ExecutionError, match=r'template key "gone" in config.headers.X-A has no value'):
        run_workflow(doc, "x")


# --- validation hooks -------------------------------------------------------------------------


def test_config_errors() -> None:
    errors = check_workflow(chain(api(method="FETCH"), sources=[FAKE])).errors
    assert at(errors, "nodes[1].config.method") == [
        "node \"call\": must be one of 'GET', 'POST', 'PUT', 'PATCH', 'DELETE' or 'HEAD'; got \"FETCH\" (did you mean \"PATCH\"?)"
    ]
    for bad in ({"params": {"q": ["{bad"]}}, {"json": {"a": "x}"}}, {"path": "{a b}"}, {"headers": {"H": "{"}}):
        errors = check_workflow(chain(api(**bad), sources=[FAKE])).errors
        (syntax,) = at(errors, "nodes[1].config")
        assert "unmatched" in syntax or "is not a state key" in syntax, (bad, syntax)
    errors = check_workflow(chain(api(headers={"X-A": 5}), sources=[FAKE])).errors
    assert at(errors, "nodes[1].config.headers.X-A") == ['node "call": must be a string; got 5']


def test_needs_an_api_source() -> None:
    doc = chain(api())
    doc["nodes"][1]["source"] = "e"
    assert at(check_workflow(doc).errors, "nodes[1].source") == [
        'node "call": an api node needs a source of kind "api", but "e" is of kind "llm"'
    ]
    impl = impl_of(api())
    assert impl.required_source_kind(impl.config) == "api"


def test_templates_and_keys() -> None:
    impl = impl_of(api(**FULL))
    found = [(path, template.keys) for path, template in impl.templates()]
    assert found == [
        ("config.path", ["item.id"]),
        ("config.params", ["user_input"]),
        ("config.params", ["limit"]),
        ("config.params", []),
        ("config.params", ["tag"]),
        ("config.json", ["user_input"]),
        ("config.json", ["limit"]),
        ("config.json", ["item.id"]),
        ("config.headers", ["item.id"]),
        ("config.headers", []),
    ]
    assert impl.written_keys() == ["api_result"]
    assert impl.read_keys() == []


def test_unknown_template_keys_warn() -> None:
    doc = chain(api(path="/u/{usr}", json={"x": "{user_input}"}), sources=[FAKE])
    report = check_workflow(doc)
    assert report.ok
    assert [w["path"] for w in report.warnings] == ["nodes[1].config.path"]
    assert report.warnings[0]["message"].startswith('node "call": template key "usr" is not written by any node before it')
