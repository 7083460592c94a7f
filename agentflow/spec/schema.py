"""JSON Schema of the workflow format, with each node type's and provider's config.

The document models keep ``config`` open (its shape depends on ``type`` / ``provider``);
the exported schema closes it with ``if``/``then`` per registered plugin, so editors can
complete and check configs too.
"""

from __future__ import annotations

from typing import Any

from agentflow.nodes.registry import node_types
from agentflow.sources.registry import providers
from agentflow.spec.models import WorkflowSpec

SCHEMA_ID = "https://agentflow.dev/schema/workflow-v1.json"


def workflow_json_schema() -> dict[str, Any]:
    schema = WorkflowSpec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "AgentFlow workflow"
    defs = schema.setdefault("$defs", {})

    node_rules = []
    for cls in sorted(node_types, key=lambda c: c.type_name):
        name = f"{cls.__name__}Config"
        sub = cls.Config.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[name] = sub
        node_rules.append(
            {
                "if": {"properties": {"type": {"const": cls.type_name}}, "required": ["type"]},
                "then": {"properties": {"config": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    defs["NodeSpec"]["properties"]["type"]["enum"] = sorted(node_types.keys())
    defs["NodeSpec"]["allOf"] = node_rules

    source_rules = []
    for cls in sorted(providers, key=lambda c: (c.kind, c.name)):
        name = f"{cls.kind.title()}{cls.name.title().replace('_', '')}Config"
        sub = cls.Config.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[name] = sub
        source_rules.append(
            {
                "if": {
                    "properties": {"kind": {"const": cls.kind}, "provider": {"const": cls.name}},
                    "required": ["kind", "provider"],
                },
                "then": {"properties": {"config": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    defs["SourceSpec"]["allOf"] = source_rules
    return schema
