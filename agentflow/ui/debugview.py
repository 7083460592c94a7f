"""Step-by-step inspection, as plain data the Graph, Run and Runs pages draw.

- breakpoints chosen on one page and carried to another (:class:`BreakChoice`, kept per
  workflow in the session);
- a paused run's state, with the keys its last step changed (:class:`PausedView`), shown as
  JSON with those keys highlighted (:func:`state_html`);
- the user's edit of that state turned into the patch ``resume_run`` takes, refusing
  invalid JSON with its line and column (:func:`state_patch`);
- a debugged run's checkpoints as a table, and what changed between two of them;
- a fork and its parent compared node by node (:func:`fork_compare_frame`).

Runs are read through the store and the runtime's public debug API (``list_checkpoints``,
``checkpoint_state``), never from executor internals.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from agentflow.errors import ValidationError

#: Session key: breakpoint choices per workflow id, shared by the Graph and Run pages.
BREAKS_KEY = "debug_breaks"
#: LangGraph's own channels in a checkpoint's values ("branch:to:answer"): not the user's state.
INTERNAL_PREFIXES = ("branch:", "__")


def visible_state(values: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's values without LangGraph's bookkeeping channels."""
    return {k: v for k, v in values.items() if not str(k).startswith(INTERNAL_PREFIXES)}


def visible_keys(keys: Sequence[str]) -> list[str]:
    return [k for k in keys if not str(k).startswith(INTERNAL_PREFIXES)]


# -- breakpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakChoice:
    """Where a run started from the workbench pauses."""

    #: Pause before these nodes.
    before: tuple[str, ...] = ()
    #: Pause after these nodes.
    after: tuple[str, ...] = ()
    #: Pause before every node.
    step: bool = False

    @property
    def active(self) -> bool:
        return bool(self.before or self.after or self.step)

    def run_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``stream_workflow`` (empty when nothing pauses)."""
        if not self.active:
            return {}
        return {"breakpoints": list(self.before), "break_after": list(self.after), "step": self.step}

    def within(self, node_ids: Sequence[str]) -> BreakChoice:
        """Only the breakpoints on nodes the workflow has (it may have changed since)."""
        ids = set(node_ids)
        return BreakChoice(
            tuple(n for n in self.before if n in ids), tuple(n for n in self.after if n in ids), self.step
        )

    def describe(self) -> str:
        parts = []
        if self.step:
            parts.append("before every node")
        if self.before and not self.step:
            parts.append("before " + ", ".join(self.before))
        if self.after:
            parts.append("after " + ", ".join(self.after))
        return "pauses " + "; ".join(parts) if parts else "runs without pausing"


def break_choice(state: Mapping[str, Any], workflow_id: str) -> BreakChoice:
    """The session's breakpoints for a workflow (none until chosen)."""
    return (state.get(BREAKS_KEY) or {}).get(workflow_id) or BreakChoice()


def set_break_choice(state: MutableMapping[str, Any], workflow_id: str, choice: BreakChoice) -> None:
    state.setdefault(BREAKS_KEY, {})
    state[BREAKS_KEY] = {**state[BREAKS_KEY], workflow_id: choice}


# -- a paused run ------------------------------------------------------------------------------


@dataclass
class PausedView:
    """What the Run page shows about a paused run."""

    run_id: str
    workflow_id: str | None
    #: The node the run stops before, and every node due next (several after a fan-out).
    paused_before: str | None
    next: list[str]
    #: The run's whole state at the pause (the latest checkpoint).
    state: dict[str, Any]
    #: Keys the last step changed, and which step that was ("router", "outline, keywords").
    changed_keys: list[str] = field(default_factory=list)
    changed_by: str | None = None
    #: The breakpoints the run was started (or last resumed) with.
    breakpoints: dict[str, Any] = field(default_factory=dict)
    #: How many pauses the run has had (a new pause gets a fresh editor).
    pauses: int = 0
    user: str | None = None

    @property
    def editor_text(self) -> str:
        return pretty(self.state)


