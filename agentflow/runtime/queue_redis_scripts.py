"""The Lua scripts behind the Redis queue backend (:mod:`agentflow.runtime.queue_redis`),
with how they are called and what their replies mean.

Each script runs atomically in Redis and reads the time with ``redis.call('TIME')`` at the
moment it decides: a limiter that reads its own clock before the round trip (or before it
waits for a pooled connection) records admissions at the wrong time, and two processes then
disagree about what a window holds. Times are integer microseconds of the Redis clock;
``num`` prints them whole (Lua's ``tostring`` keeps only 14 digits).

Keys of queue ``<id>`` (prefix ``agentflow:q:<id>:``): ``log`` sorted set grant id -> time,
``tok`` hash grant id -> tokens (absent: 0), ``toksum`` tokens of the grants inside the
one-minute token window, ``tokcut`` the time up to which grants have left that sum, ``seq``
grant ids, ``cost`` hash UTC day number -> USD spent or reserved, ``stats`` hash of counts,
``pace`` hash ``last`` (the previous grant's time, which every call-count limit spaces
paced grants from: every grant counts against each of them), ``busy`` (the queue is
contended, so grants are paced, until then) and ``from`` (no paced grant before then).

Pacing (see :mod:`agentflow.runtime.queue_windows`) is decided in ``ADMIT`` like the
windows, on the same ``TIME`` and in the same atomic step: a caller that has waited, or
any caller while ``busy`` lies ahead, is granted no sooner than ``last`` plus the spacing
W/N (and no sooner than ``from``); a refusal in wait mode moves ``busy`` to one window (of
the paced limit) after the time the refused caller will be granted; every grant sets
``last``. A refusal that finds the queue idle (its grants filled the window) starts a paced
stream, and sets ``from`` one more guard after the window frees: see "Where a stream
starts" in :mod:`agentflow.runtime.queue_redis`. So the spacing holds for the grants of
all processes together, and a process whose own line is empty still learns that another
one waits.

Due grants. A waiter sleeps until Redis said its slot comes, then asks again; timers and
the round trip make it arrive a millisecond or two late, and with every paced grant
spaced from the previous one that lateness would add up (measured: 8 % of a 50/s limit).
So a wait-mode caller whose slot is at most ``RESERVE_US`` ahead is granted at once,
stamped with the time the slot comes, and sleeps until then before it goes: the log
keeps the exact schedule, no call goes out before its stamp, and a waiter aims its next
ask ``RESERVE_LEAD_NS`` before the slot. Only call-count waits are granted ahead (token
sums are never taken ahead), and ``on_limit: reject`` never is.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aredis

__all__ = [
    "ADMIT",
    "RESERVE_LEAD_NS",
    "RESERVE_US",
    "RESTAMP",
    "SETTLE",
    "STATS",
    "Outcome",
    "Scripts",
    "async_scripts",
]

#: How far ahead (us) a due slot is granted at once, stamped with its time: a few timer
#: ticks and round trips, far inside ``guard_ms``.
RESERVE_US = 5_000
#: How early (ns) a waiter asks again before the slot Redis named, inside ``RESERVE_US``:
#: an asyncio timer fires up to a tick (1 ms) late, and the ask takes a round trip.
RESERVE_LEAD_NS = 3_000_000

_PRELUDE = """
local function num(x)
  if x == 0 then return '0' end
  return string.format('%.0f', x)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local TOKWIN = 60000000  -- tokens_per_minute: the one token window
local function slide()
  -- Tokens of grants that left the token window since the last call leave the sum.
  if redis.call('EXISTS', KEYS[1]) == 0 then  -- no grant left: no tokens either
    redis.call('DEL', KEYS[3], KEYS[4])
    return 0, now - TOKWIN
  end
  local sum = tonumber(redis.call('GET', KEYS[3]) or '0')
  local cut = tonumber(redis.call('GET', KEYS[4]) or '0')
  local edge = now - TOKWIN
  if edge > cut then
    local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. num(cut), num(edge))
    for i = 1, #gone do
      sum = sum - tonumber(redis.call('HGET', KEYS[2], gone[i]) or '0')
    end
    redis.call('SET', KEYS[3], num(sum), 'KEEPTTL')
    redis.call('SET', KEYS[4], num(edge), 'KEEPTTL')
  end
  return sum, edge
end
"""

ADMIT = (
    _PRELUDE
    + """
-- KEYS: 1 log, 2 tok, 3 toksum, 4 tokcut, 5 seq, 6 cost, 7 stats, 8 pace
-- ARGV: 1 number of limits, 2 retention (us), 3 tokens, 4 cost estimate (USD),
--       5 daily budget (negative: none), 6 reject mode: no pacing, a refusal counts as a
--       rejection (1/0), 7 pacing spacing (us, 0: none), 8 how long contention is
--       remembered after a wait (us), 9 index of the paced limit, 10 how much later than
--       the window allows a paced stream starts on a window filled while idle (us), 11 the
--       caller has waited (1/0), 12 grant a slot this far ahead at once, stamped with its
--       time (us; 0: never), then per limit: window (us), cap, counts tokens (1/0)
-- Returns {1, time, grant id, day, delay (us) until that time} | {0, wait (us), limit
-- index} | {-1, spent today, time}
local n = tonumber(ARGV[1])
local retain = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local day = num(math.floor(now / 86400000000))

