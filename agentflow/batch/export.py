"""Result lines as files and tables: JSON Lines, CSV, and a pandas DataFrame.

JSON Lines keep every value as it is. In CSV and the DataFrame a non-string output is its
JSON text, an error is its message, and tokens spread over three columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agentflow.batch.rows import row_line
from agentflow.batch.scorers import output_text

__all__ = ["FRAME_COLUMNS", "results_frame", "to_csv", "to_jsonl"]

FRAME_COLUMNS = ("row", "status", "score", "final_output", "error", "latency_ms", "tokens_prompt",
                 "tokens_completion", "tokens_total", "cost_usd", "run_id")


def to_jsonl(results: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row_line(r), ensure_ascii=False, default=str) + "\n" for r in results)


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    tokens = r.get("tokens") or {}
    error = r.get("error")
    output = r.get("final_output")
    return {
        "row": r.get("row"),
        "status": r.get("status"),
        "score": r.get("score"),
        "final_output": None if output is None else output_text(output),
        "error": (error.get("message") if isinstance(error, dict) else error) if error else None,
        "latency_ms": r.get("latency_ms"),
        "tokens_prompt": tokens.get("prompt"),
        "tokens_completion": tokens.get("completion"),
        "tokens_total": tokens.get("total"),
        "cost_usd": r.get("cost_usd"),
        "run_id": r.get("run_id"),
    }


def results_frame(results: Iterable[dict[str, Any]]) -> Any:
    """A pandas DataFrame, one row per result, columns :data:`FRAME_COLUMNS`."""
    import pandas as pd

    return pd.DataFrame([_flat(r) for r in results], columns=list(FRAME_COLUMNS))


def to_csv(results: Iterable[dict[str, Any]]) -> str:
    return results_frame(results).to_csv(index=False)
