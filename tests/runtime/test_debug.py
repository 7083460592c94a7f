"""Step-by-step inspection on both checkpointer backends: pause, edit, resume, fork, restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow import (
    ExecutionError,
    NotFoundError,
    ValidationError,
    arun_workflow,
    cancel_run,
    checkpoint_state,
    fork_run,
    list_checkpoints,
    resume_run,
    run_workflow,
    stream_resume,
    stream_workflow,
)
from agentflow.store import Store

ROOT = Path(__file__).resolve().parents[2]
FANOUT = ROOT / "examples" / "fanout.json"
TRIAGE = ROOT / "examples" / "triage.json"


def test_breakpoint_pauses_before_the_node_with_its_state(store: Store) -> None:
    state = run_workflow(FANOUT, "foxes", breakpoints=["draft"], store=store)
    meta = state["metadata"]
    assert meta["status"] == "interrupted" and meta["paused_before"] == "draft" and meta["next"] == ["draft"]
    assert state["outline"] == "Outline about foxes" and state["keywords"] == "keywords: foxes"
    assert "draft" not in state or state["draft"] is None
    assert "draft" not in meta["nodes_executed"] and "report" not in meta["nodes_executed"]
    pause = meta["trace"][-1]
    assert pause["type"] == "pause" and pause["node"] == "draft" and pause["status"] == "interrupted"
    assert store.get_run(meta["run_id"])["status"] == "interrupted"


def test_edited_state_reaches_the_next_nodes_and_the_trace_shows_the_pause(store: Store) -> None:
    paused = run_workflow(FANOUT, "foxes", breakpoints=["draft"], store=store)
    run_id = paused["metadata"]["run_id"]
    final = resume_run(run_id, {"outline": "EDITED OUTLINE"}, store=store)
    meta = final["metadata"]
    assert meta["status"] == "succeeded" and meta["run_id"] == run_id
    assert final["draft"] == "Draft from: EDITED OUTLINE"
    assert final["final_output"]["draft"] == "Draft from: EDITED OUTLINE"
    kinds = [(e["node"], e["type"], e["status"]) for e in meta["trace"]]
    pause_at = kinds.index(("draft", "pause", "resumed"))
    assert kinds[pause_at + 1][0] == "draft" and kinds[-1][0] == "report"
    assert meta["trace"][pause_at]["changed_keys"] == ["outline"]
    assert meta["nodes_executed"].count("report") == 1
    stored = store.get_run(run_id)
    assert stored["status"] == "succeeded" and stored["final_state"]["draft"] == "Draft from: EDITED OUTLINE"


def test_break_after_a_node(store: Store) -> None:
    state = run_workflow(TRIAGE, "hello", break_after=["router"], store=store)
    assert state["metadata"]["status"] == "interrupted" and state["intent"] == "text"
    final = resume_run(state["metadata"]["run_id"], {"intent": "image"}, store=store)
    assert final["metadata"]["nodes_executed"][-2:] == ["draw", "agg"]  # the edit changed the route


def test_step_mode_walks_node_by_node(store: Store) -> None:
    state = run_workflow(TRIAGE, "tell me", step=True, store=store)
    seen = [state["metadata"]["paused_before"]]
    run_id = state["metadata"]["run_id"]
    while state["metadata"]["status"] == "interrupted":
        state = resume_run(run_id, store=store)
        if state["metadata"]["status"] == "interrupted":
            seen.append(state["metadata"]["paused_before"])
    assert seen == ["input", "router", "answer", "agg"]
    assert state["metadata"]["status"] == "succeeded" and state["text_result"] == "You asked: tell me"
    pauses = [e for e in state["metadata"]["trace"] if e["type"] == "pause"]
    assert len(pauses) == 4 and all(p["status"] == "resumed" for p in pauses)


def test_fork_from_an_earlier_checkpoint_keeps_the_original(store: Store) -> None:
    done = run_workflow(TRIAGE, "first question", breakpoints=["agg"], store=store)
    run_id = done["metadata"]["run_id"]
    done = resume_run(run_id, store=store)
    checkpoints = list_checkpoints(run_id, store=store)
    assert [c["source"] for c in checkpoints][:2] == ["input", "loop"]
    before_answer = next(c for c in checkpoints if c["next"] == ["answer"])
    assert "intent" in before_answer["changed_keys"] and before_answer["node"] == "router"
    forked = fork_run(run_id, before_answer["checkpoint_id"], {"user_input": "second question"}, store=store)
    fmeta = forked["metadata"]
    assert fmeta["run_id"] != run_id and fmeta["forked_from"] == {"run_id": run_id, "checkpoint_id": before_answer["checkpoint_id"]}
    assert forked["text_result"] == "You asked: second question"
    inherited = [e["node"] for e in fmeta["trace"] if e.get("inherited")]
    assert inherited == ["input", "router"]
    original = store.get_run(run_id)
    assert original["status"] == "succeeded" and original["final_state"]["text_result"] == "You asked: first question"
    assert len(list_checkpoints(run_id, store=store)) == len(checkpoints)
    assert checkpoint_state(run_id, before_answer["checkpoint_id"], store=store)["intent"] == "text"


def test_stream_pauses_with_an_interrupt_event_and_resumes(store: Store) -> None:
    events = list(stream_workflow(FANOUT, "owls", breakpoints=["report"], store=store))
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["interrupt", "run_end"]
    assert events[-2]["data"]["paused_before"] == "report" and events[-2]["data"]["state"]["draft"]
    run_id = events[0]["run_id"]
    resumed = list(stream_resume(run_id, store=store))
    assert [e["node"] for e in resumed if e["type"] == "node_start"] == ["report"]
    assert resumed[-1]["data"]["metadata"]["status"] == "succeeded"


async def test_async_run_pauses_and_resumes(store: Store) -> None:
    state = await arun_workflow(FANOUT, "cats", breakpoints=["draft"], store=store)
    assert state["metadata"]["status"] == "interrupted"
    final = resume_run(state["metadata"]["run_id"], store=store)
    assert final["final_output"]["draft"] == "Draft from: Outline about cats"


def test_cancel_a_paused_run(store: Store) -> None:
    state = run_workflow(FANOUT, "x", breakpoints=["draft"], store=store)
    run_id = state["metadata"]["run_id"]
    assert cancel_run(run_id, store=store) is True
    assert store.get_run(run_id)["status"] == "cancelled"
    with pytest.raises(ExecutionError, match="is cancelled, not paused"):
        resume_run(run_id, store=store)


def test_wrong_ids_are_clear_errors(store: Store) -> None:
    with pytest.raises(ValidationError, match='no node "drfat" in workflow "research-fanout" \\(did you mean "draft"\\?\\)'):
        run_workflow(FANOUT, "x", breakpoints=["drfat"], store=store)
    with pytest.raises(NotFoundError):
        resume_run("no-such-run", store=store)
    plain = run_workflow(FANOUT, "x")  # not debugged: never checkpointed
    with pytest.raises(NotFoundError, match="no checkpoints"):
        list_checkpoints(plain["metadata"]["run_id"], store=store)
    done = run_workflow(FANOUT, "x", breakpoints=["draft"], store=store)
    resume_run(done["metadata"]["run_id"], store=store)
    with pytest.raises(ExecutionError, match="is succeeded, not paused"):
        resume_run(done["metadata"]["run_id"], store=store)
    with pytest.raises(NotFoundError, match="has no checkpoint"):
        fork_run(done["metadata"]["run_id"], "nope", store=store)


def test_a_paused_run_resumes_in_another_process(store_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "AGENTFLOW_DB_URL": store_url, "AGENTFLOW_HOME": str(tmp_path / "home")}
    start = (
        "import json, agentflow; "
        f"s = agentflow.run_workflow({str(FANOUT)!r}, 'restart', breakpoints=['draft']); "
        "print(json.dumps(s['metadata']))"
    )
    first = subprocess.run([sys.executable, "-c", start], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    paused = json.loads(first.stdout)
    assert paused["status"] == "interrupted"
    again = (
        "import json, agentflow; "
        f"s = agentflow.resume_run({paused['run_id']!r}, {{'outline': 'from process two'}}); "
        "print(json.dumps({'draft': s['draft'], 'status': s['metadata']['status']}))"
    )
    second = subprocess.run([sys.executable, "-c", again], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"draft": "Draft from: from process two", "status": "succeeded"}


def test_fork_without_an_edit_runs_the_following_nodes_again(store: Store) -> None:
    first = run_workflow(TRIAGE, "again", breakpoints=["agg"], store=store)
    run_id = first["metadata"]["run_id"]
    resume_run(run_id, store=store)
    before_answer = next(c for c in list_checkpoints(run_id, store=store) if c["next"] == ["answer"])
    forked = fork_run(run_id, before_answer["checkpoint_id"], store=store, breakpoints=[])
    fresh = [e["node"] for e in forked["metadata"]["trace"] if not e.get("inherited") and e["type"] != "pause"]
    assert fresh == ["answer", "agg"]
    assert forked["text_result"] == "You asked: again"
    state = checkpoint_state(run_id, before_answer["checkpoint_id"], store=store)
    assert not any(k.startswith("__") or ":" in k for k in state)
