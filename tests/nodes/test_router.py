"""The router node: rules mode, LLM mode, and its validation hooks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agentflow import ExecutionError, arun_workflow, check_workflow, run_workflow
from tests.nodes.helpers import RecordingLLM, at, echo, entry, impl_of, requests_for


def routed(config: dict[str, Any] | None = None, *, whens: tuple[str, ...] = ("*",), **node: Any) -> dict[str, Any]:
    """input -> router "r" -> one llm node per intent in ``whens`` (each writes its own key)."""
    nodes: list[dict[str, Any]] = [
        {"id": "input", "type": "input"},
        {"id": "r", "type": "router", "config": config or {}, **node},
    ]
    edges = [{"from": "input", "to": "r"}]
    for i, when in enumerate(whens):
        nodes.append({"id": f"t{i}", "type": "llm", "source": "e", "config": {"prompt": f"branch {when}"}})
        edges.append({"from": "r", "to": f"t{i}", "when": when})
    return {"id": "router-test", "sources": [echo()], "nodes": nodes, "edges": edges}


def intent(doc: dict[str, Any], state: dict[str, Any] | str) -> str:
    return run_workflow(doc, state)["intent"]


# --- rules mode ---------------------------------------------------------------------------


def test_default_rules_route_img_prefix_to_image_else_text() -> None:
    doc = routed(whens=("image", "text"))
    state = run_workflow(doc, "img: a red fox")
    assert state["intent"] == "image"
    assert state["text_result"] == "branch image"
    assert state["metadata"]["nodes_executed"] == ["input", "r", "t0"]
    assert intent(doc, "IMG: upper case") == "image"  # rules ignore case by default
    assert intent(doc, "   img: leading blanks") == "image"  # prefix ignores leading whitespace
    assert intent(doc, "draw img: later") == "text"  # a prefix, not a substring
    assert intent(doc, "hello") == "text"
    assert intent(doc, {}) == "text"  # no user_input at all: the default


def test_rules_are_tried_in_order_first_match_wins() -> None:
    rules = [
        {"prefix": "sql:", "intent": "db"},
        {"contains": "weather", "intent": "weather"},
        {"regex": r"\b\d{4}-\d{2}-\d{2}\b", "intent": "date"},
        {"contains": "sql", "intent": "never"},
    ]
    doc = routed({"rules": rules, "default": "chat"})
    assert intent(doc, "sql: weather on 2024-01-01") == "db"
    assert intent(doc, "the Weather on 2024-01-01") == "weather"
    assert intent(doc, "what happened on 2024-01-01?") == "date"
    assert intent(doc, "I like sql") == "never"
    assert intent(doc, "nothing matches") == "chat"


def test_case_sensitive_rules() -> None:
    rules = [
        {"prefix": "URGENT", "intent": "page", "case_sensitive": True},
        {"contains": "Fox", "intent": "fox", "case_sensitive": True},
        {"regex": "^Cat$", "intent": "cat", "case_sensitive": True},
        {"regex": "^dog$", "intent": "dog"},
    ]
    doc = routed({"rules": rules})
    assert intent(doc, "URGENT: disk full") == "page"
    assert intent(doc, "urgent: disk full") == "text"
    assert intent(doc, "a Fox") == "fox"
    assert intent(doc, "a fox") == "text"
    assert intent(doc, "Cat") == "cat"
    assert intent(doc, "cat") == "text"
    assert intent(doc, "DOG") == "dog"  # regex without case_sensitive ignores case


def test_input_key_with_sub_key_and_missing_key_falls_to_default() -> None:
    doc = routed({"input_key": "request.kind", "rules": [{"prefix": "bug", "intent": "bug"}], "default": "other"})
    assert intent(doc, {"user_input": "bug: ignored", "request": {"kind": "bug report"}}) == "bug"
    assert intent(doc, {"user_input": "bug", "request": {"kind": "feature"}}) == "other"
    assert intent(doc, {"user_input": "bug", "request": {}}) == "other"  # key.sub missing
    assert intent(doc, {"user_input": "bug"}) == "other"  # key missing


def test_input_key_value_that_is_not_text_is_matched_as_json() -> None:
    doc = routed({"input_key": "payload", "rules": [{"contains": '"kind": "bug"', "intent": "bug"}]})
    assert intent(doc, {"payload": {"kind": "bug"}}) == "bug"
    assert intent(doc, {"payload": 42}) == "text"


def test_output_key_names_the_routing_key() -> None:
    doc = routed({"output_key": "lane", "rules": [{"contains": "fast", "intent": "fast"}], "default": "slow"},
                 whens=("fast", "slow"))
    state = run_workflow(doc, "go fast")
    assert state["lane"] == "fast" and state["intent"] is None
    assert state["text_result"] == "branch fast"
    assert run_workflow(doc, "go")["text_result"] == "branch slow"


async def test_rules_mode_async() -> None:
    doc = routed({"rules": [{"regex": "^a+$", "intent": "as"}], "default": "other"}, whens=("as", "other"))
    state = await arun_workflow(doc, "aaa")
    assert state["intent"] == "as" and state["text_result"] == "branch as"
    assert (await arun_workflow(doc, "b"))["intent"] == "other"


# --- llm mode -------------------------------------------------------------------------------


def llm_routed(reply: str, *, default: str | None = None, **config: Any) -> dict[str, Any]:
    cfg = {"mode": "llm", "intents": ["text", "image", "db"], **config}
    if default is not None:
        cfg["default"] = default
    doc = routed(cfg, source="m")
    doc["sources"].append(echo("m", template=reply))
    return doc


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("image", "image"),
        ("  Image.  ", "image"),  # case, blanks and trailing punctuation are ignored
        ('"db"', "db"),
        ("I would say db, or maybe image", "db"),  # the first intent named wins
        ("Probably IMAGE; not text.", "image"),
        ("text-like", "fallback"),  # a longer word is not the intent
        ("no idea", "fallback"),
    ],
)
def test_llm_mode_picks_intent_from_reply(reply: str, expected: str) -> None:
    assert intent(llm_routed(reply, default="fallback"), "hello") == expected


def test_llm_mode_unparseable_reply_without_default_fails() -> None:
    doc = llm_routed("I cannot decide")
    with pytest.raises(ExecutionError, match=r"""node "r": the model answered 'I cannot decide', which names none of the intents \['text', 'image', 'db'\]; set "default" """) as info:
        run_workflow(doc, "hello")
    assert info.value.node == "r"
    assert entry(info.value.state, "r")["status"] == "failed"


async def test_llm_mode_async() -> None:
    state = await arun_workflow(llm_routed("that is an image"), "hi")
    assert state["intent"] == "image"
    assert entry(state, "r")["tokens"]["total"] > 0  # the call was metered
    with pytest.raises(ExecutionError, match="names none of the intents"):
        await arun_workflow(llm_routed("???"), "hi")


def test_llm_mode_request_carries_intents_prompt_and_short_answer_budget() -> None:
    marker = uuid.uuid4().hex
    doc = routed(
        {
            "mode": "llm",
            "intents": ["text", "image"],
            "prompt": "Route {user_input} " + marker,
            "system": "Choose from {intents} for {topic}.",
        },
        source="rec",
    )
    doc["sources"].append({"id": "rec", "kind": "llm", "provider": RecordingLLM.name, "config": {"template": "image"}})
    doc["nodes"][0]["config"] = {"required": ["topic"]}
    assert intent(doc, {"user_input": "a fox", "topic": "animals"}) == "image"
    (request,) = requests_for(RecordingLLM, marker)
    assert request.prompt == f"Route a fox {marker}"
    assert request.system == "Choose from text, image for animals."
    assert request.max_tokens == 16 and request.temperature == 0


def test_llm_mode_default_system_lists_intents() -> None:
    marker = uuid.uuid4().hex
    doc = routed({"mode": "llm", "intents": ["yes", "no"], "prompt": marker + " {user_input}"}, source="rec")
    doc["sources"].append({"id": "rec", "kind": "llm", "provider": RecordingLLM.name, "config": {"template": "no"}})
    assert intent(doc, "ok?") == "no"
    (request,) = requests_for(RecordingLLM, marker)
    assert request.system == "You route requests. Reply with exactly one of these intents and nothing else: yes, no."


# --- validation hooks -------------------------------------------------------------------------


def test_llm_mode_needs_an_llm_source_rules_mode_needs_none() -> None:
    doc = routed({"mode": "llm", "intents": ["a"]})
    assert at(check_workflow(doc).errors, "nodes[1].source") == [
        'node "r": a router node needs a source of kind "llm"; set "source"'
    ]
    doc = routed({}, source="e")
    report = check_workflow(doc)
    assert report.ok
    assert at(report.warnings, "nodes[1].source") == ['node "r": a router node does not use a source; "source" is ignored']
    llm = impl_of({"id": "r", "type": "router", "config": {"mode": "llm", "intents": ["a"]}})
    assert llm.required_source_kind(llm.config) == "llm"
    rules = impl_of({"id": "r", "type": "router"})
    assert rules.required_source_kind(rules.config) is None


def test_config_errors() -> None:
    doc = routed({"mode": "llm", "intents": []})
    assert at(check_workflow(doc).errors, "nodes[1].config.intents") == [
        'node "r": intents must be a non-empty list of non-empty names'
    ]
    doc = routed({"mode": "llm", "intents": ["a", ""]})
    assert at(check_workflow(doc).errors, "nodes[1].config.intents") == [
        'node "r": intents must be a non-empty list of non-empty names'
    ]
    doc = routed({"rules": [{"intent": "x"}]})
    assert at(check_workflow(doc).errors, "nodes[1].config.rules[0]") == [
        'node "r": a rule needs exactly one of "prefix", "contains" or "regex"'
    ]
    doc = routed({"mode": "guess"})
    (msg,) = at(check_workflow(doc).errors, "nodes[1].config.mode")
    assert msg.startswith("node \"r\": must be one of 'rules' or 'llm'; got \"guess\"")


def test_unknown_rule_key_suggests_the_right_one() -> None:
    doc = routed({"rules": [{"prefx": "a", "intent": "x"}]})
    (msg,) = at(check_workflow(doc).errors, "nodes[1].config.rules[0].prefx")
    assert msg.startswith('node "r": unknown key "prefx" (did you mean "prefix"?)')
    assert "allowed: prefix, contains, regex, intent, case_sensitive" in msg


def test_broken_router_config_does_not_add_errors_about_its_edges() -> None:
    doc = routed({"rules": [{"prefix": "a", "contains": "b", "intent": "x"}]}, whens=("x", "*"))
    report = check_workflow(doc)
    assert [e["path"] for e in report.errors] == ["nodes[1].config.rules[0]"]


def test_check_warns_about_edges_and_intents_that_do_not_meet() -> None:
    doc = routed({"rules": [{"prefix": "img:", "intent": "image"}], "default": "text"}, whens=("imgae", "text"))
    report = check_workflow(doc)
    assert report.ok
    (never,) = at(report.warnings, "edges[1].when")
    assert never == (
        'edge "r" -> "t0": router "r" never sets intent "imgae" (it can set \'image\', \'text\') (did you mean "image"?)'
    )
    (no_edge,) = at(report.warnings, "nodes[1].config")
    assert no_edge == (
        'node "r": intent "image" has no edge and there is no "*" fallback; a run that routes to it will '
        'fail: add an edge with "when": "image" or "*"'
    )


def test_check_is_quiet_with_a_fallback_edge() -> None:
    doc = routed({"rules": [{"prefix": "x", "intent": "x"}]}, whens=("x", "*"))
    assert check_workflow(doc).warnings == []


def test_llm_mode_intents_include_the_default() -> None:
    doc = routed({"mode": "llm", "intents": ["a", "b"], "default": "c"}, source="e", whens=("a", "b", "c"))
    report = check_workflow(doc)
    assert report.ok and report.warnings == []
    impl = impl_of(doc["nodes"][1])
    assert impl.intents() == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert impl_of(routed({"rules": [{"prefix": "p", "intent": "x"}, {"prefix": "q", "intent": "x"}]})["nodes"][1]).intents() == ["x", "text"]  # type: ignore[attr-defined]
    assert impl_of({"id": "r", "type": "router", "config": {"default": "other"}}).intents() == ["image", "other"]  # type: ignore[attr-defined]


def test_templates_only_in_llm_mode() -> None:
    rules = impl_of({"id": "r", "type": "router", "config": {"prompt": "{nope}"}})
    assert rules.templates() == []
    llm = impl_of({"id": "r", "type": "router", "config": {"mode": "llm", "intents": ["a"], "prompt": "{q}", "system": "{intents} {tone}"}})
    assert [(path, t.root_keys) for path, t in llm.templates()] == [("config.prompt", ["q"]), ("config.system", ["tone"])]
    bare = impl_of({"id": "r", "type": "router", "config": {"mode": "llm", "intents": ["a"]}})
    assert [path for path, _ in bare.templates()] == ["config.prompt"]


def test_template_keys_checked_in_llm_mode_with_intents_placeholder_allowed() -> None:
    doc = routed({"mode": "llm", "intents": ["a"], "prompt": "{qestion}", "system": "Pick {intents}; {user_input}"}, source="e")
    report = check_workflow(doc)
    assert report.ok
    assert [w["path"] for w in report.warnings] == ["nodes[1].config.prompt"]
    assert 'template key "qestion" is not written by any node before it' in report.warnings[0]["message"]


def test_read_and_written_keys() -> None:
    rules = impl_of({"id": "r", "type": "router", "config": {"input_key": "req.text", "output_key": "lane"}})
    assert rules.read_keys() == ["req"]
    assert rules.written_keys() == ["lane"]
    llm = impl_of({"id": "r", "type": "router", "config": {"mode": "llm", "intents": ["a"]}})
    assert llm.read_keys() == []
    assert llm.written_keys() == ["intent"]
