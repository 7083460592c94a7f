"""A batch's options: what ``batch run`` flags, ``run_batch`` keywords and the HTTP body say.

Stored with the batch (``af_batches.options``), so a worker on another machine and a later
``resume`` run the rows exactly as the batch was started.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from agentflow.errors import ValidationError

__all__ = ["BACKENDS", "DEFAULT_CELERY_QUEUE", "BatchOptions", "celery_queue_name"]

BACKENDS = ("local", "celery")
#: The Celery queue batch tasks go to unless ``AGENTFLOW_CELERY_QUEUE`` or ``queue`` says otherwise.
DEFAULT_CELERY_QUEUE = "agentflow-batch"
MAX_CHUNK = 50


def celery_queue_name() -> str:
    return os.environ.get("AGENTFLOW_CELERY_QUEUE") or DEFAULT_CELERY_QUEUE


def _bad(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", errors=[{"path": path, "message": message}])


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """How a batch runs its rows."""

    column: str = "user_input"
    """The dataset field that becomes ``user_input``; every other field goes into the
    initial state under its own name."""
    backend: str = "local"
    """``local`` (this process, ``arun_workflow``) or ``celery`` (``python -m agentflow worker``s)."""
    concurrency: int = 100
    """Rows running at once: in this process (local), or inside one worker task (celery)."""
    subqueue: str = "batch"
    """The queue subqueue every provider call of the rows waits in."""
    expected: str | None = None
    """The dataset field holding each row's expected value; with it, rows are scored."""
    scorer: str | None = None
    """``exact`` (default with ``expected``), ``contains``, ``regex`` or ``json:PATH``."""
    output_key: str = "final_output"
    """The state key a row's output is read from (recorded, and scored)."""
    chunk_size: int | None = None
    """Rows per Celery task; default: the batch split in 16, at most 50 (one task per row
    is far too slow, one task per batch spreads nothing)."""
    queue: str | None = None
    """The Celery queue the tasks go to; default ``AGENTFLOW_CELERY_QUEUE`` or
    ``agentflow-batch``. Workers listen on the same name (``worker --queue``)."""

    def checked(self) -> BatchOptions:
        """These options with defaults filled in; ValidationError when they are wrong."""
        from agentflow.batch.scorers import parse_scorer

        if self.backend not in BACKENDS:
            raise _bad("backend", f'unknown backend "{self.backend}": use local or celery')
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise _bad("concurrency", "must be a whole number of at least 1")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or not 1 <= self.chunk_size <= 1000):
            raise _bad("chunk_size", "must be 1..1000")
        for name in ("column", "subqueue", "output_key"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise _bad(name, "must be a non-empty string")
        scorer = self.scorer
        if scorer is not None and self.expected is None:
            raise _bad("scorer", "a scorer needs the expected column (--expected COLUMN)")
        if self.expected is not None:
            scorer = parse_scorer(scorer or "exact").spec
        queue = self.queue
        if self.backend == "celery" and not queue:
            queue = celery_queue_name()
        return replace(self, scorer=scorer, queue=queue)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BatchOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def chunk_for(self, total: int) -> int:
        if self.chunk_size:
            return self.chunk_size
        return max(1, min(MAX_CHUNK, -(-total // 16)))