if budget >= 0 then
  local spent = tonumber(redis.call('HGET', KEYS[6], day) or '0')
  if spent + cost > budget + 1e-12 then
    redis.call('HINCRBY', KEYS[7], 'rejected', 1)
    return {-1, string.format('%.17g', spent), num(now)}
  end
end

local sum, edge = slide()
if retain > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', num(now - retain), 'LIMIT', 0, 1000)
  if #old > 0 then
    redis.call('HDEL', KEYS[2], unpack(old))
    redis.call('ZREM', KEYS[1], unpack(old))
  end
end

local wait = 0
local which = 0
local tokwait = 0
for i = 1, n do
  local b = 12 + (i - 1) * 3
  local len = tonumber(ARGV[b + 1])
  local cap = tonumber(ARGV[b + 2])
  local w = 0
  if ARGV[b + 3] == '1' then
    if sum + tokens > cap then
      w = len
      local es = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. num(edge), '+inf', 'WITHSCORES')
      local acc = sum
      for j = 1, #es, 2 do
        acc = acc - tonumber(redis.call('HGET', KEYS[2], es[j]) or '0')
        if acc + tokens <= cap then
          w = tonumber(es[j + 1]) + len - now
          break
        end
      end
    end
    if w > tokwait then tokwait = w end
  else
    local cnt = redis.call('ZCOUNT', KEYS[1], '(' .. num(now - len), '+inf')
    if cnt >= cap then
      local e = redis.call('ZREVRANGE', KEYS[1], cap - 1, cap - 1, 'WITHSCORES')
      w = tonumber(e[2]) + len - now
    end
  end
  if w > wait then
    wait = w
    which = i
  end
end

local pace = tonumber(ARGV[7])
local ttl = math.floor(retain / 1000) + 60000
if pace > 0 and ARGV[6] ~= '1' then
  local p = redis.call('HMGET', KEYS[8], 'last', 'busy', 'from')
  local busy = tonumber(p[2] or '0')
  if ARGV[11] == '1' or now < busy then
    local w = math.max(tonumber(p[1] or '0') + pace, tonumber(p[3] or '0')) - now
    if w > wait then
      wait = w
      which = tonumber(ARGV[9])
    end
  elseif wait > tonumber(ARGV[12]) then
    -- Idle, and the window is full: a paced stream starts, a little after it frees.
    wait = wait + tonumber(ARGV[10])
    redis.call('HSET', KEYS[8], 'from', num(now + wait))
  end
  if wait > 0 and now + wait + tonumber(ARGV[8]) > busy then
    redis.call('HSET', KEYS[8], 'busy', num(now + wait + tonumber(ARGV[8])))
    redis.call('PEXPIRE', KEYS[8], ttl)
  end
end

local at = now
if wait > 0 then
  if wait <= tonumber(ARGV[12]) and tokwait == 0 and ARGV[6] ~= '1' then
    at = now + wait  -- due within the horizon: granted now, stamped with its slot's time
  else
    if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[7], 'rejected', 1) end
    return {0, num(wait), which}
  end
end

local id = redis.call('INCR', KEYS[5])
if retain > 0 then
  redis.call('ZADD', KEYS[1], num(at), id)
  if tokens > 0 then
    redis.call('HSET', KEYS[2], id, num(tokens))
    redis.call('SET', KEYS[3], num(sum + tokens))
  end
  if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], num(edge)) end
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
end
if pace > 0 then
  redis.call('HSET', KEYS[8], 'last', num(at))
  redis.call('PEXPIRE', KEYS[8], ttl)
end
if cost ~= 0 then
  redis.call('HINCRBYFLOAT', KEYS[6], day, ARGV[4])
  redis.call('EXPIRE', KEYS[6], 259200)
end
redis.call('HINCRBY', KEYS[7], 'granted', 1)
return {1, num(at), id, day, num(at - now)}
"""
)

RESTAMP = """
-- KEYS: 1 log, 2 pace ; ARGV: 1 grant id, 2 shortest window (us)
-- The caller got its grant late (a slow reply, a busy client): move the grant to now, the
-- time the call really goes out, so later admissions count it where it belongs. Safe
-- while the move is shorter than every window: nobody was admitted yet on the strength of
-- this grant having left a window. Paced grants then space from the new time too.
-- Returns the new time, or 0 (not moved).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old or now <= tonumber(old) or now - tonumber(old) >= tonumber(ARGV[2]) then return 0 end
local stamp = string.format('%.0f', now)
redis.call('ZADD', KEYS[1], 'XX', stamp, ARGV[1])
local last = redis.call('HGET', KEYS[2], 'last')
if last and tonumber(last) < now then redis.call('HSET', KEYS[2], 'last', stamp) end
return stamp
"""

SETTLE = """
-- KEYS: 1 log, 2 tok, 3 toksum, 4 tokcut, 5 cost
-- ARGV: 1 grant id, 2 its time (us), 3 real tokens (negative: keep), 4 day, 5 cost change
local new = tonumber(ARGV[3])
if new >= 0 and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  if new ~= cur then
    if new > 0 then
      redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
    else
      redis.call('HDEL', KEYS[2], ARGV[1])
    end
    if tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[4]) or '0') then
      redis.call('INCRBY', KEYS[3], string.format('%.0f', new - cur))
    end
  end