def paused_view(run_id: str, store: Any) -> PausedView:
    """Read a paused run back: its record, its latest checkpoint and what that step changed."""
    from agentflow import checkpoint_state, list_checkpoints

    record = store.get_run(run_id)
    meta = dict((record.get("final_state") or {}).get("metadata") or {})
    checkpoints = list_checkpoints(run_id, store=store)
    last = checkpoints[-1] if checkpoints else {}
    nxt = list(meta.get("next") or last.get("next") or [])
    trace = record.get("trace") or meta.get("trace") or []
    return PausedView(
        run_id=run_id,
        workflow_id=record.get("workflow_id"),
        paused_before=meta.get("paused_before") or (nxt[0] if nxt else None),
        next=nxt,
        state=visible_state(checkpoint_state(run_id, store=store)),
        changed_keys=visible_keys(last.get("changed_keys") or []),
        changed_by=last.get("node"),
        breakpoints=dict(meta.get("breakpoints") or {}),
        pauses=sum(1 for e in trace if e.get("type") == "pause"),
        user=record.get("user"),
    )


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _shorten(value: Any, limit: int) -> Any:
    """Long strings (a base64 image) cut for display; the editor keeps them whole."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"… ({len(value):,} characters)"
    if isinstance(value, Mapping):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    return value


def state_html(state: Mapping[str, Any], changed: Sequence[str] = (), *, limit: int = 400) -> str:
    """The state as pretty JSON in a ``<pre>``, the changed top-level keys highlighted."""
    keys = list(state)
    lines = ["{"]
    for i, key in enumerate(keys):
        body = pretty(_shorten(state[key], limit)).replace("\n", "\n  ")
        text = html.escape(f"  {json.dumps(key, ensure_ascii=False)}: {body}" + ("," if i < len(keys) - 1 else ""))
        if key in changed:
            text = (
                f'<mark data-key="{html.escape(str(key))}" style="background:#fef08a;'
                f'border-left:3px solid #ca8a04;padding:0 4px">{text}</mark>'
            )
        lines.append(text)
    lines.append("}")
    return (
        '<pre class="af-state" style="white-space:pre-wrap;font-size:0.85em;max-height:420px;overflow:auto;'
        'background:#f8fafc;border:1px solid #e2e8f0;border-radius:6px;padding:8px">' + "\n".join(lines) + "</pre>"
    )


def state_patch(text: str, current: Mapping[str, Any]) -> dict[str, Any]:
    """The keys the user changed in the state editor, with their new values.

    Raises :class:`ValidationError` (with ``line`` and ``column``, 1-based) for text that is
    not a JSON object, and for a removed key: a paused run's keys can be changed (or set to
    null), not removed.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = {
            "path": "$",
            "message": f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            "line": exc.lineno,
            "column": exc.colno,
        }
        raise ValidationError(f"the edited state is not valid JSON: {problem['message']}", errors=[problem]) from None
    if not isinstance(value, dict):
        problem = {"path": "$", "message": "the state must be a JSON object: {...}", "line": 1, "column": 1}
        raise ValidationError("the edited state is not a JSON object", errors=[problem])
    removed = [k for k in current if k not in value]
    if removed:
        problems = [
            {"path": f"$.{k}", "message": "was removed; a state key cannot be removed, set it to null instead"}
            for k in removed
        ]
        raise ValidationError(f"the edited state lost {len(removed)} key(s): " + ", ".join(removed), errors=problems)
    return {k: v for k, v in value.items() if k not in current or current[k] != v}


# -- checkpoints (time travel) -------------------------------------------------------------------

CHECKPOINT_KINDS = {"input": "input", "loop": "step", "update": "state edit", "fork": "fork"}


def _next_text(cp: Mapping[str, Any]) -> str:
    nxt = list(cp.get("next") or [])
    if nxt == ["__start__"]:
        return "(start)"
    return ", ".join(n for n in nxt if n != "__start__") or "(end)"


