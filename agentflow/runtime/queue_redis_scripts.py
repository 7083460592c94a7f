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
grant ids, ``cost`` hash UTC day number -> USD spent or reserved, ``stats`` hash of counts.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aredis

__all__ = ["ADMIT", "RESTAMP", "SETTLE", "STATS", "Outcome", "Scripts", "async_scripts"]

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
-- KEYS: 1 log, 2 tok, 3 toksum, 4 tokcut, 5 seq, 6 cost, 7 stats
-- ARGV: 1 number of limits, 2 retention (us), 3 tokens, 4 cost estimate (USD),
--       5 daily budget (negative: none), 6 count a refusal as a rejection (1/0),
--       then per limit: window (us), cap, counts tokens (1/0)
-- Returns {1, time, grant id, day} | {0, wait (us), limit index} | {-1, spent today, time}
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
for i = 1, n do
  local b = 6 + (i - 1) * 3
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

if wait > 0 then
  if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[7], 'rejected', 1) end
  return {0, num(wait), which}
end

local id = redis.call('INCR', KEYS[5])
if retain > 0 then
  redis.call('ZADD', KEYS[1], num(now), id)
  if tokens > 0 then
    redis.call('HSET', KEYS[2], id, num(tokens))
    redis.call('SET', KEYS[3], num(sum + tokens))
  end
  if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], num(edge)) end
  local ttl = math.floor(retain / 1000) + 60000
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
end
if cost ~= 0 then
  redis.call('HINCRBYFLOAT', KEYS[6], day, ARGV[4])
  redis.call('EXPIRE', KEYS[6], 259200)
end
redis.call('HINCRBY', KEYS[7], 'granted', 1)
return {1, num(now), id, day}
"""
)

RESTAMP = """
-- KEYS: 1 log ; ARGV: 1 grant id, 2 shortest window (us)
-- The caller got its grant late (a slow reply, a busy client): move the grant to now, the
-- time the call really goes out, so later admissions count it where it belongs. Safe
-- while the move is shorter than every window: nobody was admitted yet on the strength of
-- this grant having left a window. Returns the new time, or 0 (not moved).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old or now - tonumber(old) >= tonumber(ARGV[2]) then return 0 end
local stamp = string.format('%.0f', now)
redis.call('ZADD', KEYS[1], 'XX', stamp, ARGV[1])
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
        self.wait_ns = self.retry_at = self.tries = 0
        self.rtt_ns = recv_ns - sent_ns
        self.spent = 0.0
        if code == 1:
            self.t_us, self.ref, self.day = int(reply[1]), int(reply[2]), int(reply[3])
        elif code == 0:
            self.wait_ns = int(reply[1]) * 1000
            self.which = int(reply[2])
            # Redis read its clock about half-way through the round trip.
            self.retry_at = (sent_ns + recv_ns) // 2 + self.wait_ns
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
        else:  # not moved (no log, or a delay as long as a window): stop trying
            self.tries = 3


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
