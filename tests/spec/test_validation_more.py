"""Validation rules beyond tests/spec/test_validation.py: sources, edges, fallbacks, entries."""

from __future__ import annotations

from typing import Any

from agentflow import check_workflow, validate_workflow


def base(**top: Any) -> dict[str, Any]:
    return {
        "id": "more",
        "sources": [
            {"id": "gpt", "kind": "llm", "provider": "echo"},
            {"id": "shop", "kind": "db", "provider": "sqlite"},
        ],
        "queues": [{"id": "q"}],
        "nodes": [{"id": "input", "type": "input"}, {"id": "answer", "type": "llm", "source": "gpt"}],
        "edges": [{"from": "input", "to": "answer"}],
        **top,
    }


def errors(doc: dict[str, Any]) -> dict[str, str]:
    return {e["path"]: e["message"] for e in check_workflow(doc).errors}


def warnings(doc: dict[str, Any]) -> dict[str, str]:
    return {w["path"]: w["message"] for w in check_workflow(doc).warnings}


def test_base_is_valid() -> None:
    assert check_workflow(base()).ok


def test_bad_source_shape_and_config() -> None:
    doc = base()
    doc["sources"] += [
        {"id": "x", "kind": "llmm", "provider": "echo"},
        {"kind": "llm", "provider": "echo"},
        {"id": "slow", "kind": "llm", "provider": "echo", "config": {"latency": 5}},
    ]
    found = errors(doc)
    assert found["sources[2].kind"] == "source \"x\": must be one of 'llm', 'image', 'db' or 'api'; got \"llmm\" (did you mean \"llm\"?)"
    assert found["sources[3].id"] == 'sources[3]: "id" is required'
    assert found["sources[4].config.latency"].startswith('source "slow": unknown key "latency" (did you mean "latency_ms"?)')


def test_no_provider_lists_the_available_ones() -> None:
    doc = base()
    doc["sources"].append({"id": "x", "kind": "image", "provider": "dalle"})
    assert errors(doc)["sources[2].provider"].startswith('source "x": no provider "dalle" for kind "image"; available: ')


def test_a_node_using_a_broken_source_gets_no_second_error() -> None:
    doc = base()
    doc["sources"][0]["config"] = {"latency_ms": -1}
    assert set(errors(doc)) == {"sources[0].config.latency_ms"}


def test_bad_edges() -> None:
    doc = base()
    doc["edges"] += [{"from": "input"}, {"from": "input", "to": "answer", "when": ""}, {"from": 1, "to": "answer"}]
    found = errors(doc)
    assert found["edges[1].to"] == 'edges[1]: "to" is required'
    assert found["edges[2].when"] == 'edge "input" -> "answer": must not be empty'
    assert found["edges[3].from"] == "edges[3]: must be a string; got 1"


def test_repeated_edge_warns() -> None:
    doc = base()
    doc["edges"].append({"from": "input", "to": "answer"})
    assert warnings(doc)["edges[1]"] == 'edge "input" -> "answer" repeats edges[0]'


def test_fallback_source_must_exist_and_be_of_the_right_kind() -> None:
    doc = base()
    doc["nodes"][1]["fallback_source"] = "gtp2"
    assert errors(doc)["nodes[1].fallback_source"].startswith('node "answer": source "gtp2" is not defined')
    doc["nodes"][1]["fallback_source"] = "shop"
    assert errors(doc)["nodes[1].fallback_source"] == (
        'node "answer": an llm node needs a source of kind "llm", but "shop" is of kind "db"'
    )
    doc["sources"].append({"id": "cheap", "kind": "llm", "provider": "echo"})
    doc["nodes"][1]["fallback_source"] = "cheap"
    assert validate_workflow(doc).node("answer").fallback_source == "cheap"


def test_subqueue_without_queue_warns() -> None:
    doc = base()
    doc["nodes"][1]["subqueue"] = "batch"
    assert warnings(doc)["nodes[1].subqueue"] == 'node "answer": "subqueue" has no effect without "queue"'
    doc["nodes"][1]["queue"] = "q"
    assert "nodes[1].subqueue" not in warnings(doc)


def test_source_on_a_node_that_needs_none_warns() -> None:
    doc = base()
    doc["nodes"][0]["source"] = "gpt"
    assert warnings(doc)["nodes[0].source"] == 'node "input": an input node does not use a source; "source" is ignored'


def test_explicit_entry() -> None:
    doc = base(entry="answer")
    doc["edges"] = [{"from": "answer", "to": "input"}]
    spec = validate_workflow(doc)
    assert spec.entry_node == "answer"
    doc = base(entry="answer")
    assert errors(doc) == {"nodes[0]": 'node "input" is unreachable from the entry "answer"; add an edge to it or remove it'}


def test_entry_naming_a_broken_node_adds_no_second_error() -> None:
    doc = base(entry="answer")
    doc["nodes"][1]["on_error"] = "explode"
    assert set(errors(doc)) == {"nodes[1].on_error"}


def test_a_broken_node_is_not_reported_as_unreachable_or_dangling() -> None:
    doc = base()
    doc["nodes"][1]["retry"] = {"max_attempts": 0}
    assert set(errors(doc)) == {"nodes[1].retry.max_attempts"}
