"""The Redis queue backend against a real Redis: shared windows across OS processes,
tokens, budgets, reject counts, waiting and cancellation. Keys are per test (unique queue
ids) and deleted afterwards; nothing else on the server is touched."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflow.errors import BudgetExceeded, ExecutionError, QueueRateLimitExceeded
from agentflow.runtime.queue_redis import RedisQueueLimiter, RedisQueueManager
from agentflow.runtime.rate_limiter import get_queue_manager
from agentflow.sending import agoing_out, calling, going_out
from agentflow.spec.models import QueueSpec

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
SEC = 1_000_000_000


def worst_window(times_ns: list[int], length_ns: int = SEC) -> int:
    times = sorted(times_ns)
    return max(sum(1 for s in times if t <= s < t + length_ns) for t in times)


@pytest.fixture
def manager(redis_url: str) -> Iterator[RedisQueueManager]:
    mgr = RedisQueueManager(redis_url)
    yield mgr
    for lim in list(mgr._limiters.values()):
        assert isinstance(lim, RedisQueueLimiter)
        lim.purge()
    mgr.close()


def qid() -> str:
    return "test-" + uuid.uuid4().hex[:12]


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from agentflow.runtime.queue_redis import RedisQueueManager
    from agentflow.spec.models import QueueSpec

    url, queue_id, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    mgr = RedisQueueManager(url)
    lim = mgr.get(QueueSpec(id=queue_id, max_messages_per_second=10))

    async def main():
        times = []
        async def one():
            for _ in range(count // 5):
                times.append((await lim.aacquire()).admitted_at_ns)
        import time
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(*(one() for _ in range(5)))
        return times

    print(json.dumps(asyncio.run(main())))
    """
)


def test_two_processes_share_one_bandwidth(redis_url: str, manager: RedisQueueManager) -> None:
    """Two OS processes at 10/s on one queue: never more than 10 grants in any 1 s window
    of the Redis clock, together they get the whole bandwidth, and once they wait their
    combined grants are paced at least 100 ms apart."""
    queue_id = qid()
    manager.get(QueueSpec(id=queue_id, max_messages_per_second=10))  # for cleanup
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start_at = f"{time.time() + 2.0:.3f}"  # both start together, after their imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, queue_id, "20", start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    times: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        times += json.loads(out)
    assert len(times) == 40
    assert worst_window(times) == 10
    times.sort()
    assert times[9] - times[0] < SEC // 5  # the idle queue let the first 10 go at once
    paced = times[10:]
    gaps = [b - a for a, b in itertools.pairwise(paced)]
    assert min(gaps) >= SEC // 10, f"paced grants {min(gaps) / 1e6:.3f} ms apart"
    # 10 at once, then one per 100 ms from 1.05 s on (the window, counted 25 ms long,
    # frees at 1.025 s; a stream starting on a window filled while idle begins a guard
    # later; the guard also lengthens every tenth gap to 125 ms): the last is due at 4.0 s.
    span = (times[-1] - times[0]) / SEC
    assert 3.9 < span < 4.4


