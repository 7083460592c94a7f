"""The node-type registry: ``type`` name -> node class."""

from __future__ import annotations

from agentflow.nodes.base import NodeType
from agentflow.plugins import Registry

node_types: Registry[str, type[NodeType]] = Registry(
    "node type",
    "agentflow.nodes",
    "agentflow.nodes",
    key_of=lambda cls: cls.type_name,
    module_filter=lambda m: m.endswith("_node"),
)


def node_class(type_name: str) -> type[NodeType] | None:
    return node_types.get(type_name)
