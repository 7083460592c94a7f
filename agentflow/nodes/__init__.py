"""Node types, one module each (``*_node.py``), found through :data:`node_types`."""

from agentflow.nodes.base import NodeConfig, NodeContext, NodeType, OutputConfig, Problem
from agentflow.nodes.registry import node_class, node_types

__all__ = ["NodeConfig", "NodeContext", "NodeType", "OutputConfig", "Problem", "node_class", "node_types"]
