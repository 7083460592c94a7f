"""Store benchmark: workflow save/load latency and run-history listing, on both backends.

Run from the repository root::

    .venv/bin/python bench/store.py [--runs 10000] [--repeat 50] [--pg-dsn postgresql://...]

Measures, per backend (SQLite file in a temporary folder; Postgres in a temporary schema of
``AGENTFLOW_TEST_PG_DSN``, dropped afterwards):

* saving a 500-node workflow document as a new version, and loading it back (latest);
* recording 10,000 runs through ``record_run`` (each with a ~2 KB final state), then
  listing the first page (50 rows, newest first), a filtered page, and a page deep in the
  history through the keyset cursor. The target for the first page is under 100 ms.

Writes the table to ``bench/results/store.md`` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentflow.store import Store, open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "store.md"
DEFAULT_PG = os.environ.get("AGENTFLOW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def workflow_500() -> dict:
    nodes = [{"id": "input", "type": "input"}]
    edges = []
    for i in range(1, 500):
        nodes.append(
            {
                "id": f"step-{i:03d}",
                "type": "llm",
                "source": "gpt",
                "queue": "openai-q",
                "config": {
                    "system": "You are a careful assistant. Answer in one short paragraph.",
                    "prompt": f"Step {i}: refine the previous answer: {{text_result}}",
                    "output_key": "text_result",
                },
                "retry": {"max_attempts": 3, "backoff_s": 0.5},
            }
        )
        edges.append({"from": nodes[-2]["id"], "to": nodes[-1]["id"]})
    edges.append({"from": nodes[-1]["id"], "to": "END"})
    return {
        "schema_version": 1,
        "id": "bench-500",
        "name": "Five hundred nodes",
        "sources": [{"id": "gpt", "kind": "llm", "provider": "echo"}],
        "queues": [{"id": "openai-q", "max_requests_per_minute": 300}],
        "nodes": nodes,
        "edges": edges,
    }


def run_state(i: int, t0: datetime) -> dict:
    started = t0 + timedelta(seconds=i)
    trace = [
        {"node": n, "type": "llm", "status": "succeeded", "latency_ms": 12.5, "attempts": 1}
        for n in ("input", "router", "answer", "agg")
    ]
    return {
        "user_input": f"question number {i}",
        "text_result": "An answer of moderate length. " * 40,
        "errors": [],
        "metadata": {
            "run_id": f"bench-{i:06d}",
            "workflow_id": f"wf-{i % 5}",
            "status": "failed" if i % 10 == 0 else "succeeded",
            "total_runtime_ms": 50.0,
            "nodes_executed": ["input", "router", "answer", "agg"],
            "trace": trace,
            "tokens": {"prompt": 20, "completion": 40, "total": 60},
            "cost_usd": 0.00003,
            "started_at": started.isoformat(),
            "ended_at": (started + timedelta(milliseconds=50)).isoformat(),
        },
    }


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.2f} / {p95:.2f} / {ordered[-1]:.2f}"


def bench(store: Store, runs: int, repeat: int) -> dict[str, str]:
    doc = workflow_500()
    size_kb = len(__import__("json").dumps(doc)) / 1024
    results: dict[str, str] = {}
    store.save_workflow(doc, author="bench")
    results[f"save 500-node workflow ({size_kb:.0f} KB)"] = summary(
        timed(lambda: store.save_workflow(doc, author="bench", message="bench"), repeat)
    )
    results["load it (latest version)"] = summary(
        timed(lambda: store.get_workflow("bench-500"), repeat)
    )
    results["load it (version 1)"] = summary(
        timed(lambda: store.get_workflow("bench-500", 1), repeat)
    )

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t = time.perf_counter()
    for i in range(runs):
        store.record_run(run_state(i, t0), user="bench")
    insert_s = time.perf_counter() - t
    results[f"record_run x {runs:,} (total time, rate)"] = f"{insert_s:.1f} s ({runs / insert_s:,.0f}/s)"

    first: list[float] = []
    t = time.perf_counter()
    page, cursor = store.list_runs(limit=50)
    first.append((time.perf_counter() - t) * 1000)
    assert page[0]["run_id"] == f"bench-{runs - 1:06d}" and cursor
    results[f"list_runs first page of {runs:,} (first call)"] = f"{first[0]:.2f}"
    results[f"list_runs first page of {runs:,}"] = summary(
        timed(lambda: store.list_runs(limit=50), repeat)
    )
    results["list_runs workflow+status filter"] = summary(
        timed(lambda: store.list_runs(workflow="wf-3", status="succeeded", limit=50), repeat)
    )
    deep = None
    for _ in range(100):  # walk 100 pages in: page 101 costs what page 1 costs
        _, deep = store.list_runs(limit=50, cursor=deep)
    results["list_runs page 101 (keyset cursor)"] = summary(
        timed(lambda: store.list_runs(limit=50, cursor=deep), repeat)
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--pg-dsn", default=DEFAULT_PG)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    import psycopg
    from psycopg import sql

    tables: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AGENTFLOW_HOME"] = tmp
        os.environ.pop("AGENTFLOW_SECRET_KEY", None)
        with open_store(f"sqlite:///{tmp}/bench.db") as store:
            tables["SQLite"] = bench(store, args.runs, args.repeat)

        schema = f"af_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        try:
            sep = "&" if "?" in args.pg_dsn else "?"
            url = f"{args.pg_dsn}{sep}options=-csearch_path%3D{schema}"
            with open_store(url) as store:
                tables["Postgres"] = bench(store, args.runs, args.repeat)
        finally:
            with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    rows = list(tables["SQLite"])
    lines = [
        "# Store benchmark",
        "",
        "Command (from the repository root):",
        "",
        "```",
        f".venv/bin/python bench/store.py --runs {args.runs} --repeat {args.repeat}",
        "```",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version} (file, WAL), PostgreSQL {pg_version} (local, TCP). "
        f"Date: {datetime.now(UTC):%Y-%m-%d}.",
        "",
        f"Latencies in ms as median / p95 / max over {args.repeat} calls, unless noted.",
        "",
        "| operation | SQLite | Postgres |",
        "|---|---|---|",
        *(f"| {r} | {tables['SQLite'][r]} | {tables['Postgres'][r]} |" for r in rows),
        "",
        "Target: the first page of 10,000 runs in under 100 ms on both backends.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
