"""Queue bandwidth (spec section 3): the limiter every provider call of a queue goes through.

One :class:`QueueLimiter` per queue id holds the queue's state for the whole process, so
every browser session, run and thread shares one bandwidth; with ``AGENTFLOW_REDIS_URL``
set, :func:`get_queue_manager` hands out Redis-backed limiters instead, so several
processes share it (:mod:`agentflow.runtime.queue_redis`).

How a call goes through::

    grant = get_queue_manager().get(queue_spec).acquire(subqueue="batch", tokens=900)
    ... provider call ...
    grant.settle(tokens=usage.total_tokens, cost_usd=priced)

Limits are sliding windows counted exactly on a log of grants
(:mod:`agentflow.runtime.queue_windows`); callers who must wait stand in a weighted fair
line (:mod:`agentflow.runtime.queue_line`).

Queues pace sustained load. An idle queue admits a caller at once while every window has
room, so up to N calls of an N-per-window limit can go out together. Once a caller has to
wait (a window is full, or others already wait), the queue counts as contended, and stays
so until one window (of the paced limit) after the last wait ends: while contended, every
grant also comes at least W/N after the previous grant (:meth:`SlidingLog.earliest`,
``paced``), so a saturated queue hands out an even stream (one grant every 50 ms at 20/s)
instead of N grants at each turn of the window, which would crowd the callers' event loops
and spread those calls' arrival at the provider over a few hundred ms, next to the
following window's burst. ``on_limit: reject`` is not paced: it rejects only a call that
finds a window full.

Sync callers (threads) and async callers (any number of event loops) share one limiter: its
state sits behind a plain lock held for microseconds, sync waiters sleep on an event and
async waiters on a future of their own loop, so nobody spins and no loop is blocked. (An
asyncio timer fires up to a millisecond late; a paced grant is spaced from the time the
previous one was due, not made, so that lateness does not add up over a stream:
:meth:`SlidingLog.admit <agentflow.runtime.queue_windows.SlidingLog.admit>`.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from agentflow.errors import NotFoundError
from agentflow.runtime.queue_base import CANCEL_POLL_S, Grant, QueueLimiter, utc_day
from agentflow.runtime.queue_line import Waiter
from agentflow.runtime.queue_windows import SlidingLog, limits_for
from agentflow.settings import get_settings
from agentflow.spec.models import QueueSpec

__all__ = [
    "Grant",
    "MemoryQueueLimiter",
    "QueueLimiter",
    "QueueManager",
    "check_rate_limit",
    "get_queue_manager",
]


class _Ticket:
    """A waiter's own bookkeeping: when it started, when it must give up."""

    __slots__ = ("deadline", "max_wait_s", "started", "waiter")

    def __init__(self, waiter: Waiter, started: int, deadline: int | None, max_wait_s: float):
        self.waiter = waiter
        self.started = started
        self.deadline = deadline
        self.max_wait_s = max_wait_s