end
if tonumber(ARGV[5]) ~= 0 then
  redis.call('HINCRBYFLOAT', KEYS[5], ARGV[4], ARGV[5])
end
return 1
"""

STATS = (
    _PRELUDE
    + """
-- KEYS: 1 log, 2 tok, 3 toksum, 4 tokcut, 5 cost, 6 stats
-- ARGV: 1 number of limits, then per limit: window (us), cap, counts tokens (1/0)
-- Returns {time, spent today, granted, rejected, used per limit...}
local sum = slide()
local out = {num(now)}
out[2] = redis.call('HGET', KEYS[5], num(math.floor(now / 86400000000))) or '0'
local counts = redis.call('HMGET', KEYS[6], 'granted', 'rejected')
out[3] = counts[1] or '0'
out[4] = counts[2] or '0'
for i = 1, tonumber(ARGV[1]) do
  local b = 1 + (i - 1) * 3
  if ARGV[b + 3] == '1' then
    out[4 + i] = num(sum)
  else
    out[4 + i] = redis.call('ZCOUNT', KEYS[1], '(' .. num(now - tonumber(ARGV[b + 1])), '+inf')
  end
end
return out
"""
)


class Outcome:
    """What the admission script said, with local times for the next try."""

    __slots__ = (
        "day",
        "due_ns",
        "granted",
        "over_budget",
        "ref",
        "retry_at",
        "rtt_ns",
        "spent",
        "t_us",
        "tries",
        "wait_ns",
        "which",
    )

    def __init__(self, reply: list[Any], sent_ns: int) -> None:
        recv_ns = time.monotonic_ns()
        code = int(reply[0])
        self.granted = code == 1
        self.over_budget = code == -1
        self.t_us = self.ref = self.day = self.which = 0
        self.wait_ns = self.retry_at = self.tries = self.due_ns = 0
        self.rtt_ns = recv_ns - sent_ns
        self.spent = 0.0
        if code == 1:
            self.t_us, self.ref, self.day = int(reply[1]), int(reply[2]), int(reply[3])
            delay_us = int(reply[4])
            if delay_us > 0:
                # Stamped ahead: go no sooner than that, counting from the latest moment
                # Redis can have read its clock (the reply's arrival).
                self.due_ns = recv_ns + delay_us * 1000
        elif code == 0:
            self.wait_ns = int(reply[1]) * 1000
            self.which = int(reply[2])
            # Redis read its clock about half-way through the round trip; ask again a
            # little before the slot, so the ask arrives in time to get it exactly.
            self.retry_at = (sent_ns + recv_ns) // 2 + self.wait_ns - RESERVE_LEAD_NS
        else:
            self.spent = float(reply[1])
            self.t_us = int(reply[2])

    def late(self, guard_us: int) -> bool:
        """The grant may have reached us more than ``guard_us`` after Redis stamped it
        (bounded by the round trip), so it should be stamped again (a few tries at most)."""
        return 0 < guard_us * 1000 < self.rtt_ns and self.tries < 3

    def restamped(self, reply: Any, sent_ns: int) -> None:
        self.rtt_ns = time.monotonic_ns() - sent_ns
        self.tries += 1
        stamp = int(reply)
        if stamp:
            self.t_us = stamp
            self.due_ns = 0
        else:  # not moved (no log, stamped ahead, or a delay as long as a window): stop trying
            self.tries = 3

    def due_in_s(self) -> float:
        """How long to wait before going (a grant stamped ahead), in seconds; 0: go now."""
        if not self.due_ns:
            return 0.0
        return max(0, self.due_ns - time.monotonic_ns()) / 1e9


class Scripts:
    """The scripts on one client (sync, or async on one event loop: asyncio connections
    belong to their loop). Called by EVALSHA, loaded into Redis on first use."""

    def __init__(self, client: redis.Redis | aredis.Redis) -> None:
        self.client = client
        self.admit = client.register_script(ADMIT)
        self.restamp = client.register_script(RESTAMP)
        self.settle = client.register_script(SETTLE)
        self.stats = client.register_script(STATS)


def async_scripts(url: str, max_connections: int, timeout_s: float) -> Scripts:
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout_s)
    return Scripts(aredis.Redis(connection_pool=pool))
