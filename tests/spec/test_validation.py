"""Every validation rule of spec section 6, each with a bad document: path and message."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from agentflow import ValidationError, check_workflow, load_workflow, validate_workflow
from agentflow.spec.models import QueueSpec, SourceSpec, WorkflowSpec


def base() -> dict[str, Any]:
    return {
        "id": "demo",
        "sources": [
            {"id": "gpt", "kind": "llm", "provider": "echo"},
            {"id": "pics", "kind": "image", "provider": "placeholder"},
            {"id": "shop", "kind": "db", "provider": "sqlite", "config": {"path": ":memory:"}},
        ],
        "queues": [{"id": "q", "max_messages_per_second": 5}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "router", "type": "router"},
            {"id": "answer", "type": "llm", "source": "gpt", "queue": "q", "config": {"prompt": "{user_input}"}},
            {"id": "draw", "type": "image", "source": "pics"},
            {"id": "agg", "type": "aggregator"},
        ],
        "edges": [
            {"from": "input", "to": "router"},
            {"from": "router", "to": "answer", "when": "text"},
            {"from": "router", "to": "draw", "when": "image"},
            {"from": "answer", "to": "agg"},
            {"from": "draw", "to": "agg"},
            {"from": "agg", "to": "END"},
        ],
    }


def errors_of(doc: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        validate_workflow(doc)
    assert info.value.errors, "a ValidationError lists its problems"
    return info.value.errors


def one(doc: Any, path: str) -> str:
    """The message of the error at ``path`` (exactly one there)."""
    found = [e["message"] for e in errors_of(doc) if e["path"] == path]
    assert len(found) == 1, f"expected one error at {path}, got {errors_of(doc)}"
    return found[0]


def test_base_document_is_valid() -> None:
    spec = validate_workflow(base())
    assert isinstance(spec, WorkflowSpec)
    assert spec.entry_node == "input"
    assert spec.warnings == []


def test_not_an_object() -> None:
    assert one([1, 2], "$") == "a workflow must be a JSON object"
    assert one("[1, 2]", "$") == "a workflow must be a JSON object"


def test_json_syntax_error_has_line_and_column() -> None:
    text = '{\n  "id": "x",\n  "nodes": [\n    {"id": "a" "type": "input"}\n  ]\n}'
    errs = errors_of(text)
    assert errs[0]["line"] == 4 and errs[0]["column"] == 16
    assert "invalid JSON at line 4, column 16" in errs[0]["message"]


def test_empty_text_and_missing_file(tmp_path) -> None:
    assert "empty" in one("   ", "$")
    assert "does not exist" in one(tmp_path / "nope.json", "$")


def test_required_fields() -> None:
    errs = errors_of({"name": "x"})
    paths = {e["path"]: e["message"] for e in errs}
    assert paths["id"].startswith('"id" is required')
    assert paths["nodes"].startswith('"nodes" is required')
    assert paths["edges"].startswith('"edges" is required')


def test_unknown_top_level_key_suggests() -> None:
    doc = base()
    doc["edgs"] = []
    assert one(doc, "edgs").startswith('unknown key "edgs" (did you mean "edges"?)')


def test_unknown_node_key_and_config_key() -> None:
    doc = base()
    doc["nodes"][2]["sourse"] = "gpt"
    doc["nodes"][3]["config"] = {"promt": "x"}
    assert one(doc, "nodes[2].sourse").startswith('node "answer": unknown key "sourse" (did you mean "source"?)')
    assert one(doc, "nodes[3].config.promt").startswith('node "draw": unknown key "promt" (did you mean "prompt"?)')


def test_bad_ids_and_types() -> None:
    doc = base()
    doc["id"] = "Bad Id"
    doc["nodes"][0]["id"] = "In Put"
    doc["settings"] = {"recursion_limit": "many"}
    assert "is not a valid id" in one(doc, "id")
    assert one(doc, "nodes[0].id").startswith('node "In Put": "In Put" is not a valid id')
    assert one(doc, "settings.recursion_limit") == 'must be a whole number; got "many"'


def test_lists_must_be_lists_and_objects() -> None:
    doc = base()
    doc["edges"] = {"from": "a"}
    doc["nodes"].append("oops")
    assert one(doc, "edges") == '"edges" must be a list; got dict'
    assert one(doc, "nodes[5]") == "each entry of nodes must be a JSON object; got str"
    assert "at least one node" in one({"id": "x", "nodes": [], "edges": []}, "nodes")


def test_duplicate_ids() -> None:
    doc = base()
    doc["nodes"].append({"id": "answer", "type": "llm", "source": "gpt"})
    doc["sources"].append({"id": "gpt", "kind": "llm", "provider": "echo"})
    assert one(doc, "nodes[5].id") == 'node id "answer" is used twice (nodes[2] and nodes[5]); ids must be unique'
    assert one(doc, "sources[3].id").startswith('source id "gpt" is used twice')


def test_dangling_edges_suggest() -> None:
    doc = base()
    doc["edges"][3] = {"from": "answr", "to": "agg"}
    doc["edges"][5] = {"from": "agg", "to": "ENDD"}
    assert one(doc, "edges[3].from") == 'edge "answr" -> "agg": node "answr" is not defined (did you mean "answer"?)'
    assert one(doc, "edges[5].to") == 'edge "agg" -> "ENDD": node "ENDD" is not defined (did you mean "END"?)'


def test_edge_out_of_end() -> None:
    doc = base()
    doc["edges"].append({"from": "END", "to": "agg"})
    assert "cannot leave END" in one(doc, "edges[6].from")


def test_undefined_source_suggests() -> None:
    doc = base()
    doc["nodes"][2]["source"] = "gtp"
    msg = one(doc, "nodes[2].source")
    assert msg.startswith('node "answer": source "gtp" is not defined (did you mean "gpt"?)')


def test_wrong_source_kind() -> None:
    doc = base()
    doc["nodes"][2]["source"] = "shop"
    msg = one(doc, "nodes[2].source")
    assert msg == 'node "answer": an llm node needs a source of kind "llm", but "shop" is of kind "db"'


def test_missing_source() -> None:
    doc = base()
    del doc["nodes"][3]["source"]
    assert one(doc, "nodes[3].source") == 'node "draw": an image node needs a source of kind "image"; set "source"'


def test_unknown_node_type_and_provider() -> None:
    doc = base()
    doc["nodes"][2]["type"] = "lmm"
    doc["sources"][0]["provider"] = "ecko"
    assert one(doc, "nodes[2].type").startswith('node "answer": unknown node type "lmm" (did you mean "llm"?)')
    assert one(doc, "sources[0].provider").startswith('source "gpt": no provider "ecko" for kind "llm" (did you mean "echo"?)')


def test_router_edges_need_when_and_when_needs_router() -> None:
    doc = base()
    doc["edges"][1] = {"from": "router", "to": "answer"}
    doc["edges"][0] = {"from": "input", "to": "router", "when": "text"}
    assert one(doc, "edges[1]").startswith('edge "router" -> "answer": edges leaving router "router" need "when"')
    assert one(doc, "edges[0].when").startswith('edge "input" -> "router": "when" works only on edges leaving a router')


def test_unreachable_node() -> None:
    doc = base()
    doc["nodes"].append({"id": "orphan", "type": "llm", "source": "gpt"})
    assert one(doc, "nodes[5]") == 'node "orphan" is unreachable from the entry "input"; add an edge to it or remove it'


def test_cycle_without_exit() -> None:
    doc = base()
    doc["edges"][5] = {"from": "agg", "to": "answer"}
    msg = one(doc, "nodes[2]")
    assert msg.startswith('the cycle "answer" -> "agg" -> "answer" has no way out')


def test_self_loop_without_exit() -> None:
    doc = base()
    doc["edges"].append({"from": "answer", "to": "answer"})
    assert 'the cycle "answer" -> "answer" has no way out' in one(doc, "nodes[2]")


def test_cycle_with_router_exit_is_fine(examples_dir) -> None:
    spec = load_workflow(examples_dir / "refine_loop.json")
    assert spec.id == "refine-loop"


def test_inline_secrets() -> None:
    doc = base()
    doc["sources"][0]["config"] = {"api_key": "sk-abcdefabcdefabcdefabcdef"}
    doc["sources"].append(
        {"id": "pg", "kind": "db", "provider": "sqlite", "config": {"path": "postgresql://bob:hunter2@db/x"}}
    )
    doc["nodes"][2]["config"]["system"] = "use key sk-proj-abcdefghijklmnopqrstuvwxyz12"
    msg = one(doc, "sources[0].config.api_key")
    assert msg.startswith('source "gpt": a literal api_key is not allowed in a workflow; store it as a secret')
    assert '"api_key_secret"' in msg and '"api_key_env"' in msg
    assert "contains a password" in one(doc, "sources[3].config.path")
    assert "looks like an API key" in one(doc, "nodes[2].config.system")
    assert all("hunter2" not in e["message"] and "sk-abc" not in e["message"] for e in errors_of(doc))


def test_inline_secret_header() -> None:
    doc = base()
    doc["nodes"].append({"id": "call", "type": "api", "source": "gpt", "config": {"headers": {"Authorization": "Bearer xyz"}}})
    doc["edges"].append({"from": "input", "to": "call"})
    assert "holds a literal value" in one(doc, "nodes[5].config.headers.Authorization")


def test_queue_limits_must_be_positive() -> None:
    doc = base()
    doc["queues"][0] = {"id": "q", "max_messages_per_second": 0, "tokens_per_minute": -5, "subqueues": {"a": 0}}
    assert one(doc, "queues[0].max_messages_per_second") == 'queue "q": must be a positive number; got 0'
    assert one(doc, "queues[0].tokens_per_minute") == 'queue "q": must be a positive number; got -5'
    assert one(doc, "queues[0].subqueues.a") == 'queue "q": must be a positive number; got 0'


def test_undefined_queue_suggests() -> None:
    doc = base()
    doc["nodes"][2]["queue"] = "qq"
    assert one(doc, "nodes[2].queue").startswith('node "answer": queue "qq" is not defined (did you mean "q"?)')


def test_static_parallel_write_conflict() -> None:
    doc = base()
    doc["nodes"].append({"id": "second", "type": "llm", "source": "gpt"})
    doc["edges"] += [{"from": "input", "to": "second"}, {"from": "second", "to": "agg"}]
    msg = one(doc, "nodes[5].config.output_key")
    assert "may run at the same time" in msg and '"text_result"' in msg


def test_parallel_list_outputs_may_share_a_key() -> None:
    doc = base()
    doc["nodes"] += [
        {"id": "q1", "type": "db", "source": "shop", "config": {"query": "SELECT 1"}},
        {"id": "q2", "type": "db", "source": "shop", "config": {"query": "SELECT 2"}},
    ]
    doc["edges"] += [{"from": "input", "to": "q1"}, {"from": "input", "to": "q2"}]
    validate_workflow(doc)


def test_entry_rules() -> None:
    doc = base()
    doc["nodes"][0]["type"] = "llm"
    doc["nodes"][0]["source"] = "gpt"
    assert one(doc, "entry").startswith('no entry: add a node of type "input"')
    doc = base()
    doc["nodes"].append({"id": "input2", "type": "input"})
    doc["edges"].append({"from": "input", "to": "input2"})
    assert "several input nodes" in one(doc, "entry")
    doc = base()
    doc["entry"] = "inptu"
    assert one(doc, "entry") == 'entry "inptu" is not a node (did you mean "input"?)'


def test_router_rules_config_errors() -> None:
    doc = base()
    doc["nodes"][1]["config"] = {"rules": [{"prefix": "a", "contains": "b", "intent": "x"}, {"regex": "(", "intent": "y"}]}
    errs = {e["path"]: e["message"] for e in errors_of(doc)}
    assert "exactly one of" in errs["nodes[1].config.rules[0]"]
    assert "does not compile" in errs["nodes[1].config.rules[1]"]
    doc["nodes"][1]["config"] = {"mode": "llm"}
    assert 'mode "llm" needs "intents"' in one(doc, "nodes[1].config")


def test_template_syntax_error() -> None:
    doc = base()
    doc["nodes"][2]["config"]["prompt"] = "Hi {user_input"
    assert 'unmatched "{"' in one(doc, "nodes[2].config.prompt")
    doc["nodes"][2]["config"]["prompt"] = "Hi {user_input()}"
    assert "is not a state key" in one(doc, "nodes[2].config.prompt")


def test_template_key_warning() -> None:
    doc = base()
    doc["nodes"][2]["config"]["prompt"] = "Summarise {text_reslt} for {user_input}"
    spec = validate_workflow(doc)
    (warning,) = spec.warnings
    assert warning["path"] == "nodes[2].config.prompt"
    assert warning["message"].startswith('node "answer": template key "text_reslt" is not written by any node before it')
    assert '(did you mean "text_result"?)' in warning["message"]


def test_template_key_required_by_input_is_fine() -> None:
    doc = base()
    doc["nodes"][0]["config"] = {"required": ["topic"]}
    doc["nodes"][2]["config"]["prompt"] = "About {topic}"
    assert validate_workflow(doc).warnings == []


def test_router_edge_warnings() -> None:
    doc = base()
    doc["edges"][2]["when"] = "imgae"
    report = check_workflow(doc)
    assert report.ok
    messages = [w["message"] for w in report.warnings]
    assert any('never sets intent "imgae"' in m and '(did you mean "image"?)' in m for m in messages)
    assert any('intent "image" has no edge and there is no "*" fallback' in m for m in messages)


def test_every_problem_at_once() -> None:
    doc = base()
    doc["nodes"][2]["source"] = "gtp"
    doc["edges"][3]["from"] = "answr"
    doc["queues"][0]["max_messages_per_second"] = -1
    doc["extra"] = 1
    paths = {e["path"] for e in errors_of(doc)}
    assert {"nodes[2].source", "edges[3].from", "queues[0].max_messages_per_second", "extra"} <= paths


def test_error_lines_point_into_the_text() -> None:
    doc = base()
    doc["nodes"][2]["source"] = "gtp"
    text = json.dumps(doc, indent=2)
    (err,) = [e for e in errors_of(text) if e["path"] == "nodes[2].source"]
    assert '"source": "gtp"' in text.splitlines()[err["line"] - 1]


def test_workspace_sources_and_queues_resolve() -> None:
    class WS:
        workspace_key = "t"

        def get_source(self, sid):
            return SourceSpec(id=sid, kind="llm", provider="echo") if sid == "shared" else None

        def get_queue(self, qid):
            return QueueSpec(id=qid, max_requests_per_minute=60) if qid == "team" else None

        def get_secret(self, name):
            return None

    doc = base()
    doc["nodes"][2]["source"] = "shared"
    doc["nodes"][2]["queue"] = "team"
    spec = validate_workflow(doc, workspace=WS())
    assert spec.source("shared").provider == "echo"
    assert spec.queue("team").max_requests_per_minute == 60


def test_validation_error_shape() -> None:
    doc = base()
    doc["nodes"][2]["source"] = "gtp"
    with pytest.raises(ValidationError) as info:
        validate_workflow(doc)
    shape = info.value.to_dict()
    assert shape["status"] == "error" and shape["error_type"] == "ValidationError"
    assert shape["message"].startswith('invalid workflow: nodes[2].source: node "answer": source "gtp"')
    assert shape["details"]["errors"] == info.value.errors


def test_spec_is_frozen_and_round_trips() -> None:
    spec = validate_workflow(base())
    with pytest.raises(PydanticValidationError, match="frozen"):
        spec.id = "other"  # type: ignore[misc]
    again = validate_workflow(spec.to_document())
    assert again.fingerprint == spec.fingerprint
    assert validate_workflow(spec) is spec


def test_deep_copy_of_base_is_independent() -> None:
    a, b = base(), copy.deepcopy(base())
    a["id"] = "changed"
    assert b["id"] == "demo"
