"""The provider registry: ``(kind, provider)`` -> provider class."""

from __future__ import annotations

from agentflow.plugins import Registry
from agentflow.sources.base import Provider

KINDS = ("llm", "image", "db", "api")

providers: Registry[tuple[str, str], type[Provider]] = Registry(
    "provider",
    "agentflow.sources",
    "agentflow.providers",
    key_of=lambda cls: (cls.kind, cls.name),
    module_filter=lambda m: m.split("_", 1)[0] in KINDS,
)


def provider_class(kind: str, name: str) -> type[Provider] | None:
    return providers.get((kind, name))


def provider_names(kind: str) -> list[str]:
    return sorted(name for k, name in providers.keys() if k == kind)  # noqa: SIM118 (a Registry)