def checkpoint_label(cp: Mapping[str, Any], index: int) -> str:
    """A checkpoint in a select box: its number, the step that wrote it and what is next."""
    when = str(cp.get("created_at") or "")[11:19]
    return f"#{index} · after {cp.get('node')} · next {_next_text(cp)} · {when}"


def checkpoint_frame(checkpoints: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per checkpoint, oldest first: the node that wrote it, when, what it changed."""
    rows = [
        {
            "#": i,
            "after": cp.get("node"),
            "time": str(cp.get("created_at") or "")[:23].replace("T", " "),
            "changed keys": ", ".join(visible_keys(cp.get("changed_keys") or [])),
            "next": _next_text(cp),
            "kind": CHECKPOINT_KINDS.get(str(cp.get("source")), str(cp.get("source") or "")),
            "checkpoint_id": cp.get("checkpoint_id"),
        }
        for i, cp in enumerate(checkpoints)
    ]
    return pd.DataFrame(rows, columns=["#", "after", "time", "changed keys", "next", "kind", "checkpoint_id"])


def default_checkpoint(checkpoints: Sequence[Mapping[str, Any]]) -> int:
    """Where a re-run most likely starts: before the last node that ran."""
    for i in range(len(checkpoints) - 1, -1, -1):
        cp = checkpoints[i]
        if cp.get("source") == "loop" and [n for n in cp.get("next") or [] if n != "__start__"]:
            return i
    return max(0, len(checkpoints) - 1)


def _brief(value: Any, limit: int = 120) -> str:
    if value is None:
        return "null"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Top-level keys that differ: ``added``, ``removed`` or ``changed``, with both values."""
    before, after = visible_state(before), visible_state(after)
    out = []
    for key in list(dict.fromkeys([*before, *after])):
        if key in before and key in after and before[key] == after[key]:
            continue
        if key not in before or (before[key] is None and after.get(key) is not None):
            change = "added"
        elif key not in after:
            change = "removed"
        else:
            change = "changed"
        out.append({"key": key, "change": change, "before": before.get(key), "after": after.get(key)})
    return out


def state_diff_frame(before: Mapping[str, Any], after: Mapping[str, Any]) -> pd.DataFrame:
    rows = [
        {"key": d["key"], "change": d["change"], "before": _brief(d["before"]), "after": _brief(d["after"])}
        for d in state_diff(before, after)
    ]
    return pd.DataFrame(rows, columns=["key", "change", "before", "after"])


# -- forks ---------------------------------------------------------------------------------------


def run_metadata(run: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(((run or {}).get("final_state") or {}).get("metadata") or {})


def forked_from(run: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{"run_id", "checkpoint_id"}`` of the run a fork was copied from, else None."""
    origin = run_metadata(run).get("forked_from")
    return dict(origin) if isinstance(origin, Mapping) and origin.get("run_id") else None


def was_debugged(run: Mapping[str, Any] | None) -> bool:
    """Whether a stored run has checkpoints (it ran with breakpoints or in step mode, or is a fork)."""
    meta = run_metadata(run)
    if meta.get("breakpoints") is not None or meta.get("forked_from"):
        return True
    return any(e.get("type") == "pause" for e in (run or {}).get("trace") or [])


def _executions(run: Mapping[str, Any]) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    """Node executions (pauses left out), keyed by node id and occurrence (1, 2, ... in a loop)."""
    seen: dict[str, int] = {}
    out = []
    for entry in run.get("trace") or []:
        if entry.get("type") == "pause":
            continue
        node = str(entry.get("node"))
        seen[node] = seen.get(node, 0) + 1
        out.append(((node, seen[node]), dict(entry)))
    return out


def _outputs(run: Mapping[str, Any], executions: list[tuple[tuple[str, int], dict[str, Any]]]) -> dict:
    """What each execution wrote, read from the final state: only a node's last execution
    still has its values there (a loop's earlier passes were overwritten)."""
    final = run.get("final_state") or {}
    last: dict[str, int] = {}
    for (node, n), _ in executions:
        last[node] = n
    out: dict[tuple[str, int], str] = {}
    for (node, n), entry in executions:
        writes = entry.get("writes") or []
        if entry.get("error"):
            out[(node, n)] = "error: " + _brief((entry["error"] or {}).get("message"), 80)
        elif not writes:
            out[(node, n)] = ""
        elif n != last[node]:
            out[(node, n)] = "(earlier pass, not kept)"
        else:
            out[(node, n)] = "; ".join(_brief(final.get(k), 80) for k in writes)
    return out


def _merge_order(first: list[Any], second: list[Any]) -> list[Any]:
    """Keys of ``first`` in order, with keys only ``second`` has placed where they ran:
    after their predecessor in ``second`` and the ``first``-only keys that follow it (a fork
    that took another branch shows it right after the parent's branch)."""
    order = list(first)
    theirs = set(second)
    prev = None
    for key in second:
        if key not in order:
            at = order.index(prev) + 1 if prev is not None else 0
            while at < len(order) and order[at] not in theirs:
                at += 1
            order.insert(at, key)
        prev = key
    return order


def _num(entry: Mapping[str, Any] | None, what: str) -> float | None:
    if entry is None:
        return None
    if what == "tokens":
        return float((entry.get("tokens") or {}).get("total") or 0)
    value = entry.get(what)
    return float(value) if isinstance(value, (int, float)) else None


def _delta(a: float | None, b: float | None, digits: int) -> float | None:
    return round(b - a, digits) if a is not None and b is not None else None


FORK_COMPARE_COLUMNS = [
    "node",
    "#",
    "inherited",
    "status parent",
    "status fork",
    "output parent",
    "output fork",
    "same output",
    "latency parent (ms)",
    "latency fork (ms)",
    "Δ latency (ms)",
    "tokens parent",
    "tokens fork",
    "Δ tokens",
    "cost parent (USD)",
    "cost fork (USD)",
    "Δ cost (USD)",
]


def fork_compare_frame(parent: Mapping[str, Any], fork: Mapping[str, Any]) -> pd.DataFrame:
    """A fork and its parent (``Store.get_run`` records) side by side, one row per node
    execution, matched by node id and occurrence: status, output, latency, tokens, cost and
    the fork's deltas. ``inherited`` rows are the steps the fork copied from the parent
    (they did not run again); nodes only one of them ran show blanks on the other side."""
    pe, fe = _executions(parent), _executions(fork)
    p_by, f_by = dict(pe), dict(fe)
    po, fo = _outputs(parent, pe), _outputs(fork, fe)
    rows = []
    for key in _merge_order([k for k, _ in pe], [k for k, _ in fe]):
        a, b = p_by.get(key), f_by.get(key)
        la, lb = _num(a, "latency_ms"), _num(b, "latency_ms")
        ta, tb = _num(a, "tokens"), _num(b, "tokens")
        ca, cb = _num(a, "cost_usd"), _num(b, "cost_usd")
        rows.append(
            {
                "node": key[0],
                "#": key[1],
                "inherited": bool(b and b.get("inherited")),
                "status parent": a.get("status") if a else "—",
                "status fork": b.get("status") if b else "—",
                "output parent": po.get(key, "") if a else "",
                "output fork": fo.get(key, "") if b else "",
                "same output": bool(a and b) and po.get(key) == fo.get(key),
                "latency parent (ms)": round(la, 1) if la is not None else None,
                "latency fork (ms)": round(lb, 1) if lb is not None else None,
                "Δ latency (ms)": _delta(la, lb, 1),
                "tokens parent": int(ta) if ta is not None else None,
                "tokens fork": int(tb) if tb is not None else None,
                "Δ tokens": int(tb - ta) if ta is not None and tb is not None else None,
                "cost parent (USD)": ca,
                "cost fork (USD)": cb,
                "Δ cost (USD)": _delta(ca, cb, 8),
            }
        )
    return pd.DataFrame(rows, columns=FORK_COMPARE_COLUMNS)


#: Cell styles of the comparison: inherited rows muted, outputs that differ marked, deltas
#: red when the fork was slower or dearer and green when it was faster or cheaper.
INHERITED_STYLE = "color: #64748b; background-color: #f1f5f9"
CHANGED_STYLE = "background-color: #fef9c3; font-weight: 600"
ONLY_ONE_STYLE = "background-color: #e0f2fe"
WORSE_STYLE = "color: #b91c1c"
BETTER_STYLE = "color: #15803d"


def fork_compare_styles(frame: pd.DataFrame) -> pd.DataFrame:
    """The CSS of every cell of :func:`fork_compare_frame` (same shape; tested, then handed
    to ``Styler.apply``)."""
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for i, row in frame.iterrows():
        if row["inherited"]:
            styles.loc[i, :] = INHERITED_STYLE
            continue
        if row["status parent"] == "—" or row["status fork"] == "—":
            styles.loc[i, :] = ONLY_ONE_STYLE
        elif not row["same output"]:
            styles.loc[i, ["output parent", "output fork", "same output"]] = CHANGED_STYLE
        for col in ("Δ latency (ms)", "Δ tokens", "Δ cost (USD)"):
            value = row[col]
            if value is not None and not pd.isna(value) and value != 0:
                styles.loc[i, col] = WORSE_STYLE if value > 0 else BETTER_STYLE
    return styles


def fork_compare_styler(frame: pd.DataFrame) -> Any:
    return frame.style.apply(lambda _: fork_compare_styles(frame), axis=None)


def fork_compare_totals(parent: Mapping[str, Any], fork: Mapping[str, Any]) -> pd.DataFrame:
    """Run-level figures over node executions: parent, fork (inherited steps included, as
    the fork's trace has them), what the fork itself ran, and the fork's delta."""

    def sums(entries: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "nodes run": float(len(entries)),
            "latency (ms)": round(sum(_num(e, "latency_ms") or 0.0 for e in entries), 1),
            "tokens": sum(_num(e, "tokens") or 0.0 for e in entries),
            "cost (USD)": round(sum(_num(e, "cost_usd") or 0.0 for e in entries), 8),
        }

    pe = [e for _, e in _executions(parent)]
    fe = [e for _, e in _executions(fork)]
    a, b = sums(pe), sums(fe)
    own = sums([e for e in fe if not e.get("inherited")])
    frame = pd.DataFrame(
        {
            "parent": a,
            "fork": b,
            "fork's own steps": own,
            "Δ (fork − parent)": {k: round(b[k] - a[k], 8) for k in a},
        }
    )
    return frame


# -- steps of type pause -----------------------------------------------------------------------


def pause_text(trace: Mapping[str, Any]) -> str:
    """One line about a pause entry of a trace (or an ``interrupt`` step of a live view)."""
    node = trace.get("node")
    if node == "(fork)":
        head = "Forked from a checkpoint of another run"
    else:
        nxt = [n for n in trace.get("next") or [node] if n]
        head = "Paused before " + ", ".join(f"**{n}**" for n in nxt)
    if trace.get("status") == "interrupted":
        return head + " · waiting"
    bits = [head]
    if isinstance(trace.get("latency_ms"), (int, float)):
        bits.append(f"resumed after {trace['latency_ms'] / 1000:.1f} s")
    else:
        bits.append("resumed")
    changed = trace.get("changed_keys") or []
    bits.append("state edited: " + ", ".join(f"`{k}`" for k in changed) if changed else "state unchanged")
    return " · ".join(bits)


def paused_runs(store: Any, *, workflow: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Stored runs waiting at a breakpoint (any session, any process), newest first."""
    runs, _ = store.list_runs(status="interrupted", workflow=workflow, limit=limit)
    return runs


def paused_frame(runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "paused since": r.get("ended_at") or r.get("started_at"),
            "workflow": r.get("workflow_id"),
            "user": r.get("user"),
            "run_id": r.get("run_id"),
        }
        for r in runs
    ]
    return pd.DataFrame(rows, columns=["paused since", "workflow", "user", "run_id"])
