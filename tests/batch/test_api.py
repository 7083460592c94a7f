"""The batch routes of the HTTP API: start with JSON rows or an uploaded file, follow, read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentflow.store import default_store
from tests.batch.conftest import six_doc


@pytest.fixture
def api() -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    from agentflow.api import main
    from agentflow.api.routes import batches

    store = default_store()
    store.save_workflow(six_doc(), author="ann")
    app = main.create_app(store=store)
    if "agentflow.api.routes.batches" not in main.ROUTERS:  # until the lead lists it
        app.include_router(batches.router)
    editor = {"Authorization": f"Bearer {store.create_token('ed', 'editor')}"}
    viewer = {"Authorization": f"Bearer {store.create_token('vi', 'viewer')}"}
    with TestClient(app) as client:
        yield client, editor, viewer


def small_uploads(limit: int) -> Any:
    """An app whose upload limit (AGENTFLOW_MAX_UPLOAD_BYTES) is ``limit`` bytes."""
    from dataclasses import replace

    from agentflow.api import main
    from agentflow.api.routes import batches
    from agentflow.settings import get_settings

    app = main.create_app(store=default_store(), settings=replace(get_settings(), max_upload_bytes=limit))
    if "agentflow.api.routes.batches" not in main.ROUTERS:
        app.include_router(batches.router)
    return app


def wait_finished(client: TestClient, headers: dict[str, str], batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/batches/{batch_id}", headers=headers).json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError("the batch did not finish")


def test_rows_as_json(api) -> None:
    client, editor, viewer = api
    rows = [{"user_input": f"q{i}", "gold": f"q{i}"} for i in range(5)] + ["not an object"]
    answer = client.post("/api/v1/workflows/six/batches", headers=editor,
                         json={"rows": rows, "expected": "gold", "scorer": "json:text", "concurrency": 2})
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["total"] == 6 and started["status"] == "queued"
    status = wait_finished(client, viewer, started["batch_id"])
    assert status["status"] == "finished" and status["done"] == 5 and status["failed"] == 1
    assert status["mean_score"] == pytest.approx(5 / 6)
    results = client.get(f"/api/v1/batches/{started['batch_id']}/results", headers=viewer).json()
    assert [r["row"] for r in results] == list(range(6))
    assert results[0]["final_output"] == {"text": "q0"} and results[5]["error"]["message"].startswith("row 5")
    jsonl = client.get(f"/api/v1/batches/{started['batch_id']}/results?format=jsonl", headers=viewer)
    assert jsonl.headers["content-type"].startswith("application/x-ndjson") and len(jsonl.text.splitlines()) == 6
    csv = client.get(f"/api/v1/batches/{started['batch_id']}/results?format=csv", headers=viewer)
    assert csv.text.startswith("row,status,score")
    listed = client.get("/api/v1/batches", headers=viewer).json()
    assert listed[0]["batch_id"] == started["batch_id"] and listed[0]["workflow_version"] == 1
    cmp = client.get(f"/api/v1/batches/{started['batch_id']}/compare/{started['batch_id']}", headers=viewer)
    assert cmp.json()["summary"]["same_output"] == 6
    assert client.post(f"/api/v1/batches/{started['batch_id']}/cancel", headers=editor).status_code == 409
    resumed = client.post(f"/api/v1/batches/{started['batch_id']}/resume", headers=editor)
    assert resumed.status_code == 202 and resumed.json()["status"] == "finished"


def test_an_uploaded_file(api) -> None:
    client, editor, viewer = api
    data = b"question,gold\nq0,q0\nq1,q1,extra\nq2,q2\n"
    answer = client.post("/api/v1/workflows/six/batches", headers=editor,
                         files={"file": ("rows.csv", data, "text/csv")},
                         data={"column": "question", "expected": "gold", "scorer": "json:text", "version": "1"})
    assert answer.status_code == 202, answer.text
    bid = answer.json()["batch_id"]
    status = wait_finished(client, viewer, bid)
    assert (status["done"], status["failed"]) == (2, 1)
    results = client.get(f"/api/v1/batches/{bid}/results", headers=viewer).json()
    assert results[1]["error"]["message"].startswith("line 3: expected 2 fields")
    assert default_store().get_batch(bid)["dataset"] == "rows.csv"


def test_refusals(api) -> None:
    client, editor, viewer = api
    url = "/api/v1/workflows/six/batches"
    assert client.post(url, headers=viewer, json={"rows": [{}]}).status_code == 403
    assert client.post(url, json={"rows": [{}]}).status_code == 401
    missing = client.post("/api/v1/workflows/nope/batches", headers=editor, json={"rows": [{"user_input": "a"}]})
    assert missing.status_code == 404 and missing.json()["error_type"] == "NotFoundError"
    bad = client.post(url, headers=editor, json={"rows": [{"user_input": "a"}], "scorer": "fuzzy",
                                                 "expected": "user_input"})
    assert bad.status_code == 422 and "unknown scorer" in bad.json()["message"]
    extra = client.post(url, headers=editor, json={"rows": [{"user_input": "a"}], "bogus": 1})
    assert extra.status_code == 422 and extra.json()["error_type"] == "ValidationError"
    no_file = client.post(url, headers=editor, files={"other": ("x.csv", b"a\n1\n")}, data={"column": "a"})
    assert no_file.status_code == 422 and "file" in no_file.json()["message"]
    bad_int = client.post(url, headers=editor, files={"file": ("x.csv", b"a\n1\n")}, data={"concurrency": "lots"})
    assert bad_int.status_code == 422
    with TestClient(small_uploads(20)) as small:
        big = small.post(url, headers=editor, files={"file": ("x.csv", b"user_input\n" + b"a\n" * 50)})
        assert big.status_code == 413 and big.json()["error_type"] == "PayloadTooLarge"
        assert "AGENTFLOW_MAX_UPLOAD_BYTES" in big.json()["message"]
        big_json = small.post(url, headers=editor, json={"rows": [{"user_input": "a" * 50}]})
        assert big_json.status_code == 413
    celery = client.post(url, headers=editor, json={"rows": [{"user_input": "a"}], "backend": "celery"})
    assert celery.status_code == 422 and "AGENTFLOW_REDIS_URL" in celery.json()["message"]
    assert client.get("/api/v1/batches/nope", headers=viewer).status_code == 404
    assert default_store().list_batches() == []


def test_cancel_over_http(api) -> None:
    client, editor, viewer = api
    doc = six_doc(latency_ms=100, wid="slow")
    default_store().save_workflow(doc, author="ann")
    started = client.post("/api/v1/workflows/slow/batches", headers=editor,
                          json={"rows": [{"user_input": f"r{i}"} for i in range(40)], "concurrency": 1}).json()
    cancelled = client.post(f"/api/v1/batches/{started['batch_id']}/cancel", headers=editor)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    time.sleep(0.5)
    status = client.get(f"/api/v1/batches/{started['batch_id']}", headers=viewer).json()
    assert status["status"] == "cancelled" and status["done"] < 40
