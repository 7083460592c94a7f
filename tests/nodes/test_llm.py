"""The llm node: prompt and system rendering, history, options, streaming, validation hooks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agentflow import (
    ExecutionError,
    SourceConnectionError,
    arun_workflow,
    astream_workflow,
    check_workflow,
    run_workflow,
    stream_workflow,
)
from agentflow.metrics import estimate_tokens
from agentflow.sources.base import LLMChunk, LLMRequest
from agentflow.sources.llm_echo import EchoLLM
from agentflow.sources.registry import providers
from tests.nodes.helpers import RecordingLLM, at, chain, echo, entry, impl_of, requests_for


class SilentStreamLLM(EchoLLM):
    """Streams text but never the closing chunk with the whole response (a broken server)."""

    name = f"silent-stream-{uuid.uuid4().hex[:8]}"

    def stream(self, request: LLMRequest) -> Iterator[LLMChunk]:
        yield LLMChunk(text="partial ")

    async def astream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        yield LLMChunk(text="partial ")


providers.register(SilentStreamLLM)

REC = {"id": "rec", "kind": "llm", "provider": RecordingLLM.name}


def llm(node_id: str = "a", source: str = "e", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "llm", "source": source, "config": config}


def test_prompt_rendered_from_state_and_written_to_text_result() -> None:
    doc = chain(llm(prompt="Q: {user_input} about {topic.name}"))
    state = run_workflow(doc, {"user_input": "why?", "topic": {"name": "foxes"}})
    assert state["text_result"] == "Q: why? about foxes"
    trace = entry(state, "a")
    assert trace["status"] == "succeeded" and trace["source"] == "e"
    assert trace["output"] == {"model": "echo"}
    assert trace["tokens"]["completion"] == estimate_tokens("Q: why? about foxes")


def test_system_and_template_of_the_source() -> None:
    doc = chain(llm(system="Be {tone}.", prompt="{user_input}"), sources=[echo(template="[{system}] {prompt} ({model})", model="m1")])
    state = run_workflow(doc, {"user_input": "hi", "tone": "brief"})
    assert state["text_result"] == "[Be brief.] hi (m1)"
    assert entry(state, "a")["output"] == {"model": "m1"}


def test_output_key_and_chained_nodes() -> None:
    doc = chain(llm("a", prompt="one {user_input}", output_key="draft"), llm("b", prompt="two {draft}"))
    state = run_workflow(doc, "x")
    assert state["draft"] == "one x"
    assert state["text_result"] == "two one x"


def test_history_options_and_system_are_passed_to_the_model() -> None:
    marker = uuid.uuid4().hex
    doc = chain(llm(source="rec", prompt=marker + " {user_input}", system="S", temperature=0.3, max_tokens=42), sources=[REC])
    history = [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": 7},
        {"role": "user"},  # no content: skipped
        "not a turn",  # skipped
    ]
    run_workflow(doc, {"user_input": "now", "messages": history})
    (request,) = requests_for(RecordingLLM, marker)
    assert request.prompt == f"{marker} now"
    assert request.system == "S"
    assert request.messages == [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "7"}]
    assert request.temperature == 0.3 and request.max_tokens == 42
    assert request.timeout_s is None


def test_history_key_is_configurable_and_can_be_off() -> None:
    marker = uuid.uuid4().hex
    turns = [{"role": "user", "content": "old"}]
    doc = chain(llm("a", source="rec", prompt=marker + "a", history_key="chat"), llm("b", source="rec", prompt=marker + "b", history_key=None), sources=[REC])
    run_workflow(doc, {"user_input": "x", "chat": turns, "messages": turns})
    a, b = requests_for(RecordingLLM, marker)
    assert a.messages == turns and b.messages == []
    assert a.system is None and a.temperature is None and a.max_tokens is None


def test_history_that_is_not_a_list_is_ignored() -> None:
    marker = uuid.uuid4().hex
    doc = chain(llm(source="rec", prompt=marker), sources=[REC])
    run_workflow(doc, {"user_input": "x", "messages": "not a list"})
    (request,) = requests_for(RecordingLLM, marker)
    assert request.messages == []


def test_node_timeout_reaches_the_provider() -> None:
    marker = uuid.uuid4().hex
    node = {**llm(source="rec", prompt=marker), "timeout_s": 5}
    run_workflow(chain(node, sources=[REC]), "x")
    (request,) = requests_for(RecordingLLM, marker)
    assert request.timeout_s is not None and 0 < request.timeout_s <= 5


async def test_async_run() -> None:
    marker = uuid.uuid4().hex
    doc = chain(llm(source="rec", prompt="{user_input} " + marker, system="sys", max_tokens=9), sources=[REC])
    state = await arun_workflow(doc, {"user_input": "hello", "messages": [{"role": "user", "content": "h"}]})
    assert state["text_result"] == f"hello {marker}"
    (request,) = requests_for(RecordingLLM, marker)
    assert request.system == "sys" and request.max_tokens == 9 and request.messages == [{"role": "user", "content": "h"}]
    assert entry(state, "a")["output"] == {"model": "echo"}


def test_streamed_run_emits_tokens_that_join_to_the_text() -> None:
    doc = chain(llm(prompt="one two  three {user_input}"))
    events = list(stream_workflow(doc, "four"))
    tokens = [e for e in events if e["type"] == "token"]
    assert [t["node"] for t in tokens] == ["a"] * 4
    final = events[-1]["data"]
    assert "".join(t["data"] for t in tokens) == final["text_result"] == "one two  three four"
    assert entry(final, "a")["tokens"]["total"] > 0


async def test_async_streamed_run_emits_tokens() -> None:
    doc = chain(llm(prompt="alpha beta {user_input}"))
    events = [e async for e in astream_workflow(doc, "gamma")]
    tokens = [e["data"] for e in events if e["type"] == "token"]
    assert tokens == ["alpha ", "beta ", "gamma"]
    assert events[-1]["data"]["text_result"] == "alpha beta gamma"


def test_stream_false_sends_no_tokens_but_the_same_text() -> None:
    doc = chain(llm(prompt="one two {user_input}", stream=False))
    events = list(stream_workflow(doc, "three"))
    assert [e for e in events if e["type"] == "token"] == []
    assert events[-1]["data"]["text_result"] == "one two three"


async def test_async_stream_false() -> None:
    doc = chain(llm(prompt="x {user_input}", stream=False))
    events = [e async for e in astream_workflow(doc, "y")]
    assert "token" not in [e["type"] for e in events]
    assert events[-1]["data"]["text_result"] == "x y"


def test_stream_that_ends_without_a_reply_is_a_source_error() -> None:
    doc = chain(llm(source="s"), sources=[{"id": "s", "kind": "llm", "provider": SilentStreamLLM.name}])
    events = list(stream_workflow(doc, "x"))
    final = events[-1]["data"]
    assert final["metadata"]["status"] == "failed"
    error = final["metadata"]["error"]
    assert error["error_type"] == "SourceConnectionError"
    assert error["message"] == 'node "a": the model\'s stream ended without a reply'
    assert [e["data"] for e in events if e["type"] == "token"] == ["partial "]


async def test_async_stream_that_ends_without_a_reply_is_a_source_error() -> None:
    doc = chain(llm(source="s"), sources=[{"id": "s", "kind": "llm", "provider": SilentStreamLLM.name}])
    events = [e async for e in astream_workflow(doc, "x")]
    assert events[-1]["data"]["metadata"]["error"]["message"] == 'node "a": the model\'s stream ended without a reply'
    # outside a streamed run the same source answers normally
    assert run_workflow(doc, "fine")["text_result"] == "fine"


def test_missing_template_key_fails_naming_node_and_field() -> None:
    doc = chain(llm(system="{persona}"))
    with pytest.raises(ExecutionError, match=r'node "a": template key "persona" in config.system has no value'):
        run_workflow(doc, "x")


def test_provider_error_surfaces_as_source_error() -> None:
    doc = chain(llm(), sources=[echo(fail_first=1)])
    with pytest.raises(SourceConnectionError, match=r'source "e": simulated failure 1 of 1'):
        run_workflow(doc, uuid.uuid4().hex)


# --- validation hooks -------------------------------------------------------------------------


def test_needs_an_llm_source() -> None:
    doc = chain(llm(source="pics"), sources=[{"id": "pics", "kind": "image", "provider": "placeholder"}])
    assert at(check_workflow(doc).errors, "nodes[1].source") == [
        'node "a": an llm node needs a source of kind "llm", but "pics" is of kind "image"'
    ]
    impl = impl_of(llm())
    assert impl.required_source_kind(impl.config) == "llm"


def test_config_ranges_and_syntax() -> None:
    doc = chain(llm(temperature=3, max_tokens=0, prompt="{oops", stream="sometimes"))
    errors = check_workflow(doc).errors
    assert at(errors, "nodes[1].config.temperature") == ['node "a": must be at most 2; got 3']
    assert at(errors, "nodes[1].config.max_tokens") == ['node "a": must be at least 1; got 0']
    assert at(errors, "nodes[1].config.stream") == ['node "a": must be true or false; got "sometimes"']
    (syntax,) = at(errors, "nodes[1].config.prompt")
    assert syntax.startswith('node "a": unmatched "{" at character 1')


def test_templates_and_keys() -> None:
    impl = impl_of(llm(prompt="{user_input} {ctx.x}", system="{persona}", output_key="answer"))
    assert [(p, t.keys) for p, t in impl.templates()] == [("config.prompt", ["user_input", "ctx.x"]), ("config.system", ["persona"])]
    assert impl.written_keys() == ["answer"]
    assert impl.read_keys() == []
    bare = impl_of(llm())
    assert [p for p, _ in bare.templates()] == ["config.prompt"]
    assert bare.written_keys() == ["text_result"]


def test_unknown_template_keys_warn_at_their_field() -> None:
    report = check_workflow(chain(llm(prompt="{user_input}", system="{persona}")))
    assert report.ok
    (warning,) = at(report.warnings, "nodes[1].config.system")
    assert warning.startswith('node "a": template key "persona" is not written by any node before it')
