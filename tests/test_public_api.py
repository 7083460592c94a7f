"""The public API chosen in ``agentflow/__init__.py``, pinned (as httpx pins its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import agentflow

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert agentflow.__all__ == EXPECTED


def test_every_exported_name_is_importable_and_public() -> None:
    for name in agentflow.__all__:
        member = getattr(agentflow, name)
        assert member is not None, name
        if name != "__version__":
            assert member.__module__.startswith("agentflow"), (name, member.__module__)


def test_every_public_agentflow_member_is_declared() -> None:
    """Anything of agentflow's own reachable as ``agentflow.X`` (submodules aside) is in __all__."""
    public = {
        name
        for name, value in vars(agentflow).items()
        if not name.startswith("_")
        and not isinstance(value, type(sys))
        and str(getattr(value, "__module__", "")).startswith("agentflow")
    }
    assert public == set(EXPECTED) - {"__version__"}


def test_errors_share_one_root() -> None:
    for name in EXPECTED:
        member = getattr(agentflow, name)
        if isinstance(member, type) and name.endswith(("Error", "Exceeded", "Denied", "Allowed", "Large")):
            assert issubclass(member, agentflow.AgentFlowError), name
    assert issubclass(agentflow.BudgetExceeded, agentflow.QueueRateLimitExceeded)


def test_spec_section_10_names_are_callable() -> None:
    for name in ("load_workflow", "validate_workflow", "build_graph_from_json", "run_workflow", "arun_workflow",
                 "stream_workflow", "astream_workflow", "cancel_run", "check_rate_limit", "get_llm_from_source",
                 "get_image_model", "get_db_connection", "get_api_client"):
        assert callable(getattr(agentflow, name)), name
    assert isinstance(agentflow.__version__, str) and agentflow.__version__.count(".") == 2


def test_importing_agentflow_loads_no_ui_server_or_worker_stack(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        import agentflow
        from agentflow import validate_workflow
        validate_workflow("examples/triage.json")
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("streamlit", "fastapi", "celery", "uvicorn"))
        print(",".join(heavy))
        """
    )
    env = {**os.environ, "AGENTFLOW_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
