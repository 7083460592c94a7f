"""The in-process queue limiter: limits, tokens, budgets, max_wait_s, cancel, sharing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflow.errors import (
    BudgetExceeded,
    ExecutionError,
    NotFoundError,
    QueueRateLimitExceeded,
)
from agentflow.runtime.queue_line import Waiter
from agentflow.runtime.queue_windows import Limit
from agentflow.runtime.rate_limiter import (
    Grant,
    MemoryQueueLimiter,
    QueueLimiter,
    QueueManager,
    check_rate_limit,
    get_queue_manager,
)
from agentflow.spec.models import QueueSpec

SEC = 1_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0
        self.wall = 1_700_000_000.0

    def __call__(self) -> int:
        return self.ns

    def wall_clock(self) -> float:
        return self.wall


def fake_limiter(**fields: object) -> tuple[MemoryQueueLimiter, FakeClock]:
    clock = FakeClock()
    spec = QueueSpec.model_validate({"id": "q", **fields})
    return MemoryQueueLimiter(spec, clock=clock, wall_clock=clock.wall_clock), clock


def fill(lim: QueueLimiter, n: int) -> None:
    for _ in range(n):
        lim.acquire()


def worst_window(times_ns: list[int], length_ns: int = SEC) -> int:
    """Most grants any half-open window of ``length_ns`` holds (exact integer arithmetic)."""
    times = sorted(times_ns)
    return max(sum(1 for s in times if t <= s < t + length_ns) for t in times)


# -- reject mode: exact counts against a reference model -----------------------------------


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(st.integers(0, 130_000), min_size=1, max_size=150),
    mps=st.integers(1, 5),
    rpm=st.integers(3, 40),
)
def test_reject_mode_counts_are_exact(arrivals: list[int], mps: int, rpm: int) -> None:
    lim, clock = fake_limiter(max_messages_per_second=mps, max_requests_per_minute=rpm, on_limit="reject")
    granted: list[int] = []
    rejected = 0
    expected: list[int] = []
    for at_ms in sorted(arrivals):
        now = at_ms * 1_000_000
        inside_s = sum(1 for t in expected if t + SEC > now)
        inside_m = sum(1 for t in expected if t + 60 * SEC > now)
        if inside_s < mps and inside_m < rpm:
            expected.append(now)
        clock.ns = now
        try:
            granted.append(lim.acquire().admitted_at_ns)
        except QueueRateLimitExceeded as exc:
            rejected += 1
            assert exc.queue == "q"
            assert exc.retry_after_s is not None and exc.retry_after_s > 0
            assert "on_limit: reject" in exc.message
    assert granted == expected
    stats = lim.stats()
    assert (stats["granted"], stats["rejected"]) == (len(expected), rejected)
    assert rejected == len(arrivals) - len(expected)


def test_reject_message_names_queue_and_limit() -> None:
    lim, _ = fake_limiter(max_messages_per_second=2, on_limit="reject")
    fill(lim, 2)
    with pytest.raises(QueueRateLimitExceeded, match=r'queue "q": max_messages_per_second=2 reached') as info:
        lim.acquire()
    assert info.value.retry_after_s == pytest.approx(1.0)


# -- pacing under sustained load --------------------------------------------------------------


def paced_limiter(monkeypatch: pytest.MonkeyPatch, **fields: object) -> tuple[MemoryQueueLimiter, FakeClock]:
    """A limiter on a fake clock whose sync waiters sleep by moving that clock: one thread
    acquiring in a row sees exactly the times the limiter decides."""
    lim, clock = fake_limiter(**fields)

    def sleep(self: Waiter, timeout_s: float | None) -> None:
        assert timeout_s is not None
        clock.ns += max(1, round(timeout_s * 1e9))

    monkeypatch.setattr(Waiter, "sleep", sleep)
    return lim, clock


def test_sustained_load_is_paced_and_an_idle_queue_bursts(monkeypatch: pytest.MonkeyPatch) -> None:
    lim, clock = paced_limiter(monkeypatch, max_messages_per_second=4)
    burst = [lim.acquire() for _ in range(4)]
    assert [g.admitted_at_ns for g in burst] == [0] * 4  # idle: all four at once
    assert all(g.wait_ms == 0 for g in burst)
    times = [lim.acquire().admitted_at_ns for _ in range(8)]
    # The fifth waits for the window; from then on one grant every 1/4 s, not 4 at once.
    assert times == [SEC + i * SEC // 4 for i in range(8)]
    assert worst_window([0] * 4 + times) == 4
    # Contention is remembered for a window after the last wait: a caller arriving then
    # with the window's room is still paced, from the previous grant.
    clock.ns = times[-1] + SEC // 8
    assert lim.acquire().admitted_at_ns == times[-1] + SEC // 4
    # A window after that, the queue is idle again: the next four go at once.
    clock.ns = times[-1] + SEC // 4 + 2 * SEC
    again = [lim.acquire().admitted_at_ns for _ in range(4)]
    assert again == [clock.ns] * 4


def test_requests_per_minute_pace_too_and_the_widest_spacing_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    lim, _ = paced_limiter(monkeypatch, max_messages_per_second=10, max_requests_per_minute=30)
    first = [lim.acquire().admitted_at_ns for _ in range(10)]  # the per-second limit stops the burst
    assert first == [0] * 10
    times = [lim.acquire().admitted_at_ns for _ in range(5)]
    # 60 s / 30 = 2 s apart (not 100 ms), the first 2 s after the burst (not when the
    # per-second window frees, at 1 s).
    assert times == [(i + 1) * 2 * SEC for i in range(5)]
    assert lim.stats()["limits"]["max_requests_per_minute"]["used"] == 15


def test_token_limits_are_not_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    lim, _ = paced_limiter(monkeypatch, tokens_per_minute=100)
    lim.acquire(tokens=100)
    times = [lim.acquire(tokens=20).admitted_at_ns for _ in range(5)]
    assert times == [60 * SEC] * 5  # the window frees 100 tokens: five of 20 at once


def test_reject_mode_is_not_paced() -> None:
    lim, clock = fake_limiter(max_messages_per_second=3, on_limit="reject")
    assert [lim.acquire().admitted_at_ns for _ in range(3)] == [0] * 3
    with pytest.raises(QueueRateLimitExceeded, match="max_messages_per_second=3 reached"):
        lim.acquire()
    clock.ns = SEC  # the window is free again: three at once, none refused for spacing
    assert [lim.acquire().admitted_at_ns for _ in range(3)] == [SEC] * 3
    with pytest.raises(QueueRateLimitExceeded):
        lim.acquire()


def _paced_model(arrivals: list[int], cap: int, length: int) -> list[int]:
    """The pacing rule written out plainly, for one caller acquiring in a row."""
    spacing = -(-length // cap)
    grants: list[int] = []
    busy_until = 0
    for at in arrivals:
        now = max(at, grants[-1] if grants else 0)
        inside = [t for t in grants if t + length > now]
        fits_at = now if len(inside) < cap else inside[len(inside) - cap] + length
        paced_at = grants[-1] + spacing if grants else 0
        if fits_at <= now and (now >= busy_until or paced_at <= now):
            grants.append(now)  # idle, or contended with the spacing already kept
            continue
        when = max(now, fits_at, paced_at)
        busy_until = max(busy_until, when + length)
        grants.append(when)
    return grants


@settings(max_examples=80, deadline=None)
@given(
    arrivals=st.lists(st.integers(0, 6_000), min_size=1, max_size=60),
    cap=st.integers(1, 6),
    length_ms=st.integers(50, 1_000),
)
def test_paced_grants_follow_the_rule_exactly(arrivals: list[int], cap: int, length_ms: int) -> None:
    """Random arrivals: grant times equal the rule's, no window holds more than ``cap``,
    and every grant made to a caller who waited is at least W/N after the previous one."""
    length = length_ms * 1_000_000
    spec = QueueSpec(id="q", max_messages_per_second=cap)
    clock = FakeClock()
    lim = MemoryQueueLimiter(spec, clock=clock, wall_clock=clock.wall_clock)
    lim._log.configure((Limit("max_messages_per_second", cap, length, cap, False),), None, 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Waiter, "sleep", lambda self, t: setattr(clock, "ns", clock.ns + max(1, round(t * 1e9))))
        arrivals_ns = [a * 1_000_000 for a in sorted(arrivals)]
        got = []
        for at in arrivals_ns:
            clock.ns = max(clock.ns, at)
            got.append(lim.acquire().admitted_at_ns)
    assert got == _paced_model(arrivals_ns, cap, length)
    assert worst_window(got, length) <= cap
    spacing = -(-length // cap)
    for i in range(1, len(got)):
        waited = got[i] > max(arrivals_ns[i], got[i - 1])
        assert not waited or got[i] - got[i - 1] >= spacing


# -- tokens ---------------------------------------------------------------------------------


def test_tokens_are_reserved_then_settled() -> None:
    lim, clock = fake_limiter(tokens_per_minute=100, on_limit="reject")
    first = lim.acquire(tokens=60)
    assert first.reserved_tokens == 60
    with pytest.raises(QueueRateLimitExceeded, match="tokens_per_minute=100 reached"):
        lim.acquire(tokens=60)
    first.settle(tokens=30)
    first.settle(tokens=0)  # idempotent: the second settle changes nothing
    assert lim.stats()["limits"]["tokens_per_minute"]["used"] == 30
    second = lim.acquire(tokens=60)
    second.settle()  # tokens=None keeps the estimate
    assert lim.stats()["limits"]["tokens_per_minute"]["used"] == 90
    clock.ns = 60 * SEC  # both left the window
    assert lim.stats()["limits"]["tokens_per_minute"]["used"] == 0


def test_a_call_bigger_than_the_whole_budget_fails_at_once() -> None:
    lim, _ = fake_limiter(tokens_per_minute=1000)
    with pytest.raises(QueueRateLimitExceeded, match="can never fit tokens_per_minute=1000") as e:
        lim.acquire(tokens=1001)
    assert "max_tokens" in e.value.message and "raise the queue's tokens_per_minute" in e.value.message
    assert lim.stats()["rejected"] == 1


def test_settle_frees_tokens_for_a_waiter() -> None:
    lim = MemoryQueueLimiter(QueueSpec(id="q", tokens_per_minute=100))
    big = lim.acquire(tokens=100)
    got: list[Grant] = []
    t = threading.Thread(target=lambda: got.append(lim.acquire(tokens=50)))
    t.start()
    _wait_for(lambda: lim.stats()["waiters"] == 1)
    big.settle(tokens=40)
    t.join(2)
    assert got and got[0].wait_ms < 2000


# -- the line: weights, FIFO, no starvation -------------------------------------------------


def _wait_for(cond, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


async def _line_up(lim: QueueLimiter, subs: list[str], order: list[str], tokens: int = 0):
    """Start one task per entry of ``subs`` and wait until each stands in line, in order."""
    tasks = []
    for i, sub in enumerate(subs):

        async def one(sub: str = sub, i: int = i) -> None:
            await lim.aacquire(subqueue=sub, tokens=tokens)
            order.append(f"{sub}{i}")

        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(0)
    return tasks


def test_weights_share_contended_grants_3_to_1() -> None:
    async def main() -> list[str]:
        lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=40, subqueues={"hi": 3, "lo": 1}))
        fill(lim, 40)
        order: list[str] = []
        subs = ["lo", "hi"] * 40  # 80 waiters, interleaved, lo first
        tasks = await _line_up(lim, subs, order)
        assert lim.stats()["waiting"] == {"lo": 40, "hi": 40}
        while len(order) < 40:
            await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert lim.stats()["waiters"] == 0
        return order[:40]

    first = asyncio.run(main())
    share = sum(1 for g in first if g.startswith("hi")) / len(first)
    assert abs(share - 0.75) <= 0.07, first


def test_fifo_within_a_subqueue_and_no_subqueue_starves() -> None:
    async def main() -> list[str]:
        lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=45, subqueues={"a": 9, "b": 1}))
        fill(lim, 45)
        order: list[str] = []
        subs = ["a"] * 40 + ["b"] * 5
        await asyncio.gather(*await _line_up(lim, subs, order))
        return order

    order = asyncio.run(main())
    a = [int(g[1:]) for g in order if g[0] == "a"]
    b = [int(g[1:]) for g in order if g[0] == "b"]
    assert a == sorted(a) and b == sorted(b)  # FIFO inside each subqueue
    # weight 1 against 9: b still gets about every tenth grant, long before a is done
    assert order.index("b40") < 12
    assert order.index("b41") < 24


def test_a_large_request_queued_first_is_not_overtaken() -> None:
    async def main() -> list[str]:
        lim = MemoryQueueLimiter(QueueSpec(id="q", tokens_per_minute=100))
        blocker = await lim.aacquire(tokens=80)
        little_blocker = await lim.aacquire(tokens=20)
        order: list[str] = []

        async def take(name: str, tokens: int, sub: str) -> None:
            await lim.aacquire(tokens=tokens, subqueue=sub)
            order.append(name)

        big = asyncio.create_task(take("big", 90, "x"))
        await asyncio.sleep(0)
        small = [asyncio.create_task(take(f"s{i}", 5, "y")) for i in range(6)]
        await asyncio.sleep(0.02)
        little_blocker.settle(tokens=0)  # 20 tokens free: small ones would fit, big not
        await asyncio.sleep(0.05)
        assert order == []  # nobody overtakes the big one queued first
        blocker.settle(tokens=0)
        await asyncio.sleep(0.1)
        for task in small:
            task.cancel()
        await asyncio.gather(big, *small, return_exceptions=True)
        return order

    assert asyncio.run(main()) == ["big", "s0", "s1"]


# -- threads and event loops together --------------------------------------------------------


def test_threads_and_event_loops_share_one_limiter() -> None:
    lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=50))
    times: list[int] = []
    record = threading.Lock()

    def sync_worker() -> None:
        for _ in range(8):
            g = lim.acquire()
            with record:
                times.append(g.admitted_at_ns)

    def loop_worker() -> None:
        async def task() -> None:
            for _ in range(3):
                g = await lim.aacquire()
                with record:
                    times.append(g.admitted_at_ns)

        async def main() -> None:
            await asyncio.gather(*(task() for _ in range(10)))

        asyncio.run(main())

    threads = [threading.Thread(target=sync_worker) for _ in range(5)]
    threads += [threading.Thread(target=loop_worker) for _ in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert len(times) == 5 * 8 + 2 * 10 * 3  # 100 grants: 50 now, then 50 paced from 1 s on
    assert worst_window(times) == 50
    times.sort()
    assert times[49] - times[0] < SEC // 2  # the idle queue let the first 50 go at once
    paced = times[50:]
    assert paced[0] - times[0] >= SEC
    # Paced on a 20 ms schedule: a grant whose waiter woke a little late does not push the
    # next one back, so two grants can be up to a tenth of the spacing closer than 20 ms.
    assert all(b - a >= SEC // 50 - SEC // 500 for a, b in itertools.pairwise(paced)), "paced grants 20 ms apart"
    assert 1.95 < elapsed < 2.5  # the last paced grant is due at 1.98 s
    assert lim.stats()["waiters"] == 0


def test_sync_waiters_sleep_instead_of_spinning() -> None:
    lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=2))
    fill(lim, 2)
    cpu = time.thread_time()
    lim.acquire()  # waits about a second
    assert time.thread_time() - cpu < 0.05


# -- changing limits ---------------------------------------------------------------------------


def test_a_new_definition_applies_to_everyone_sharing_the_id() -> None:
    mgr = QueueManager()
    lim = mgr.get(QueueSpec(id="q", max_messages_per_second=5))
    fill(lim, 5)
    got: list[Grant] = []
    t = threading.Thread(target=lambda: got.append(lim.acquire()))
    t.start()
    _wait_for(lambda: lim.stats()["waiters"] == 1)
    same = mgr.get(QueueSpec(id="q", max_messages_per_second=7))
    assert same is lim
    t.join(0.5)
    assert got and got[0].wait_ms < 500  # the waiter moved on under the new limit
    lim.acquire()  # the 7th grant of this second: the history was kept
    with pytest.raises(QueueRateLimitExceeded, match="max_messages_per_second=7"):
        lim.acquire(max_wait_s=0.2)
    assert mgr.get(QueueSpec(id="q", max_messages_per_second=7)).spec.max_messages_per_second == 7


def test_a_waiter_that_no_longer_fits_new_limits_leaves_the_line() -> None:
    mgr = QueueManager()
    lim = mgr.get(QueueSpec(id="q", tokens_per_minute=1000))
    lim.acquire(tokens=1000)
    errors: list[BaseException] = []
    stop = threading.Event()

    def big() -> None:
        try:
            lim.acquire(tokens=900)
        except QueueRateLimitExceeded as exc:
            errors.append(exc)

    def small() -> None:
        with contextlib.suppress(ExecutionError):
            lim.acquire(tokens=10, cancel=stop)

    threads = [threading.Thread(target=big), threading.Thread(target=small)]
    threads[0].start()
    _wait_for(lambda: lim.stats()["waiters"] == 1)
    threads[1].start()
    _wait_for(lambda: lim.stats()["waiters"] == 2)
    mgr.get(QueueSpec(id="q", tokens_per_minute=1020))  # too small for 900 + the 1000 held
    mgr.get(QueueSpec(id="q", tokens_per_minute=500))  # too small for 900 at all
    threads[0].join(1)
    assert errors and "can never fit tokens_per_minute=500" in str(errors[0])
    assert lim.stats()["waiting"] == {"default": 1}  # the small one waits for the window
    stop.set()
    threads[1].join(1)
    assert lim.stats()["waiters"] == 0


# -- max_wait_s ----------------------------------------------------------------------------------


def test_expected_wait_over_max_wait_fails_at_once() -> None:
    lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=2, max_wait_s=30))
    fill(lim, 2)
    started = time.monotonic()
    with pytest.raises(QueueRateLimitExceeded, match=r'queue "q": max_messages_per_second=2') as e:
        lim.acquire(max_wait_s=0.3)  # smaller than the spec's 30 s: it wins
    assert time.monotonic() - started < 0.1
    assert e.value.retry_after_s == pytest.approx(1.0, abs=0.1)
    assert e.value.queue == "q"
    assert lim.stats()["waiters"] == 0


def test_actual_wait_over_max_wait_fails_when_others_take_the_slot() -> None:
    lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=1, subqueues={"hi": 100}))
    fill(lim, 1)
    errors: list[QueueRateLimitExceeded] = []

    def low() -> None:
        try:
            lim.acquire(subqueue="lo", max_wait_s=1.5)
        except QueueRateLimitExceeded as exc:
            errors.append(exc)

    t = threading.Thread(target=low)
    t.start()
    _wait_for(lambda: lim.stats()["waiters"] == 1)
    threading.Thread(target=lambda: lim.acquire(subqueue="hi"), daemon=True).start()
    started = time.monotonic()
    t.join(3)
    assert errors, "the low-priority waiter should have given up"
    assert time.monotonic() - started < 1.6
    assert "max_messages_per_second=1 reached" in errors[0].message
    assert "max_wait_s" in errors[0].message


def test_spec_max_wait_applies_when_the_call_gives_none() -> None:
    lim, _ = fake_limiter(max_messages_per_second=1, max_wait_s=0.5)
    lim.acquire()
    with pytest.raises(QueueRateLimitExceeded, match=r"over max_wait_s=0\.5"):
        lim.acquire()


# -- cancellation -------------------------------------------------------------------------------


def test_cancel_event_stops_a_sync_waiter_promptly() -> None:
    lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=1))
    fill(lim, 1)
    cancel = threading.Event()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            lim.acquire(cancel=cancel)
        except ExecutionError as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    _wait_for(lambda: lim.stats()["waiters"] == 1)
    cancel.set()
    started = time.monotonic()
    t.join(1)
    assert time.monotonic() - started < 0.2
    assert errors and str(errors[0]) == 'cancelled while waiting on queue "q"'
    assert lim.stats()["waiters"] == 0


def test_a_cancelled_task_leaves_the_line_and_hands_the_turn_on() -> None:
    async def main() -> float:
        lim = MemoryQueueLimiter(QueueSpec(id="q", max_messages_per_second=2))
        fill(lim, 2)
        ticks = [0]

        async def ticker() -> None:  # the loop stays free while its tasks wait
            while True:
                await asyncio.sleep(0.01)
                ticks[0] += 1

        tick = asyncio.create_task(ticker())
        head = asyncio.create_task(lim.aacquire())
        await asyncio.sleep(0)
        nxt = asyncio.create_task(lim.aacquire())
        await asyncio.sleep(0.05)
        assert lim.stats()["waiting"] == {"default": 2}
        head.cancel()
        await asyncio.gather(head, return_exceptions=True)
        assert lim.stats()["waiting"] == {"default": 1}
        grant = await asyncio.wait_for(nxt, 2)
        assert lim.stats()["waiters"] == 0
        assert ticks[0] > 40
        tick.cancel()
        return grant.wait_ms

    assert 800 < asyncio.run(main()) < 1200


# -- daily budget ---------------------------------------------------------------------------------


def test_daily_budget_reserves_settles_and_resets_at_utc_midnight() -> None:
    lim, clock = fake_limiter(max_cost_usd_per_day=1.0)
    clock.wall = 86_400 * 20_000 + 3_600  # 01:00 UTC
    first = lim.acquire(cost_usd=0.6)
    with pytest.raises(BudgetExceeded, match=r'queue "q": max_cost_usd_per_day=1 would be') as e:
        lim.acquire(cost_usd=0.5)
    assert isinstance(e.value, QueueRateLimitExceeded)
    assert e.value.retry_after_s == pytest.approx(23 * 3600)
    first.settle(cost_usd=0.3)  # the real cost was lower
    assert lim.stats()["cost_usd_today"] == pytest.approx(0.3)
    lim.acquire(cost_usd=0.5).settle(cost_usd=0.7)
    assert lim.stats()["cost_usd_today"] == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded):
        lim.acquire(cost_usd=0.01)
    clock.wall += 86_400  # the next UTC day
    assert lim.stats()["cost_usd_today"] == 0.0
    lim.acquire(cost_usd=0.9)


# -- manager and the seed's entry point -------------------------------------------------------------


def test_get_queue_manager_is_one_per_process_and_thread_safe() -> None:
    seen: list[QueueManager] = []
    threads = [threading.Thread(target=lambda: seen.append(get_queue_manager())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in seen}) == 1
    assert seen[0].backend == "memory"


def test_check_rate_limit_by_id() -> None:
    mgr = get_queue_manager()
    mgr.reset()
    with pytest.raises(NotFoundError, match='queue "nope" is not known'):
        check_rate_limit("nope")
    spec = QueueSpec(id="seed-q", max_messages_per_second=100)
    grant = check_rate_limit("seed-q", spec=spec, tokens=3, subqueue="batch")
    assert (grant.queue_id, grant.subqueue, grant.reserved_tokens) == ("seed-q", "batch", 3)
    assert check_rate_limit("seed-q").queue_id == "seed-q"  # now known to the manager
    assert mgr.stats()["seed-q"]["granted"] == 2
    mgr.reset()
