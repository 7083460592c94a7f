"""Small builders shared by the node tests: documents, trace lookups, recording providers.

The recording providers subclass the offline ones under unique names (registered once, on
import), so a test can see exactly what a node handed to its source.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from agentflow.nodes.base import NodeType
from agentflow.nodes.registry import node_class
from agentflow.sources.base import ImageRequest, ImageResponse, LLMChunk, LLMRequest, LLMResponse
from agentflow.sources.image_placeholder import PlaceholderImage
from agentflow.sources.llm_echo import EchoLLM
from agentflow.sources.registry import providers
from agentflow.spec.models import NodeSpec


class RecordingLLM(EchoLLM):
    """``echo`` that remembers every request it was given."""

    name = f"recording-{uuid.uuid4().hex[:8]}"
    requests: ClassVar[list[LLMRequest]] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        return super().complete(request)

    async def acomplete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        return await super().acomplete(request)

    def stream(self, request: LLMRequest) -> Iterator[LLMChunk]:
        self.requests.append(request)
        return super().stream(request)

    def astream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        self.requests.append(request)
        return super().astream(request)


class RecordingImage(PlaceholderImage):
    """``placeholder`` that remembers every request it was given."""

    name = f"recording-{uuid.uuid4().hex[:8]}"
    requests: ClassVar[list[ImageRequest]] = []

    def generate(self, request: ImageRequest) -> ImageResponse:
        self.requests.append(request)
        return super().generate(request)

    async def agenerate(self, request: ImageRequest) -> ImageResponse:
        self.requests.append(request)
        return await super().agenerate(request)


providers.register(RecordingLLM)
providers.register(RecordingImage)


def requests_for(cls: type[RecordingLLM] | type[RecordingImage], marker: str) -> list[Any]:
    """The recorded requests whose prompt contains ``marker`` (tests use unique prompts)."""
    return [r for r in cls.requests if marker in r.prompt]


def echo(source_id: str = "e", **config: Any) -> dict[str, Any]:
    return {"id": source_id, "kind": "llm", "provider": "echo", "config": config}


def chain(*nodes: dict[str, Any], sources: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    """input -> nodes... (each to the next), with ``sources`` (default: one echo "e")."""
    all_nodes = [{"id": "input", "type": "input"}, *nodes]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(all_nodes)]
    return {
        "id": "nodes-test",
        "sources": [echo()] if sources is None else sources,
        "nodes": all_nodes,
        "edges": edges,
        **top,
    }


def entry(state: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The (single) trace entry of ``node_id``."""
    (found,) = [e for e in state["metadata"]["trace"] if e["node"] == node_id]
    return found


def impl_of(node: dict[str, Any]) -> NodeType:
    """The node type instance for a node dict, as the validator and builder make it."""
    spec = NodeSpec.model_validate(node)
    cls = node_class(spec.type)
    assert cls is not None, spec.type
    return cls(spec, cls.Config.model_validate(spec.config))


def at(problems: list[dict[str, Any]], path: str) -> list[str]:
    """Messages of the report entries at ``path``."""
    return [p["message"] for p in problems if p["path"] == path]
