"""Logging: the ``agentflow`` logger to the log file and stderr, never stdout.

Records are handed to a background thread (``QueueHandler``/``QueueListener``), so a run
pays for putting a record on a queue, not for disk writes; each message is formatted once,
and masked for secrets in that thread. Node-level lines are DEBUG and built only when
DEBUG is on; each run writes one INFO summary with its nodes, latencies and source usage.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import threading
from pathlib import Path

from agentflow.redact import redact
from agentflow.settings import Settings, get_settings

LOGGER = "agentflow"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_lock = threading.Lock()
_configured_for: tuple[str, str] | None = None
_listener: logging.handlers.QueueListener | None = None
_queue_handler: logging.Handler | None = None


class RedactingFormatter(logging.Formatter):
    """Formats, then masks secrets (known values and secret-shaped text)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _Prepared(logging.handlers.QueueHandler):
    """Formats the message once in the caller (args may change later), nothing more."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (test runners and the CLI swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(settings: Settings | None = None) -> None:
    """Attach the file and stderr handlers (idempotent; follows settings changes)."""
    global _configured_for, _listener, _queue_handler
    settings = settings or get_settings()
    wanted = (str(settings.log_file), settings.log_level)
    if _configured_for == wanted:
        return
    with _lock:
        if _configured_for == wanted:
            return
        logger = logging.getLogger(LOGGER)
        if _listener is not None:
            _listener.stop()
            for h in _listener.handlers:
                h.close()
        if _queue_handler is not None:
            logger.removeHandler(_queue_handler)
        formatter = RedactingFormatter(_FORMAT)
        handlers: list[logging.Handler] = []
        try:
            Path(settings.log_file).parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(settings.log_file, encoding="utf-8", delay=True)
            file_handler.setFormatter(formatter)
            handlers.append(file_handler)
        except OSError as exc:  # a read-only folder must not stop runs
            sys.stderr.write(f"agentflow: cannot write log file {settings.log_file}: {exc}\n")
        stderr_handler = _StderrHandler()
        stderr_handler.setFormatter(formatter)
        handlers.append(stderr_handler)
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _queue_handler = _Prepared(q)
        _listener = logging.handlers.QueueListener(q, *handlers, respect_handler_level=False)
        _listener.start()
        logger.addHandler(_queue_handler)
        logger.setLevel(getattr(logging, settings.log_level, logging.INFO))
        logger.propagate = False
        _configured_for = wanted


def flush_logs() -> None:
    """Wait until every queued record is written (tests, process exit)."""
    with _lock:
        if _listener is not None:
            _listener.stop()
            _listener.start()


def _shutdown() -> None:
    if _listener is not None:
        _listener.stop()


atexit.register(_shutdown)
