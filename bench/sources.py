"""Source nodes against their bare clients: ``llm/openai`` vs the openai SDK, ``db/postgres`` vs psycopg.

Run: .venv/bin/python bench/sources.py [--quick] [--rounds N] [--calls N] [--server thread] [--no-pg]
     [--profile] [--no-write]

1. LLM: one local OpenAI-compatible server (``tests.servers.OpenAICompatServer``, no added
   delay; in a child process by default so it shares no GIL with the client, ``--server
   thread`` for in-process), the same request on every side:
   (a) the bare SDK, ``openai.OpenAI(base_url=..., api_key="x").chat.completions.create``;
   (c) the provider's ``complete()`` called directly (no runtime);
   (b) ``run_workflow`` of ``input -> llm`` (``llm/openai`` source, ``max_retries: 0``);
   (e) the same workflow on the offline ``echo`` provider: the runtime's cost without I/O.
   p50 per call of each, and b - a (the llm node's whole overhead), split into c - a
   (provider) and b - c (runtime). The same for streaming: SDK ``stream=True`` consumed
   fully vs ``provider.stream()`` vs ``stream_workflow`` consumed fully. Target: b - a
   under 1 ms per call; above it (or with ``--profile``), a cProfile of the workflow side
   (all threads) against the bare SDK says where the time goes.
2. PostgreSQL (``AGENTFLOW_TEST_PG_DSN``, default ``postgresql://postgres@127.0.0.1:5432/test``):
   a 10,000-row table (integer, text, numeric, timestamptz) under a unique name; p50 of a
   1-row and the 10,000-row query through raw psycopg (one autocommit connection, rows as
   dicts), raw psycopg plus the provider's JSON-safe row conversion, ``provider.query()``
   and ``run_workflow`` of ``input -> db`` (``max_rows`` 10,000); ratios to raw. The table
   is dropped at the end.

Sides alternate in rounds (the order rotates each round) so machine drift hits all alike;
each side's p50 is over all its calls, and the per-round p50s are printed to show spread.
Run summaries (logged at INFO to stderr) go to a file in the temporary AGENTFLOW_HOME.
The report is printed and written to ``bench/results/sources.md`` (not with ``--quick``
or ``--no-write``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AGENTFLOW_HOME", tempfile.mkdtemp(prefix="agentflow-bench-"))

import openai  # noqa: E402
import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from agentflow import run_workflow, validate_workflow  # noqa: E402
from agentflow.logs import flush_logs  # noqa: E402
from agentflow.runtime.executor import stream_workflow  # noqa: E402
from agentflow.sources._pg_values import json_safe  # noqa: E402
from agentflow.sources.base import LLMRequest  # noqa: E402
from agentflow.sources.clients import create_provider  # noqa: E402
from agentflow.spec.models import SourceSpec  # noqa: E402
from tests.servers import OpenAICompatServer  # noqa: E402

PG_DSN = os.environ.get("AGENTFLOW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
DSN_ENV = "AGENTFLOW_BENCH_PG_DSN"
MODEL = "gpt-4o-mini"
#: The echo server answers "echo: <prompt>", one word per streamed chunk.
PROMPT = "summarise the quarterly numbers for the north region in two short sentences please"
RESULTS = ROOT / "bench" / "results" / "sources.md"

Side = tuple[str, Callable[[], Any]]


# -- measuring ------------------------------------------------------------------------


def rounds_of(
    sides: list[Side], rounds: int, calls: int, between: Callable[[], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-call seconds of each side: ``rounds`` rounds of ``calls`` calls each, order rotated."""
    samples: dict[str, list[float]] = {name: [] for name, _ in sides}
    per_round: dict[str, list[float]] = {name: [] for name, _ in sides}
    for r in range(rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]
        for name, fn in order:
            got = []
            for _ in range(calls):
                t = time.perf_counter()
                fn()
                got.append(time.perf_counter() - t)
            samples[name] += got
            per_round[name].append(statistics.median(got))
            if between is not None:
                between()
    out = {}
    for name, xs in samples.items():
        xs_sorted = sorted(xs)
        out[name] = {
            "p50": statistics.median(xs),
            "p90": xs_sorted[int(0.9 * (len(xs) - 1))],
            "n": len(xs),
            "rounds": per_round[name],
        }
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def spread(stats: dict[str, Any]) -> str:
    return " / ".join(f"{x * 1000:.2f}" for x in stats["rounds"])


