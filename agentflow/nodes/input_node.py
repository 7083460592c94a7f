"""``input``: the entry; passes the state through and checks required keys are present."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentflow.errors import ExecutionError
from agentflow.nodes.base import NodeConfig, NodeContext, NodeType
from agentflow.nodes.registry import node_types


class InputConfig(NodeConfig):
    required: list[str] = Field(default_factory=list, description="Keys the initial state must hold.")


class InputNode(NodeType):
    type_name = "input"
    Config = InputConfig
    summary = "Entry point: passes the run's input on."
    config: InputConfig

    def written_keys(self) -> list[str]:
        return []

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        missing = [k for k in self.config.required if state.get(k) in (None, "")]
        if missing:
            names = ", ".join(f'"{k}"' for k in missing)
            raise ExecutionError(
                f'node "{self.node_id}": required input {names} is missing; pass it in the '
                f"initial state (--input for user_input, --state for other keys)",
                node=self.node_id,
            )
        return {}


node_types.register(InputNode)
