"""The ``celery`` backend: rows go to ``python -m agentflow worker`` processes on any machine.

What the measurements on this kind of machine (Celery 5.7, 2 cores) decided:

- **Chunks, not one task per row.** A task carries up to 50 rows (the batch split in 16
  for small batches) and runs them concurrently under asyncio inside the task: one task per
  row ran 20-40x slower. Each pool process keeps one event loop for its whole life, so the
  Redis connection pools of the queue limiter live on between chunks.
- **Chunks of a workflow with no queue top up.** Such rows are bound by latency and CPU: a
  chunk that ran only its own rows would run them in lockstep and leave the process idle in
  each chunk's tail (2 workers took 1.7x the wall time of two plain processes). So, for up
  to ``TOP_UP_S``, a chunk leases pending rows (then rows still waiting at the broker) a
  chunk's worth at a time, keeping ``concurrency`` rows in flight. A workflow with a queue
  is paced by it and does not top up (``Runner.tops_up`` says why).
- **The store, not the broker, knows which rows are done.** Handing a chunk out leases its
  rows to a ``send:`` token for ``DISPATCH_LEASE_S``; the worker that takes the message
  leases them to itself for ``LEASE_S`` and renews every couple of seconds. Anyone pumping
  the batch (the ``batch run`` driver while it waits, every worker after each chunk and
  every ``KEEP_S`` in the background) sends expired leases again: a message Redis lost
  outright, or the rows of a worker that died, run again within a minute on either broker.
  Two copies of one chunk never run a row twice at once (a lease held by a live runner is
  left alone), and a row that ran twice keeps its first record (``ON CONFLICT DO NOTHING``).
- **Fast redelivery where the broker offers it**, without relying on it: ``acks_late``,
  ``reject_on_worker_lost``, prefetch 1, and for Redis a 30 s visibility timeout with
  ``unacked_restore_throttle=1`` (kombu's default sweep runs only every ~100 s).
- **Pacing is the queues' job.** Every provider call acquires its node's queue through
  Redis (``AGENTFLOW_REDIS_URL``), shared by all workers; Celery's ``rate_limit`` (per
  worker, and it collapses after a few dozen tasks: celery issue 5927) is never used.
- **A bounded backlog.** The pump keeps about two chunks per running chunk at the broker
  (at least four), so a message rarely waits long and a cancel takes effect at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from agentflow.batch.local import left
from agentflow.batch.options import BatchOptions, celery_queue_name
from agentflow.batch.runner import LEASE_S, Runner, load_spec, new_owner
from agentflow.errors import SourceConnectionError, ValidationError
from agentflow.settings import get_settings
from agentflow.store.batches import ACTIVE_STATUSES, DISPATCH_PREFIX

log = logging.getLogger("agentflow.batch")

TASK_NAME = "agentflow.batch.run_chunk"
#: How long rows handed to the broker wait for a worker before they are sent again.
DISPATCH_LEASE_S = 30.0
#: How often every worker process looks for batches to pump (lost messages, lost workers).
KEEP_S = 5.0
#: How long a chunk's task keeps leasing more rows of its batch as its own finish (see the
#: module docstring); it bounds a task's length, so that other batches and a warm shutdown
#: get their turn.
TOP_UP_S = 10.0
#: The fewest chunks kept at the broker while rows are left.
MIN_WINDOW_CHUNKS = 4
#: Redis broker transport options (see the module docstring).
REDIS_TRANSPORT = {"visibility_timeout": 30, "unacked_restore_interval": 5, "unacked_restore_throttle": 1}


def _redact_url(url: str) -> str:
    from agentflow.redact import redact

    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        cred, _, host = tail.rpartition("@")
        user = cred.split(":", 1)[0]
        return redact(f"{head}://{user}:***@{host}")
    return redact(url)


def check_ready() -> None:
    """The celery backend needs the Redis queue backend (and a broker, Redis by default)."""
    settings = get_settings()
    if not settings.redis_url:
        message = (
            "the celery backend needs AGENTFLOW_REDIS_URL (e.g. redis://127.0.0.1:6379/0): every worker "
            "must share the queues' bandwidth through Redis, and it is the default broker "
            "(AGENTFLOW_CELERY_BROKER_URL may name RabbitMQ instead)"
        )
        raise ValidationError(message, errors=[{"path": "AGENTFLOW_REDIS_URL", "message": "not set"}])
    if not settings.celery_broker_url:  # pragma: no cover - defaults to the Redis URL
        message = "the celery backend needs AGENTFLOW_CELERY_BROKER_URL (a Redis or RabbitMQ URL)"
        raise ValidationError(message, errors=[{"path": "AGENTFLOW_CELERY_BROKER_URL", "message": "not set"}])


def check_services(app: Any) -> None:
    """Reach Redis and the broker now, so a batch fails before anything is stored."""
    import redis

    settings = get_settings()
    assert settings.redis_url is not None
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        raise SourceConnectionError(
            f"cannot reach Redis at {_redact_url(settings.redis_url)} (AGENTFLOW_REDIS_URL): {exc}",
            retryable=False,
        ) from None
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2, timeout=5)
    except Exception as exc:
        raise SourceConnectionError(
            f"cannot reach the Celery broker at {_redact_url(app.conf.broker_url)} "
            f"(AGENTFLOW_CELERY_BROKER_URL, default AGENTFLOW_REDIS_URL): {exc}",
            retryable=False,
        ) from None


# -- the Celery app ----------------------------------------------------------------------

_apps: dict[tuple[str, str], Any] = {}
_apps_lock = threading.Lock()


def make_app(broker_url: str, queue: str) -> Any:
    """A Celery app for ``broker_url`` whose batch tasks go to ``queue``."""
    from celery import Celery

    app = Celery("agentflow", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_disable_rate_limits=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
    )
    if broker_url.split("://", 1)[0] in ("redis", "rediss"):
        app.conf.broker_transport_options = dict(REDIS_TRANSPORT)
    app.task(name=TASK_NAME, ignore_result=True, acks_late=True, reject_on_worker_lost=True)(run_chunk)
    return app


def get_app(queue: str | None = None) -> Any:
    """The app for the configured broker and ``queue`` (one per process and pair)."""
    check_ready()
    broker = get_settings().celery_broker_url
    assert broker is not None
    key = (broker, queue or celery_queue_name())
    app = _apps.get(key)
    if app is None:
        with _apps_lock:
            app = _apps.get(key)
            if app is None:
                app = _apps[key] = make_app(*key)
    return app


# -- handing rows out --------------------------------------------------------------------


def pump(store: Any, batch: dict[str, Any], app: Any = None) -> dict[str, Any]:
    """Hand out rows of an active batch: pending ones, and those whose lease expired (a
    lost message or a lost worker), keeping a bounded number at the broker. Marks the batch
    finished when nothing is left. Returns the counts (``sent``: rows handed out now)."""
    batch_id = batch["batch_id"]
    counts = store.batch_counts(batch_id)
    counts["sent"] = 0
    if counts["status"] not in ACTIVE_STATUSES:
        return counts
    if left(counts) == 0:
        if store.finish_batch_if_done(batch_id):
            counts["status"] = "finished"
        return counts
    options = BatchOptions.from_dict(batch.get("options"))
    chunk = options.chunk_for(int(counts["total"]))
    room = chunk * max(MIN_WINDOW_CHUNKS, 2 * int(counts["runners"])) - int(counts["dispatched"])
    sent = 0
    while room > 0:
        token = DISPATCH_PREFIX + uuid.uuid4().hex
        rows = store.lease_batch_rows(
            batch_id, token, lease_s=DISPATCH_LEASE_S, limit=min(chunk, room), count_attempt=False
        )
        if not rows:
            break
        numbers = [r["row"] for r in rows]
        app = app if app is not None else get_app(options.queue)
        try:
            app.send_task(TASK_NAME, args=[batch_id, numbers, token], queue=options.queue or celery_queue_name())
        except Exception as exc:
            store.release_batch_rows(batch_id, token)
            raise SourceConnectionError(
                f"cannot hand rows of batch {batch_id} to the Celery broker "
                f"(AGENTFLOW_CELERY_BROKER_URL, default AGENTFLOW_REDIS_URL): {exc}"
            ) from exc
        room -= len(numbers)
        sent += len(numbers)
    if counts["status"] == "queued":
        store.set_batch_status(batch_id, "running", only_from=("queued",))
    if sent:
        counts = store.batch_counts(batch_id)
    counts["sent"] = sent
    return counts


def _poll_s(elapsed: float) -> float:
    """Look often at first (short batches end soon), then less often."""
    return 0.05 if elapsed < 5 else 0.1 if elapsed < 60 else 0.5


def drive(
    store: Any,
    batch_id: str,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
    detach: bool = False,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Hand out the batch and, unless ``detach``, wait for its end, pumping as it goes;
    returns the last counts. Stopping the wait (``stop``, Ctrl-C) leaves the batch to the
    workers, which pump it themselves."""
    batch = store.get_batch(batch_id, include_document=False)
    options = BatchOptions.from_dict(batch.get("options"))
    app = get_app(options.queue)
    counts = pump(store, batch, app)
    if detach:
        return counts
    started = time.monotonic()
    last_change, last_done, hinted = started, -1, False
    while counts["status"] in ACTIVE_STATUSES:
        if progress is not None:
            progress(counts)
        elapsed = time.monotonic() - started
        if stop is not None:
            if stop.wait(_poll_s(elapsed)):
                return counts
        else:
            time.sleep(_poll_s(elapsed))
        counts = pump(store, batch, app)
        finished = counts["done"] + counts["failed"]
        now = time.monotonic()
        if finished != last_done or counts["runners"]:
            last_done, last_change = finished, now
        elif not hinted and now - last_change > 15:
            hinted = True
            log.warning(
                "batch %s: no worker has taken its rows for 15 s; start one: python -m agentflow worker "
                "--queue %s (same AGENTFLOW_DB_URL, AGENTFLOW_REDIS_URL and broker)", batch_id, options.queue,
            )
    if progress is not None:
        progress(counts)
    return counts


