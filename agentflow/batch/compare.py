"""Two batches side by side, row by row (e.g. two versions of a workflow on one dataset).

Rows pair up by row number. Each pair shows both sides' status, score, output and latency,
whether the outputs are the same, and how the score moved; the summary counts what changed
and gives each batch's totals.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compare_batches"]


def _side(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "status": r["status"],
        "score": r["score"],
        "final_output": r["final_output"],
        "latency_ms": r["latency_ms"],
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _summary(batch: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [r["score"] for r in results if r["score"] is not None]
    latencies = [r["latency_ms"] for r in results if r["latency_ms"] is not None]
    return {
        "batch_id": batch["batch_id"],
        "workflow_id": batch["workflow_id"],
        "workflow_version": batch["workflow_version"],
        "status": batch["status"],
        "total": batch["total"],
        "recorded": len(results),
        "succeeded": sum(1 for r in results if r["status"] == "succeeded"),
        "failed": sum(1 for r in results if r["status"] != "succeeded"),
        "mean_score": _mean(scores),
        "mean_latency_ms": _mean(latencies),
        "tokens": sum((r["tokens"] or {}).get("total", 0) for r in results),
        "cost_usd": round(sum(r["cost_usd"] or 0.0 for r in results), 9),
    }


def compare_batches(batch_a: str, batch_b: str, *, store: Any = None) -> dict[str, Any]:
    """``{"summary": {"a", "b", "rows", "same_output", "different_output", "improved",
    "regressed", "status_changed"}, "rows": [{"row", "input", "a", "b", "same_output",
    "score_delta"}]}``; a side is None where that batch has not recorded the row."""
    if store is None:
        from agentflow.store import default_store

        store = default_store()
    a = store.get_batch(batch_a, include_document=False)
    b = store.get_batch(batch_b, include_document=False)
    ra = {r["row"]: r for r in store.batch_results(batch_a)}
    rb = {r["row"]: r for r in store.batch_results(batch_b)}
    inputs = {r["row"]: r["input"] for r in store.batch_inputs(batch_a)}
    rows = []
    same = different = improved = regressed = changed = 0
    for n in range(max(a["total"], b["total"])):
        x, y = ra.get(n), rb.get(n)
        item: dict[str, Any] = {
            "row": n,
            "input": (inputs.get(n) or {}).get("user_input"),
            "a": _side(x),
            "b": _side(y),
            "same_output": None,
            "score_delta": None,
        }
        if x is not None and y is not None:
            item["same_output"] = x["final_output"] == y["final_output"]
            same += item["same_output"]
            different += not item["same_output"]
            changed += x["status"] != y["status"]
            if x["score"] is not None and y["score"] is not None:
                delta = round(y["score"] - x["score"], 6)
                item["score_delta"] = delta
                improved += delta > 0
                regressed += delta < 0
        rows.append(item)
    summary = {
        "a": _summary(a, list(ra.values())),
        "b": _summary(b, list(rb.values())),
        "rows": len(rows),
        "same_output": same,
        "different_output": different,
        "improved": improved,
        "regressed": regressed,
        "status_changed": changed,
    }
    return {"summary": summary, "rows": rows}
