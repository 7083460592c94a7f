"""Workflow versions, restore, conflicts and drafts: the same behaviour on both backends."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest

from agentflow.errors import ConflictError, NotFoundError, ValidationError
from agentflow.store import Store, open_store


def doc(wf_id: str = "triage", **extra) -> dict:
    return {"id": wf_id, "nodes": [{"id": "input", "type": "input"}], "edges": [], **extra}


def test_versions_count_from_one_per_workflow(store: Store) -> None:
    assert store.save_workflow(doc(), author="ann", message="first") == 1
    assert store.save_workflow(doc(name="Triage"), author="bob") == 2
    assert store.save_workflow(doc("other"), author="ann") == 1

    latest = store.get_workflow("triage")
    assert latest["id"] == "triage" and latest["version"] == 2
    assert latest["document"] == doc(name="Triage")
    assert latest["author"] == "bob" and latest["message"] is None
    assert latest["created_at"].endswith("Z")
    first = store.get_workflow("triage", version=1)
    assert first["document"] == doc() and first["message"] == "first"

    versions = store.list_versions("triage")
    assert [v["version"] for v in versions] == [2, 1]
    assert set(versions[0]) == {"version", "message", "author", "created_at"}


def test_json_text_is_stored_as_given(store: Store) -> None:
    text = '{\n  "id": "texty",\n  "nodes": [],\n  "edges": [],\n  "name": "Kept as written"\n}'
    assert store.save_workflow(text, author=None) == 1
    assert store.get_workflow("texty")["document"]["name"] == "Kept as written"
    with pytest.raises(ValidationError, match="line 1, column"):
        store.save_workflow('{"id": ', author=None)
    with pytest.raises(ValidationError, match="JSON object"):
        store.save_workflow("[1, 2]", author=None)
    with pytest.raises(ValidationError, match='string "id"'):
        store.save_workflow({"nodes": []}, author=None)


def test_list_workflows(store: Store) -> None:
    store.save_workflow(doc("a", name="Alpha"), author="ann")
    store.save_workflow(doc("b"), author="bob")
    store.save_workflow(doc("a", name="Alpha 2"), author="cid")
    rows = store.list_workflows()
    assert [r["id"] for r in rows] == ["a", "b"]  # recently changed first
    assert rows[0] == {
        "id": "a",
        "name": "Alpha 2",
        "latest_version": 2,
        "updated_at": rows[0]["updated_at"],
        "updated_by": "cid",
    }
    assert rows[1]["name"] == "b"  # name defaults to the id
    assert [r["id"] for r in store.list_workflows(limit=1, offset=1)] == ["b"]
    with pytest.raises(ValidationError):
        store.list_workflows(limit=0)


def test_unknown_ids_and_versions(store: Store) -> None:
    with pytest.raises(NotFoundError, match='workflow "nope" not found'):
        store.get_workflow("nope")
    store.save_workflow(doc(), author=None)
    with pytest.raises(NotFoundError, match=r"no version 7 \(latest is 1\)"):
        store.get_workflow("triage", version=7)
    with pytest.raises(NotFoundError):
        store.list_versions("nope")
    with pytest.raises(NotFoundError):
        store.restore_version("triage", 5, author=None)
    with pytest.raises(NotFoundError):
        store.delete_workflow("nope")


def test_restore_makes_a_new_version_equal_to_the_old(store: Store) -> None:
    store.save_workflow(doc(name="one"), author="ann")
    store.save_workflow(doc(name="two"), author="ann")
    assert store.restore_version("triage", 1, author="bob") == 3
    restored = store.get_workflow("triage")
    assert restored["document"] == store.get_workflow("triage", 1)["document"]
    assert restored["author"] == "bob" and restored["message"] == "restored version 1"
    assert [v["version"] for v in store.list_versions("triage")] == [3, 2, 1]


def test_stale_base_is_refused_and_its_text_kept_as_a_draft(store: Store) -> None:
    store.save_workflow(doc(name="v1"), author="ann")
    store.save_workflow(doc(name="v2"), author="ann", base_version=1)
    with pytest.raises(ConflictError, match="version 2 is the latest, not 1") as info:
        store.save_workflow(doc(name="mine"), author="bob", message="my edit", base_version=1)
    details = info.value.details
    assert details["latest_version"] == 2 and details["base_version"] == 1
    assert [v["version"] for v in store.list_versions("triage")] == [2, 1]
    assert store.get_workflow("triage")["document"]["name"] == "v2"

    (draft,) = store.list_drafts("triage")
    assert draft["draft_id"] == details["draft_id"]
    assert draft["document"]["name"] == "mine"
    assert (draft["author"], draft["message"]) == ("bob", "my edit")
    assert (draft["base_version"], draft["latest_version"]) == (1, 2)

    store.delete_draft(draft["draft_id"])
    assert store.list_drafts("triage") == []
    with pytest.raises(NotFoundError):
        store.delete_draft(draft["draft_id"])


def test_base_zero_means_new_and_a_missing_workflow_conflicts(store: Store) -> None:
    assert store.save_workflow(doc("fresh"), author=None, base_version=0) == 1
    with pytest.raises(ConflictError, match="version 1 is the latest, not 0"):
        store.save_workflow(doc("fresh"), author=None, base_version=0)
    with pytest.raises(ConflictError, match="does not exist") as info:
        store.save_workflow(doc("ghost"), author=None, base_version=3)
    assert info.value.details["latest_version"] is None
    with pytest.raises(NotFoundError):
        store.get_workflow("ghost")  # the refused save left no placeholder behind
    assert [d["document"]["id"] for d in store.list_drafts("ghost")] == ["ghost"]
    with pytest.raises(ValidationError):
        store.save_workflow(doc(), author=None, base_version=-1)


def test_delete_removes_versions_and_drafts(store: Store) -> None:
    store.save_workflow(doc(), author=None)
    with pytest.raises(ConflictError):
        store.save_workflow(doc(), author=None, base_version=0)
    store.delete_workflow("triage")
    with pytest.raises(NotFoundError):
        store.get_workflow("triage")
    assert store.list_drafts("triage") == []
    assert store.list_workflows() == []
    assert store.save_workflow(doc(), author=None) == 1  # a new history


@pytest.mark.parametrize("round_", range(5))
def test_two_threads_saving_on_one_base_exactly_one_wins(store: Store, round_: int) -> None:
    store.save_workflow(doc(name="base"), author="ann")
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def save(who: str) -> None:
        barrier.wait()
        try:
            results[who] = store.save_workflow(doc(name=who), author=who, base_version=1)
        except ConflictError as exc:
            results[who] = exc

    threads = [threading.Thread(target=save, args=(w,)) for w in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    winners = [w for w, r in results.items() if r == 2]
    losers = [w for w, r in results.items() if isinstance(r, ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert results[losers[0]].details["latest_version"] == 2
    assert [v["version"] for v in store.list_versions("triage")] == [2, 1]
    # both texts kept: the winner's as version 2, the loser's as a draft
    assert store.get_workflow("triage")["document"]["name"] == winners[0]
    assert [d["document"]["name"] for d in store.list_drafts("triage")] == [losers[0]]


def test_concurrent_saves_without_base_all_get_numbers(store: Store) -> None:
    errors: list[BaseException] = []

    def save(i: int) -> None:
        try:
            for j in range(5):
                store.save_workflow(doc(name=f"{i}-{j}"), author=str(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [v["version"] for v in store.list_versions("triage")] == list(range(20, 0, -1))


def _save_in_process(url: str, who: str, barrier, queue) -> None:
    store = open_store(url)
    try:
        barrier.wait(30)
        try:
            queue.put((who, store.save_workflow(doc(name=who), author=who, base_version=1)))
        except ConflictError as exc:
            queue.put((who, json.dumps(exc.details)))
    finally:
        store.close()


def test_two_processes_saving_on_one_base_exactly_one_wins(store: Store, store_url: str) -> None:
    store.save_workflow(doc(name="base"), author="ann")
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_save_in_process, args=(store_url, w, barrier, queue))
        for w in ("left", "right")
    ]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert sorted(type(r).__name__ for r in results.values()) == ["int", "str"], results
    (winner,) = [w for w, r in results.items() if r == 2]
    (loser,) = [w for w, r in results.items() if isinstance(r, str)]
    assert json.loads(results[loser])["latest_version"] == 2
    assert store.get_workflow("triage")["document"]["name"] == winner
    assert [d["document"]["name"] for d in store.list_drafts("triage")] == [loser]


def test_a_version_can_be_read_without_its_document(store: Store) -> None:
    store.save_workflow({"id": "lean", "nodes": [], "edges": []}, author="ann")
    full = store.get_workflow("lean")
    lean = store.get_workflow("lean", document=False)
    assert lean["document"] is None and full["document"]["id"] == "lean"
    assert {k: v for k, v in lean.items() if k != "document"} == {k: v for k, v in full.items() if k != "document"}
    assert store.get_workflow("lean", 1, document=False)["version"] == 1
