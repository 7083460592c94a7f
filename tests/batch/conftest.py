"""Batch test fixtures: offline workflows, a local OpenAI-compatible server, and Celery
worker processes (``python -m agentflow worker``) on the real local services.

Workers run as subprocesses in their own process group (so SIGKILL takes the whole worker,
pool processes included, as losing a machine would), listen on a queue name made for the
fixture alone, use a Postgres schema made for it alone, and are always killed in the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.workload import six_doc as bench_six_doc
from tests.conftest import PG_DSN, REDIS_URL, ROOT, _need, schema_url
from tests.servers import OpenAICompatServer, RecordedRequest, Reply


def six_doc(latency_ms: float = 0, wid: str = "six") -> dict[str, Any]:
    """The benchmarks' six-node workflow (bench/workload.py): two llm calls (echo, offline)."""
    return bench_six_doc(wid, latency_ms)


def openai_doc(base_url: str, queue_id: str, rate: float = 20, wid: str = "paced") -> dict[str, Any]:
    """One llm call per row to the local server, through a queue of ``rate`` calls per second."""
    return {
        "id": wid,
        "sources": [
            {
                "id": "gpt",
                "kind": "llm",
                "provider": "openai",
                "config": {"model": "gpt-4o-mini", "base_url": base_url, "max_retries": 0, "timeout_s": 30},
            }
        ],
        "queues": [{"id": queue_id, "max_messages_per_second": rate, "on_limit": "wait", "max_wait_s": 600}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "answer", "type": "llm", "source": "gpt", "queue": queue_id, "config": {"prompt": "{user_input}"}},
        ],
        "edges": [{"from": "input", "to": "answer"}, {"from": "answer", "to": "END"}],
    }


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals any ``window``-second interval holds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


class ConcurrencyProbe:
    """A chat route that answers after ``delay_s`` and records the most requests in flight."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, req: RecordedRequest) -> Reply:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.delay_s)
        with self._lock:
            self.now -= 1
        text = (req.json or {}).get("messages", [{}])[-1].get("content", "")
        return Reply.json(
            {
                "id": "chatcmpl-x",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {text}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            }
        )


@pytest.fixture(autouse=True)
def _runtime_log_level() -> Iterator[None]:
    """``batch run`` quiets per-row run logs; put the level back for other tests."""
    import logging

    logger = logging.getLogger("agentflow.runtime")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture
def llm_server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer() as srv:
        yield srv


# -- Celery workers on the real services -------------------------------------------------


class Workers:
    """``python -m agentflow worker`` subprocesses sharing one store, Redis and broker."""

    def __init__(self, env: dict[str, str], logs: Path, count: int = 2, concurrency: int = 2) -> None:
        self.env = env
        self.logs = logs
        self.count = count
        self.concurrency = concurrency
        self.tag = env["AGENTFLOW_CELERY_QUEUE"].rsplit("-", 1)[-1]
        self.procs: list[subprocess.Popen | None] = [None] * count

    def name(self, i: int) -> str:
        return f"w{i}-{self.tag}"

    def _log(self, i: int) -> Path:
        return self.logs / f"{self.name(i)}.log"

    def start(self, i: int) -> None:
        log = self._log(i).open("ab")
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "agentflow", "worker", "--concurrency", str(self.concurrency),
             "--hostname", f"{self.name(i)}@%h", "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def wait_ready(self, i: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._log(i).read_text(errors="replace") if self._log(i).exists() else ""
            if text.count(" ready.") >= self._starts(i):
                return
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"worker {self.name(i)} exited {proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name(i)} not ready in {timeout} s:\n{self._log(i).read_text()[-3000:]}")

    def _starts(self, i: int) -> int:
        return getattr(self, "_started", {}).get(i, 1)

    def ensure(self) -> None:
        """Start every worker that is not running, and wait until all are ready."""
        started = []
        for i, proc in enumerate(self.procs):
            if proc is None or proc.poll() is not None:
                self._started = getattr(self, "_started", {})
                self._started[i] = self._started.get(i, 0) + 1
                self.start(i)
                started.append(i)
        for i in started:
            self.wait_ready(i)

    def kill(self, i: int) -> None:
        """SIGKILL the worker and its pool processes, as if its machine died."""
        proc = self.procs[i]
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def log_text(self) -> str:
        return "\n".join(self._log(i).read_text(errors="replace")[-4000:] for i in range(self.count)
                         if self._log(i).exists())


def _pg_schema(dsn: str) -> tuple[str, str]:
    import psycopg
    from psycopg import sql

    schema = f"af_batch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema, schema_url(dsn, schema)


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    from agentflow.store import close_default_stores

    close_default_stores()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module", params=["redis", "amqp"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two workers (prefork, 2 processes each) on Redis or RabbitMQ, store in a fresh
    Postgres schema; the env the test process needs to drive them."""
    from tests.conftest import AMQP_URL

    pg = _need("PostgreSQL", PG_DSN, 5432)
    redis_url = _need("Redis", REDIS_URL, 6379)
    broker = redis_url if request.param == "redis" else _need("RabbitMQ", AMQP_URL, 5672)
    schema, db_url = _pg_schema(pg)
    tag = uuid.uuid4().hex[:8]
    home = tmp_path_factory.mktemp(f"cluster-{request.param}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "COV_", "COVERAGE"))}
    env.update(
        AGENTFLOW_HOME=str(home),
        AGENTFLOW_DB_URL=db_url,
        AGENTFLOW_REDIS_URL=redis_url,
        AGENTFLOW_CELERY_BROKER_URL=broker,
        AGENTFLOW_CELERY_QUEUE=f"af-test-{tag}",
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
    )
    workers = Workers(env, home)
    try:
        workers.ensure()
        yield {"env": env, "workers": workers, "broker": request.param, "db_url": db_url}
    finally:
        workers.stop()
        _purge_queue(broker, env["AGENTFLOW_CELERY_QUEUE"])
        _drop_schema(pg, schema)


def _purge_queue(broker: str, queue: str) -> None:
    """Leave nothing behind on the broker (a queue of this fixture alone)."""
    try:
        from kombu import Connection

        with Connection(broker, connect_timeout=3) as conn:
            channel = conn.channel()
            try:
                channel.queue_purge(queue)
                channel.queue_delete(queue)
            except Exception:
                pass
    except Exception:
        pass


@pytest.fixture
def cluster_env(cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """This test process drives the cluster: same store, Redis, broker and queue."""
    for key in ("AGENTFLOW_DB_URL", "AGENTFLOW_REDIS_URL", "AGENTFLOW_CELERY_BROKER_URL", "AGENTFLOW_CELERY_QUEUE"):
        monkeypatch.setenv(key, cluster["env"][key])
    cluster["workers"].ensure()
    return cluster
