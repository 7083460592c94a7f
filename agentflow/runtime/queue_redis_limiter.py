"""The Redis-backed limiter of one queue; what it shares and how: see
:mod:`agentflow.runtime.queue_redis`.

Pacing under sustained load (:mod:`agentflow.runtime.queue_windows`) is decided by the
admission script, with the previous grant's time and the contention deadline kept in
Redis. This side tells the script whether the caller has waited: a caller that finds the
line empty asks as a newcomer; once Redis has told anyone here to wait, the heads of the
line ask as waiters until the line empties (a crowd arriving at an idle queue lines up
here only to ask one at a time, and so keeps its burst).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import redis

from agentflow.errors import ExecutionError
from agentflow.runtime.queue_base import CANCEL_POLL_S, Grant, QueueLimiter
from agentflow.runtime.queue_line import Waiter
from agentflow.runtime.queue_redis_scripts import RESERVE_US, Outcome, Scripts
from agentflow.runtime.queue_windows import limits_for, retention_for
from agentflow.spec.models import QueueSpec

log = logging.getLogger("agentflow.runtime")

#: A call leaving this long after its grant is moved to the time it left (one round trip
#: to Redis, paid only by calls already late). Punctual calls leave within a ms or two.
LATE_NS = 5_000_000

if TYPE_CHECKING:
    from agentflow.runtime.queue_redis import RedisQueueManager

__all__ = ["RedisQueueLimiter"]


class RedisQueueLimiter(QueueLimiter):
    """One queue's bandwidth, shared with every process that uses the same Redis."""

    backend = "redis"

    def __init__(self, spec: QueueSpec, manager: RedisQueueManager) -> None:
        super().__init__(spec)
        self._mgr = manager
        p = f"{manager.key_prefix}{spec.id}:"
        names = ("log", "tok", "toksum", "tokcut", "seq", "cost", "stats", "pace")
        self._k = {n: p + n for n in names}
        self._admit_keys = [self._k[n] for n in names]
        self._settle_keys = [self._k[n] for n in ("log", "tok", "toksum", "tokcut", "cost")]
        self._stats_keys = [self._k[n] for n in ("log", "tok", "toksum", "tokcut", "cost", "stats")]
        self._restamp_keys = [self._k["log"], self._k["pace"]]
        self._retry_at = 0  # monotonic ns before which the head need not ask Redis again
        self._asking = 0  # callers asking Redis outside the line (at most one in wait mode)
        self._waited = False  # Redis told a caller here to wait since the line was last empty
        self._pending: set[asyncio.Task[Any]] = set()
        self._configure(spec)

    def _configure(self, spec: QueueSpec) -> None:
        self._limits = limits_for(spec)
        self._lim_args: list[Any] = []
        guard = self._mgr.guard_us
        for lim in self._limits:
            length = lim.length_ns // 1000 + (0 if lim.tokens else guard)
            self._lim_args += [length, lim.cap, 1 if lim.tokens else 0]
        self._head_args = [len(self._limits), retention_for(self._limits) // 1000 + guard]
        pace = hold = index = 0
        for i, lim in enumerate(self._limits, 1):
            if lim.spacing_ns > pace:
                pace, hold, index = lim.spacing_ns, lim.length_ns, i
        self._pace_args = [-(-pace // 1000), hold // 1000, index, guard]
        self._shortest_us = min((lim.length_ns // 1000 for lim in self._limits), default=0)

    def _argv(self, tokens: int, cost: float, reject: bool, waited: bool) -> list[Any]:
        budget = self.spec.max_cost_usd_per_day
        return [
            *self._head_args,
            tokens,
            repr(float(cost)),
            -1 if budget is None else repr(float(budget)),
            1 if reject else 0,
            *self._pace_args,
            1 if waited else 0,
            0 if reject else RESERVE_US,
            *self._lim_args,
        ]

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
        tokens, limit, reject, started = self._prepare(tokens, max_wait_s)
        first = not reject and self._may_ask_first()
        if reject or first:
            try:
                out = self._call_sync(tokens, cost_usd, reject, False)
            finally:
                if first:
                    self._asked()
            got = self._first_outcome(out, subqueue, tokens, cost_usd, reject, limit)
            if got is not None:
                return got
        w = Waiter(subqueue, tokens, cost_usd)
        lock = self._lock
        with lock:
            self._enqueue(w)
        try:
            while True:
                with lock:
                    ask, sleep_s = self._step(w, started, limit)
                    if not ask:
                        w.arm()
                    waited = self._waited
                if ask:
                    out = self._call_sync(tokens, cost_usd, False, waited)
                    grant = self._waiter_outcome(w, out, started, limit)
                    if grant is not None:
                        return grant
                    continue
                if cancel is None:
                    w.sleep(sleep_s)
                    continue
                w.sleep(CANCEL_POLL_S if sleep_s is None else min(sleep_s, CANCEL_POLL_S))
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
        tokens, limit, reject, started = self._prepare(tokens, max_wait_s)
        first = not reject and self._may_ask_first()
        if reject or first:
            try:
                out = await self._call_async(tokens, cost_usd, reject, False)
            finally:
                if first:
                    self._asked()
            got = self._first_outcome(out, subqueue, tokens, cost_usd, reject, limit)
            if got is not None:
                return got
        w = Waiter(subqueue, tokens, cost_usd, asyncio.get_running_loop())
        lock = self._lock
        with lock:
            self._enqueue(w)
        try:
            while True:
                with lock:
                    ask, sleep_s = self._step(w, started, limit)
                    if not ask:
                        w.arm()
                    waited = self._waited
                if ask:
                    out = await self._call_async(tokens, cost_usd, False, waited)
                    grant = self._waiter_outcome(w, out, started, limit)
                    if grant is not None:
                        return grant
                    continue
                await w.asleep(sleep_s)
        except BaseException:
            with lock:
                self._leave(w)
            raise

    def stats(self) -> dict[str, Any]:
        """Windows, cost and counts of the whole queue (from Redis); waiters and wait
        times of this process."""
        reply = self._mgr.scripts.stats(keys=self._stats_keys, args=[len(self._limits), *self._lim_args])
        with self._lock:
            out = self._base_stats()
        out["granted_here"], out["rejected_here"] = out["granted"], out["rejected"]
        out["granted"], out["rejected"] = int(reply[2]), int(reply[3])
        out["limits"] = {
            lim.name: {"limit": lim.value, "window_s": lim.length_ns / 1e9, "used": int(used)}
            for lim, used in zip(self._limits, reply[4:], strict=True)
        }
        out["cost_usd_today"] = round(float(reply[1]), 9)
        return out

    def purge(self) -> None:
        """Delete this queue's keys in Redis (tests, benchmarks): its history is lost."""
        self._mgr.client.delete(*self._k.values())

    # -- steps shared by the sync and async paths --------------------------------------------

    def _may_ask_first(self) -> bool:
        """Ask Redis straight away only when nobody here waits or asks: a crowd arriving at
        once then lines up locally instead of all queueing for connections, which would
        hand grants to callers long after Redis admitted them."""
        with self._lock:
            if self._line or self._asking:
                return False
            self._asking += 1
            self._waited = False
            return True

    def _asked(self) -> None:
        with self._lock:
            self._asking -= 1

    def _prepare(self, tokens: int, max_wait_s: float | None) -> tuple[int, float | None, bool, int]:
        tokens = max(0, int(tokens))
        tpm = self.spec.tokens_per_minute
        if tpm is not None and tokens > tpm:
            self._count_rejection()
            raise self._too_big(tokens)
        limit = self._effective_max_wait(max_wait_s)
        return tokens, limit, self.spec.on_limit == "reject", time.monotonic_ns()

    def _grant(self, out: Outcome, subqueue: str, tokens: int, cost: float, wait_ms: float) -> Grant:
        return Grant(self, subqueue, wait_ms, tokens, cost, out.t_us * 1000, out.day, (out.ref, out.t_us))

    def _which(self, out: Outcome) -> str:
        if 1 <= out.which <= len(self._limits):
            return self._limits[out.which - 1].describe()
        return self._blocked_by

    def _first_outcome(
        self,
        out: Outcome,
        subqueue: str,
        tokens: int,
        cost: float,
        reject: bool,
        limit: float | None,
    ) -> Grant | None:
        """The answer to a caller who found the line empty: a grant, an error, or None
        (line up)."""
        if out.granted:
            with self._lock:
                self._count_grant(0.0)
            return self._grant(out, subqueue, tokens, cost, 0.0)
        if out.over_budget:
            self._count_rejection()
            raise self._over_budget(out.spent, cost, out.t_us / 1e6)
        which = self._which(out)
        with self._lock:
            self._blocked_by = which
            self._retry_at = out.retry_at
            if reject:
                self._rejected += 1
                raise self._rejected_now(which, out.wait_ns / 1e9)
            self._waited = True
            if limit is not None and out.wait_ns > limit * 1e9:
                self._rejected += 1
                raise self._would_wait_too_long(which, out.wait_ns / 1e9, limit)
        return None

    def _step(self, w: Waiter, started: int, limit: float | None) -> tuple[bool, float | None]:
        """Under the lock: ask Redis now (True), or sleep how long (s, None: until woken)."""
        now = time.monotonic_ns()
        sleep_ns: int | None = None
        if self._turn is w:
            self._check_fits(w)
            if now >= self._retry_at:
                return True, None
            sleep_ns = self._retry_at - now
        if limit is not None:
            deadline = started + int(limit * 1e9)
            if now >= deadline:
                self._leave(w)
                self._rejected += 1
                retry = max(0, self._retry_at - now) / 1e9
                raise self._waited_too_long(self._blocked_by, (now - started) / 1e9, limit, retry)
            if sleep_ns is None or deadline - now < sleep_ns:
                sleep_ns = deadline - now
        return False, None if sleep_ns is None else sleep_ns / 1e9

    def _waiter_outcome(self, w: Waiter, out: Outcome, started: int, limit: float | None) -> Grant | None:
        now = time.monotonic_ns()
        wait_ms = (now - started) / 1e6
        with self._lock:
            if out.granted:
                self._served(w, wait_ms)
                return self._grant(out, w.subqueue, w.tokens, w.cost, wait_ms)
            if out.over_budget:
                self._leave(w)
                self._rejected += 1
                raise self._over_budget(out.spent, w.cost, out.t_us / 1e6)
            self._blocked_by = self._which(out)
            self._retry_at = out.retry_at
            self._waited = True
            if limit is not None and out.retry_at > started + limit * 1e9:
                self._leave(w)
                self._rejected += 1
                raise self._would_wait_too_long(self._blocked_by, (out.retry_at - started) / 1e9, limit)
        return None

    # -- Redis calls -------------------------------------------------------------------------

    def _failed(self, exc: Exception) -> ExecutionError:
        return ExecutionError(
            f'queue "{self.queue_id}": the shared queue state in Redis failed ({exc}); check '
            f"that Redis runs and AGENTFLOW_REDIS_URL",
            queue=self.queue_id,
        )

    def _call_sync(self, tokens: int, cost: float, reject: bool, waited: bool) -> Outcome:
        scripts = self._mgr.scripts
        try:
            sent = time.monotonic_ns()
            out = Outcome(scripts.admit(keys=self._admit_keys, args=self._argv(tokens, cost, reject, waited)), sent)
            while out.granted and out.late(self._mgr.guard_us):
                sent = time.monotonic_ns()
                out.restamped(scripts.restamp(keys=self._restamp_keys, args=[out.ref, self._shortest_us]), sent)
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        due = out.due_in_s()
        if due:
            time.sleep(due)
        return out

    async def _call_async(self, tokens: int, cost: float, reject: bool, waited: bool) -> Outcome:
        scripts = self._mgr.async_scripts()
        # Shielded: if the caller is cancelled mid-call, the script may still grant; the
        # grant is then given back instead of silently holding a slot's tokens and cost.
        sent = time.monotonic_ns()
        args = self._argv(tokens, cost, reject, waited)
        task = asyncio.ensure_future(scripts.admit(keys=self._admit_keys, args=args))
        out: Outcome | None = None
        try:
            # Timed here, after the shield's extra hop through the loop: a grant that
            # reaches this coroutine late is stamped again.
            out = Outcome(await asyncio.shield(task), sent)
            while out.granted and out.late(self._mgr.guard_us):
                sent = time.monotonic_ns()
                out.restamped(await scripts.restamp(keys=self._restamp_keys, args=[out.ref, self._shortest_us]), sent)
            due = out.due_in_s()
            if due:
                await asyncio.sleep(due)
        except asyncio.CancelledError:
            if out is None:
                task.add_done_callback(lambda t: self._give_back_reply(t, scripts, cost))
            else:
                self._give_back(out, scripts, cost)
            raise
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        return out

    def _give_back_reply(self, task: asyncio.Future[Any], scripts: Scripts, cost: float) -> None:
        if not task.cancelled() and task.exception() is None:
            self._give_back(Outcome(task.result(), 0), scripts, cost)

    def _give_back(self, out: Outcome, scripts: Scripts, cost: float) -> None:
        """Undo a grant whose caller was cancelled before it got it: tokens and cost back."""
        if out.granted:
            undo = scripts.settle(keys=self._settle_keys, args=[out.ref, out.t_us, 0, out.day, repr(-float(cost))])
            job = asyncio.ensure_future(undo)
            self._pending.add(job)
            job.add_done_callback(self._pending.discard)

    def _settle_args(self, grant: Grant, tokens: int | None, cost_usd: float) -> list[Any] | None:
        with self._lock:
            if grant.settled:
                return None
            grant.settled = True
        ref, t_us = grant._ref
        new = -1 if tokens is None else max(0, int(tokens))
        return [ref, t_us, new, grant._day, repr(float(cost_usd) - grant.cost_usd)]

    def _settle(self, grant: Grant, tokens: int | None, cost_usd: float) -> None:
        args = self._settle_args(grant, tokens, cost_usd)
        if args is None:
            return
        try:
            self._mgr.scripts.settle(keys=self._settle_keys, args=args)
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        self._settled(grant, tokens)

    async def _asettle(self, grant: Grant, tokens: int | None, cost_usd: float) -> None:
        args = self._settle_args(grant, tokens, cost_usd)
        if args is None:
            return
        call: Awaitable[Any] = self._mgr.async_scripts().settle(keys=self._settle_keys, args=args)
        try:
            await call
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        self._settled(grant, tokens)

    def _settled(self, grant: Grant, tokens: int | None) -> None:
        if tokens is not None and tokens < grant.reserved_tokens:  # room freed: look again
            with self._lock:
                self._retry_at = 0
                self._poke()

    # -- a call that leaves late -----------------------------------------------------------

    def _late(self, grant: Grant) -> bool:
        return time.monotonic_ns() - grant.ready_ns > LATE_NS

    def _moved(self, grant: Grant, reply: Any) -> None:
        stamp = int(reply)
        if stamp:
            grant._ref = (grant._ref[0], stamp)
            grant.admitted_at_ns = stamp * 1000

    def _gone_out(self, grant: Grant) -> None:
        """A call leaving more than ``LATE_NS`` after its grant is moved to now in the shared
        log, so the windows and the pacing of every process count it where it lands."""
        if self._late(grant):
            args = [grant._ref[0], self._shortest_us]
            try:
                self._moved(grant, self._mgr.scripts.restamp(keys=self._restamp_keys, args=args))
            except redis.RedisError as exc:  # the call goes anyway: it was granted
                log.warning('queue "%s": could not move a late call\'s grant in Redis: %s', self.queue_id, exc)

    async def _agone_out(self, grant: Grant) -> None:
        if self._late(grant):
            scripts = self._mgr.async_scripts()
            args = [grant._ref[0], self._shortest_us]
            try:
                self._moved(grant, await scripts.restamp(keys=self._restamp_keys, args=args))
            except redis.RedisError as exc:
                log.warning('queue "%s": could not move a late call\'s grant in Redis: %s', self.queue_id, exc)

    def _update(self, spec: QueueSpec) -> None:
        with self._lock:
            self.spec = spec
            self._configure(spec)
            self._retry_at = 0
            self._poke()
