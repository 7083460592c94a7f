"""What the pages list: workflows at a glance, which workflows use a source or queue,
fresh ids, subqueue weights, queue meters. Plain functions over the store's interface."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from agentflow.errors import NotFoundError


def workflow_rows(store: Any, *, limit: int = 200) -> list[dict[str, Any]]:
    """Home page rows: name, id, versions, last run status and time, last edited (and by)."""
    rows = []
    for wf in store.list_workflows(limit=limit):
        runs, _ = store.list_runs(workflow=wf["id"], limit=1)
        last = runs[0] if runs else None
        rows.append(
            {
                "name": wf.get("name") or wf["id"],
                "id": wf["id"],
                "versions": wf.get("latest_version"),
                "last run": (last or {}).get("status") or "never run",
                "last run at": (last or {}).get("started_at"),
                "last edited": wf.get("updated_at"),
                "edited by": wf.get("updated_by"),
            }
        )
    return rows


def latest_documents(store: Any, *, limit: int = 500) -> dict[str, dict[str, Any]]:
    """The latest document of every workflow, by id (unreadable ones left out)."""
    out: dict[str, dict[str, Any]] = {}
    for wf in store.list_workflows(limit=limit):
        try:
            doc = store.get_workflow(wf["id"])["document"]
        except NotFoundError:
            continue
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                continue
        if isinstance(doc, dict):
            out[wf["id"]] = doc
    return out


def usage(documents: Mapping[str, Mapping[str, Any]], attr: str) -> dict[str, list[dict[str, Any]]]:
    """For ``attr`` ``"source"`` or ``"queue"``: id -> the workflows whose nodes name it, each
    ``{"workflow", "nodes", "inline"}`` (``inline``: the workflow defines its own copy,
    which wins over the registered one)."""
    plural = attr + "s"
    out: dict[str, list[dict[str, Any]]] = {}
    for wf_id, doc in documents.items():
        defined = {i.get("id") for i in doc.get(plural) or [] if isinstance(i, Mapping)}
        users: dict[str, list[str]] = {}
        for node in doc.get("nodes") or []:
            if not isinstance(node, Mapping):
                continue
            for key in (attr, f"fallback_{attr}") if attr == "source" else (attr,):
                ref = node.get(key)
                if isinstance(ref, str):
                    users.setdefault(ref, []).append(str(node.get("id")))
        for ref, nodes in users.items():
            out.setdefault(ref, []).append({"workflow": wf_id, "nodes": nodes, "inline": ref in defined})
    return out


def usage_text(entries: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for e in entries:
        parts.append(e["workflow"] + (" (own copy)" if e.get("inline") else ""))
    return ", ".join(parts)


def short_list(items: Iterable[str], limit: int = 6) -> str:
    """``a, b, c and 12 more``: a list that stays one line."""
    items = list(items)
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")


def free_id(base: str, taken: Iterable[str]) -> str:
    """``base`` if unused, else ``base-2``, ``base-3``, ... (kept a valid slug)."""
    taken = set(taken)
    base = re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-_")[:60] or "workflow"
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def parse_weights(text: str) -> dict[str, float]:
    """``"interactive=3, batch=1"`` (or ``:``) -> ``{"interactive": 3.0, "batch": 1.0}``.

    Raises ``ValueError`` with a message naming the bad part.
    """
    out: dict[str, float] = {}
    for part in re.split(r"[,\n;]+", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]{1,64})\s*[=:]\s*([0-9]*\.?[0-9]+)$", part)
        if not m:
            raise ValueError(f'"{part}": write each subqueue as name=weight, e.g. interactive=3')
        weight = float(m.group(2))
        if weight <= 0:
            raise ValueError(f'"{part}": a weight must be more than 0')
        out[m.group(1)] = weight
    return out


def format_weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in weights.items())


def queue_document(
    queue_id: str,
    description: str,
    limits: Mapping[str, float | None],
    on_limit: str,
    weights_text: str,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A queue definition (spec section 3) from the Queues form, and its problems (``{"path",
    "message"}``). Empty limits mean unlimited."""
    problems: list[dict[str, str]] = []
    try:
        weights = parse_weights(weights_text)
    except ValueError as exc:
        problems.append({"path": "subqueues", "message": str(exc)})
        weights = {}
    doc: dict[str, Any] = {"id": queue_id.strip(), "on_limit": on_limit, "subqueues": weights}
    for key, value in limits.items():
        if value is None:
            continue
        if value <= 0:
            problems.append({"path": key, "message": "must be more than 0 (leave it empty for no limit)"})
        doc[key] = value
    if description.strip():
        doc["description"] = description.strip()
    if not queue_id.strip():
        problems.insert(0, {"path": "id", "message": "give the queue an id"})
    return doc, problems


def weight_shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Each subqueue's share of grants (0..1) when all of them wait at once."""
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()} if total else {}


_WINDOWS = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


def queue_meters(stats: Mapping[str, Any]) -> dict[str, Any]:
    """A queue's live figures (``QueueLimiter.stats()``) as the page shows them."""
    limits = []
    for name, lim in (stats.get("limits") or {}).items():
        limit = float(lim.get("limit") or 0)
        used = float(lim.get("used") or 0)
        window = float(lim.get("window_s") or 0)
        limits.append(
            {
                "name": name,
                "used": used,
                "limit": limit,
                "fraction": min(1.0, used / limit) if limit else 0.0,
                "window": _WINDOWS.get(window, f"{window:g} s"),
            }
        )
    return {
        "limits": limits,
        "waiting": dict(stats.get("waiting") or {}),
        "waiters": int(stats.get("waiters") or 0),
        "granted": int(stats.get("granted") or 0),
        "rejected": int(stats.get("rejected") or 0),
        "wait_ms_avg": float(stats.get("wait_ms_avg") or 0.0),
        "wait_ms_max": float(stats.get("wait_ms_max") or 0.0),
        "backend": stats.get("backend"),
        "cost_usd_today": stats.get("cost_usd_today"),
    }


def send_test_traffic(spec: Any, calls: int = 20, *, tokens: int = 100) -> int:
    """Put ``calls`` calls (one thread each, at most 100) through queue ``spec``, spread over
    its subqueues by weight, so its meters move without running a workflow. Returns how
    many were started. Each call takes its grant and settles it; refusals are counted by
    the queue itself."""
    import threading

    from agentflow.errors import AgentFlowError
    from agentflow.runtime.rate_limiter import get_queue_manager

    limiter = get_queue_manager().get(spec)
    names = list(spec.subqueues) or ["default"]
    weights = [spec.subqueues.get(n, 1.0) for n in names]
    total = sum(weights)
    plan: list[str] = []
    for name, weight in zip(names, weights, strict=True):
        plan += [name] * max(1, round(min(calls, 100) * weight / total))
    plan = plan[: min(calls, 100)]

    def one(subqueue: str) -> None:
        try:
            grant = limiter.acquire(subqueue=subqueue, tokens=tokens)
        except AgentFlowError:
            return
        grant.settle(tokens=tokens)

    for i, subqueue in enumerate(plan):
        threading.Thread(target=one, args=(subqueue,), name=f"agentflow-ui-traffic-{i}", daemon=True).start()
    return len(plan)
