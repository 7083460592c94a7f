"""What the in-process and the Redis queue limiters share: the grant, the line, the errors.

A backend supplies how a grant is admitted (the windows and the pacing of sustained load,
:mod:`agentflow.runtime.queue_windows`: a log in memory, or a Lua script in Redis) and its
own ``stats``; the waiting line, the turn hand-over, the counters and every message a
user can see are written once here so both backends behave and read the same.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from agentflow.errors import BudgetExceeded, ExecutionError, QueueRateLimitExceeded
from agentflow.runtime.queue_line import Waiter, WaitLine
from agentflow.spec.models import QueueSpec

__all__ = [
    "CANCEL_POLL_S",
    "Grant",
    "QueueLimiter",
    "seconds_to_utc_midnight",
    "utc_day",
]

#: How often a sync waiter with a ``cancel`` event looks at it (Python cannot wait on two
#: events at once): bounds how late a cancel is noticed.
CANCEL_POLL_S = 0.05

DAY_S = 86_400


def utc_day(wall_s: float) -> int:
    """Days since the epoch, UTC: the key of a day's cost budget."""
    return int(wall_s // DAY_S)


def seconds_to_utc_midnight(wall_s: float) -> float:
    return DAY_S - wall_s % DAY_S


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


class Grant:
    """Permission for one call through a queue.

    ``settle`` after the provider call replaces the reserved token estimate by the real usage
    (``tokens=None`` keeps the estimate) and records the call's real cost for the queue's
    daily budget. Settling twice does nothing. A grant never settled keeps its estimates,
    which errs on the safe side.
    """

    __slots__ = (
        "_day",
        "_limiter",
        "_ref",
        "admitted_at_ns",
        "cost_usd",
        "gone",
        "queue_id",
        "ready_ns",
        "reserved_tokens",
        "settled",
        "subqueue",
        "wait_ms",
    )

    def __init__(
        self,
        limiter: QueueLimiter,
        subqueue: str,
        wait_ms: float,
        tokens: int,
        cost_usd: float,
        admitted_at_ns: int,
        day: int,
        ref: Any,
        ready_ns: int | None = None,
    ) -> None:
        self._limiter = limiter
        self.queue_id: str = limiter.queue_id
        self.subqueue = subqueue
        self.wait_ms = wait_ms
        self.reserved_tokens = tokens
        #: The estimated cost reserved against the daily budget at admission.
        self.cost_usd = cost_usd
        #: The limiter's clock at admission: monotonic ns in-process, Redis ``TIME`` (as ns)
        #: with the Redis backend. Windows are counted on this clock.
        self.admitted_at_ns = admitted_at_ns
        #: Local ``time.monotonic_ns()`` from which the caller may go (the grant's arrival,
        #: or the slot it was stamped ahead for): how late the call really leaves is
        #: measured from here.
        self.ready_ns = time.monotonic_ns() if ready_ns is None else ready_ns
        #: The call has been reported as leaving (:meth:`gone_out`); later reports of the
        #: same call (the SDK's own retries) change nothing.
        self.gone = False
        self.settled = False
        self._day = day
        self._ref = ref

    def settle(self, tokens: int | None = None, cost_usd: float = 0.0) -> None:
        self._limiter._settle(self, tokens, cost_usd)

    async def asettle(self, tokens: int | None = None, cost_usd: float = 0.0) -> None:
        """Like :meth:`settle`, without a blocking round trip on the Redis backend."""
        await self._limiter._asettle(self, tokens, cost_usd)

    def gone_out(self) -> None:
        """The call is on its way to the provider now (see :mod:`agentflow.sending`)."""
        if not self.gone:
            self.gone = True
            self._limiter._gone_out(self)

    async def agone_out(self) -> None:
        """Like :meth:`gone_out`, without a blocking round trip on the Redis backend."""
        if not self.gone:
            self.gone = True
            await self._limiter._agone_out(self)

    def __repr__(self) -> str:
        return (
            f"Grant(queue_id={self.queue_id!r}, subqueue={self.subqueue!r}, "
            f"wait_ms={self.wait_ms:.3f}, reserved_tokens={self.reserved_tokens})"
        )


class QueueLimiter(ABC):
    """One queue's bandwidth, shared by everyone using the queue id in this process.

    The base of both backends: it holds the waiting line, the turn and the counters;
    :class:`~agentflow.runtime.rate_limiter.MemoryQueueLimiter` and
    :class:`~agentflow.runtime.queue_redis.RedisQueueLimiter` admit grants. Get one from
    :meth:`QueueManager.get <agentflow.runtime.rate_limiter.QueueManager.get>`.
    """

    backend = "base"

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._line = WaitLine()
        self._turn: Waiter | None = None
        self._granted = 0
        self._rejected = 0
        self._wait_sum_ms = 0.0
        self._wait_max_ms = 0.0
        #: The limit that held the line up last (for messages).
        self._blocked_by = "the queue's limits"

    @property
    def queue_id(self) -> str:
        return self.spec.id

    # -- the line (all under self._lock) ---------------------------------------------------

    def _enqueue(self, w: Waiter) -> None:
        self._line.push(w, self.spec.weight(w.subqueue))
        self._reassign()

    def _leave(self, w: Waiter) -> None:
        """``w`` gives up (timeout, cancel, error): out of the line, turn handed on."""
        if not w.in_line:
            return
        self._line.remove(w, served=False)
        self._release(w)
        if self._turn is w:
            self._turn = None
        self._reassign()

    def _served(self, w: Waiter, wait_ms: float) -> None:
        self._line.remove(w, served=True)
        if self._turn is w:
            self._turn = None
        self._reassign()
        self._count_grant(wait_ms)

    def _reassign(self) -> None:
        """Give the turn to the current head if someone else holds it, and wake it."""
        head = self._line.head()
        if head is not self._turn:
            self._turn = head
            if head is not None:
                head.wake()

    def _poke(self) -> None:
        """Capacity may have changed (settle, new limits): the turn holder looks again."""
        if self._turn is not None:
            self._turn.wake()

    def _check_fits(self, w: Waiter) -> None:
        """The head can still ever be admitted: a new, smaller ``tokens_per_minute`` may
        have come in while it waited, and it must not hold the line forever."""
        tpm = self.spec.tokens_per_minute
        if tpm is not None and w.tokens > tpm:
            self._leave(w)
            self._rejected += 1
            raise self._too_big(w.tokens)

    def _release(self, w: Waiter) -> None:
        """Undo what admitting ``w`` reserved before it waited: nothing, unless the backend
        reserves before the wait (the in-process one reserves the day's cost)."""
        return None

    def _count_grant(self, wait_ms: float) -> None:
        self._granted += 1
        if wait_ms:
            self._wait_sum_ms += wait_ms
            if wait_ms > self._wait_max_ms:
                self._wait_max_ms = wait_ms

    def _effective_max_wait(self, max_wait_s: float | None) -> float | None:
        spec_max = self.spec.max_wait_s
        if max_wait_s is None:
            return spec_max
        return max_wait_s if spec_max is None else min(spec_max, max_wait_s)

    # -- errors ----------------------------------------------------------------------------

    def _count_rejection(self) -> None:
        with self._lock:
            self._rejected += 1

    def _too_big(self, tokens: int) -> QueueRateLimitExceeded:
        tpm = self.spec.tokens_per_minute
        assert tpm is not None
        return QueueRateLimitExceeded(
            f'queue "{self.queue_id}": a call of {tokens} tokens can never fit '
            f"tokens_per_minute={_num(tpm)}; lower the call's max_tokens or prompt size, "
            f"or raise the queue's tokens_per_minute",
            {"queue": self.queue_id, "limit": "tokens_per_minute", "tokens": tokens},
            queue=self.queue_id,
        )

    def _rejected_now(self, which: str, retry_after_s: float) -> QueueRateLimitExceeded:
        return QueueRateLimitExceeded(
            f'queue "{self.queue_id}": {which} reached (on_limit: reject); retry after {retry_after_s:.3f} s',
            {"queue": self.queue_id, "limit": which, "retry_after_s": retry_after_s},
            retry_after_s=retry_after_s,
            queue=self.queue_id,
        )

    def _waited_too_long(
        self, which: str, waited_s: float, max_wait_s: float, retry_after_s: float | None
    ) -> QueueRateLimitExceeded:
        return QueueRateLimitExceeded(
            f'queue "{self.queue_id}": {which} reached; waited {waited_s:.1f} s (max_wait_s)',
            {"queue": self.queue_id, "limit": which, "max_wait_s": max_wait_s},
            retry_after_s=retry_after_s,
            queue=self.queue_id,
        )

    def _would_wait_too_long(self, which: str, expected_s: float, max_wait_s: float) -> QueueRateLimitExceeded:
        return QueueRateLimitExceeded(
            f'queue "{self.queue_id}": {which} reached; the wait would be about '
            f"{expected_s:.1f} s, over max_wait_s={_num(max_wait_s)}",
            {"queue": self.queue_id, "limit": which, "max_wait_s": max_wait_s},
            retry_after_s=expected_s,
            queue=self.queue_id,
        )

    def _over_budget(self, spent: float, cost: float, wall_s: float) -> BudgetExceeded:
        budget = self.spec.max_cost_usd_per_day
        assert budget is not None
        retry = seconds_to_utc_midnight(wall_s)
        return BudgetExceeded(
            f'queue "{self.queue_id}": max_cost_usd_per_day={_num(budget)} would be passed '
            f"(spent today {spent:.4f} USD, this call about {cost:.4f} USD); wait for the "
            f"next UTC day or raise the queue's max_cost_usd_per_day",
            {"queue": self.queue_id, "limit": "max_cost_usd_per_day", "spent_usd": spent},
            retry_after_s=retry,
            queue=self.queue_id,
        )

    def _cancelled(self) -> ExecutionError:
        return ExecutionError(f'cancelled while waiting on queue "{self.queue_id}"', queue=self.queue_id)

    # -- stats -----------------------------------------------------------------------------

    def _base_stats(self) -> dict[str, Any]:
        """Counters of this process (call under the lock)."""
        waiting = self._line.waiting()
        return {
            "queue_id": self.queue_id,
            "backend": self.backend,
            "on_limit": self.spec.on_limit,
            "waiting": waiting,
            "waiters": sum(waiting.values()),
            "granted": self._granted,
            "rejected": self._rejected,
            "wait_ms_avg": self._wait_sum_ms / self._granted if self._granted else 0.0,
            "wait_ms_max": self._wait_max_ms,
            "max_cost_usd_per_day": self.spec.max_cost_usd_per_day,
        }

    # -- the public face, and backend hooks ------------------------------------------------

    @abstractmethod
    def acquire(
        self,
        *,
        subqueue: str = "default",
        tokens: int = 0,
        cost_usd: float = 0.0,
        max_wait_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Grant:
        """Admit one call, waiting in line if the queue says so; blocks the thread. A set
        ``cancel`` event makes it give up (``ExecutionError``) within ``CANCEL_POLL_S``."""

    @abstractmethod
    async def aacquire(
        self,
        *,
        subqueue: str = "default",
        tokens: int = 0,
        cost_usd: float = 0.0,
        max_wait_s: float | None = None,
    ) -> Grant:
        """Admit one call from a coroutine, never blocking the loop. A task cancelled while
        waiting leaves the line and hands its turn on."""

    @abstractmethod
    def _settle(self, grant: Grant, tokens: int | None, cost_usd: float) -> None:
        """Replace the grant's token estimate by the real usage; record its real cost."""

    async def _asettle(self, grant: Grant, tokens: int | None, cost_usd: float) -> None:
        self._settle(grant, tokens, cost_usd)

    def _gone_out(self, grant: Grant) -> None:
        """The call of ``grant`` leaves now. In-process the log is not moved: the call goes
        from the thread or loop it was granted in, and grants are kept in time order."""
        return None

    async def _agone_out(self, grant: Grant) -> None:
        self._gone_out(grant)

    @abstractmethod
    def _update(self, spec: QueueSpec) -> None:
        """Apply a new definition of the queue to everyone sharing it."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """The live figures of the queue (windows, waiters, rejections, waits)."""
