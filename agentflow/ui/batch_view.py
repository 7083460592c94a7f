"""The Batch page's logic: datasets in, progress and results out, two batches compared.

Plain functions the tests call without a browser (reading an upload or a path, guessing
the columns, the progress figures, the result and comparison tables, downloads), and the
few Streamlit pieces the page draws with (``show_*``). A batch runs through
:mod:`agentflow.batch` on a background thread (``BatchHandle``); everything shown is read
back from the store, so a batch started elsewhere (CLI, API, workers) shows the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from agentflow.batch import BatchHandle, Dataset, create_batch, read_dataset
from agentflow.batch.dataset import FORMATS
from agentflow.batch.export import results_frame, to_csv, to_jsonl
from agentflow.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]

#: Scorers offered in the form; ``json:`` takes a path typed next to it.
SCORER_CHOICES = ("exact", "contains", "regex", "json:")
_EXPECTED_NAMES = ("expected", "answer", "gold", "label", "target", "reference")


def load_dataset(upload_name: str | None, upload_bytes: bytes | None, path_text: str | None) -> Dataset | None:
    """The dataset from an upload, else from a file path (relative paths from the repository
    root, then the working directory); None when neither is given. ValidationError otherwise."""
    if upload_bytes is not None:
        return read_dataset(upload_bytes, name=upload_name)
    text = (path_text or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = ROOT / path if (ROOT / path).exists() else Path.cwd() / path
    if path.suffix.lower() not in FORMATS:
        raise ValidationError(f'"{text}": name a .csv or .jsonl file',
                              errors=[{"path": "data", "message": "not .csv or .jsonl"}])
    return read_dataset(path)


def guess_columns(ds: Dataset) -> tuple[str | None, str | None]:
    """(the input column, the expected column) a person most likely means."""
    cols = list(ds.columns)
    if not cols:
        return None, None
    lower = {c.lower(): c for c in cols}
    expected = next((lower[n] for n in _EXPECTED_NAMES if n in lower), None)
    column = lower.get("user_input") or next((c for c in cols if c != expected), cols[0])
    return column, expected


def preview(ds: Dataset, rows: int = 20) -> pd.DataFrame:
    """The first rows as a table (``error`` names a row that cannot run)."""
    frame = ds.frame(limit=rows)
    if not frame["error"].notna().any():
        frame = frame.drop(columns=["error"])
    return frame


def scorer_text(choice: str, json_path: str) -> str:
    return f"json:{json_path.strip()}" if choice == "json:" else choice


@dataclass(frozen=True)
class Progress:
    """What the live bar shows for a batch's counts."""

    fraction: float
    text: str
    done: int
    failed: int
    running: int
    pending: int
    waiting: int
    total: int
    status: str
    mean_score: float | None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


def progress_of(counts: Mapping[str, Any]) -> Progress:
    total = int(counts.get("total") or 0)
    done, failed = int(counts.get("done", 0)), int(counts.get("failed", 0))
    pending = int(counts.get("pending", 0)) + int(counts.get("dispatched", 0))
    finished = done + failed
    fraction = finished / total if total else 0.0
    status = str(counts.get("status"))
    text = f"{finished} of {total} rows · {done} done · {failed} failed · {status}"
    return Progress(
        fraction=min(1.0, fraction),
        text=text,
        done=done,
        failed=failed,
        running=int(counts.get("running", 0)),
        pending=pending,
        waiting=int(counts.get("waiting", 0)),
        total=total,
        status=status,
        mean_score=counts.get("mean_score"),
    )


def results_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return results_frame(rows)


def download(rows: Sequence[Mapping[str, Any]], fmt: str) -> tuple[bytes, str]:
    """File contents and MIME type of the results as ``jsonl`` or ``csv``."""
    if fmt == "csv":
        return to_csv(rows).encode("utf-8"), "text/csv"
    return to_jsonl(rows).encode("utf-8"), "application/x-ndjson"


def batch_label(b: Mapping[str, Any]) -> str:
    version = f" v{b['workflow_version']}" if b.get("workflow_version") else ""
    score = f" · score {b['mean_score']:.2f}" if b.get("mean_score") is not None else ""
    when = (b.get("created_at") or "")[:19].replace("T", " ")
    data = b.get("dataset") or "rows"
    return f"{b['workflow_id']}{version} · {data} · {b['status']}{score} · {when} · {b['batch_id'][:8]}"


