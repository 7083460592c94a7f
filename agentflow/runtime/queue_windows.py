"""Sliding-window accounting for queue limits: one log of grants, one window per limit.

Providers count requests and tokens in sliding windows ("no 60-second window holds more
than N"), so a token bucket, which lets a full bucket burst on top of a full window, can
overshoot them. This module keeps the exact log instead: one ``[time_ns, tokens, seq]``
entry per grant, and for each limit a pointer to the first entry still inside its window.
Windows are half-open: an entry made at ``t`` counts at ``now`` while ``t + length > now``.
All times are integers (nanoseconds in-process), so the arithmetic is exact.

Pacing. Under sustained load a sliding window alone lets a limit's whole quota go at once
each time the window turns over (N grants at k.000 every second). Those N calls then crowd
the caller's event loop, so they reach the provider spread over the next few hundred ms,
while the next window's burst goes out promptly: the provider, counting where calls land,
can see N + 1 in a second the limiter counted as N. So once callers have to wait, grants
are *paced*: for each call-count limit (N calls per window W) the next grant comes no
sooner than W/N after the previous grant, on top of what the windows allow
(:meth:`SlidingLog.earliest` with ``paced=True``; the widest W/N of the limits wins). In
steady state that is an even stream at the same rate; an idle queue still admits up to N
at once. Token limits are not paced. When a queue counts as contended (and for how long
after the last wait: :attr:`SlidingLog.hold_ns`, the paced limit's window) is the
limiter's business.

The class is pure (it never reads a clock and never locks), so the limiter can call it
under its own lock and tests can drive it with any arrival pattern.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from agentflow.spec.models import QueueSpec

__all__ = ["Limit", "SlidingLog", "limits_for"]

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit of a queue, in the form the log enforces."""

    name: str
    """The spec field it comes from, e.g. ``max_messages_per_second``."""
    value: float
    """The configured value, for messages."""
    length_ns: int
    """Window length."""
    cap: float
    """Most calls (an int) or tokens one window may hold."""
    tokens: bool
    """Counts tokens (weight per grant) rather than calls."""

    @property
    def spacing_ns(self) -> int:
        """The least time between two paced grants, W/N rounded up (0: a token limit)."""
        return 0 if self.tokens else -(-self.length_ns // int(self.cap))

    def describe(self) -> str:
        v = self.value
        return f"{self.name}={int(v) if float(v).is_integer() else v}"


def _calls(name: str, value: float, window_ns: int) -> Limit:
    # A fractional rate of at least 1 rounds down (2.5/s -> 2 per second: never above the
    # stated rate in any window); a rate below 1 becomes one call per 1/value windows.
    if value >= 1:
        return Limit(name, value, window_ns, math.floor(value), False)
    return Limit(name, value, round(window_ns / value), 1, False)


def limits_for(spec: QueueSpec) -> tuple[Limit, ...]:
    """The limits a queue spec asks for, all enforced at once."""
    out: list[Limit] = []
    if spec.max_messages_per_second is not None:
        out.append(_calls("max_messages_per_second", spec.max_messages_per_second, SECOND_NS))
    if spec.max_requests_per_minute is not None:
        out.append(_calls("max_requests_per_minute", spec.max_requests_per_minute, MINUTE_NS))
    if spec.tokens_per_minute is not None:
        tpm = spec.tokens_per_minute
        out.append(Limit("tokens_per_minute", tpm, MINUTE_NS, tpm, True))
    return tuple(out)


def retention_for(limits: tuple[Limit, ...]) -> int:
    """How long to keep grants: a minute at least, so limits added later see the history."""
    if not limits:
        return 0
    return max(MINUTE_NS, *(lim.length_ns for lim in limits))


class SlidingLog:
    """The grant log of one queue and the window of each of its limits."""

    __slots__ = (
        "_heads",
        "_limits",
        "_log",
        "_pace",
        "_pace_from",
        "_pace_lim",
        "_popped",
        "_retain",
        "_sums",
        "hold_ns",
    )

    def __init__(self, limits: tuple[Limit, ...] = (), retain_ns: int | None = None) -> None:
        self._log: deque[list[int]] = deque()
        self._popped = 0  # entries dropped from the left: turns absolute indices into offsets
        self._limits: tuple[Limit, ...] = ()
        self._heads: list[int] = []
        self._sums: list[int] = []
        self._retain = 0
        self._pace = 0
        #: The time the previous grant was due: paced grants are spaced from it.
        self._pace_from = 0
        self._pace_lim: Limit | None = None
        #: How long contention is remembered after the last wait (the paced limit's window).
        self.hold_ns = 0
        self.configure(limits, retain_ns, None)

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    def configure(self, limits: tuple[Limit, ...], retain_ns: int | None = None, now: int | None = None) -> None:
        """Switch to new limits; the grants already logged count against them."""
        self._limits = limits
        self._retain = retention_for(limits) if retain_ns is None else retain_ns
        self._heads = [self._popped] * len(limits)
        self._sums = [sum(e[1] for e in self._log) if lim.tokens else 0 for lim in limits]
        self._pace, self._pace_lim, self.hold_ns = 0, None, 0
        for lim in limits:
            if lim.spacing_ns > self._pace:
                self._pace, self._pace_lim, self.hold_ns = lim.spacing_ns, lim, lim.length_ns
        if now is not None:
            self.advance(now)

    def advance(self, now: int) -> None:
        """Slide every window to end at ``now`` and forget grants older than the retention."""
        log = self._log
        base = self._popped
        n = len(log)
        for i, lim in enumerate(self._limits):
            idx = self._heads[i] - base
            edge = now - lim.length_ns
            if idx < n and log[idx][0] <= edge:
                if lim.tokens:
                    s = self._sums[i]
                    while idx < n and log[idx][0] <= edge:
                        s -= log[idx][1]
                        idx += 1
                    self._sums[i] = s
                else:
                    while idx < n and log[idx][0] <= edge:
                        idx += 1
                self._heads[i] = idx + base
        edge = now - self._retain
        while log and log[0][0] <= edge:
            log.popleft()
            self._popped += 1

    @property
    def pace_ns(self) -> int:
        """The spacing of paced grants: the largest W/N of the call-count limits (0: none)."""
        return self._pace

    def paced_at(self) -> tuple[int, Limit | None]:
        """The earliest time a paced grant may be made (previous grant + spacing; 0 if no
        grant is logged), and the limit that sets the spacing."""
        if not self._pace or not self._log:
            return 0, None
        return self._pace_from + self._pace, self._pace_lim

    def earliest(self, now: int, tokens: int, paced: bool = False) -> tuple[int, Limit | None]:
        """When one more grant of ``tokens`` fits every window (``now`` if it fits now), and,
        ``paced``, comes at least the pacing spacing after the previous grant.

        Also returns the limit that sets that time. Call :meth:`advance` first.
        """
        log = self._log
        n = len(log)
        base = self._popped
        when = now
        which: Limit | None = None
        for i, lim in enumerate(self._limits):
            if lim.tokens:
                s = self._sums[i]
                if s + tokens <= lim.cap:
                    continue
                cand = now + lim.length_ns
                idx = self._heads[i] - base
                while idx < n:
                    s -= log[idx][1]
                    if s + tokens <= lim.cap:
                        cand = log[idx][0] + lim.length_ns
                        break
                    idx += 1
            else:
                cap = int(lim.cap)
                if n - (self._heads[i] - base) < cap:
                    continue
                cand = log[n - cap][0] + lim.length_ns
            if cand > when:
                when, which = cand, lim
        if paced and self._pace and n:
            cand = self._pace_from + self._pace
            if cand > when:
                when, which = cand, self._pace_lim
        return when, which

    def admit(self, now: int, tokens: int, due: int | None = None) -> list[int]:
        """Log a grant at ``now`` (never before the last one) and return its entry.

        ``due``: when the grant could have been made (:meth:`earliest`). The next paced
        grant is spaced from that rather than from ``now`` when the waiter came up to a
        tenth of a spacing late (a timer's usual lateness), so those small delays do not add
        up over a stream; a waiter later than that starts the spacing afresh, so the line
        never catches up with a burst.
        """
        log = self._log
        if log and log[-1][0] > now:
            now = log[-1][0]
        self._pace_from = now if due is None else max(min(due, now), now - self._pace // 10)
        entry = [now, tokens, self._popped + len(log)]
        log.append(entry)
        if tokens:
            for i, lim in enumerate(self._limits):
                if lim.tokens:
                    self._sums[i] += tokens
        return entry

    def resize(self, entry: list[int], tokens: int) -> None:
        """Change a logged grant's tokens (settling an estimate to the real usage)."""
        delta = tokens - entry[1]
        if not delta:
            return
        entry[1] = tokens
        if entry[2] < self._popped:
            return  # already forgotten: it no longer counts anywhere
        for i, lim in enumerate(self._limits):
            if lim.tokens and entry[2] >= self._heads[i]:
                self._sums[i] += delta

    def usage(self) -> list[tuple[Limit, float]]:
        """Calls or tokens inside each window (as of the last :meth:`advance`)."""
        n = len(self._log) + self._popped
        return [(lim, self._sums[i] if lim.tokens else n - self._heads[i]) for i, lim in enumerate(self._limits)]

    def estimate(self, now: int, calls: int, tokens: int, paced: bool = False) -> int:
        """When the ``calls``-th next grant (1-based) could be made, the next ones needing
        ``tokens`` in total, if every limit stays saturated (``paced``: and every one of
        those grants is paced). For ``max_wait_s`` checks; exact for one limit, a lower
        bound when several interact."""
        log = self._log
        n = len(log)
        base = self._popped
        when = now
        pace = self._pace if paced else 0
        if pace:
            when = now + (calls - 1) * pace
            if n:
                when = max(when, self._pace_from + calls * pace)
        for i, lim in enumerate(self._limits):
            head = self._heads[i] - base
            if lim.tokens:
                cap = lim.cap
                rounds = max(0, math.ceil(tokens / cap) - 1)
                need = tokens - rounds * cap
                s = self._sums[i]
                cand = now
                if s + need > cap:
                    cand = now + lim.length_ns
                    idx = head
                    while idx < n:
                        s -= log[idx][1]
                        if s + need <= cap:
                            cand = log[idx][0] + lim.length_ns
                            break
                        idx += 1
                cand += rounds * lim.length_ns
            elif pace:
                # Paced, grant j waits for grant j - 1 plus the spacing, and, while j - cap
                # is a logged grant, for that one to leave the window. Grants of the paced
                # run itself never bind: cap spacings already cover a window.
                cap = int(lim.cap)
                inside = n - head
                length = lim.length_ns
                cand = now
                for j in range(max(1, cap - inside + 1), min(calls, cap) + 1):
                    t = log[n + j - 1 - cap][0] + length + (calls - j) * pace
                    if t > cand:
                        cand = t
            else:
                # Saturated, the j-th future grant waits for the (j - cap)-th one to leave
                # the window, so the times repeat every `cap` grants, one window later.
                cap = int(lim.cap)
                inside = n - head
                pos = inside + calls - 1
                steps = 0
                if pos - cap >= inside:
                    steps = (pos - cap - inside) // cap + 1
                    pos -= steps * cap
                first = log[head + pos - cap][0] + lim.length_ns if pos >= cap else now
                cand = max(now, first) + steps * lim.length_ns
            when = max(when, int(cand))
        return when

    def __len__(self) -> int:
        return len(self._log)
