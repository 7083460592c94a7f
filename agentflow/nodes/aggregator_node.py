"""``aggregator``: combines results of earlier nodes into one ``final_output`` record.

It is the usual fan-in node, so the builder defers it until every branch that was taken
has finished; keys of branches not taken come out as ``null``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentflow.errors import ExecutionError
from agentflow.nodes.base import NodeContext, NodeType, OutputConfig, Problem
from agentflow.nodes.registry import node_types
from agentflow.spec.templates import MissingKey, lookup

DEFAULT_FIELDS = {"text": "text_result", "image": "image_result", "db": "db_result", "api": "api_result"}


class AggregatorConfig(OutputConfig):
    fields: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_FIELDS),
        description='Output name -> state key ("key" or "key.sub").',
    )
    skip_missing: bool = Field(False, description="Leave out fields whose key has no value.")


class AggregatorNode(NodeType):
    type_name = "aggregator"
    Config = AggregatorConfig
    default_output_key = "final_output"
    output_shape = "record"
    summary = "Combines results into final_output."
    config: AggregatorConfig

    def read_keys(self) -> list[str]:
        return [path.split(".")[0] for path in self.config.fields.values()]

    def check(self, workflow: Any) -> list[Problem]:
        return [
            Problem(f"config.fields.{name}", f'"{path}" is not a state key path', "error")
            for name, path in self.config.fields.items()
            if not path or any(not part for part in path.split("."))
        ]

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, path in self.config.fields.items():
            try:
                out[name] = lookup(state, tuple(path.split(".")))
            except MissingKey:
                if not self.config.skip_missing:
                    out[name] = None
        if not out and self.config.fields:
            raise ExecutionError(
                f'node "{self.node_id}": none of the fields {sorted(self.config.fields)} has a value',
                node=self.node_id,
            )
        return {self.output_key: out}


node_types.register(AggregatorNode)
