"""The waiting line of a queue: weighted fair order between subqueues, one turn at a time.

Callers that cannot be admitted at once wait here. The order is self-clocked weighted fair
queuing: a waiter gets a virtual finish tag ``max(V, last tag of its subqueue) + 1/weight``
when it arrives, and the smallest tag goes first (arrival order breaks ties). With weights
3:1 and both subqueues busy that hands out three grants to one for each one to the other;
a subqueue that arrives late starts at the current virtual time (no credit hoarded while
idle, no starvation), and order inside a subqueue is FIFO.

Only the head of the line may be admitted: nobody overtakes it, so a large request queued
first is never passed over forever by small ones. When it may be admitted is the limiter's
business: when every window has room and, since it had to wait, the queue's pacing allows
(:mod:`agentflow.runtime.queue_windows`). The head holds "the turn": it alone
sleeps until its admission time (one timer per queue), then admits itself and hands the
turn on. Admitting in the waiter's own thread or event loop keeps the recorded grant time
within microseconds of when the caller actually proceeds.

Waiters are woken through a :class:`threading.Event` (sync callers) or a future of their own
event loop (async callers), so threads and several event loops can share one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque

__all__ = ["WaitLine", "Waiter"]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Waiter:
    """One caller waiting in a queue's line."""

    __slots__ = (
        "cost",
        "day",
        "event",
        "fut",
        "in_line",
        "loop",
        "seq",
        "start",
        "subqueue",
        "tag",
        "thread",
        "tokens",
    )

    def __init__(
        self,
        subqueue: str,
        tokens: int,
        cost: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.subqueue = subqueue
        self.tokens = tokens
        self.cost = cost
        self.day = 0  # the UTC day its cost estimate was reserved on
        self.start = 0.0
        self.tag = 0.0
        self.seq = 0
        self.in_line = False
        self.loop = loop
        self.fut: asyncio.Future[None] | None = None
        self.event: threading.Event | None = None if loop is not None else threading.Event()
        self.thread = threading.get_ident()

    def arm(self) -> None:
        """Get ready to sleep: call under the limiter's lock, in the same critical section
        as the check that decided to sleep, so no wake-up can slip in between."""
        if self.event is not None:
            self.event.clear()
        else:
            assert self.loop is not None
            self.fut = self.loop.create_future()

    def wake(self) -> None:
        """Wake the waiter from any thread (it re-checks its state under the lock)."""
        if self.event is not None:
            self.event.set()
            return
        fut = self.fut
        if fut is None or fut.done():
            return
        if threading.get_ident() == self.thread:
            fut.set_result(None)
            return
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to wake
            self.loop.call_soon_threadsafe(_resolve, fut)

    def sleep(self, timeout_s: float | None) -> None:
        """Block the calling thread until woken or ``timeout_s`` passes."""
        assert self.event is not None
        self.event.wait(timeout_s)

    async def asleep(self, timeout_s: float | None) -> None:
        """Suspend the task until woken or ``timeout_s`` passes; never blocks the loop."""
        fut = self.fut
        assert fut is not None and self.loop is not None
        handle = self.loop.call_later(timeout_s, _resolve, fut) if timeout_s is not None else None
        try:
            await fut
        finally:
            if handle is not None:
                handle.cancel()


class WaitLine:
    """Waiters per subqueue, served in weighted fair order. Not thread-safe: the limiter
    calls it under its lock."""

    __slots__ = ("_finish", "_n", "_seq", "_subs", "_vtime")

    def __init__(self) -> None:
        self._subs: dict[str, deque[Waiter]] = {}
        self._finish: dict[str, float] = {}
        self._vtime = 0.0
        self._seq = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def push(self, w: Waiter, weight: float) -> None:
        start = max(self._vtime, self._finish.get(w.subqueue, 0.0))
        w.start = start
        w.tag = start + 1.0 / weight
        self._finish[w.subqueue] = w.tag
        self._seq += 1
        w.seq = self._seq
        w.in_line = True
        self._subs.setdefault(w.subqueue, deque()).append(w)
        self._n += 1

    def head(self) -> Waiter | None:
        best: Waiter | None = None
        for dq in self._subs.values():
            w = dq[0]
            if best is None or w.tag < best.tag or (w.tag == best.tag and w.seq < best.seq):
                best = w
        return best

    def remove(self, w: Waiter, *, served: bool) -> None:
        """Take ``w`` out: served (granted) or gone (timed out, cancelled)."""
        if not w.in_line:
            return
        w.in_line = False
        dq = self._subs[w.subqueue]
        if dq[0] is w:
            dq.popleft()
        else:
            dq.remove(w)
        if served:
            if w.tag > self._vtime:
                self._vtime = w.tag
        elif self._finish.get(w.subqueue) == w.tag:
            # The last of its subqueue left unserved: give back its place so the
            # subqueue's next arrival is not pushed back for a grant it never had.
            self._finish[w.subqueue] = w.start
        if not dq:
            del self._subs[w.subqueue]
        self._n -= 1
        if not self._n:  # idle: start the virtual clock afresh
            self._finish.clear()
            self._vtime = 0.0

    def ahead_of(self, w: Waiter) -> tuple[int, int]:
        """How many waiters, and how many tokens, go before ``w`` (as things stand)."""
        calls = tokens = 0
        for dq in self._subs.values():
            for o in dq:
                if o.tag < w.tag or (o.tag == w.tag and o.seq < w.seq):
                    calls += 1
                    tokens += o.tokens
                else:
                    break  # tags grow along a subqueue
        return calls, tokens

    def waiting(self) -> dict[str, int]:
        return {sub: len(dq) for sub, dq in self._subs.items()}
