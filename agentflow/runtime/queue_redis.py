"""Queue bandwidth shared through Redis, so several processes (workbench, API, Celery
workers) stay inside one queue's limits together.

Every admission (:mod:`agentflow.runtime.queue_redis_limiter`) is one atomic Lua script
(:mod:`agentflow.runtime.queue_redis_scripts`) that reads Redis' own clock, checks every
sliding window and the daily budget on the shared log, and logs the grant, so the combined
rate of all processes never passes a limit in any window. Settling tokens and cost goes to
the same log.

What holds across processes, and what per process:

- Limits, token reservations and settlements, the daily budget, and the granted/rejected
  counts are shared (in Redis). So is the pacing of sustained load
  (:mod:`agentflow.runtime.queue_windows`): the previous grant's time and whether anyone
  waits are kept in Redis and read and set in the admission script, so once any process
  waits, the grants of all processes together come at least W/N apart, and a process
  whose own line is empty is paced too.
- The waiting line is per process: inside a process, grants follow the weighted fair order
  and FIFO of :mod:`agentflow.runtime.queue_line`, and only the head of the line asks
  Redis (sleeping until the time Redis said the next slot frees). Between processes the
  heads race for each freed slot, so weights are honoured within each process and slots
  are shared between processes roughly by how often each asks; a large request is not
  protected from small ones of another process.
- Each process applies the definition of the queue it was given (the workspace store
  keeps them the same); a changed definition applies to every user in that process.
- Wait-time figures and the waiters in ``stats`` are this process's.

A grant reaches its caller a little after Redis admits it (the reply's way back, the
caller's busy event loop), and the call reaches the provider later still (the HTTP client,
a loaded machine). Providers count calls where they land, so two measures keep that from
showing as 51 calls in a second that Redis counted as 50: call windows are counted
``guard_ms`` longer than the limit says, and a grant whose round trip took longer than that
is stamped again with the time it arrived. ``guard_ms`` must cover the jitter between grant
and arrival: measured here, a loaded 2-core machine delays some calls 10-70 ms after their
grant, so the default is 25 ms (``AGENTFLOW_QUEUE_GUARD_MS``), which costs 2.4 % of a
per-second limit's throughput and nothing measurable of a per-minute one. The guard covers
jitter, not bursts: a saturated queue paces its grants, so calls leave one at a time and
their delay stays a few ms (a whole window's quota granted at once would crowd the
caller's event loop and spread those calls' arrival over a few hundred ms).

Where a call really leaves. A busy process can still send a call well after its grant (a
Celery worker starting fifty rows at once, under load: 100-300 ms). The sources' HTTP
clients report the moment a metered request's first bytes are written
(:mod:`agentflow.sending`), and a call leaving more than 5 ms after its grant is stamped
again with that time (``RESTAMP``, one round trip paid only by late calls), so the windows
and the pacing of every process count it where it lands. Measured with the Celery test
(two workers, 20/s, a CPU hog beside them): without this 4 runs in 5 put 21 calls into one
second at the provider; with it none in 16.

Where a stream starts. An idle queue still lets a burst fill the window, and the calls of
a burst go out one after another, the first of them often paying for a new client's first
request: in the Celery test it reaches the provider 10-35 ms after its grant, while a
paced call arrives 4 ms after its own. The paced stream that takes the burst's slots once
they leave the window hands the k-th of them out k spacings later, so only the first few
have nothing but the guard; a stream that starts on a window filled while the queue was
idle therefore begins one more ``guard_ms`` after the window allows (once per stretch of
contention; 25 ms by default).

Connections come from ``BlockingConnectionPool``s (one sync pool, one async pool per event
loop): under many concurrent callers they wait for a free connection instead of failing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref

import redis

from agentflow.runtime.queue_base import QueueLimiter
from agentflow.runtime.queue_redis_limiter import RedisQueueLimiter
from agentflow.runtime.queue_redis_scripts import Scripts, async_scripts
from agentflow.runtime.rate_limiter import QueueManager
from agentflow.spec.models import QueueSpec

__all__ = ["KEY_PREFIX", "RedisQueueLimiter", "RedisQueueManager"]

KEY_PREFIX = "agentflow:q:"


class RedisQueueManager(QueueManager):
    """The queues of this process, their state in the Redis at ``url``."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = KEY_PREFIX,
        max_connections: int = 64,
        timeout_s: float = 30.0,
        guard_ms: float | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.key_prefix = key_prefix
        if guard_ms is None:
            guard_ms = default_guard_ms()
        self.guard_us = int(guard_ms * 1000)
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout_s)
        self.client = redis.Redis(connection_pool=pool)
        self.scripts = Scripts(self.client)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Scripts] = weakref.WeakKeyDictionary()
        self._async_lock = threading.Lock()

    def get(self, spec: QueueSpec) -> RedisQueueLimiter:
        return super().get(spec)  # type: ignore[return-value]

    def find(self, queue_id: str) -> RedisQueueLimiter | None:
        return super().find(queue_id)  # type: ignore[return-value]

    def _create(self, spec: QueueSpec) -> QueueLimiter:
        return RedisQueueLimiter(spec, self)

    def async_scripts(self) -> Scripts:
        """The async client and scripts of the running event loop."""
        loop = asyncio.get_running_loop()
        scripts = self._async.get(loop)
        if scripts is None:
            with self._async_lock:
                scripts = self._async.get(loop)
                if scripts is None:
                    scripts = async_scripts(self.url, self._max_connections, self._timeout_s)
                    self._async[loop] = scripts
        return scripts

    def close(self) -> None:
        """Close the sync pool (async pools close with their loops)."""
        self.client.close()


def default_guard_ms() -> float:
    """``AGENTFLOW_QUEUE_GUARD_MS`` (default 25): how much later than its grant a call may
    reach the provider without the provider seeing the queue's limit passed."""
    try:
        return max(float(os.environ.get("AGENTFLOW_QUEUE_GUARD_MS") or 25.0), 0.0)
    except ValueError:
        return 25.0
