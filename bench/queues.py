"""Queue limiters at 50/s: ours (in-process, over Redis in one and in two processes) against
aiolimiter, limits (moving window, memory and Redis) and pyrate-limiter, in the same run.

For each: 1,000 acquisitions by 200 concurrent asyncio tasks against a 50-per-second limit
(two processes: 500 by 100 tasks each). Reported: the most grants any 1-second window holds
(as observed by the callers, on the wall clock; for ours also on the limiter's own clock),
the most any 100 ms holds after the first window (a limiter that lets the whole window's
quota go each time the window turns over shows 50; a paced one 5), the rate achieved after
the first window's burst and the sustained rate over whole windows after the first, as
shares of the limit, and the cost of one uncontended acquire (sequential calls, limit far
away), at weight 1 and 1,000.

    .venv/bin/python bench/queues.py            # full run, writes bench/results/queues.md
    .venv/bin/python bench/queues.py --quick    # 300 acquisitions, no results file

Redis: ``AGENTFLOW_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0); every key this
benchmark writes has a unique prefix and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import redis.asyncio as aredis  # noqa: E402

from agentflow.runtime.queue_redis import RedisQueueManager, default_guard_ms  # noqa: E402
from agentflow.runtime.rate_limiter import MemoryQueueLimiter  # noqa: E402
from agentflow.spec.models import QueueSpec  # noqa: E402

RATE = 50
REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]

Acquire = Callable[[], Awaitable[int | None]]
Factory = Callable[[str], Awaitable[tuple[Acquire, Callable[[], Awaitable[None]]]]]


# -- the contenders: each factory returns (acquire, cleanup) for a key ------------------------


async def ours_memory(key: str):
    lim = MemoryQueueLimiter(QueueSpec(id=key, max_messages_per_second=RATE))

    async def acquire() -> int:
        return (await lim.aacquire()).admitted_at_ns

    async def cleanup() -> None:
        return None

    return acquire, cleanup


async def ours_redis(key: str):
    mgr = RedisQueueManager(REDIS_URL)
    lim = mgr.get(QueueSpec(id=key, max_messages_per_second=RATE))

    async def acquire() -> int:
        return (await lim.aacquire()).admitted_at_ns

    async def cleanup() -> None:
        lim.purge()
        mgr.close()

    return acquire, cleanup


async def aiolimiter_bucket(key: str):
    from aiolimiter import AsyncLimiter

    lim = AsyncLimiter(RATE, 1)

    async def acquire() -> None:
        await lim.acquire()

    async def cleanup() -> None:
        return None

    return acquire, cleanup


def _limits_acquire(limiter: Any, item: Any, key: str) -> Acquire:
    async def acquire() -> None:
        while not await limiter.hit(item, key):
            stats = await limiter.get_window_stats(item, key)
            await asyncio.sleep(max(0.0005, stats.reset_time - time.time()))

    return acquire


async def limits_memory(key: str):
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(MemoryStorage())

    async def cleanup() -> None:
        return None

    return _limits_acquire(limiter, RateLimitItemPerSecond(RATE), key), cleanup


async def limits_redis(key: str):
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    pool = aredis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=30)
    prefix = f"agentflow:bench:{key}"
    storage = RedisStorage("async+" + REDIS_URL, implementation="redispy", key_prefix=prefix, connection_pool=pool)
    limiter = MovingWindowRateLimiter(storage)

    async def cleanup() -> None:
        _delete_prefix(prefix)

    return _limits_acquire(limiter, RateLimitItemPerSecond(RATE), key), cleanup


async def pyrate_memory(key: str):
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(RATE, Duration.SECOND)]))

    async def acquire() -> None:
        await limiter.try_acquire_async(key)

    async def cleanup() -> None:
        return None

    return acquire, cleanup


async def pyrate_redis(key: str):
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    pool = aredis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=30)
    client = aredis.Redis(connection_pool=pool)
    bucket_key = f"agentflow:bench:{key}"
    bucket = await RedisBucket.init([Rate(RATE, Duration.SECOND)], client, bucket_key)
    limiter = Limiter(bucket)

    async def acquire() -> None:
        await limiter.try_acquire_async(key)

    async def cleanup() -> None:
        _delete_prefix(bucket_key)

    return acquire, cleanup


FACTORIES: dict[str, Factory] = {
    "ours-memory": ours_memory,
    "ours-redis": ours_redis,
    "aiolimiter": aiolimiter_bucket,
    "limits-memory": limits_memory,
    "limits-redis": limits_redis,
    "pyrate-memory": pyrate_memory,
    "pyrate-redis": pyrate_redis,
}


def _delete_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# -- saturated runs ------------------------------------------------------------------------------


async def saturate(name: str, key: str, n: int, tasks: int, start_at: float | None = None):
    """``n`` acquisitions from ``tasks`` tasks; returns (wall time, admission ns) per grant."""
    acquire, cleanup = await FACTORIES[name](key)
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    left = [n]
    out: list[tuple[float, int | None]] = []

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            admitted = await acquire()
            out.append((time.time(), admitted))

    try:
        await asyncio.gather(*(worker() for _ in range(tasks)))
    finally:
        if start_at is None:
            await cleanup()
    return out, cleanup


def run_here(name: str, n: int, tasks: int) -> list[tuple[float, int | None]]:
    key = f"bench-{RUN_ID}-{name}"
    out, _ = asyncio.run(saturate(name, key, n, tasks))
    return out


def run_two_processes(name: str, n: int, tasks: int) -> list[tuple[float, int | None]]:
    key = f"bench-{RUN_ID}-{name}-2p"
    start_at = time.time() + 3.0
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--key",
        key,
        "--n",
        str(n // 2),
        "--tasks",
        str(tasks // 2),
        "--start-at",
        f"{start_at:.3f}",
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    out: list[tuple[float, int | None]] = []
    for p in procs:
        stdout, _ = p.communicate(timeout=600)
        if p.returncode:
            raise RuntimeError(f"worker {name} failed")
        out += [tuple(x) for x in json.loads(stdout)]  # type: ignore[misc]
    _delete_prefix(f"agentflow:bench:{key}")
    _delete_prefix(f"agentflow:q:{key}:")
    return out


def worst_window(times: list[float], length: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + length) - i for i, t in enumerate(times))


def sustained_pct(wall: list[float]) -> float:
    """Grants in the whole 1 s windows after the first one, as a share of the limit: the
    saturated rate, whether a limiter hands out each window's quota at once or paces it
    (the first window's idle burst, and a paced stream's start one window later, are left
    out)."""
    start = wall[0] + 1.0
    k = int(wall[-1] - start)
    if k < 1:
        return 0.0
    inside = bisect.bisect_left(wall, start + k) - bisect.bisect_left(wall, start)
    return 100.0 * inside / (k * RATE)


def summarize(grants: list[tuple[float, int | None]]) -> dict[str, Any]:
    wall = sorted(t for t, _ in grants)
    span = wall[-1] - wall[0]
    admitted = [a for _, a in grants if a is not None]
    after_first = [t for t in wall if t >= wall[0] + 1.0]
    return {
        "n": len(wall),
        "worst_observed": worst_window(wall, 1.0),
        "worst_admission": worst_window([a / 1e9 for a in admitted], 1.0) if admitted else None,
        "worst_100ms": worst_window(after_first, 0.1) if after_first else 0,
        "achieved_pct": 100.0 * (len(wall) - RATE) / span / RATE if span else 0.0,
        "sustained_pct": sustained_pct(wall),
        "seconds": span,
    }


# -- uncontended overhead ------------------------------------------------------------------------


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def _per_call_us_async(make: Callable[[], Awaitable[Callable[[], Awaitable[object]]]], n: int):
    async def main() -> float:
        fn = await make()
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(n):
                await fn()
            best = min(best, (time.perf_counter() - started) / n)
        return best * 1e6

    return asyncio.run(main())


def overhead(weight: int, with_redis: bool) -> dict[str, float | None]:
    from aiolimiter import AsyncLimiter
    from limits import RateLimitItemPerSecond
    from limits.storage import MemoryStorage
    from limits.storage import RedisStorage as SyncRedisStorage
    from limits.strategies import MovingWindowRateLimiter
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, RedisBucket

    many = 10**15
    mem_n = 20_000 if weight == 1 else 2_000
    res: dict[str, float | None] = {}
    spec = QueueSpec(id=f"bench-{RUN_ID}-oh", max_messages_per_second=1e9, tokens_per_minute=float(many))
    ours = MemoryQueueLimiter(spec)
    res["ours-memory"] = _per_call_us(lambda: ours.acquire(tokens=weight), mem_n)

    async def ours_async():
        lim = MemoryQueueLimiter(spec)
        return lambda: lim.aacquire(tokens=weight)

    res["ours-memory-async"] = _per_call_us_async(ours_async, mem_n)

    async def aio():
        lim = AsyncLimiter(many, 1)
        return lambda: lim.acquire(weight)

    res["aiolimiter"] = _per_call_us_async(aio, mem_n)
    mw = MovingWindowRateLimiter(MemoryStorage())
    item = RateLimitItemPerSecond(many)
    res["limits-memory"] = _per_call_us(lambda: mw.hit(item, "k", cost=weight), mem_n)
    pl = Limiter(InMemoryBucket([Rate(many, Duration.SECOND)]))
    res["pyrate-memory"] = _per_call_us(lambda: pl.try_acquire("k", weight=weight), mem_n)
    if with_redis:
        mgr = RedisQueueManager(REDIS_URL)
        rlim = mgr.get(spec.model_copy(update={"id": f"bench-{RUN_ID}-ohr{weight}"}))
        res["ours-redis"] = _per_call_us(lambda: rlim.acquire(tokens=weight), 2_000)
        rlim.purge()
        mgr.close()
        prefix = f"agentflow:bench:{RUN_ID}-oh{weight}"
        lr = MovingWindowRateLimiter(SyncRedisStorage(REDIS_URL, key_prefix=prefix))
        res["limits-redis"] = _per_call_us(lambda: lr.hit(item, "k", cost=weight), 2_000)
        _delete_prefix(prefix)
        client = redis.Redis.from_url(REDIS_URL)
        bucket = RedisBucket.init([Rate(many, Duration.SECOND)], client, prefix + "pyr")
        pr = Limiter(bucket)  # type: ignore[arg-type]
        res["pyrate-redis"] = _per_call_us(lambda: pr.try_acquire("k", weight=weight), 2_000)
        _delete_prefix(prefix)
        client.close()
    return res


# -- main -----------------------------------------------------------------------------------------


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def worker_main(args: argparse.Namespace) -> None:
    async def main() -> list[tuple[float, int | None]]:
        out, _ = await saturate(args.worker, args.key, args.n, args.tasks, args.start_at)
        return out

    print(json.dumps(asyncio.run(main())))


def table(rows: list[tuple[str, str, dict[str, Any]]], oh1: dict, oh1000: dict) -> str:
    lines = [
        "| limiter | worst 1 s window, observed | worst 1 s window, limiter clock "
        "| most in 100 ms after the first window | achieved rate (after first window) "
        "| sustained rate | uncontended acquire, weight 1 | weight 1,000 |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def us(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f} us"

    for label, name, s in rows:
        adm = "n/a" if s["worst_admission"] is None else str(s["worst_admission"])
        lines.append(
            f"| {label} | {s['worst_observed']} | {adm} | {s['worst_100ms']} | {s['achieved_pct']:.1f} % "
            f"({s['seconds']:.1f} s for {s['n']}) | {s['sustained_pct']:.1f} % "
            f"| {us(oh1.get(name))} | {us(oh1000.get(name))} |"
        )
    lines.append(
        f"| ours-memory, `aacquire` | | | | | | {us(oh1.get('ours-memory-async'))} "
        f"| {us(oh1000.get('ours-memory-async'))} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 acquisitions, no file")
    parser.add_argument("--only", help="run only rows whose label contains this text")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    n = 300 if args.quick else args.n
    with_redis = redis_up()
    plan: list[tuple[str, str, bool]] = [
        ("ours-memory", "ours-memory", False),
        ("ours-redis, 1 process", "ours-redis", False),
        ("ours-redis, 2 processes", "ours-redis", True),
        ("aiolimiter (async only)", "aiolimiter", False),
        ("limits-memory (moving window)", "limits-memory", False),
        ("limits-redis (moving window), 1 process", "limits-redis", False),
        ("pyrate-memory", "pyrate-memory", False),
        ("pyrate-redis, 1 process", "pyrate-redis", False),
        ("pyrate-redis, 2 processes", "pyrate-redis", True),
    ]
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for label, name, two in plan:
        if args.only and args.only not in label:
            continue
        if "redis" in name and not with_redis:
            print(f"skip {label}: Redis not reachable at {REDIS_URL}", file=sys.stderr)
            continue
        grants = run_two_processes(name, n, 200) if two else run_here(name, n, 200)
        s = summarize(grants)
        rows.append((label, name, s))
        print(f"{label}: {s}", file=sys.stderr, flush=True)
    oh1 = overhead(1, with_redis)
    oh1000 = overhead(1000, with_redis)
    print(f"overhead weight 1: {oh1}\noverhead weight 1000: {oh1000}", file=sys.stderr)
    text = table(rows, oh1, oh1000)
    print(text)
    if args.quick:
        return
    redis_version = "n/a"
    if with_redis:
        with contextlib.suppress(redis.RedisError):
            redis_version = str(redis.Redis.from_url(REDIS_URL).info("server")["redis_version"])
    versions = _versions("aiolimiter", "limits", "pyrate-limiter", "redis")
    header = (
        "# Queue limiters at 50/s\n\n"
        f"Command: `.venv/bin/python bench/queues.py` (from the repository root), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Redis {redis_version} on 127.0.0.1; {versions}.\n\n"
        f"Each row: {n:,} acquisitions by 200 concurrent asyncio tasks against a limit of "
        f"{RATE} per second (two processes: {n // 2} by 100 tasks each, both on one "
        "queue). *Observed* windows count the times callers got their grant (wall clock, "
        "taken right after the acquire returned); *limiter clock* counts the admission "
        "times ours records (monotonic in-process, Redis `TIME` over Redis). *Most in 100 ms* "
        "counts observed grants after the first window: 50 means the whole quota goes at once "
        "each time the window turns over, 5 an even stream (6: an even stream seen through the "
        "callers' timers, which hand a grant over up to a millisecond late). *Achieved* is "
        f"(grants - {RATE}) / (last - first grant time), as a share of the limit: a limiter "
        "that paces sustained load (ours) starts its even stream when the first window's "
        f"burst leaves the window, one window behind one that hands out {RATE} again at once, "
        f"so over these 20 s it shows about {100 * (1 - 1 / 20):.0f} % even at the full rate. "
        "*Sustained* is the saturated rate: the grants in the whole 1 s windows after the "
        "first, as a share of the limit. Uncontended: sequential acquires with the "
        "limit far away, best of three batches, per call; weight 1,000 is `tokens=1000` against a "
        "`tokens_per_minute` limit for ours, `cost=1000` for limits, `weight=1000` for pyrate-limiter "
        "and `acquire(1000)` for aiolimiter. Ours paces sustained load: once callers wait, grants "
        f"come on a schedule 1/{RATE} s apart (an idle queue still lets {RATE} go at once); see "
        "`agentflow/runtime/queue_windows.py`. Ours over Redis also counts its call windows "
        f"{default_guard_ms():g} ms longer than the limit (`guard_ms`, which costs "
        f"{100 * (1 - 1 / (1 + default_guard_ms() / 1000)):.1f} % of a per-second limit: it "
        f"cannot sustain more than {100 / (1 + default_guard_ms() / 1000):.1f} %) and "
        "stamps a grant again when its reply came back later than that; see "
        "`agentflow/runtime/queue_redis.py`. In-process, an asyncio waiter wakes up to a "
        "millisecond late (epoll counts whole milliseconds); each paced grant is spaced from "
        "when the previous one was due, not made, so that lateness does not add up.\n\n"
    )
    out = ROOT / "bench" / "results" / "queues.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + text + "\n")
    print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)


def _versions(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} missing")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