# -- inside a worker ---------------------------------------------------------------------

_proc: dict[str, Any] = {"key": None, "store": None}
_proc_lock = threading.Lock()
_batches: OrderedDict[str, tuple[dict[str, Any], Any]] = OrderedDict()
_thread_state = threading.local()


def process_store() -> Any:
    """This process's own store (a forked pool process never uses its parent's)."""
    key = (os.getpid(), get_settings().db_url)
    with _proc_lock:
        if _proc["key"] != key or _proc["store"] is None:
            from agentflow.store import open_store

            _proc["store"] = open_store(key[1])
            _proc["key"] = key
            _batches.clear()
        return _proc["store"]


def _batch_and_spec(store: Any, batch_id: str) -> tuple[dict[str, Any], Any]:
    """The batch record and its validated workflow, kept for the next chunks."""
    with _proc_lock:
        hit = _batches.get(batch_id)
        if hit is not None:
            _batches.move_to_end(batch_id)
            return hit
    batch = store.get_batch(batch_id)
    spec = load_spec(batch, store)
    with _proc_lock:
        _batches[batch_id] = (batch, spec)
        while len(_batches) > 16:
            _batches.popitem(last=False)
    return batch, spec


def _event_loop() -> asyncio.Runner:
    """One event loop per pool process (or thread) for its whole life."""
    runner = getattr(_thread_state, "runner", None)
    if runner is None or getattr(_thread_state, "pid", None) != os.getpid():
        runner = asyncio.Runner()
        _thread_state.runner, _thread_state.pid = runner, os.getpid()
    return runner


