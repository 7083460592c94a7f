"""The aggregator node: default and custom fields, key.sub paths, skip_missing, errors."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import ExecutionError, arun_workflow, check_workflow, run_workflow
from tests.nodes.helpers import at, chain, entry, impl_of


def agg(**config: Any) -> dict[str, Any]:
    return {"id": "agg", "type": "aggregator", "config": config}


def llm(node_id: str, prompt: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "llm", "source": "e", "config": {"prompt": prompt, **config}}


def test_default_fields_take_every_result_key() -> None:
    state = run_workflow(chain(llm("a", "text {user_input}"), agg()), "x")
    assert state["final_output"] == {"text": "text x", "image": None, "db": None, "api": None}
    assert entry(state, "agg")["status"] == "succeeded"


def test_custom_fields_with_sub_keys_and_list_indexes() -> None:
    fields = {"answer": "text_result", "who": "profile.name", "first_tag": "profile.tags.0", "deep": "profile.meta.a.b"}
    state = run_workflow(
        chain(llm("a", "hi"), agg(fields=fields, output_key="report")),
        {"profile": {"name": "Ada", "tags": ["math", "code"], "meta": {"a": {"b": [1, 2]}}}},
    )
    assert state["report"] == {"answer": "hi", "who": "Ada", "first_tag": "math", "deep": [1, 2]}
    assert state["final_output"] is None


def test_missing_fields_are_null_or_skipped() -> None:
    fields = {"answer": "text_result", "gone": "nothing.here", "index": "profile.tags.5"}
    state_in = {"profile": {"tags": ["a"]}}
    kept = run_workflow(chain(llm("a", "hi"), agg(fields=fields)), state_in)
    assert kept["final_output"] == {"answer": "hi", "gone": None, "index": None}
    skipped = run_workflow(chain(llm("a", "hi"), agg(fields=fields, skip_missing=True)), state_in)
    assert skipped["final_output"] == {"answer": "hi"}


def test_a_path_that_only_looks_like_an_index_is_missing() -> None:
    state = run_workflow(chain(agg(fields={"x": "rows.²", "y": "rows.0"})), {"rows": ["first"]})
    assert state["final_output"] == {"x": None, "y": "first"}


def test_all_fields_missing_with_skip_missing_is_an_error() -> None:
    doc = chain(agg(fields={"x": "nope", "y": "also.nope"}, skip_missing=True))
    with pytest.raises(ExecutionError, match=r"node \"agg\": none of the fields \['x', 'y'\] has a value") as info:
        run_workflow(doc, "x")
    assert info.value.node == "agg"


def test_no_fields_gives_an_empty_record() -> None:
    assert run_workflow(chain(agg(fields={}, skip_missing=True)), "x")["final_output"] == {}


async def test_async_run_after_parallel_branches() -> None:
    doc = chain(sources=None)
    doc["nodes"] += [llm("a", "A {user_input}", output_key="ka"), llm("b", "B {user_input}", output_key="kb"),
                     agg(fields={"a": "ka", "b": "kb"})]
    doc["edges"] = [{"from": "input", "to": "a"}, {"from": "input", "to": "b"},
                    {"from": "a", "to": "agg"}, {"from": "b", "to": "agg"}]
    state = await arun_workflow(doc, "x")
    assert state["final_output"] == {"a": "A x", "b": "B x"}
    assert state["metadata"]["nodes_executed"].count("agg") == 1


# --- validation hooks -------------------------------------------------------------------------


def test_field_paths_must_be_key_paths() -> None:
    errors = check_workflow(chain(agg(fields={"ok": "a.b", "empty": "", "dots": "a..b", "tail": "a."}))).errors
    assert at(errors, "nodes[1].config.fields.empty") == ['node "agg": "" is not a state key path']
    assert at(errors, "nodes[1].config.fields.dots") == ['node "agg": "a..b" is not a state key path']
    assert at(errors, "nodes[1].config.fields.tail") == ['node "agg": "a." is not a state key path']
    assert at(errors, "nodes[1].config.fields.ok") == []


def test_a_source_is_ignored_with_a_warning() -> None:
    doc = chain({**agg(), "source": "e"})
    report = check_workflow(doc)
    assert report.ok
    assert at(report.warnings, "nodes[1].source") == ['node "agg": an aggregator node does not use a source; "source" is ignored']
    impl = impl_of(agg())
    assert impl.required_source_kind(impl.config) is None


def test_keys() -> None:
    impl = impl_of(agg(fields={"a": "text_result", "b": "profile.name"}, output_key="out"))
    assert impl.read_keys() == ["text_result", "profile"]
    assert impl.written_keys() == ["out"]
    assert impl.templates() == []
    assert impl_of(agg()).read_keys() == ["text_result", "image_result", "db_result", "api_result"]
