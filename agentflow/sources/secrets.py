"""Resolution of ``<field>_env`` and ``<field>_secret`` config references to values.

Documents never hold secrets (spec section 2); a provider asks for ``api_key`` and gets the
value of the environment variable or the workspace secret the config names. Every value
resolved here is remembered by :mod:`agentflow.redact`, so it is masked in logs and errors
from then on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from agentflow import redact
from agentflow.errors import SourceConnectionError

if TYPE_CHECKING:
    from agentflow.sources.base import Provider, SecretResolver


def resolve_reference(
    ref: Any, *, source_id: str, what: str, secrets: SecretResolver | None
) -> str:
    """Resolve ``{"env": NAME}`` / ``{"secret": NAME}`` (header values) to the value."""
    if isinstance(ref, dict) and "env" in ref:
        return _from_env(str(ref["env"]), source_id=source_id, what=what)
    if isinstance(ref, dict) and "secret" in ref:
        return _from_store(str(ref["secret"]), source_id=source_id, what=what, secrets=secrets)
    return str(ref)


def resolve_secret_field(provider: Provider, field_name: str, *, required: bool) -> str | None:
    cfg = provider.config
    env_name = getattr(cfg, f"{field_name}_env", None)
    secret_name = getattr(cfg, f"{field_name}_secret", None)
    sid = provider.source_id
    if secret_name:
        return _from_store(secret_name, source_id=sid, what=field_name, secrets=provider._secrets)
    if env_name:
        if not required and not os.environ.get(env_name):
            return None
        return _from_env(env_name, source_id=sid, what=field_name)
    if required:
        raise SourceConnectionError(
            f'source "{sid}": no {field_name} configured; set "{field_name}_env" to an '
            f'environment variable\'s name or "{field_name}_secret" to a stored secret\'s name',
            source=sid,
            retryable=False,
        )
    return None


def _from_env(name: str, *, source_id: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SourceConnectionError(
            f'source "{source_id}": environment variable {name} (for {what}) is not set; '
            f"export it, or store the value with `python -m agentflow secrets set NAME` and "
            f'use "{what}_secret"',
            source=source_id,
            retryable=False,
        )
    redact.remember(value)
    return value


def _from_store(name: str, *, source_id: str, what: str, secrets: SecretResolver | None) -> str:
    if secrets is None:
        from agentflow.runtime.workspace import default_workspace

        secrets = default_workspace()
    value = secrets.get_secret(name) if secrets is not None else None
    if not value:
        raise SourceConnectionError(
            f'source "{source_id}": secret "{name}" (for {what}) is not stored; add it on the '
            f"Sources page or with `python -m agentflow secrets set {name}`",
            source=source_id,
            retryable=False,
        )
    redact.remember(value)
    return value
