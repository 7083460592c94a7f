"""The seed's source client factories and the connection check.

Each takes a source (a ``SourceSpec`` or its dict) and returns the shared client for it
(:mod:`agentflow.sources.clients`), checked to be of the right kind.
"""

from __future__ import annotations

from typing import Any

from agentflow.errors import ValidationError
from agentflow.runtime.workspace import DefaultWorkspace, Workspace
from agentflow.sources.base import APIProvider, CheckResult, DBProvider, ImageProvider, LLMProvider, Provider
from agentflow.sources.clients import clients
from agentflow.spec.models import SourceSpec


def _client(source: SourceSpec | dict[str, Any], kind: str, workspace: Workspace | None) -> Provider:
    spec = source if isinstance(source, SourceSpec) else SourceSpec.model_validate(source)
    if spec.kind != kind:
        raise ValidationError(f'source "{spec.id}" is of kind "{spec.kind}", not "{kind}"', source=spec.id)
    ws = workspace if workspace is not None else DefaultWorkspace()
    return clients.get(spec, ws, ws.workspace_key)


def get_llm_from_source(source: SourceSpec | dict[str, Any], workspace: Workspace | None = None) -> LLMProvider:
    return _client(source, "llm", workspace)  # type: ignore[return-value]


def get_image_model(source: SourceSpec | dict[str, Any], workspace: Workspace | None = None) -> ImageProvider:
    return _client(source, "image", workspace)  # type: ignore[return-value]


def get_db_connection(source: SourceSpec | dict[str, Any], workspace: Workspace | None = None) -> DBProvider:
    return _client(source, "db", workspace)  # type: ignore[return-value]


def get_api_client(source: SourceSpec | dict[str, Any], workspace: Workspace | None = None) -> APIProvider:
    return _client(source, "api", workspace)  # type: ignore[return-value]


def check_source(source: SourceSpec | dict[str, Any], workspace: Workspace | None = None) -> CheckResult:
    """Test a source's connection: ``ok``, ``latency_ms`` and a plain-words ``message``."""
    spec = source if isinstance(source, SourceSpec) else SourceSpec.model_validate(source)
    try:
        client = _client(spec, spec.kind, workspace)
    except Exception as exc:  # a bad config is a failed check, with the reason
        from agentflow.redact import redact

        return CheckResult(False, 0.0, redact(getattr(exc, "message", None) or str(exc)))
    return client.check()
