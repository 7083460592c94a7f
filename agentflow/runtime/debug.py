"""Step-by-step inspection: resume a paused run, list its checkpoints, fork from one.

A run started with ``breakpoints``, ``break_after`` or ``step`` is checkpointed in the
workbench store (LangGraph's SQLite or Postgres saver, ``durability="sync"``), keyed by its
run id, and recorded in the run history when it pauses. Everything a later process needs
travels with the run: the workflow document, breakpoints, subqueue and user ride in each
checkpoint's metadata; the input and the trace so far are in the run record. So
``resume_run`` and ``fork_run`` need only ids, and a paused run survives a restart.

Plain runs are never checkpointed: debugging costs nothing until it is asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from langgraph.errors import InvalidUpdateError

from agentflow.errors import ExecutionError, NotFoundError, ValidationError
from agentflow.runtime.context import iso, new_run_id, utc_now
from agentflow.runtime.executor import Breaks, Resumption, _default_store, _drive, _Run, _stream
from agentflow.runtime.workspace import Workspace

_UNSET: Any = object()


def resume_run(
    run_id: str,
    state_patch: dict[str, Any] | None = None,
    *,
    breakpoints: list[str] | None = _UNSET,
    break_after: list[str] | None = _UNSET,
    step: bool | None = None,
    store: Any = None,
    workspace: Workspace | None = None,
    raise_on_error: bool = True,
) -> dict[str, Any]:
    """Go on with a paused run, first applying ``state_patch`` to its state; returns the
    final state (or the state at the next breakpoint). Breakpoints stay as they were
    unless given; ``step=True`` pauses again before the next node."""
    run = _prepare(run_id, state_patch, breakpoints, break_after, step, store, workspace, streaming=False)
    return _drive(run, raise_on_error)


def stream_resume(
    run_id: str,
    state_patch: dict[str, Any] | None = None,
    *,
    breakpoints: list[str] | None = _UNSET,
    break_after: list[str] | None = _UNSET,
    step: bool | None = None,
    store: Any = None,
    workspace: Workspace | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`resume_run` as live events (like :func:`stream_workflow`)."""
    run = _prepare(run_id, state_patch, breakpoints, break_after, step, store, workspace, streaming=True)
    return _stream(run)


def fork_run(
    run_id: str,
    checkpoint_id: str,
    state_patch: dict[str, Any] | None = None,
    *,
    breakpoints: list[str] | None = _UNSET,
    break_after: list[str] | None = _UNSET,
    step: bool | None = None,
    store: Any = None,
    workspace: Workspace | None = None,
    raise_on_error: bool = True,
) -> dict[str, Any]:
    """Copy a checkpoint of ``run_id`` into a new run, apply the patch and run it on (to its
    end or next breakpoint). The original run and its checkpoints stay as they were."""
    new_id = start_fork(run_id, checkpoint_id, store=store)
    run = _prepare(new_id, state_patch, breakpoints, break_after, step, store, workspace, streaming=False)
    return _drive(run, raise_on_error)


def stream_fork(
    run_id: str, checkpoint_id: str, state_patch: dict[str, Any] | None = None, **kw: Any
) -> Iterator[dict[str, Any]]:
    """:func:`fork_run` as live events."""
    store = kw.pop("store", None)
    new_id = start_fork(run_id, checkpoint_id, store=store)
    run = _prepare(new_id, state_patch, kw.pop("breakpoints", _UNSET), kw.pop("break_after", _UNSET),
                   kw.pop("step", None), store, kw.pop("workspace", None), streaming=True)
    return _stream(run)


def list_checkpoints(run_id: str, *, store: Any = None) -> list[dict[str, Any]]:
    """The run's checkpoints, oldest first: ``checkpoint_id``, ``node`` (the step that wrote
    it), ``nodes``, ``next`` (nodes due next), ``created_at``, ``changed_keys``, ``step``,
    ``source`` (``input``, ``loop``, ``update`` for a state edit, ``fork``)."""
    store = store if store is not None else _default_store()
    graph, config, _ = _graph_for(run_id, store)
    history = list(graph.get_state_history(config))[::-1]
    out = []
    previous = None
    for snap in history:
        source = snap.metadata.get("source") if snap.metadata else None
        nodes = list(previous.next) if source == "loop" and previous is not None else []
        named = ", ".join(n for n in nodes if n != "__start__") or ("(start)" if nodes else "")
        label = {"input": "(input)", "update": "(state edit)", "fork": "(fork)"}.get(source or "", named)
        before = previous.values if previous is not None else {}
        keys = set(before) | set(snap.values)
        out.append(
            {
                "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                "node": label or "(start)",
                "nodes": nodes,
                "next": list(snap.next),
                "created_at": snap.created_at,
                "changed_keys": sorted(k for k in keys if before.get(k) != snap.values.get(k)),
                "step": snap.metadata.get("step") if snap.metadata else None,
                "source": source,
            }
        )
        previous = snap
    return out