# -- 1. llm ---------------------------------------------------------------------------


def llm_doc(base_url: str) -> dict[str, Any]:
    return {
        "id": "bench-llm",
        "sources": [
            {
                "id": "model",
                "kind": "llm",
                "provider": "openai",
                "config": {"model": MODEL, "base_url": base_url, "api_key_env": None, "max_retries": 0},
            }
        ],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "answer", "type": "llm", "source": "model", "config": {"prompt": "{user_input}"}},
        ],
        "edges": [{"from": "input", "to": "answer"}],
    }


def echo_doc() -> dict[str, Any]:
    """The same workflow on the offline ``echo`` provider: the runtime's cost with no I/O."""
    doc = llm_doc("http://unused")
    doc["id"] = "bench-llm-echo"
    doc["sources"] = [{"id": "model", "kind": "llm", "provider": "echo", "config": {}}]
    return doc


def bench_llm(base_url: str, rounds: int, calls: int, between: Callable[[], None] | None) -> dict[str, Any]:
    expected = f"echo: {PROMPT}"
    messages = [{"role": "user", "content": PROMPT}]
    sdk = openai.OpenAI(base_url=base_url, api_key="x")
    doc = llm_doc(base_url)
    spec = validate_workflow(doc)
    echo_spec = validate_workflow(echo_doc())
    provider = create_provider(SourceSpec.model_validate(doc["sources"][0]), None)
    request = LLMRequest(prompt=PROMPT)

    def sdk_call():
        resp = sdk.chat.completions.create(model=MODEL, messages=messages)
        assert resp.choices[0].message.content == expected

    def provider_call():
        assert provider.complete(request).text == expected

    node_ms: list[float] = []

    def workflow_call():
        state = run_workflow(spec, {"user_input": PROMPT})
        assert state["text_result"] == expected, state
        node_ms.append(state["metadata"]["trace"][-1]["latency_ms"])

    def echo_call():
        assert run_workflow(echo_spec, {"user_input": PROMPT})["text_result"]

    def echo_stream():
        events = list(stream_workflow(echo_spec, {"user_input": PROMPT}))
        assert events[-1]["type"] == "run_end" and events[-1]["data"]["text_result"], events[-1]

    def sdk_stream():
        parts = []
        with sdk.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        ) as chunks:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        assert "".join(parts) == expected

    def provider_stream():
        chunks = list(provider.stream(request))
        assert chunks[-1].response.text == expected

    def workflow_stream():
        events = list(stream_workflow(spec, {"user_input": PROMPT}))
        assert events[-1]["type"] == "run_end" and events[-1]["data"]["text_result"] == expected, events[-1]

    plain = [("sdk", sdk_call), ("provider", provider_call), ("workflow", workflow_call), ("echo", echo_call)]
    streamed = [
        ("sdk", sdk_stream),
        ("provider", provider_stream),
        ("workflow", workflow_stream),
        ("echo", echo_stream),
    ]
    for _, fn in plain + streamed:  # warm-up: connections, imports, build cache
        for _ in range(20):
            fn()
    del node_ms[:]  # only the measured rounds count (not warm-ups or the profiler's calls)
    plain_stats = rounds_of(plain, rounds, calls, between=between)
    measured_node_ms = list(node_ms)
    out = {
        "plain": plain_stats,
        "stream": rounds_of(streamed, rounds, calls, between=between),
        "chunks": len(PROMPT.split()) + 1,
        "node_ms": measured_node_ms,
        "workflow_call": workflow_call,
        "workflow_stream": workflow_stream,
        "sdk_call": sdk_call,
        "sdk_stream": sdk_stream,
    }
    out["close"] = lambda: (provider.close(), sdk.close())
    return out


