"""Saved workflows over HTTP: validate, versions with the 409 conflict, read, list, delete."""

from __future__ import annotations

import copy
from typing import Any

from agentflow.store import Store
from tests.api.conftest import Client, assert_error_shape

WF = "/api/v1/workflows/triage-demo"


async def test_validate_answers_warnings_or_every_problem(client: Client, doc: dict[str, Any]) -> None:
    r = await client.post("/api/v1/validate", json=doc, headers=client.as_("viewer"))
    assert r.status_code == 200
    assert r.json() == {"valid": True, "id": "triage-demo", "warnings": []}
    bad = copy.deepcopy(doc)
    bad["nodes"][2]["source"] = "ech"
    bad["surprise"] = 1
    r = await client.post("/api/v1/validate", json=bad, headers=client.as_("viewer"))
    assert r.status_code == 422
    body = r.json()
    assert_error_shape(body, "ValidationError")
    messages = [e["message"] for e in body["details"]["errors"]]
    assert any('did you mean "echo"' in m for m in messages)
    assert {"path", "message"} <= set(body["details"]["errors"][0])
    assert len(body["details"]["errors"]) >= 2
    r = await client.post("/api/v1/validate", json=["not", "an", "object"], headers=client.as_("viewer"))
    assert r.status_code == 422
    assert r.json()["details"]["errors"][0]["message"] == "the body must be a JSON object"


async def test_life_cycle_versions_and_409_with_nothing_saved(client: Client, doc: dict[str, Any], store: Store) -> None:
    ed = client.as_("editor")
    r = await client.put(WF, json={"document": doc, "message": "first", "base_version": 0}, headers=ed)
    assert r.status_code == 201
    assert r.json() == {"id": "triage-demo", "version": 1, "warnings": []}
    v2 = copy.deepcopy(doc)
    v2["name"] = "Triage, second"
    r = await client.put(WF, json={"document": v2, "message": "second", "base_version": 1}, headers=ed)
    assert r.json()["version"] == 2
    # A save on a stale base: 409, nothing saved, the latest version named.
    stale = copy.deepcopy(doc)
    stale["name"] = "lost edit"
    r = await client.put(WF, json={"document": stale, "base_version": 1}, headers=ed)
    assert r.status_code == 409
    body = r.json()
    assert_error_shape(body, "ConflictError")
    assert body["details"]["latest_version"] == 2
    versions = (await client.get(f"{WF}/versions", headers=client.as_("viewer"))).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["message"] == "second" and versions[0]["author"] == "editor-key"
    assert (await client.get(WF, headers=ed)).json()["document"]["name"] == "Triage, second"
    assert store.list_drafts("triage-demo")[0]["document"]["name"] == "lost edit"
    # Without base_version there is no check.
    r = await client.put(WF, json={"document": stale}, headers=ed)
    assert r.json()["version"] == 3
    # Reading a version, listing.
    old = (await client.get(WF, params={"version": 1}, headers=ed)).json()
    assert old["version"] == 1 and old["message"] == "first" and old["document"]["name"] == "Triage demo"
    listed = (await client.get("/api/v1/workflows", headers=ed)).json()
    assert listed == [
        {"id": "triage-demo", "name": "lost edit", "latest_version": 3, "updated_at": listed[0]["updated_at"],
         "updated_by": "editor-key"}
    ]
    r = await client.get(WF, params={"version": 9}, headers=ed)
    assert r.status_code == 404
    assert "latest is 3" in r.json()["message"]


async def test_save_refuses_a_mismatched_id_or_an_invalid_document(client: Client, doc: dict[str, Any]) -> None:
    ed = client.as_("editor")
    r = await client.put("/api/v1/workflows/other-id", json={"document": doc}, headers=ed)
    assert r.status_code == 422
    assert r.json()["details"]["errors"][0]["path"] == "document.id"
    broken = copy.deepcopy(doc)
    broken["edges"].append({"from": "agg", "to": "nowhere"})
    r = await client.put(WF, json={"document": broken}, headers=ed)
    assert r.status_code == 422
    assert "nowhere" in r.json()["message"]
    secret = copy.deepcopy(doc)
    secret["sources"][0]["config"]["api_key"] = "sk-live-0123456789abcdefghijkl"
    r = await client.put(WF, json={"document": secret}, headers=ed)
    assert r.status_code == 422
    assert "sk-live" not in r.text
    r = await client.put(WF, json={"document": doc, "base_version": -1}, headers=ed)
    assert r.status_code == 422
    r = await client.put(WF, json={"doc": doc}, headers=ed)
    assert r.status_code == 422
    assert {e["path"] for e in r.json()["details"]["errors"]} == {"body.document", "body.doc"}
    assert (await client.get("/api/v1/workflows", headers=ed)).json() == []


async def test_delete_keeps_runs(client: Client, saved: dict[str, Any]) -> None:
    ed = client.as_("editor")
    run = (await client.post(f"{WF}/runs", json={"input": "hi"}, headers=ed)).json()
    r = await client.delete(WF, headers=ed)
    assert r.json() == {"id": "triage-demo", "deleted": True}
    assert (await client.get(WF, headers=ed)).status_code == 404
    assert (await client.get(f"{WF}/versions", headers=ed)).status_code == 404
    assert (await client.delete(WF, headers=ed)).status_code == 404
    r = await client.get(f"/api/v1/runs/{run['metadata']['run_id']}", headers=ed)
    assert r.json()["status"] == "succeeded"


async def test_list_pages_and_bad_query(client: Client, doc: dict[str, Any]) -> None:
    ed = client.as_("editor")
    for i in range(3):
        d = copy.deepcopy(doc)
        d["id"] = f"wf-{i}"
        await client.put(f"/api/v1/workflows/wf-{i}", json={"document": d}, headers=ed)
    page = (await client.get("/api/v1/workflows", params={"limit": 2}, headers=ed)).json()
    rest = (await client.get("/api/v1/workflows", params={"limit": 2, "offset": 2}, headers=ed)).json()
    assert len(page) == 2 and len(rest) == 1
    assert {w["id"] for w in page + rest} == {"wf-0", "wf-1", "wf-2"}
    r = await client.get("/api/v1/workflows", params={"limit": 0}, headers=ed)
    assert r.status_code == 422
    assert r.json()["details"]["errors"][0]["path"] == "query.limit"
    r = await client.get("/api/v1/workflows/Not_A_Slug!", headers=ed)
    assert r.status_code == 422