def checkpoint_state(run_id: str, checkpoint_id: str | None = None, *, store: Any = None) -> dict[str, Any]:
    """The run's state at a checkpoint (the latest when ``checkpoint_id`` is None)."""
    store = store if store is not None else _default_store()
    graph, config, _ = _graph_for(run_id, store)
    if checkpoint_id:
        config = {"configurable": {**config["configurable"], "checkpoint_id": checkpoint_id, "checkpoint_ns": ""}}
    snap = graph.get_state(config)
    if checkpoint_id and not snap.created_at:
        raise NotFoundError(f'run "{run_id}" has no checkpoint "{checkpoint_id}"')
    return {k: v for k, v in snap.values.items() if not _internal(k)}


def _internal(key: str) -> bool:
    """LangGraph's own channels (``branch:to:x``, ``__start__``): not part of the state."""
    return key.startswith("__") or ":" in key


def start_fork(run_id: str, checkpoint_id: str, *, store: Any = None) -> str:
    """Copy one checkpoint of ``run_id`` into a new paused run; returns the new run id."""
    store = store if store is not None else _default_store()
    saver = store.checkpointer()
    tup = saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}})
    if tup is None:
        raise NotFoundError(f'run "{run_id}" has no checkpoint "{checkpoint_id}"; list them with list_checkpoints')
    parent = store.get_run(run_id)
    new_id = new_run_id()
    target = {"configurable": {"thread_id": new_id, "checkpoint_ns": ""}}
    metadata = {**tup.metadata, "source": "fork", "agentflow_forked_from": f"{run_id}/{checkpoint_id}"}
    written = saver.put(target, tup.checkpoint, metadata, dict(tup.checkpoint.get("channel_versions", {})))
    # Pending writes of a checkpoint are the results of tasks the parent ran *after* it:
    # copying them would make the fork skip those nodes. Only the input checkpoint's writes
    # (the run's input itself) travel with the fork.
    if tup.metadata.get("source") == "input":
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in tup.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            saver.put_writes(written, writes, task_id)
    step = tup.metadata.get("step") or 0
    inherited = [
        {**e, "inherited": True}
        for e in parent.get("trace") or []
        if e.get("type") != "pause" and (e.get("step") or 0) <= step
    ]
    now = utc_now()
    values = dict(tup.checkpoint.get("channel_values", {}))
    stub = {
        **values,
        "metadata": {
            "run_id": new_id,
            "workflow_id": parent.get("workflow_id"),
            "status": "interrupted",
            "started_at": now,
            "ended_at": None,
            "total_runtime_ms": 0.0,
            "trace": [*inherited, _pause_entry("(fork)", step, time.time())],
            "tokens": {"prompt": 0, "completion": 0, "total": 0},
            "cost_usd": 0.0,
            "forked_from": {"run_id": run_id, "checkpoint_id": checkpoint_id},
        },
    }
    store.record_run(stub, user=parent.get("user"), input=parent.get("input"),
                     workflow_version=parent.get("workflow_version"))
    return new_id


def _pause_entry(node: str, step: int | None, at: float) -> dict[str, Any]:
    return {
        "node": node, "type": "pause", "status": "interrupted", "started_at": iso(at), "ended_at": None,
        "latency_ms": None, "offset_ms": None, "step": step, "source": None, "queue": None,
        "queue_wait_ms": 0.0, "attempts": 0, "tokens": {"prompt": 0, "completion": 0, "total": 0},
        "cost_usd": 0.0, "error": None,
    }


