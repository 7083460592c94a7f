"""Checkpointing cost per node: plain runs vs debug runs on the SQLite and Postgres savers.

Run: .venv/bin/python bench/debug.py [--pg postgresql://postgres@127.0.0.1:5432/test]

A 20-node chain of trivial nodes, run through AgentFlow's compiled graph with no
checkpointer (how every plain run goes), and with the store's SQLite and Postgres savers at
each durability mode; plus whole debug runs (``run_workflow(..., break_after=[last])``:
checkpointed at ``durability="sync"`` and recorded in the run history). Medians of rounds,
alternating the cases.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("AGENTFLOW_HOME", tempfile.mkdtemp(prefix="agentflow-bench-"))

from agentflow import run_workflow, validate_workflow
from agentflow.runtime.builder import compile_workflow
from agentflow.runtime.context import RunContext
from agentflow.store import open_store

N = 20


def chain_doc(n: int) -> dict:
    nodes = [{"id": "input", "type": "input"}]
    nodes += [{"id": f"n{i}", "type": "aggregator", "config": {"fields": {"v": "user_input"}}} for i in range(1, n)]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"id": "debug-chain", "nodes": nodes, "edges": edges, "settings": {"recursion_limit": n + 10}}


def per_node_us(fn, repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) / N * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=os.environ.get("AGENTFLOW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    spec = validate_workflow(chain_doc(N))
    compiled = compile_workflow(spec)
    tmp = Path(tempfile.mkdtemp(prefix="agentflow-bench-debug-"))
    schema = f"af_bench_{uuid.uuid4().hex[:8]}"
    import psycopg

    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    stores = {
        "SQLite": open_store(f"sqlite:///{tmp / 'bench.db'}"),
        "Postgres": open_store(f"{args.pg}?options=-csearch_path%3D{schema}"),
    }
    cases = {"none (plain run)": lambda: _graph_run(compiled, spec, None, None)}
    for name, store in stores.items():
        saver = store.checkpointer()
        for durability in ("sync", "async", "exit"):
            cases[f"{name} saver, durability={durability}"] = (
                lambda saver=saver, durability=durability: _graph_run(compiled, spec, saver, durability)
            )
        cases[f"{name}: whole debug run (run_workflow, break_after=last)"] = (
            lambda store=store: run_workflow(spec, "x", break_after=[f"n{N - 1}"], store=store)
        )
    results: dict[str, list[float]] = {k: [] for k in cases}
    try:
        for _ in range(3):
            for name, fn in cases.items():
                results[name].append(per_node_us(fn, args.repeats))
    finally:
        for store in stores.values():
            store.close()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    base = statistics.median(results["none (plain run)"])
    print(f"## Checkpointing cost ({N}-node chain, us per node, medians)\n")
    print("| case | us/node | extra us/node | x plain |")
    print("|---|---|---|---|")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.0f} | {med - base:+.0f} | {med / base:.2f}x |")


def _graph_run(compiled, spec, saver, durability):
    graph = compiled.graph(["user_input"], checkpointer=saver)
    config: dict = {"recursion_limit": N + 10}
    kw = {}
    if saver is not None:
        config["configurable"] = {"thread_id": uuid.uuid4().hex}
        kw["durability"] = durability
    for _ in graph.stream({"user_input": "x"}, config, context=RunContext(workflow=spec), stream_mode="values", **kw):
        pass


if __name__ == "__main__":
    main()