def _where(path: str) -> str:
    """The package a profiled function belongs to."""
    if "/agentflow/" in path:
        return "agentflow"
    if "/site-packages/" in path:
        top = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        return {
            "httpx2": "httpx2/h11/httpcore",
            "h11": "httpx2/h11/httpcore",
            "httpcore": "httpx2/h11/httpcore",
            "httpcore2": "httpx2/h11/httpcore",
            "httpx": "httpx2/h11/httpcore",
        }.get(top, top)
    if path == "~":
        return "builtins (C)"
    return "stdlib"


def _short(path: str) -> str:
    if "/agentflow/" in path:
        return "agentflow/" + path.split("/agentflow/", 1)[1]
    for marker in ("/site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _run_profile(fn: Callable[[], Any], calls: int) -> pstats.Stats:
    """Profile ``calls`` calls of ``fn`` on this thread and on every thread started meanwhile
    (LangGraph runs the nodes of a streamed run on worker threads of its own)."""
    extra: list[cProfile.Profile] = []

    def on_new_thread(frame: Any, event: str, arg: Any) -> None:
        prof = cProfile.Profile()  # replaces this hook for the rest of the thread
        extra.append(prof)
        prof.enable()

    main = cProfile.Profile()
    threading.setprofile(on_new_thread)
    main.enable()
    try:
        for _ in range(calls):
            fn()
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    st = pstats.Stats(main, stream=io.StringIO())
    for prof in extra:
        with contextlib.suppress(TypeError):  # a thread that recorded nothing
            st.add(prof)
    return st


def _by_package(st: pstats.Stats, calls: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for (path, _line, _func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        key = _where(path)
        out[key] = out.get(key, 0.0) + tt / calls
    return out


def profile(name: str, fn: Callable[[], Any], base: Callable[[], Any], calls: int, *, threaded: bool = False) -> str:
    """cProfile (main thread) of ``fn`` and of the bare ``base``: own time by package, and
    agentflow's own functions by cumulative time."""
    st = _run_profile(fn, calls)
    bst = _run_profile(base, calls)
    pkg, bpkg = _by_package(st, calls), _by_package(bst, calls)
    lines = [
        f"### {name}",
        "",
        f"cProfile, {calls} calls each, all threads: {st.total_tt / calls * 1000:.2f} ms of profiled time per call "  # type: ignore[attr-defined]
        f"vs {bst.total_tt / calls * 1000:.2f} ms for the bare SDK (profiler overhead included"  # type: ignore[attr-defined]
        + (
            "; the node runs on a LangGraph worker thread while the caller waits on a lock, so the threads' "
            "times add up to more than the wall time)."
            if threaded
            else ")."
        ),
        "",
        "Own time per call by package (us):",
        "",
        "| package | workflow | bare SDK | difference |",
        "|---|---|---|---|",
    ]
    for key in sorted(set(pkg) | set(bpkg), key=lambda k: -(pkg.get(k, 0) - bpkg.get(k, 0))):
        a, b = pkg.get(key, 0.0), bpkg.get(key, 0.0)
        if max(a, b) * 1e6 >= 5:
            lines.append(f"| {key} | {a * 1e6:.0f} | {b * 1e6:.0f} | {(a - b) * 1e6:+.0f} |")
    rows = [
        (path, line, func, nc, tt, ct)
        for (path, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items()  # type: ignore[attr-defined]
    ]
    lines += [
        "",
        "agentflow functions by cumulative time per call (us; cumulative includes the calls below them):",
        "",
        "| function | calls/run | own | cumulative |",
        "|---|---|---|---|",
    ]
    ours = [r for r in rows if "/agentflow/" in r[0]]
    for path, line, func, nc, tt, ct in sorted(ours, key=lambda r: -r[5])[:22]:
        lines.append(
            f"| `{_short(path)}:{line} {func}` | {nc / calls:g} | {tt / calls * 1e6:.0f} | {ct / calls * 1e6:.0f} |"
        )
    lines += [
        "",
        "Outside agentflow, functions of the workflow side by own time per call (us):",
        "",
        "| function | calls/run | own | cumulative |",
        "|---|---|---|---|",
    ]
    for path, line, func, nc, tt, ct in sorted([r for r in rows if "/agentflow/" not in r[0]], key=lambda r: -r[4])[
        :12
    ]:
        lines.append(
            f"| `{_short(path)}:{line} {func}` | {nc / calls:g} | {tt / calls * 1e6:.0f} | {ct / calls * 1e6:.0f} |"
        )
    return "\n".join(lines)


# -- the server -----------------------------------------------------------------------


class ServerProcess:
    """The same OpenAICompatServer in a child process (no GIL shared with the client)."""

    def __enter__(self) -> ServerProcess:
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.servers import OpenAICompatServer\n"
            "srv = OpenAICompatServer().start()\n"
            "print(srv.base_url, flush=True)\n"
            "sys.stdin.read()\n"
            "srv.stop()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.base_url = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=10)


# -- 2. postgres ----------------------------------------------------------------------


def pg_doc(sql: str, max_rows: int) -> dict[str, Any]:
    return {
        "id": "bench-db",
        "sources": [{"id": "pg", "kind": "db", "provider": "postgres", "config": {"dsn_env": DSN_ENV}}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "rows", "type": "db", "source": "pg", "config": {"query": sql, "max_rows": max_rows}},
        ],
        "edges": [{"from": "input", "to": "rows"}],
    }


def make_table(conn: psycopg.Connection, table: str, n: int) -> None:
    conn.execute(
        f"CREATE TABLE {table} (id integer PRIMARY KEY, name text NOT NULL, amount numeric(12, 2) NOT NULL, "
        "created timestamptz NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO {table} SELECT g, 'customer ' || g || ' ' || md5(g::text), "
        "round((g * 37 %% 100000) / 7.0, 2), timestamptz '2026-01-01 00:00+00' + g * interval '17 minutes' "
        "FROM generate_series(1, %s) AS g",
        (n,),
    )
    conn.execute(f"ANALYZE {table}")


def bench_pg(rounds: int, calls_small: int, rounds_big: int, calls_big: int, n_rows: int) -> dict[str, Any]:
    os.environ[DSN_ENV] = PG_DSN
    table = f"bench_sources_{os.getpid()}_{int(time.time())}"
    admin = psycopg.connect(PG_DSN, autocommit=True)
    results: dict[str, Any] = {"table": table, "server": admin.info.server_version, "rows": n_rows}
    providers = []
    try:
        make_table(admin, table, n_rows)
        raw = psycopg.connect(PG_DSN, autocommit=True, row_factory=dict_row)
        raw_tuples = psycopg.connect(PG_DSN, autocommit=True)
        cases = [
            ("1 row", f"SELECT id, name, amount, created FROM {table} LIMIT 1", 1, rounds, calls_small),
            (f"{n_rows:,} rows", f"SELECT id, name, amount, created FROM {table}", n_rows, rounds_big, calls_big),
        ]
        for label, sql, expect, n_rounds, calls in cases:
            doc = pg_doc(sql, n_rows)
            spec = validate_workflow(doc)
            provider = create_provider(SourceSpec.model_validate(doc["sources"][0]), None)
            providers.append(provider)

            def raw_call(sql=sql, expect=expect):
                rows = raw.execute(sql).fetchall()
                assert len(rows) == expect

            def raw_safe_call(sql=sql, expect=expect):
                cur = raw_tuples.execute(sql)
                cols = [c.name for c in cur.description or ()]
                rows = [{c: json_safe(v) for c, v in zip(cols, row, strict=False)} for row in cur.fetchall()]
                assert len(rows) == expect

            def provider_call(sql=sql, expect=expect, provider=provider):
                res = provider.query(sql, {}, max_rows=n_rows, timeout_s=None)
                assert len(res.rows) == expect and not res.truncated

            def workflow_call(spec=spec, expect=expect):
                state = run_workflow(spec, {"user_input": "x"})
                assert len(state["db_result"]) == expect, state["metadata"]

            sides = [
                ("raw", raw_call),
                ("raw_safe", raw_safe_call),
                ("provider", provider_call),
                ("workflow", workflow_call),
            ]
            for _, fn in sides:
                for _ in range(5 if expect > 1 else 20):
                    fn()
            results[label] = rounds_of(sides, n_rounds, calls)
        raw.close()
        raw_tuples.close()
    finally:
        for p in providers:
            p.close()
        admin.execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()
    return results


# -- report ---------------------------------------------------------------------------


def git_state() -> str:
    """HEAD and whether the measured code had uncommitted changes (read-only git calls)."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git(
        "diff", "--name-only", "HEAD", "--", "agentflow/runtime", "agentflow/sources", "agentflow/nodes"
    ).split()
    return f"commit {head}" + (f" with uncommitted changes in {', '.join(dirty)}" if dirty else "")


def report(args: argparse.Namespace, llm: dict[str, Any], pg: dict[str, Any] | None, profs: list[str]) -> str:
    cmd = ".venv/bin/python bench/sources.py" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]))
    out = ["# Source nodes vs their bare clients", "", "Command (from the repository root):", "", "```", cmd, "```", ""]
    pg_ver = pg["server"] if pg else None
    out.append(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other work), Python "
        f"{platform.python_version()}, openai {openai.__version__}, psycopg {psycopg.__version__} "
        f"(libpq {psycopg.pq.version()}, {psycopg.pq.__impl__})"
        + (f", PostgreSQL {pg_ver // 10000}.{pg_ver % 10000} (local, TCP)" if pg_ver else "")
        + f". Date: {dt.date.today().isoformat()}. Code: {git_state()}."
    )
    out.append("")
    out.append(
        f"Times in ms per call: p50 (p90) over all calls of {args.rounds} alternating rounds "
        f"({args.pg_big_rounds} for the {10_000:,}-row query; the order of the sides rotates each round); "
        '"rounds" lists each round\'s p50, to show the spread.'
    )
    out.append("")
    where = "a child process" if args.server == "process" else "a thread of this process (shares the GIL)"
    out.append("## 1. `llm` node vs the bare openai SDK")
    out.append("")
    out.append(
        f"Server: `tests.servers.OpenAICompatServer` in {where}, no added delay. Prompt of "
        f"{len(PROMPT.split())} words; the reply echoes it ({llm['chunks']} content chunks when streamed). "
        "The workflow is input -> llm with an `llm/openai` source (`max_retries: 0`), validated once."
    )
    out.append("")
    out.append("| mode | side | p50 (p90) | rounds | calls |")
    out.append("|---|---|---|---|---|")
    names = {
        "plain": {
            "sdk": "(a) bare SDK `chat.completions.create`",
            "provider": "(c) provider `complete()` directly",
            "workflow": "(b) `run_workflow`, input -> llm",
            "echo": "(e) `run_workflow`, input -> llm on the offline `echo` provider (runtime only, no I/O)",
        },
        "stream": {
            "sdk": "(a) bare SDK `stream=True`, consumed",
            "provider": "(c) provider `stream()` directly, consumed",
            "workflow": "(b) `stream_workflow`, input -> llm, consumed",
            "echo": "(e) `stream_workflow` on the `echo` provider (runtime only, no I/O)",
        },
    }
    for mode in ("plain", "stream"):
        for side in ("sdk", "provider", "workflow", "echo"):
            s = llm[mode][side]
            out.append(f"| {mode} | {names[mode][side]} | {ms(s['p50'])} ({ms(s['p90'])}) | {spread(s)} | {s['n']} |")
    out.append("")
    node_p50 = statistics.median(llm["node_ms"]) / 1000
    sdk_p50 = llm["plain"]["sdk"]["p50"]
    out.append(
        f"The llm node itself (its trace `latency_ms`: the node wrapper, template rendering, queue and "
        f"budget checks, the provider call) takes **{ms(node_p50)} ms** p50 against **{ms(sdk_p50)} ms** "
        f"for the bare SDK call: **{ms(node_p50 - sdk_p50)} ms of node overhead per call** (target < 1 ms). "
        "What (b) adds beyond that is the run around the node (LangGraph's per-run loop, validation "
        "cache lookups, the result's metadata): the engine's cost per run, which `bench/engine_overhead.py` "
        "holds against raw LangGraph."
    )
    out.append("")
    out.append("| mode | run overhead b - a | provider share c - a | runtime share b - c | b - a < 1 ms |")
    out.append("|---|---|---|---|---|")
    for mode in ("plain", "stream"):
        a, b, c = (llm[mode][k]["p50"] for k in ("sdk", "workflow", "provider"))
        verdict = "met" if b - a < 0.001 else "**missed**"
        out.append(f"| {mode} | {ms(b - a)} ms | {ms(c - a)} ms | {ms(b - c)} ms | {verdict} |")
    if pg:
        out.append("")
        out.append(
            f"## 2. `db` node vs raw psycopg ({pg['rows']:,}-row table: integer, text, numeric(12,2), timestamptz)"
        )
        out.append("")
        out.append(
            "Raw: one autocommit connection, `row_factory=dict_row`, `execute(sql).fetchall()`. "
            "Raw + JSON-safe: tuples from a second autocommit connection, then the provider's own row "
            "conversion (`{col: json_safe(v)}`). Provider: `PostgresDB.query()` (pooled connection, "
            "`BEGIN READ ONLY; SET LOCAL statement_timeout`, `cursor.stream`, `ROLLBACK`, JSON-safe rows). "
            f"Workflow: `run_workflow` of input -> db (`db/postgres`, `dsn_env`), `max_rows` {pg['rows']:,}."
        )
        out.append("")
        out.append("| query | side | p50 (p90) | / raw | rounds | calls |")
        out.append("|---|---|---|---|---|---|")
        labels = {
            "raw": "raw psycopg, dicts",
            "raw_safe": "raw psycopg + JSON-safe dicts",
            "provider": "provider `query()`",
            "workflow": "`run_workflow` input -> db",
        }
        for label in ("1 row", f"{pg['rows']:,} rows"):
            r = pg[label]
            base = r["raw"]["p50"]
            for side in ("raw", "raw_safe", "provider", "workflow"):
                st = r[side]
                out.append(
                    f"| {label} | {labels[side]} | {ms(st['p50'])} ({ms(st['p90'])}) | {st['p50'] / base:.2f}x | "
                    f"{spread(st)} | {st['n']} |"
                )
    if profs:
        out.append("")
        out.append("## Profile of the llm node")
        for prof in profs:
            out.append("")
            out.append(prof)
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few calls, no results file (smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100, help="llm calls per side per round")
    parser.add_argument("--pg-calls", type=int, default=100, help="1-row queries per side per round")
    parser.add_argument("--pg-big-rounds", type=int, default=9, help="rounds of the 10,000-row query")
    parser.add_argument("--pg-big-calls", type=int, default=10, help="10,000-row queries per side per round")
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="run the OpenAI-compatible server in a child process (default: no GIL shared with the "
        "client, like a real server) or in a thread of this process",
    )
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL part")
    parser.add_argument("--profile", action="store_true", help="profile the llm node even under 1 ms")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls, args.pg_calls, args.pg_big_rounds, args.pg_big_calls = 2, 20, 20, 2, 4

    # Run summaries are logged at INFO to stderr (the default): keep them off the console.
    log_path = Path(os.environ["AGENTFLOW_HOME"]) / "bench-stderr.log"
    profs: list[str] = []
    with open(log_path, "a") as log_file, contextlib.redirect_stderr(log_file):
        server = ServerProcess() if args.server == "process" else OpenAICompatServer()
        with server as srv:
            between = None if args.server == "process" else srv.reset  # keep the request log small
            llm = bench_llm(srv.base_url, args.rounds, args.calls, between)
            n = 20 if args.quick else 200
            for mode, wf, base in (("plain", "workflow_call", "sdk_call"), ("stream", "workflow_stream", "sdk_stream")):
                over = llm[mode]["workflow"]["p50"] - llm[mode]["sdk"]["p50"]
                if over >= 0.001 or args.profile:
                    title = f"{mode}: `{'run_workflow' if mode == 'plain' else 'stream_workflow'}` (overhead {over * 1000:.2f} ms)"
                    profs.append(profile(title, llm[wf], llm[base], n, threaded=mode == "stream"))
            llm["close"]()
        pg = None if args.no_pg else bench_pg(args.rounds, args.pg_calls, args.pg_big_rounds, args.pg_big_calls, 10_000)
        flush_logs()
    text = report(args, llm, pg, profs)
    print(text)
    if not (args.quick or args.no_write):
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"(written to {RESULTS.relative_to(ROOT)}; run logs in {log_path})")


if __name__ == "__main__":
    main()
