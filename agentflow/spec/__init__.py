"""The workflow format: models, validation, templates and the JSON Schema.

Validation is imported lazily: it needs the node and provider registries, whose plugins
in turn import the format's models and templates from here.
"""

from typing import Any

from agentflow.spec.models import (
    EdgeSpec,
    NodeSpec,
    QueueSpec,
    RetryPolicy,
    RunSettings,
    SourceSpec,
    WorkflowSpec,
)

_LAZY = {"Report", "check_workflow", "load_workflow", "validate_workflow"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from agentflow.spec import validate

        return getattr(validate, name)
    raise AttributeError(f"module 'agentflow.spec' has no attribute {name!r}")


__all__ = [
    "EdgeSpec",
    "NodeSpec",
    "QueueSpec",
    "Report",
    "RetryPolicy",
    "RunSettings",
    "SourceSpec",
    "WorkflowSpec",
    "check_workflow",
    "load_workflow",
    "validate_workflow",
]
