"""The HTTP API's own CPU per run, without sockets: the app called directly over ASGI.

Run: .venv/bin/python bench/api_asgi.py [--rounds 5] [--requests 2000]

``bench/api.py`` measures what a client sees (uvicorn, sockets, a load generator sharing
the 2 cores); this one isolates what the app itself costs, so a change to the API can be
judged in a minute with little noise. Three apps, called in turns by 8 concurrent callers in
this one process: the API (``create_app()``, an API key, the SQLite store, every run
recorded in the history), the same API with its run fast path off (``fast_runs=False``:
FastAPI's routing and dependency solving for every run), and bench/api.py's floor (a bare
FastAPI endpoint over a raw LangGraph graph of the same four nodes). The figure is process
CPU time per request (the best of the rounds), logging at WARNING (the run's log line is not
what this measures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CALLERS = 8


def scope(path: str, body: bytes, token: str | None) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}


async def call(app: Any, sc: dict[str, Any], body: bytes) -> None:
    sent = False
    start: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.append(message)

    await app(sc, receive, send)
    if start[0]["status"] != 200:
        raise RuntimeError(f"HTTP {start[0]['status']}")


async def cpu_per_request_ms(app: Any, sc: dict[str, Any], body: bytes, n: int) -> float:
    async def caller(k: int) -> None:
        for _ in range(k):
            await call(app, sc, body)

    t = time.process_time()
    await asyncio.gather(*(caller(n // CALLERS) for _ in range(CALLERS)))
    return (time.process_time() - t) / (n // CALLERS * CALLERS) * 1000


async def measure(rounds: int, n: int) -> dict[str, list[float]]:
    import api as http_bench

    from agentflow.api.main import create_app
    from agentflow.store import default_store

    _, token = http_bench.saved_workflow(default_store())
    body = json.dumps({"input": "hi"}).encode()
    api_scope = scope("/api/v1/workflows/triage-demo/runs", body, token)
    cases = {
        "API": (create_app(), api_scope),
        "API, fast path off": (create_app(fast_runs=False), api_scope),
        "floor": (http_bench.make_floor_app(), scope("/run", body, None)),
    }
    out: dict[str, list[float]] = {name: [] for name in cases}
    apps = [app for app, _ in cases.values() if hasattr(app.state, "agentflow")]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        for app, sc in cases.values():  # warm up
            await cpu_per_request_ms(app, sc, body, 400)
        for _ in range(rounds):
            for name, (app, sc) in cases.items():
                out[name].append(await cpu_per_request_ms(app, sc, body, n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=2000, help="per app per round")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="agentflow-bench-asgi-"))
    os.environ.update(AGENTFLOW_HOME=str(home), AGENTFLOW_SECRET_KEY="bench-passphrase-0123456789",
                      LOG_LEVEL="WARNING")
    for key in ("AGENTFLOW_DB_URL", "AGENTFLOW_REDIS_URL"):
        os.environ.pop(key, None)
    res = asyncio.run(measure(args.rounds, args.requests))
    best = {name: min(v) for name, v in res.items()}
    print(f"Command: `.venv/bin/python bench/api_asgi.py --rounds {args.rounds} --requests {args.requests}`\n")
    print("| app | CPU per request (best of rounds) | all rounds | over the floor |")
    print("|---|---|---|---|")
    for name, values in res.items():
        over = "" if name == "floor" else f"+{best[name] - best['floor']:.3f} ms"
        print(f"| {name} | {best[name]:.3f} ms | {' '.join(f'{v:.3f}' for v in values)} | {over} |")


if __name__ == "__main__":
    main()
