"""Sliding-window accounting for queue limits: one log of grants, one window per limit.

Providers count requests and tokens in sliding windows ("no 60-second window holds more
than N"), so a token bucket, which lets a full bucket burst on top of a full window, can
overshoot them. This module keeps the exact log instead: one ``[time_ns, tokens, seq]``
entry per grant, and for each limit a pointer to the first entry still inside its window.
Windows are half-open: an entry made at ``t`` counts at ``now`` while ``t + length > now``.
All times are integers (nanoseconds in-process), so the arithmetic is exact.

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

    __slots__ = ("_heads", "_limits", "_log", "_popped", "_retain", "_sums")

    def __init__(self, limits: tuple[Limit, ...] = (), retain_ns: int | None = None) -> None:
        self._log: deque[list[int]] = deque()
        self._popped = 0  # entries dropped from the left: turns absolute indices into offsets
        self._limits: tuple[Limit, ...] = ()
        self._heads: list[int] = []
        self._sums: list[int] = []
        self._retain = 0
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

    def earliest(self, now: int, tokens: int) -> tuple[int, Limit | None]:
        """When one more grant of ``tokens`` fits every window (``now`` if it fits now).

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
        return when, which

    def admit(self, now: int, tokens: int) -> list[int]:
        """Log a grant at ``now`` (never before the last one) and return its entry."""
        log = self._log
        if log and log[-1][0] > now:
            now = log[-1][0]
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

    def estimate(self, now: int, calls: int, tokens: int) -> int:
        """When the ``calls``-th next grant (1-based) could be made, the next ones needing
        ``tokens`` in total, if every limit stays saturated. For ``max_wait_s`` checks."""
        log = self._log
        n = len(log)
        base = self._popped
        when = now
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
