"""The input node: passes the state through, checks required keys."""

from __future__ import annotations

import pytest

from agentflow import ExecutionError, arun_workflow, check_workflow, run_workflow
from tests.nodes.helpers import at, chain, entry, impl_of


def llm(prompt: str) -> dict:
    return {"id": "a", "type": "llm", "source": "e", "config": {"prompt": prompt}}


def test_passes_the_state_through_unchanged() -> None:
    state = run_workflow(chain(llm("{user_input} {extra.k}")), {"user_input": "hi", "extra": {"k": 1}})
    assert state["text_result"] == "hi 1"
    assert state["extra"] == {"k": 1}
    trace = entry(state, "input")
    assert trace["status"] == "succeeded" and trace["writes"] == [] and trace["source"] is None


def test_required_keys_present() -> None:
    doc = chain(llm("{topic}"))
    doc["nodes"][0]["config"] = {"required": ["user_input", "topic"]}
    assert run_workflow(doc, {"user_input": "x", "topic": 0})["text_result"] == "0"  # 0 is a value


@pytest.mark.parametrize("state", [{}, {"user_input": ""}, {"user_input": None}])
def test_required_key_missing_or_empty(state: dict) -> None:
    doc = chain(llm("{user_input}"))
    doc["nodes"][0]["config"] = {"required": ["user_input"]}
    with pytest.raises(ExecutionError, match=r'node "input": required input "user_input" is missing; pass it in the initial state \(--input for user_input, --state for other keys\)') as info:
        run_workflow(doc, state)
    assert info.value.node == "input"
    assert [e["node"] for e in info.value.details["trace"]] == ["input"]


async def test_async_names_every_missing_key() -> None:
    doc = chain(llm("x"))
    doc["nodes"][0]["config"] = {"required": ["a", "b", "c"]}
    with pytest.raises(ExecutionError, match=r'required input "a", "c" is missing'):
        await arun_workflow(doc, {"b": "ok"})
    assert (await arun_workflow(doc, {"a": 1, "b": 2, "c": 3}))["text_result"] == "x"


# --- validation hooks -------------------------------------------------------------------------


def test_required_keys_count_as_known_for_templates() -> None:
    doc = chain(llm("{topic}"))
    assert at(check_workflow(doc).warnings, "nodes[1].config.prompt")
    doc["nodes"][0]["config"] = {"required": ["topic"]}
    assert check_workflow(doc).warnings == []


def test_config_and_source() -> None:
    doc = chain(llm("x"))
    doc["nodes"][0]["config"] = {"required": "user_input"}
    assert at(check_workflow(doc).errors, "nodes[0].config.required") == ['node "input": must be a list; got "user_input"']
    doc["nodes"][0] = {"id": "input", "type": "input", "source": "e"}
    assert at(check_workflow(doc).warnings, "nodes[0].source") == [
        'node "input": an input node does not use a source; "source" is ignored'
    ]


def test_keys() -> None:
    impl = impl_of({"id": "input", "type": "input", "config": {"required": ["a"]}})
    assert impl.written_keys() == []
    assert impl.read_keys() == []
    assert impl.templates() == []
    assert impl.required_source_kind(impl.config) is None
    assert impl.check(None) == []  # type: ignore[arg-type]
