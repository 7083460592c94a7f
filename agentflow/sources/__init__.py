"""Source providers, one module each (``<kind>_<provider>.py``), found through the registry."""

from agentflow.sources.base import (
    APIProvider,
    CheckResult,
    DBProvider,
    ImageProvider,
    LLMProvider,
    Provider,
)
from agentflow.sources.registry import provider_class, provider_names, providers

__all__ = [
    "APIProvider",
    "CheckResult",
    "DBProvider",
    "ImageProvider",
    "LLMProvider",
    "Provider",
    "provider_class",
    "provider_names",
    "providers",
]