def _graph_for(run_id: str, store: Any) -> tuple[Any, dict[str, Any], Any]:
    """The compiled, checkpointed graph of a run (from the document in its checkpoints)."""
    saver = store.checkpointer()
    config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
    tup = saver.get_tuple(config)
    if tup is None:
        raise NotFoundError(
            f'run "{run_id}" has no checkpoints: only runs started with breakpoints or step mode '
            "can be resumed, listed or forked"
        )
    from agentflow.runtime.builder import compile_workflow
    from agentflow.spec.validate import validate_workflow

    spec = validate_workflow(json.loads(tup.metadata["agentflow_document"]))
    keys = set(tup.checkpoint.get("channel_values", {}))
    return compile_workflow(spec).graph(keys, checkpointer=saver), config, tup


def _prepare(
    run_id: str,
    state_patch: dict[str, Any] | None,
    breakpoints: Any,
    break_after: Any,
    step: bool | None,
    store: Any,
    workspace: Workspace | None,
    *,
    streaming: bool,
) -> _Run:
    store = store if store is not None else _default_store()
    record = store.get_run(run_id)
    if record["status"] != "interrupted":
        raise ExecutionError(
            f'run "{run_id}" is {record["status"]}, not paused; only a paused run can be resumed '
            "(fork it from one of its checkpoints to run it again)"
        )
    if state_patch is not None and not isinstance(state_patch, dict):
        raise ValidationError.from_problems([{"path": "state_patch", "message": "must be a JSON object"}])
    _, _, tup = _graph_for(run_id, store)
    meta = tup.metadata
    old = Breaks.from_json(meta.get("agentflow_breaks"))
    trace = [dict(e) for e in record.get("trace") or []]
    _close_pause(trace, state_patch)
    forked = record.get("final_state", {}).get("metadata", {}).get("forked_from") if record.get("final_state") else None
    resumption = Resumption(
        run_id=run_id,
        trace=trace,
        input=record.get("input") or {},
        user=record.get("user"),
        subqueue=meta.get("agentflow_subqueue") or None,
        started_at=record["started_at"],
        prior_runtime_ms=float(record.get("total_runtime_ms") or 0.0),
        workflow_version=record.get("workflow_version"),
        forked_from=forked,
    )
    run = _Run(
        json.loads(meta["agentflow_document"]),
        None,
        streaming=streaming,
        breakpoints=old.before if breakpoints is _UNSET else breakpoints,
        break_after=old.after if break_after is _UNSET else break_after,
        step=old.step if step is None else step,
        store=store,
        workspace=workspace,
        resume=resumption,
    )
    run.extra_keys = set(tup.checkpoint.get("channel_values", {})) | set(state_patch or {})
    graph = run.bind()
    if state_patch:
        _patch(graph, run.config, state_patch, trace)
    run.values = dict(graph.get_state(run.config).values)
    return run


def _close_pause(trace: list[dict[str, Any]], state_patch: dict[str, Any] | None) -> None:
    """Mark the open pause entry of a trace resumed (how long, what the user changed)."""
    for entry in reversed(trace):
        if entry.get("type") == "pause" and entry.get("status") == "interrupted":
            now = time.time()
            entry["status"] = "resumed"
            entry["ended_at"] = iso(now)
            if isinstance(entry.get("started_at"), str):
                from datetime import datetime

                began = datetime.fromisoformat(entry["started_at"].replace("Z", "+00:00")).timestamp()
                entry["latency_ms"] = round((now - began) * 1000, 3)
            entry["changed_keys"] = sorted(state_patch or {})
            return


def _patch(graph: Any, config: dict[str, Any], patch: dict[str, Any], trace: list[dict[str, Any]]) -> None:
    """Apply the user's state edit; after a parallel step LangGraph needs to know which node
    the edit counts as, so it is attributed to a node of the last step that ran."""
    try:
        graph.update_state(config, patch)
    except InvalidUpdateError:
        ran = [e for e in trace if e.get("type") != "pause" and e.get("step") is not None]
        last = max(e["step"] for e in ran) if ran else None
        node = next((e["node"] for e in reversed(ran) if e["step"] == last), None)
        if node is None:
            raise
        graph.update_state(config, patch, as_node=node)


__all__ = [
    "checkpoint_state",
    "fork_run",
    "list_checkpoints",
    "resume_run",
    "start_fork",
    "stream_fork",
    "stream_resume",
]
