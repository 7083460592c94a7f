"""A stored secret's value never appears in anything any page renders."""

from __future__ import annotations

import json

from tests.ui.conftest import PAGES, no_exception, rendered_blobs, texts, wait_for_run

SECRET = "zq-Sup3rS3cret-Value-0042"


def _check(at, where: str) -> None:
    no_exception(at)
    needle = SECRET.encode()
    for blob in rendered_blobs(at):
        assert needle not in blob, f"the secret's value was rendered on {where}"
    assert SECRET not in texts(at)


def test_a_stored_secret_never_appears_on_any_page(app, store):
    at = app.run()  # seeds the demo workspace
    store.set_secret("DEMO_KEY", SECRET)
    # Sources that use it: an HTTP API (header), an OpenAI-compatible model, a database.
    store.put_source(
        {
            "id": "vault-api",
            "kind": "api",
            "provider": "http",
            "config": {
                "base_url": "http://127.0.0.1:9",
                "max_retries": 0,
                "headers": {"Authorization": {"secret": "DEMO_KEY", "prefix": "Bearer "}},
            },
        }
    )
    store.put_source(
        {
            "id": "vault-llm",
            "kind": "llm",
            "provider": "openai",
            "config": {
                "model": "m",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key_secret": "DEMO_KEY",
                "max_retries": 0,
                "timeout_s": 2,
            },
        }
    )
    store.put_source(
        {
            "id": "vault-db",
            "kind": "db",
            "provider": "postgres",
            "config": {"dsn_secret": "DEMO_KEY", "connect_timeout_s": 1},
        }
    )
    doc = {
        "id": "uses-vault",
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "ask", "type": "llm", "source": "vault-llm", "timeout_s": 3},
        ],
        "edges": [{"from": "input", "to": "ask"}],
    }
    store.save_workflow(doc, author="ann")

    _check(at.run(), "Home")
    for name, path in PAGES.items():
        at.switch_page(path).run()
        _check(at, name)

    # The Sources page with each source opened, edited and tested (which resolves the secret).
    at.switch_page(PAGES["Sources"]).run()
    for source in ("vault-api", "vault-llm", "vault-db"):
        at.selectbox(key="src_selected").select(source).run()
        at.button(key="src_test").click().run()
        _check(at, f"Sources, testing {source}")
        at.button(key="src_edit").click().run()
        _check(at, f"Sources, editing {source}")

    # A run that calls the source, its history, its graph.
    at.session_state["focus_workflow"] = "uses-vault"
    at.switch_page(PAGES["Run"]).run()
    at.button(key="run_go").click().run()
    view = wait_for_run(at)
    assert view.status == "failed"
    _check(at, "Run")
    assert SECRET not in json.dumps(view.final, default=str)
    for name in ("Runs", "Graph", "Editor"):
        at.switch_page(PAGES[name]).run()
        _check(at, name)