def run_chunk(batch_id: str, rows: list[int], token: str) -> int:
    """The Celery task: take over the chunk's rows from its ``send:`` token (rows recorded,
    or held by a live runner, are skipped), run them, then pump the batch. Returns how many
    rows it recorded. Errors are logged, never retried by Celery: the leases handle it."""
    from agentflow.errors import NotFoundError

    store = process_store()
    start_keeper()
    try:
        batch, spec = _batch_and_spec(store, batch_id)
    except NotFoundError:
        log.warning("batch %s is not in this worker's store (%s); check AGENTFLOW_DB_URL", batch_id,
                    store.workspace_key)
        return 0
    except Exception:
        log.exception("batch %s: cannot load its workflow here; its rows go to another worker", batch_id)
        return 0
    owner = new_owner("run", _node_name())
    recorded = 0
    try:
        claimed = store.lease_batch_rows(batch_id, owner, lease_s=LEASE_S, rows=rows, take_from=token)
        if claimed:
            runner = Runner(store, batch, owner=owner, spec=spec)
            recorded = _event_loop().run(runner.run(claimed, top_up_s=TOP_UP_S))
    except Exception:
        log.exception("batch %s: chunk of %d rows stopped; unrecorded rows run again elsewhere", batch_id, len(rows))
    try:
        pump(store, batch)
    except Exception:
        log.warning("batch %s: could not pump after a chunk", batch_id, exc_info=True)
    return recorded