def batches_table(batches: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    cols = [
        "batch",
        "workflow",
        "version",
        "dataset",
        "status",
        "total",
        "done",
        "failed",
        "pending",
        "mean score",
        "backend",
        "started",
    ]
    data = [
        {
            "batch": b["batch_id"],
            "workflow": b["workflow_id"],
            "version": b.get("workflow_version"),
            "dataset": b.get("dataset"),
            "status": b["status"],
            "total": b["total"],
            "done": b["done"],
            "failed": b["failed"],
            "pending": b["pending"],
            "mean score": b.get("mean_score"),
            "backend": b["backend"],
            "started": b.get("created_at"),
        }
        for b in batches
    ]
    return pd.DataFrame(data, columns=cols)


def _short(value: Any, limit: int = 120) -> str | None:
    if value is None:
        return None
    from agentflow.batch.scorers import output_text

    text = output_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compare_tables(cmp: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the two batches' totals side by side, the rows side by side)."""
    s = cmp["summary"]
    keys = [
        "workflow_id",
        "workflow_version",
        "status",
        "total",
        "succeeded",
        "failed",
        "mean_score",
        "mean_latency_ms",
        "tokens",
        "cost_usd",
    ]
    totals = pd.DataFrame({"A": [s["a"].get(k) for k in keys], "B": [s["b"].get(k) for k in keys]}, index=keys).astype(
        str
    )
    rows = []
    for r in cmp["rows"]:
        a, b = r["a"] or {}, r["b"] or {}
        rows.append(
            {
                "row": r["row"],
                "input": _short(r.get("input"), 60),
                "status A": a.get("status"),
                "status B": b.get("status"),
                "score A": a.get("score"),
                "score B": b.get("score"),
                "Δ score": r.get("score_delta"),
                "output A": _short(a.get("final_output")),
                "output B": _short(b.get("final_output")),
                "same output": r.get("same_output"),
                "latency A (ms)": a.get("latency_ms"),
                "latency B (ms)": b.get("latency_ms"),
            }
        )
    return totals, pd.DataFrame(rows)


def start(
    store: Any,
    document: Mapping[str, Any],
    dataset: Dataset,
    *,
    user: str | None,
    workflow_version: int | None,
    **options: Any,
) -> BatchHandle:
    """Store the batch (errors raise here, before anything runs) and run it in the background."""
    batch = create_batch(
        dict(document),
        dataset,
        store=store,
        user=user,
        workflow_version=workflow_version,
        dataset_name=dataset.name,
        **options,
    )
    return BatchHandle(store, batch["batch_id"]).start()


# -- Streamlit pieces ------------------------------------------------------------------------


def show_progress(p: Progress) -> None:
    st.progress(p.fraction, text=p.text)
    cols = st.columns(6)
    cols[0].metric("Done", p.done)
    cols[1].metric("Failed", p.failed)
    cols[2].metric("Running", p.running)
    cols[3].metric("Waiting on a queue", p.waiting)
    cols[4].metric("Pending", p.pending)
    cols[5].metric("Mean score", "—" if p.mean_score is None else f"{p.mean_score:.3f}")


def show_results(store: Any, batch_id: str, key: str) -> None:
    """The results table with scores, and downloads."""
    rows = store.batch_results(batch_id)
    if not rows:
        st.caption("No row recorded yet.")
        return
    st.dataframe(
        results_table(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "score": st.column_config.NumberColumn("score", format="%.2f"),
            "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.0f"),
            "cost_usd": st.column_config.NumberColumn("cost (USD)", format="%.6f"),
        },
    )
    c1, c2, _ = st.columns([1, 1, 3])
    for col, fmt in ((c1, "jsonl"), (c2, "csv")):
        data, mime = download(rows, fmt)
        col.download_button(
            f":material/download: {fmt.upper()}",
            data,
            file_name=f"batch-{batch_id}.{fmt}",
            mime=mime,
            key=f"{key}_dl_{fmt}",
        )


def show_compare(cmp: Mapping[str, Any]) -> None:
    s = cmp["summary"]
    cols = st.columns(5)
    cols[0].metric("Rows", s["rows"])
    cols[1].metric("Same output", s["same_output"])
    cols[2].metric("Improved", s["improved"])
    cols[3].metric("Regressed", s["regressed"])
    cols[4].metric("Status changed", s["status_changed"])
    totals, rows = compare_tables(cmp)
    st.dataframe(totals, width="stretch")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            "Δ score": st.column_config.NumberColumn("Δ score", format="%+.2f"),
            "same output": st.column_config.CheckboxColumn("same output"),
        },
    )
