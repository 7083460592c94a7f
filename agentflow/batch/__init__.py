"""Batch runs: one workflow over every row of a dataset (spec section 13).

    from agentflow.batch import run_batch
    results = run_batch("examples/triage.json", "examples/data/questions.jsonl",
                        expected="expected", scorer="exact", output_key="text_result")
    results.batch_id, results.mean_score, results[0]["status"]

Each row is one run (subqueue ``batch``), paced by the workflow's queues, its result
recorded in the store exactly once. The ``local`` backend runs rows in this process
(``arun_workflow``, bounded concurrency); the ``celery`` backend hands chunks of rows to
``python -m agentflow worker`` processes on any machine, with leases in the store so no
row is lost when a worker or a broker message is.

Modules::

    dataset         CSV and JSON Lines (and Python rows) -> records, malformed ones kept
    options         BatchOptions: the flags of ``batch run``, stored with the batch
    rows            records -> stored rows; a run's final state -> a row's result line
    scorers         exact, contains, regex, json:PATH
    runner          runs leased rows under asyncio: heartbeats, grouped writes, cancel
    local           the local backend
    celery_backend  the Celery app, the chunk task, the pump that hands rows out, the worker
    service         create / execute / run / start / resume / cancel / status / results
    compare         two batches row by row

Rows are not copied into the run history (``af_runs``): see ``agentflow/store/batches.py``.
Nothing here imports Celery until the celery backend is used.
"""

from __future__ import annotations

from agentflow.batch.compare import compare_batches
from agentflow.batch.dataset import Dataset, Record, read_dataset
from agentflow.batch.options import BatchOptions
from agentflow.batch.rows import ROW_FIELDS, row_line
from agentflow.batch.scorers import Scorer, parse_scorer
from agentflow.batch.service import (
    BatchHandle,
    BatchResults,
    arun_batch,
    batch_results,
    batch_status,
    cancel_batch,
    create_batch,
    execute_batch,
    resume_batch,
    run_batch,
    start_batch,
)

__all__ = [
    "ROW_FIELDS",
    "BatchHandle",
    "BatchOptions",
    "BatchResults",
    "Dataset",
    "Record",
    "Scorer",
    "arun_batch",
    "batch_results",
    "batch_status",
    "cancel_batch",
    "compare_batches",
    "create_batch",
    "execute_batch",
    "parse_scorer",
    "read_dataset",
    "resume_batch",
    "row_line",
    "run_batch",
    "start_batch",
]