def _node_name() -> str | None:
    """The Celery worker's node name (``-n``), when running inside a task."""
    try:
        from celery import current_task

        return current_task.request.hostname if current_task else None
    except Exception:
        return None


class _Keeper(threading.Thread):
    """Pumps this worker's running batches every ``KEEP_S``: a detached batch whose
    messages were lost, or whose worker died, goes on even when no chunk is running."""

    def __init__(self, queues: str) -> None:
        super().__init__(name="agentflow-batch-keeper", daemon=True)
        self.queues = {q.strip() for q in queues.split(",") if q.strip()}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(KEEP_S * random.uniform(0.8, 1.2)):
            try:
                store = process_store()
                for batch in store.active_batches("celery"):
                    if (batch.get("options") or {}).get("queue") in self.queues:
                        pump(store, batch)
            except Exception:
                log.warning("batch keeper: pump failed", exc_info=True)


_keeper: dict[str, Any] = {"pid": None, "thread": None}


def start_keeper(queue: str | None = None) -> None:
    """Start (once per process) the background pump of this worker's batches."""
    pid = os.getpid()
    with _proc_lock:
        if _keeper["pid"] == pid:
            return
        thread = _Keeper(queue or celery_queue_name())
        _keeper.update(pid=pid, thread=thread)
    thread.start()


def run_worker(
    *,
    concurrency: int | None = None,
    pool: str = "prefork",
    queue: str | None = None,
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> int:
    """``python -m agentflow worker``: a Celery worker for batch chunks on the configured broker."""
    from celery.signals import worker_process_init

    from agentflow.store import open_store

    check_ready()
    queue = queue or celery_queue_name()  # one name, or several separated by commas
    os.environ["AGENTFLOW_CELERY_QUEUE"] = queue  # the keeper and child processes see the same
    store = open_store(get_settings().db_url)  # a clear error now if the store is unreachable
    store.close()  # pool processes open their own after the fork
    app = get_app(queue.split(",")[0].strip())
    check_services(app)

    def child_init(**_: Any) -> None:
        start_keeper(queue)

    worker_process_init.connect(child_init, weak=False)
    if pool != "prefork":
        start_keeper(queue)
    argv = ["worker", f"--pool={pool}", f"--queues={queue}", f"--loglevel={loglevel}", "--without-mingle",
            "--without-gossip"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)
    return 0
