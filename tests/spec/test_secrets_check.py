"""Inline secrets in a document: secret-named keys, headers, credentials in URLs, key shapes."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import check_workflow
from agentflow.spec.secrets_check import find_inline_secrets

KEY = "sk-abcdefghijklmnopqrstuvwxyz123456"


def found(doc: dict[str, Any]) -> dict[str, str]:
    return dict(find_inline_secrets(doc))


@pytest.mark.parametrize(
    "key",
    ["api_key", "API-KEY", "apikey", "password", "passwd", "pwd", "secret", "client_secret", "token",
     "access_token", "refresh-token", "auth_token", "private_key", "dsn", "connection_string"],
)
def test_secret_named_keys_with_literal_values(key: str) -> None:
    (message,) = found({"config": {key: "value"}}).values()
    base = key.lower().replace("-", "_")
    assert message == (
        f"a literal {key} is not allowed in a workflow; store it as a secret (`python -m agentflow secrets set NAME`, "
        f'then "{base}_secret": "NAME") or name an environment variable ("{base}_env": "VAR")'
    )


def test_references_empty_values_and_other_keys_are_fine() -> None:
    doc = {
        "config": {
            "api_key_env": "OPENAI_API_KEY",
            "api_key_secret": "openai",
            "password": "",
            "token_count": "12",
            "my_token": "abc",
            "headers": {"Authorization": {"secret": "api"}, "X-Api-Key": {"env": "KEY"}, "Accept": "text/plain"},
            "api_key": None,
        }
    }
    assert found(doc) == {}


def test_header_references_are_not_literals() -> None:
    headers = {"Authorization": {"secret": "svc-token", "prefix": "Bearer "}, "X-Api-Key": {"env": "KEY"}}
    assert found({"config": {"headers": headers}}) == {}
    # the reference's prefix is still checked, and {"secret": ...} anywhere else is a literal
    headers = {"Authorization": {"env": "T", "prefix": f"Bearer {KEY}"}}
    assert set(found({"config": {"headers": headers}})) == {"config.headers.Authorization.prefix"}
    assert set(found({"config": {"auth": {"secret": "value"}}})) == {"config.auth.secret"}
    assert set(found({"config": {"headers": {"A": {"secret": "v", "other": "x"}}}})) == {"config.headers.A.secret"}


def test_header_references_pass_validation_of_an_http_source() -> None:
    doc = {
        "id": "w",
        "sources": [{"id": "h", "kind": "api", "provider": "http", "config": {
            "base_url": "https://api.example.com",
            "headers": {"Authorization": {"secret": "svc-token", "prefix": "Bearer "}, "X-Key": {"env": "KEY"}},
        }}],
        "nodes": [{"id": "input", "type": "input"}, {"id": "call", "type": "api", "source": "h"}],
        "edges": [{"from": "input", "to": "call"}],
    }
    assert check_workflow(doc).errors == []


def test_secret_headers_only_inside_headers() -> None:
    doc = {
        "a": {"headers": {"Authorization": "Bearer abc", "cookie": "s=1", "X-Auth-Token": "t", "Accept": "x"}},
        "b": {"Headers": {"Proxy-Authorization": "Basic abc", "api-key": "k"}},
        "c": {"Authorization": "not in a header block", "headers": {"nested": {"Authorization": "deeper"}}},
    }
    paths = found(doc)
    assert set(paths) == {
        "a.headers.Authorization", "a.headers.cookie", "a.headers.X-Auth-Token",
        "b.Headers.Proxy-Authorization", "b.Headers.api-key",
    }
    assert paths["a.headers.Authorization"] == (
        'header "Authorization" holds a literal value; write {"env": "VAR"} or {"secret": "NAME"} instead '
        "(store it with `python -m agentflow secrets set NAME`)"
    )
    # api-key is also a secret-named key: that message wins
    assert paths["b.Headers.api-key"].startswith("a literal api-key is not allowed")


@pytest.mark.parametrize(
    "value",
    ["postgresql://bob:hunter2@db/x", "https://user:pa55@example.com/path", "host=db user=bob password=hunter2",
     "password = hunter2 host=db"],
)
def test_credentials_in_urls_and_dsns(value: str) -> None:
    assert found({"config": {"url": value}}) == {
        "config.url": 'contains a password; keep the connection string out of the document: use "dsn_env" '
        '(an environment variable) or "dsn_secret" (a stored secret)'
    }


@pytest.mark.parametrize(
    "value",
    ["https://example.com/a:b@c", "postgresql://bob@db/x", "mypassword=x", "http://host:8080/path"],
)
def test_urls_without_passwords_are_fine(value: str) -> None:
    assert found({"config": {"url": value}}) == {}


@pytest.mark.parametrize("value", [KEY, f"use {KEY} here", "sk-proj-abcdefghijklmnopqrstuvwx", "rk-live-ABCDEFGHIJ0123456789xyz"])
def test_strings_shaped_like_keys(value: str) -> None:
    (message,) = found({"nodes": [{"config": {"system": value}}]}).values()
    assert message.startswith("looks like an API key; keys must not be written into a workflow: store it as a secret")
    assert '"api_key_secret"' in message


@pytest.mark.parametrize("value", ["sk-short", "task-abcdefghijklmnopqrstuvwxyz", "ask-abcdefghijklmnopqrstuvwxyz"])
def test_short_or_embedded_look_alikes_are_fine(value: str) -> None:
    assert found({"x": value}) == {}


def test_paths_through_lists_and_odd_keys() -> None:
    doc = {"nodes": [{"config": {"tags": ["ok", KEY]}}, {"config": {"a b": {"token": "t"}}}], 7: {"password": "p"}}
    assert set(found(doc)) == {"nodes[0].config.tags[1]", 'nodes[1].config["a b"].token', '["7"].password'}


def test_report_labels_the_item_and_drops_other_errors_at_the_path() -> None:
    doc = {
        "id": "w",
        "token": "top-level",
        "sources": [{"id": "gpt", "kind": "llm", "provider": "echo", "config": {"api_key": KEY}}],
        "queues": [{"id": "q", "description": "postgres://u:p@h/db"}],
        "nodes": [{"id": "input", "type": "input", "config": {"password": "p"}}, {"type": "llm", "description": KEY}],
        "edges": [],
    }
    errors = {e["path"]: e["message"] for e in check_workflow(doc).errors}
    assert errors["token"].startswith("a literal token is not allowed")  # no item to name
    assert errors["sources[0].config.api_key"].startswith('source "gpt": a literal api_key')
    assert errors["queues[0].description"].startswith('queue "q": contains a password')
    assert errors["nodes[0].config.password"].startswith('node "input": a literal password')
    assert errors["nodes[1].description"].startswith("nodes[1]: looks like an API key")
    # the secret's path gets no second error such as "unknown key"
    assert sum(1 for e in check_workflow(doc).errors if e["path"] == "token") == 1
    assert all(KEY not in e["message"] for e in check_workflow(doc).errors)


def test_report_label_when_an_item_is_not_an_object_or_the_list_is_not_a_list() -> None:
    doc = {"id": "w", "nodes": [[KEY]], "edges": [], "queues": {"a q": {"token": "t"}}}
    errors = {e["path"]: e["message"] for e in check_workflow(doc).errors}
    assert errors["nodes[0][0]"].startswith("looks like an API key")
    assert errors['queues["a q"].token'].startswith("a literal token")
