"""The sliding-window log against brute force: exact windows, exact earliest times."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentflow.runtime.queue_windows import (
    MINUTE_NS,
    SECOND_NS,
    Limit,
    SlidingLog,
    limits_for,
    retention_for,
)
from agentflow.spec.models import QueueSpec

MS = 1_000_000


def calls_limit(cap: int, length: int) -> Limit:
    return Limit("calls", cap, length, cap, False)


def tokens_limit(cap: int, length: int) -> Limit:
    return Limit("tokens", cap, length, cap, True)


def brute_earliest(history: list[tuple[int, int]], limits: list[Limit], now: int, tok: int) -> int:
    """Smallest t >= now at which a grant of ``tok`` fits every window (half-open)."""

    def fits(t: int) -> bool:
        for lim in limits:
            inside = [k for (s, k) in history if s + lim.length_ns > t]
            if lim.tokens:
                if sum(inside) + tok > lim.cap:
                    return False
            elif len(inside) + 1 > lim.cap:
                return False
        return True

    candidates = sorted({now} | {s + lim.length_ns for (s, _) in history for lim in limits})
    return next(t for t in candidates if t >= now and fits(t))


arrivals = st.lists(
    st.tuples(st.integers(0, 3_000), st.integers(0, 40), st.integers(0, 60)),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(
    arrivals=arrivals,
    cap_a=st.integers(1, 6),
    len_a=st.integers(1, 400),
    cap_b=st.integers(2, 30),
    len_b=st.integers(50, 2_000),
    tok_cap=st.integers(40, 200),
    tok_len=st.integers(20, 1_500),
)
def test_fifo_schedule_never_exceeds_any_window(
    arrivals: list[tuple[int, int, int]],
    cap_a: int,
    len_a: int,
    cap_b: int,
    len_b: int,
    tok_cap: int,
    tok_len: int,
) -> None:
    """Random arrivals served in order at ``earliest``: that time equals brute force, and
    no window of any limit ever holds more than its cap (tokens settled to random real use)."""
    limits = [
        calls_limit(cap_a, len_a * MS),
        calls_limit(cap_b, len_b * MS),
        tokens_limit(tok_cap, tok_len * MS),
    ]
    log = SlidingLog(tuple(limits))
    history: list[tuple[int, int]] = []  # (time, tokens as now known)
    estimates: list[int] = []
    prev = 0
    for at_ms, tok, real in sorted(arrivals):
        now = max(at_ms * MS, prev)
        log.advance(now)
        when, which = log.earliest(now, tok)
        assert when == brute_earliest(history, limits, now, tok)
        assert (which is None) == (when == now)
        log.advance(when)
        assert log.earliest(when, tok)[0] == when
        estimates.append(sum(k for s, k in history if s + tok_len * MS > when) + tok)
        entry = log.admit(when, tok)
        log.resize(entry, real)  # settle to the real usage
        history.append((when, real))
        prev = when

    times = [t for t, _ in history]
    for lim in limits[:2]:
        for t in times:  # the fullest half-open window starts at some grant
            assert sum(1 for s in times if t <= s < t + lim.length_ns) <= lim.cap
    # Tokens: at every admission, what the window held (settled) plus the estimate fits.
    assert all(e <= tok_cap for e in estimates)


def grant_next(log: SlidingLog, now: int, paced: bool = False) -> int:
    """Admit the next call that asks at ``now`` (a saturated caller); returns its time."""
    log.advance(now)
    t = log.earliest(now, 0, paced=paced)[0]
    log.advance(t)
    log.admit(t, 0)
    return t


def replay(log: SlidingLog, before: list[int]) -> int:
    """Callers asking at ``before`` (ms, any order), each as soon as allowed; the last grant."""
    prev = 0
    for at in sorted(before):
        prev = grant_next(log, max(at * MS, prev))
    return prev


@settings(max_examples=100, deadline=None)
@given(
    before=st.lists(st.integers(0, 2_000), max_size=40),
    cap=st.integers(1, 7),
    length=st.integers(1, 900),
    k=st.integers(1, 25),
)
def test_estimate_matches_back_to_back_grants(before: list[int], cap: int, length: int, k: int) -> None:
    """The k-th next grant time predicted for max_wait_s is the one a saturated run gets."""
    lim = calls_limit(cap, length * MS)
    log = SlidingLog((lim,))
    prev = replay(log, before)
    now = prev + 7 * MS
    log.advance(now)
    predicted = log.estimate(now, k, 0)
    t = now
    for _ in range(k):
        t = grant_next(log, t)
    assert predicted == t


@settings(max_examples=100, deadline=None)
@given(
    before=st.lists(st.integers(0, 2_000), max_size=40),
    cap=st.integers(1, 7),
    length=st.integers(1, 900),
    k=st.integers(1, 25),
    gap=st.integers(0, 1_500),
    second=st.booleans(),
)
def test_paced_estimate_matches_paced_grants(
    before: list[int], cap: int, length: int, k: int, gap: int, second: bool
) -> None:
    """After any history (an idle queue's bursts), the k-th next paced grant is where the
    estimate says (exact for one limit; never later than the real one for two), and paced
    grants are at least the widest W/N apart."""
    limits = [calls_limit(cap, length * MS)]
    if second:
        limits.append(calls_limit(cap * 3, length * 4 * MS))
    log = SlidingLog(tuple(limits))
    prev = replay(log, before)
    now = prev + gap * MS
    log.advance(now)
    predicted = log.estimate(now, k, 0, paced=True)
    spacing = max(lim.spacing_ns for lim in limits)
    assert log.pace_ns == spacing
    t = now
    times = []
    for _ in range(k):
        t = grant_next(log, t, paced=True)
        times.append(t)
    assert predicted == t if not second else predicted <= t
    last = prev if before else None
    for s in times:
        assert last is None or s - last >= spacing
        last = s


def test_spacing_is_window_over_cap_rounded_up() -> None:
    assert calls_limit(3, SECOND_NS).spacing_ns == 333_333_334
    assert tokens_limit(100, MINUTE_NS).spacing_ns == 0
    mps, rpm = limits_for(QueueSpec(id="q", max_messages_per_second=20, max_requests_per_minute=300))
    assert (mps.spacing_ns, rpm.spacing_ns) == (50 * MS, 200 * MS)
    log = SlidingLog((mps, rpm))
    assert log.pace_ns == 200 * MS and log.hold_ns == MINUTE_NS
    assert log.paced_at() == (0, None)  # nothing granted: nothing to space from
    log.admit(5 * MS, 0)
    assert log.paced_at() == (205 * MS, rpm)
    assert SlidingLog((tokens_limit(100, MINUTE_NS),)).pace_ns == 0


def test_token_estimate_counts_every_token_ahead() -> None:
    log = SlidingLog((tokens_limit(100, 1_000 * MS),))
    log.admit(0, 80)
    log.advance(10 * MS)
    assert log.estimate(10 * MS, 1, 20) == 10 * MS
    assert log.estimate(10 * MS, 2, 30) == 1_000 * MS  # the 80 must leave first
    assert log.estimate(10 * MS, 3, 230) == 3_000 * MS  # two more full windows


def test_resize_only_counts_while_inside_the_window() -> None:
    log = SlidingLog((tokens_limit(100, 1_000 * MS),))
    old = log.admit(0, 50)
    log.advance(1_000 * MS)  # `old` just left the window
    log.resize(old, 90)
    new = log.admit(1_000 * MS, 60)
    assert [used for _, used in log.usage()] == [60]
    log.resize(new, 10)
    assert [used for _, used in log.usage()] == [10]


def test_new_limits_count_the_history() -> None:
    log = SlidingLog((calls_limit(100, SECOND_NS),), retain_ns=MINUTE_NS)
    for i in range(30):
        log.admit(i * 10 * MS, 0)
    now = 2 * SECOND_NS
    log.configure((calls_limit(40, MINUTE_NS),), MINUTE_NS, now)
    assert [used for _, used in log.usage()] == [30]
    assert log.earliest(now, 0)[0] == now
    for _ in range(10):
        log.admit(now, 0)
    assert log.earliest(now, 0)[0] == MINUTE_NS  # the first grant, at 0, must leave


def test_limits_for_rounds_fractional_rates_down() -> None:
    spec = QueueSpec(id="q", max_messages_per_second=2.5, max_requests_per_minute=0.5, tokens_per_minute=900)
    mps, rpm, tpm = limits_for(spec)
    assert (mps.cap, mps.length_ns) == (2, SECOND_NS)
    assert (rpm.cap, rpm.length_ns) == (1, 2 * MINUTE_NS)  # one call per two minutes
    assert (tpm.cap, tpm.tokens) == (900, True)
    assert retention_for((mps, rpm, tpm)) == 2 * MINUTE_NS
    assert limits_for(QueueSpec(id="free")) == ()
    assert retention_for(()) == 0