def test_sustained_load_is_paced_over_redis(manager: RedisQueueManager, redis_url: str) -> None:
    """20/s over Redis: an idle queue lets 20 go at once; callers who then wait get one
    grant every 50 ms, including one that arrives at an empty line of another client while
    they wait; a window after the last wait the queue bursts again."""
    spec = QueueSpec(id=qid(), max_messages_per_second=20)
    lim = manager.get(spec)
    other_mgr = RedisQueueManager(redis_url)  # a second client, as another process has
    other = other_mgr.get(spec)

    handed: list[tuple[int, int]] = []  # (stamp, wall clock when the caller got it)

    async def main() -> tuple[list[int], list[int]]:
        times: list[int] = []

        async def one() -> None:
            stamp = (await lim.aacquire()).admitted_at_ns
            handed.append((stamp, time.time_ns()))
            times.append(stamp)

        tasks = [asyncio.create_task(one()) for _ in range(30)]
        await asyncio.sleep(1.2)  # 20 at once, then paced from 1.025 s: the others wait
        # Arrives at the other client's empty line while this one's waiters are paced.
        late = (await other.aacquire()).admitted_at_ns
        await asyncio.gather(*tasks)
        times.append(late)
        times.sort()
        await asyncio.sleep(1.1)  # past the last wait plus a window: idle again
        again = await asyncio.gather(*(lim.aacquire() for _ in range(20)))
        return times, [g.admitted_at_ns for g in again]

    try:
        times, again = asyncio.run(main())
    finally:
        other_mgr.close()
    assert len(times) == 31 and worst_window(times) == 20
    assert times[19] - times[0] < SEC // 10  # the burst
    paced = times[20:]
    gaps = [b - a for a, b in itertools.pairwise(paced)]
    guard_ns = manager.guard_us * 1000
    assert paced[0] - times[0] >= SEC + 2 * guard_ns  # the window (+ guard), then a guard
    assert min(gaps) >= SEC // 20, f"paced grants {min(gaps) / 1e6:.3f} ms apart"
    # A waiter that asks just before its slot gets it stamped with the slot's time, so
    # the stream keeps the exact schedule; it then waits for that time before going
    # (Redis TIME and time.time_ns() read the same clock here).
    assert sum(g == SEC // 20 for g in gaps) >= len(gaps) // 2, [g / 1e6 for g in gaps]
    assert all(wall >= stamp for stamp, wall in handed)
    assert max(again) - min(again) < SEC // 10  # idle again: 20 at once
    assert worst_window(times + again) == 20


def test_reject_mode_counts_across_clients(manager: RedisQueueManager, redis_url: str) -> None:
    spec = QueueSpec(id=qid(), max_messages_per_second=3, on_limit="reject")
    lim = manager.get(spec)
    second = RedisQueueManager(redis_url)  # a second client, as another process has
    other = second.get(spec)
    outcomes = []
    for i in range(10):
        try:
            (lim if i % 2 else other).acquire()
            outcomes.append(True)
        except QueueRateLimitExceeded as exc:
            assert f'queue "{spec.id}": max_messages_per_second=3 reached' in exc.message
            outcomes.append(False)
    assert outcomes.count(True) == 3
    stats = lim.stats()
    assert (stats["granted"], stats["rejected"]) == (3, 7)  # queue-wide, from Redis
    assert stats["limits"]["max_messages_per_second"]["used"] == 3
    # Refused callers do not wait, so nothing is paced: once the window has room, three
    # go at once again (the window is counted 25 ms longer than a second over Redis).
    time.sleep(1.05)
    again = [(lim if i % 2 else other).acquire().admitted_at_ns for i in range(3)]
    second.close()
    assert max(again) - min(again) < SEC // 20
    with pytest.raises(QueueRateLimitExceeded):
        lim.acquire()


def test_tokens_reserved_and_settled_in_redis(manager: RedisQueueManager) -> None:
    lim = manager.get(QueueSpec(id=qid(), tokens_per_minute=100, on_limit="reject"))
    first = lim.acquire(tokens=60)
    with pytest.raises(QueueRateLimitExceeded, match="tokens_per_minute=100 reached"):
        lim.acquire(tokens=60)
    first.settle(tokens=30)
    first.settle(tokens=90)  # idempotent
    assert lim.stats()["limits"]["tokens_per_minute"]["used"] == 30
    lim.acquire(tokens=70).settle()
    assert lim.stats()["limits"]["tokens_per_minute"]["used"] == 100
    with pytest.raises(QueueRateLimitExceeded, match="can never fit tokens_per_minute=100"):
        lim.acquire(tokens=101)


def test_daily_budget_in_redis(manager: RedisQueueManager) -> None:
    lim = manager.get(QueueSpec(id=qid(), max_cost_usd_per_day=1.0))
    first = lim.acquire(cost_usd=0.6)
    with pytest.raises(BudgetExceeded, match="max_cost_usd_per_day=1 would be passed") as e:
        lim.acquire(cost_usd=0.5)
    assert e.value.retry_after_s is not None and 0 < e.value.retry_after_s <= 86_400
    first.settle(cost_usd=0.2)
    assert lim.stats()["cost_usd_today"] == pytest.approx(0.2)
    lim.acquire(cost_usd=0.5)


def test_waiters_share_3_to_1_and_leave_cleanly(manager: RedisQueueManager) -> None:
    lim = manager.get(QueueSpec(id=qid(), max_messages_per_second=40, subqueues={"hi": 3, "lo": 1}))

    async def main() -> list[str]:
        for _ in range(40):
            await lim.aacquire()
        order: list[str] = []

        async def one(sub: str, i: int) -> None:
            await lim.aacquire(subqueue=sub)
            order.append(sub)

        tasks = []
        for i in range(80):
            tasks.append(asyncio.create_task(one("lo" if i % 2 == 0 else "hi", i)))
            await asyncio.sleep(0)
        while len(order) < 40:
            await asyncio.sleep(0.01)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return order[:40]

    first = asyncio.run(main())
    assert abs(first.count("hi") / 40 - 0.75) <= 0.07
    assert lim.stats()["waiters"] == 0


def test_max_wait_and_cancel_in_redis(manager: RedisQueueManager) -> None:
    lim = manager.get(QueueSpec(id=qid(), max_messages_per_second=1))
    lim.acquire()
    with pytest.raises(QueueRateLimitExceeded, match="max_messages_per_second=1 reached"):
        lim.acquire(max_wait_s=0.3)
    cancel = threading.Event()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            lim.acquire(cancel=cancel)
        except ExecutionError as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    cancel.set()
    t.join(1)
    assert errors and "cancelled while waiting on queue" in str(errors[0])
    assert lim.stats()["waiters"] == 0


def test_get_queue_manager_uses_redis_when_configured(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_REDIS_URL", redis_url)
    mgr = get_queue_manager()
    assert isinstance(mgr, RedisQueueManager) and mgr.url == redis_url
    assert get_queue_manager() is mgr
    spec = QueueSpec(id=qid(), max_messages_per_second=5)
    try:
        grant = mgr.get(spec).acquire(tokens=2)
        assert grant.queue_id == spec.id and grant.reserved_tokens == 2
    finally:
        mgr.get(spec).purge()
        mgr.reset()
    monkeypatch.delenv("AGENTFLOW_REDIS_URL")
    assert get_queue_manager().backend == "memory"


def test_sync_threads_wait_in_line_over_redis(manager: RedisQueueManager) -> None:
    lim = manager.get(QueueSpec(id=qid(), max_messages_per_second=5))
    times: list[int] = []

    def work() -> None:
        for _ in range(3):
            times.append(lim.acquire().admitted_at_ns)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(times) == 9 and worst_window(times) == 5
    times.sort()
    assert all(b - a >= SEC // 5 for a, b in itertools.pairwise(times[5:]))  # paced
    assert lim.stats()["waiters"] == 0


def test_a_late_reply_is_stamped_again(redis_url: str) -> None:
    mgr = RedisQueueManager(redis_url, guard_ms=0.001)  # every round trip counts as late
    lim = mgr.get(QueueSpec(id=qid(), max_messages_per_second=100))
    try:
        grant = lim.acquire()
        ref, t_us = grant._ref
        assert grant.admitted_at_ns == t_us * 1000
        score = mgr.client.zscore(f"agentflow:q:{lim.queue_id}:log", ref)
        assert score == t_us  # the log holds the new stamp
        last = mgr.client.hget(f"agentflow:q:{lim.queue_id}:pace", "last")
        assert last is not None and int(last) == t_us  # paced grants space from it
    finally:
        lim.purge()
        mgr.close()


def test_new_definition_and_async_settle_over_redis(manager: RedisQueueManager) -> None:
    spec = QueueSpec(id=qid(), tokens_per_minute=100)
    lim = manager.get(spec)

    async def main() -> None:
        grant = await lim.aacquire(tokens=80)
        await grant.asettle(tokens=20)
        await grant.asettle(tokens=99)  # idempotent

    asyncio.run(main())
    assert lim.stats()["limits"]["tokens_per_minute"]["used"] == 20
    assert manager.get(spec.model_copy(update={"tokens_per_minute": 10})) is lim
    with pytest.raises(QueueRateLimitExceeded, match="can never fit tokens_per_minute=10"):
        lim.acquire(tokens=11)


def test_a_task_cancelled_mid_call_gives_its_grant_back(manager: RedisQueueManager) -> None:
    lim = manager.get(QueueSpec(id=qid(), tokens_per_minute=100))

    async def main() -> None:
        task = asyncio.create_task(lim.aacquire(tokens=60))
        await asyncio.sleep(0)  # the script is on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if lim.stats()["limits"]["tokens_per_minute"]["used"] == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the cancelled grant kept its tokens")

    asyncio.run(main())


def test_redis_down_is_a_clear_error() -> None:
    mgr = RedisQueueManager("redis://127.0.0.1:1/0", timeout_s=1)
    lim = mgr.get(QueueSpec(id=qid(), max_messages_per_second=5))
    with pytest.raises(ExecutionError, match="the shared queue state in Redis failed"):
        lim.acquire()


def test_a_call_that_leaves_late_is_counted_when_it_left(manager: RedisQueueManager) -> None:
    """A grant whose call leaves late (a busy loop) moves to the time it left, in the shared
    log; a punctual one stays; the SDK's retries of the same call move nothing."""
    lim = manager.get(QueueSpec(id=qid(), max_messages_per_second=100))
    log_key = f"agentflow:q:{lim.queue_id}:log"
    punctual = lim.acquire()
    before = punctual.admitted_at_ns
    token = calling.set(punctual)
    try:
        going_out()
    finally:
        calling.reset(token)
    assert punctual.gone and punctual.admitted_at_ns == before

    late = lim.acquire()
    granted_at = late.admitted_at_ns
    time.sleep(0.04)
    token = calling.set(late)
    try:
        going_out()
        moved_to = late.admitted_at_ns
        going_out()  # a retry of the same call
    finally:
        calling.reset(token)
    assert moved_to - granted_at >= 35_000_000
    assert late.admitted_at_ns == moved_to
    ref, t_us = late._ref
    assert manager.client.zscore(log_key, ref) == t_us == moved_to // 1000
    late.settle(tokens=0)  # settles under the new stamp

    async def leave_late() -> tuple[int, int]:
        grant = await lim.aacquire()
        first = grant.admitted_at_ns
        await asyncio.sleep(0.03)
        calling.set(grant)
        await agoing_out()
        return first, grant.admitted_at_ns

    first, moved = asyncio.run(leave_late())
    assert moved - first >= 25_000_000
    going_out()  # outside a metered call: nothing to do
