"""The exported JSON Schema: valid, accepts the examples, rejects what validation rejects."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentflow import validate_workflow
from agentflow.nodes.registry import node_types
from agentflow.spec.schema import SCHEMA_ID, workflow_json_schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = workflow_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(validator: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def example_paths() -> list[Path]:
    paths = sorted((ROOT / "examples").glob("*.json"))
    assert paths, "the examples folder has workflows"
    return paths


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_every_example_is_valid_against_the_schema(validator: Draft202012Validator, path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert problems(validator, doc) == []
    validate_workflow(doc)  # and against the validator itself


def test_schema_header_and_node_types() -> None:
    schema = workflow_json_schema()
    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "AgentFlow workflow"
    assert schema["required"] == ["id", "nodes", "edges"]
    node = schema["$defs"]["NodeSpec"]
    assert node["properties"]["type"]["enum"] == sorted(node_types.keys())
    assert {rule["if"]["properties"]["type"]["const"] for rule in node["allOf"]} == set(node_types.keys())


def base() -> dict[str, Any]:
    return copy.deepcopy(json.loads((ROOT / "examples" / "triage.json").read_text(encoding="utf-8")))


def test_rejects_a_wrong_node_config_key(validator: Draft202012Validator) -> None:
    doc = base()
    doc["nodes"][2]["config"]["promt"] = "typo"
    (problem,) = problems(validator, doc)
    assert problem.startswith("nodes/2/config: Additional properties are not allowed ('promt' was unexpected)")


def test_rejects_an_unknown_node_type(validator: Draft202012Validator) -> None:
    doc = base()
    doc["nodes"][2]["type"] = "lmm"
    assert any(p.startswith("nodes/2/type: 'lmm' is not one of") for p in problems(validator, doc))


def test_rejects_other_mistakes(validator: Draft202012Validator) -> None:
    doc = base()
    doc["sources"][0]["config"]["latency"] = 1  # echo has latency_ms
    doc["nodes"][1]["config"]["rules"][0]["prefx"] = "x"
    doc["edges"][0] = {"from": "input"}
    doc["extra"] = True
    found = problems(validator, doc)
    assert any(p.startswith("sources/0/config: Additional properties") and "'latency'" in p for p in found)
    assert any(p.startswith("nodes/1/config/rules: ") for p in found)  # inside an anyOf (list or null)
    assert "edges/0: 'to' is a required property" in found
    assert any(p.startswith(": Additional properties") and "'extra'" in p for p in found)


def test_accepts_every_node_type_with_its_options(validator: Draft202012Validator) -> None:
    doc = {
        "id": "all",
        "sources": [{"id": "h", "kind": "api", "provider": "http", "config": {"base_url": "http://localhost"}}],
        "nodes": [
            {"id": "input", "type": "input", "config": {"required": ["user_input"]}},
            {"id": "r", "type": "router", "config": {"mode": "llm", "intents": ["a"], "default": "a"}},
            {"id": "call", "type": "api", "source": "h",
             "config": {"method": "POST", "path": "/x", "json": {"a": ["{user_input}"]}, "headers": {"A": "b"}}},
            {"id": "q", "type": "db", "config": {"query": "SELECT 1", "params": {"a": 1}, "max_rows": 5}},
            {"id": "agg", "type": "aggregator", "config": {"fields": {"a": "b.c"}, "skip_missing": True}},
        ],
        "edges": [{"from": "input", "to": "r"}, {"from": "r", "to": "END", "when": "*", "label": "done"}],
        "settings": {"recursion_limit": 3, "timeout_s": 1.5},
    }
    assert problems(validator, doc) == []


def test_python_m_agentflow_schema_prints_it(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTFLOW_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "agentflow", "schema"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["$id"] == SCHEMA_ID
    Draft202012Validator.check_schema(printed)
    ours = workflow_json_schema()
    assert printed["$defs"]["NodeSpec"] == ours["$defs"]["NodeSpec"]
    assert printed["properties"] == ours["properties"]
    for path in example_paths():
        assert list(Draft202012Validator(printed).iter_errors(json.loads(path.read_text(encoding="utf-8")))) == []
