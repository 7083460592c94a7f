"""AgentFlow: LLM workflows written as JSON, run on LangGraph.

The public API (pinned by ``tests/test_public_api.py``)::

    from agentflow import load_workflow, validate_workflow, build_graph_from_json, run_workflow

Everything here is importable without Streamlit, FastAPI or Celery.
"""

from __future__ import annotations

from typing import Any

from agentflow.batch.service import run_batch
from agentflow.errors import (
    AgentFlowError,
    AuthenticationError,
    BudgetExceeded,
    ConflictError,
    ExecutionError,
    InternalServerError,
    MethodNotAllowed,
    NotFoundError,
    PayloadTooLarge,
    PermissionDenied,
    QueueRateLimitExceeded,
    SourceConnectionError,
    ValidationError,
)
from agentflow.runtime.builder import build_graph_from_json
from agentflow.runtime.debug import (
    checkpoint_state,
    fork_run,
    list_checkpoints,
    resume_run,
    stream_fork,
    stream_resume,
)
from agentflow.runtime.executor import (
    arun_workflow,
    astream_workflow,
    cancel_run,
    run_workflow,
    stream_workflow,
)
from agentflow.sources.helpers import (
    check_source,
    get_api_client,
    get_db_connection,
    get_image_model,
    get_llm_from_source,
)
from agentflow.spec.models import WorkflowSpec
from agentflow.spec.validate import check_workflow, load_workflow, validate_workflow

__version__ = "0.1.0"


def check_rate_limit(queue_id: str, **kwargs: Any) -> Any:
    """The seed's queue check: acquire one call on ``queue_id`` (see ``runtime.rate_limiter``)."""
    from agentflow.runtime.rate_limiter import check_rate_limit as _check

    return _check(queue_id, **kwargs)


__all__ = [
    "AgentFlowError",
    "AuthenticationError",
    "BudgetExceeded",
    "ConflictError",
    "ExecutionError",
    "InternalServerError",
    "MethodNotAllowed",
    "NotFoundError",
    "PayloadTooLarge",
    "PermissionDenied",
    "QueueRateLimitExceeded",
    "SourceConnectionError",
    "ValidationError",
    "WorkflowSpec",
    "__version__",
    "arun_workflow",
    "astream_workflow",
    "build_graph_from_json",
    "cancel_run",
    "check_rate_limit",
    "check_source",
    "check_workflow",
    "checkpoint_state",
    "fork_run",
    "get_api_client",
    "get_db_connection",
    "get_image_model",
    "get_llm_from_source",
    "list_checkpoints",
    "load_workflow",
    "resume_run",
    "run_batch",
    "run_workflow",
    "stream_fork",
    "stream_resume",
    "stream_workflow",
    "validate_workflow",
]