class MemoryQueueLimiter(QueueLimiter):
    """The in-process state of one queue. Get it from :meth:`QueueManager.get`.

    ``clock`` (monotonic, ns) and ``wall_clock`` (epoch seconds, for the UTC day of the cost
    budget) are parameters so tests can drive time.
    """

    backend = "memory"

    def __init__(
        self,
        spec: QueueSpec,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(spec)
        self._clock = clock
        self._wall = wall_clock
        self._log = SlidingLog(limits_for(spec))
        self._day = utc_day(wall_clock())
        self._spent = 0.0
        self._next_at: int | None = None  # when the head of the line is due, if known
        self._busy_until = 0  # contended (grants paced) until then: see the module docstring

    # -- public ----------------------------------------------------------------------------

    def acquire(
        self,
        *,
        subqueue: str = "default",
        tokens: int = 0,
        cost_usd: float = 0.0,
        max_wait_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Grant:
        got = self._enter(subqueue, tokens, cost_usd, max_wait_s, None)
        if isinstance(got, Grant):
            return got
        w = got.waiter
        lock = self._lock
        try:
            while True:
                with lock:
                    r = self._step(got)
                    if isinstance(r, Grant):
                        return r
                    w.arm()
                if cancel is None:
                    w.sleep(r)
                    continue
                w.sleep(CANCEL_POLL_S if r is None else min(r, CANCEL_POLL_S))
                if cancel.is_set():
                    raise self._cancelled()
        except BaseException:
            with lock:
                self._leave(w)
            raise

    async def aacquire(
        self,
        *,
        subqueue: str = "default",
        tokens: int = 0,
        cost_usd: float = 0.0,
        max_wait_s: float | None = None,
    ) -> Grant:
        got = self._enter(subqueue, tokens, cost_usd, max_wait_s, asyncio.get_running_loop())
        if isinstance(got, Grant):
            return got
        w = got.waiter
        lock = self._lock
        try:
            while True:
                with lock:
                    r = self._step(got)
                    if isinstance(r, Grant):
                        return r
                    w.arm()
                await w.asleep(r)
        except BaseException:
            with lock:
                self._leave(w)
            raise

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self._log.advance(self._clock())
            out = self._base_stats()
            out["limits"] = {
                lim.name: {"limit": lim.value, "window_s": lim.length_ns / 1e9, "used": used}
                for lim, used in self._log.usage()
            }
            today = utc_day(self._wall()) == self._day
            out["cost_usd_today"] = round(self._spent, 9) if today else 0.0
        return out

    # -- admission (under the lock) --------------------------------------------------------

    def _enter(
        self,
        subqueue: str,
        tokens: int,
        cost_usd: float,
        max_wait_s: float | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> Grant | _Ticket:
        """Admit at once if the line is empty and every window has room; else reject or
        line up (returning the ticket to wait with)."""
        if tokens < 0:
            tokens = 0
        tpm = self.spec.tokens_per_minute
        if tpm is not None and tokens > tpm:
            self._count_rejection()
            raise self._too_big(tokens)
        with self._lock:
            now = self._clock()
            log = self._log
            log.advance(now)
            when, which = log.earliest(now, tokens)
            reject = self.spec.on_limit == "reject"
            # Idle (or reject mode): admit if the windows have room. Contended: only if the
            # pacing allows it too.
            if when <= now and not self._line and (now >= self._busy_until or reject or log.paced_at()[0] <= now):
                day = self._charge(cost_usd)
                entry = log.admit(now, tokens)
                self._granted += 1
                return Grant(self, subqueue, 0.0, tokens, cost_usd, entry[0], day, entry)
            if reject:
                if which is not None:
                    self._blocked_by = which.describe()
                self._rejected += 1
                retry = max(when, self._next_at or when) - now
                raise self._rejected_now(self._blocked_by, retry / 1e9)
            paced_at, pacer = log.paced_at()
            if paced_at > when:
                when, which = paced_at, pacer
            if which is not None:
                self._blocked_by = which.describe()
            w = Waiter(subqueue, tokens, cost_usd, loop)
            w.day = self._charge(cost_usd)
            self._enqueue(w)
            limit = self._effective_max_wait(max_wait_s)
            if limit is None:
                return _Ticket(w, now, None, 0.0)
            deadline = now + int(limit * 1e9)
            calls, ahead_tokens = self._line.ahead_of(w)
            expected = log.estimate(now, calls + 1, ahead_tokens + w.tokens, paced=True)
            if expected > deadline:
                self._leave(w)
                self._rejected += 1
                raise self._would_wait_too_long(self._blocked_by, (expected - now) / 1e9, limit)
            return _Ticket(w, now, deadline, limit)

    def _step(self, t: _Ticket) -> Grant | float | None:
        """One look at the line for waiter ``t``: its grant, or how long to sleep (s)."""
        w = t.waiter
        now = self._clock()
        sleep_ns: int | None = None
        if self._turn is w:
            self._check_fits(w)
            log = self._log
            log.advance(now)
            when, which = log.earliest(now, w.tokens, paced=True)
            if when <= now:
                # Due when the head's last look said (its timer fires a little late).
                due = self._next_at if self._next_at is not None and self._next_at <= now else now
                self._next_at = None
                entry = log.admit(now, w.tokens, due=due)
                wait_ms = (now - t.started) / 1e6
                self._served(w, wait_ms)
                return Grant(self, w.subqueue, wait_ms, w.tokens, w.cost, entry[0], w.day, entry)
            if which is not None:
                self._blocked_by = which.describe()
            self._next_at = when
            self._contend(when)
            if t.deadline is not None and when > t.deadline:
                self._leave(w)
                self._rejected += 1
                raise self._would_wait_too_long(self._blocked_by, (when - t.started) / 1e9, t.max_wait_s)
            sleep_ns = when - now
        if t.deadline is not None:
            if now >= t.deadline:
                self._leave(w)
                self._rejected += 1
                retry = None if self._next_at is None else max(0, self._next_at - now) / 1e9
                raise self._waited_too_long(self._blocked_by, (now - t.started) / 1e9, t.max_wait_s, retry)
            left = t.deadline - now
            if sleep_ns is None or left < sleep_ns:
                sleep_ns = left
        return None if sleep_ns is None else sleep_ns / 1e9

    def _contend(self, when: int) -> None:
        """Someone waits until ``when``: pace grants until a window after that."""
        until = when + self._log.hold_ns
        if until > self._busy_until:
            self._busy_until = until

    def _charge(self, cost_usd: float) -> int:
        """Reserve an estimated cost against today's budget; returns the UTC day."""
        wall = self._wall()
        day = utc_day(wall)
        if day != self._day:
            self._day = day
            self._spent = 0.0
        budget = self.spec.max_cost_usd_per_day
        if budget is not None and self._spent + cost_usd > budget + 1e-12:
            self._rejected += 1
            raise self._over_budget(self._spent, cost_usd, wall)
        self._spent += cost_usd
        return day

    def _release(self, w: Waiter) -> None:
        if w.day == self._day:
            self._spent -= w.cost

    def _settle(self, grant: Grant, tokens: int | None, cost_usd: float) -> None:
        with self._lock:
            if grant.settled:
                return
            grant.settled = True
            entry = grant._ref
            if tokens is not None:
                tokens = max(0, int(tokens))
                if tokens != entry[1]:
                    freed = tokens < entry[1]
                    self._log.resize(entry, tokens)
                    if freed:
                        self._poke()
            if grant._day == self._day:
                self._spent += cost_usd - grant.cost_usd

    def _update(self, spec: QueueSpec) -> None:
        with self._lock:
            self.spec = spec
            self._log.configure(limits_for(spec), None, self._clock())
            self._next_at = None
            self._poke()


class QueueManager:
    """The limiters of one process, one per queue id (in memory)."""

    backend = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limiters: dict[str, QueueLimiter] = {}

    def get(self, spec: QueueSpec) -> QueueLimiter:
        """The limiter of ``spec.id``. A definition that differs from the one in use
        replaces it for everyone sharing the id; the window history is kept."""
        lim = self._limiters.get(spec.id)
        if lim is None:
            with self._lock:
                lim = self._limiters.get(spec.id)
                if lim is None:
                    lim = self._limiters[spec.id] = self._create(spec)
                    return lim
        if lim.spec is not spec and lim.spec != spec:
            lim._update(spec)
        return lim

    def find(self, queue_id: str) -> QueueLimiter | None:
        """The limiter of a queue already used in this process, if any."""
        return self._limiters.get(queue_id)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {qid: lim.stats() for qid, lim in sorted(self._limiters.items())}

    def reset(self) -> None:
        """Forget every queue (tests)."""
        with self._lock:
            self._limiters.clear()

    def _create(self, spec: QueueSpec) -> QueueLimiter:
        return MemoryQueueLimiter(spec)


_managers: dict[str | None, QueueManager] = {}
_managers_lock = threading.Lock()


def get_queue_manager() -> QueueManager:
    """The process-wide manager: Redis-backed when ``AGENTFLOW_REDIS_URL`` is set (one per
    distinct URL), in memory otherwise."""
    url = get_settings().redis_url
    mgr = _managers.get(url)
    if mgr is None:
        with _managers_lock:
            mgr = _managers.get(url)
            if mgr is None:
                if url is None:
                    mgr = QueueManager()
                else:
                    from agentflow.runtime.queue_redis import RedisQueueManager

                    mgr = RedisQueueManager(url)
                _managers[url] = mgr
    return mgr


def check_rate_limit(
    queue_id: str,
    *,
    subqueue: str = "default",
    tokens: int = 0,
    spec: QueueSpec | None = None,
) -> Grant:
    """The seed's entry point: acquire on queue ``queue_id`` (blocking, per its spec)."""
    mgr = get_queue_manager()
    if spec is not None:
        if spec.id != queue_id:
            raise NotFoundError(f'queue "{queue_id}": the spec given is for queue "{spec.id}"', queue=queue_id)
        lim = mgr.get(spec)
    else:
        found = mgr.find(queue_id)
        if found is None:
            raise NotFoundError(
                f'queue "{queue_id}" is not known in this process; pass its spec '
                f"(check_rate_limit(..., spec=QueueSpec(...))) or define it in the workflow "
                f"or on the Queues page",
                queue=queue_id,
            )
        lim = found
    return lim.acquire(subqueue=subqueue, tokens=tokens)
