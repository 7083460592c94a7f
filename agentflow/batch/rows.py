"""From dataset records to the rows a batch stores, and from a run's final state to a row's result.

A row's initial state: the ``column`` field becomes ``user_input``; every other field goes
in under its own name. A record that cannot run (unreadable, or missing the column or the
expected column) becomes a failed row whose error names its line.

A row's result line (``batch run`` output, ``batch results``, the HTTP results route)::

    {"row", "status", "run_id", "final_output", "error", "latency_ms", "tokens", "cost_usd", "score"}

``final_output`` holds the value of the batch's output key (``final_output`` unless
``--output-key`` names another); ``status`` is the row's run status (spec section 8).
"""

from __future__ import annotations

from typing import Any

from agentflow.batch.dataset import Dataset
from agentflow.batch.options import BatchOptions
from agentflow.batch.scorers import Scorer
from agentflow.errors import AgentFlowError, ValidationError

__all__ = ["ROW_FIELDS", "failed_result", "prepare_rows", "row_line", "state_result"]

ROW_FIELDS = ("row", "status", "run_id", "final_output", "error", "latency_ms", "tokens", "cost_usd", "score")
_NO_TOKENS = {"prompt": 0, "completion": 0, "total": 0}


def _missing_column(dataset: Dataset, column: str, flag: str) -> ValidationError:
    known = ", ".join(dataset.columns) or "none"
    message = f'the data has no column "{column}" (its columns: {known}); name one with {flag}'
    return ValidationError(f"data: {message}", errors=[{"path": flag, "message": message}])


def prepare_rows(dataset: Dataset, options: BatchOptions) -> list[dict[str, Any]]:
    """The rows to store: ``{"row", "line", "input"}``, or ``result`` for a row that cannot run.

    A CSV whose header lacks the column (or the expected column) is invalid as a whole:
    ValidationError before anything is stored."""
    column, expected = options.column, options.expected
    if dataset.format == "csv":
        if column not in dataset.columns:
            raise _missing_column(dataset, column, "--column")
        if expected is not None and expected not in dataset.columns:
            raise _missing_column(dataset, expected, "--expected")
    if not dataset.records:
        raise ValidationError("data: the dataset has no rows", errors=[{"path": "data", "message": "no rows"}])
    scoring = expected is not None
    rows: list[dict[str, Any]] = []
    for rec in dataset.records:
        out: dict[str, Any] = {"row": rec.row, "line": rec.line}
        problem = rec.error
        if problem is None:
            assert rec.data is not None
            if column not in rec.data:
                problem = f'{rec.where}: missing column "{column}"'
            elif expected is not None and expected not in rec.data:
                problem = f'{rec.where}: missing expected column "{expected}"'
        if problem is not None:
            out["input"] = None
            out["result"] = failed_result(ValidationError(problem), scoring=scoring)
        else:
            data = dict(rec.data or {})
            value = data.pop(column)
            data["user_input"] = value
            if expected == column:
                data[expected] = value
            out["input"] = data
        rows.append(out)
    return rows


def failed_result(error: AgentFlowError, *, scoring: bool, run_id: str | None = None) -> dict[str, Any]:
    """The result of a row that could not run at all."""
    return {
        "status": "failed",
        "run_id": run_id,
        "output": None,
        "error": error.to_dict(),
        "latency_ms": None,
        "tokens": dict(_NO_TOKENS),
        "cost_usd": 0.0,
        "score": 0.0 if scoring else None,
        "queue_wait_ms": 0.0,
    }


def state_result(
    final: dict[str, Any], *, output_key: str, scorer: Scorer | None, expected: Any = None
) -> dict[str, Any]:
    """A row's result from its run's final state (spec section 8)."""
    meta = final.get("metadata") or {}
    trace = meta.get("trace") or []
    status = meta.get("status", "failed")
    output = final.get(output_key)
    wait = 0.0
    for entry in trace:
        wait += entry.get("queue_wait_ms") or 0.0
    score = None
    if scorer is not None:
        score = scorer(output, expected) if status == "succeeded" else 0.0
    return {
        "status": status,
        "run_id": meta.get("run_id"),
        "output": output,
        "error": meta.get("error"),
        "latency_ms": meta.get("total_runtime_ms"),
        "tokens": meta.get("tokens") or dict(_NO_TOKENS),
        "cost_usd": meta.get("cost_usd", 0.0),
        "score": score,
        "queue_wait_ms": round(wait, 3),
        "trace": trace if status != "succeeded" else None,
    }


def row_line(result: dict[str, Any]) -> dict[str, Any]:
    """The public line of a recorded row (the keys of ``ROW_FIELDS``, in that order)."""
    return {k: result.get(k) for k in ROW_FIELDS}
