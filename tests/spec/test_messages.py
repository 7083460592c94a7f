"""``friendly()``: every kind of pydantic error of the format's models, in plain words."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from agentflow import check_workflow
from agentflow.nodes.aggregator_node import AggregatorConfig
from agentflow.nodes.image_node import ImageConfig
from agentflow.nodes.router_node import RouterConfig
from agentflow.spec.messages import field_names, friendly, path_of
from agentflow.spec.models import EdgeSpec, NodeSpec, QueueSpec, RetryPolicy, RunSettings, SourceSpec, WorkflowSpec


def errors(model: type[BaseModel], data: Any) -> list[dict[str, Any]]:
    with pytest.raises(PydanticError) as info:
        model.model_validate(data)
    return info.value.errors()


def message(model: type[BaseModel], data: Any) -> str:
    """The one friendly message for ``data`` (exactly one error)."""
    (err,) = errors(model, data)
    return friendly(model, err)


NODE = {"id": "n", "type": "llm"}


def test_missing() -> None:
    assert message(NodeSpec, {"type": "llm"}) == '"id" is required'
    assert message(EdgeSpec, {"to": "b"}) == '"from" is required'


def test_unknown_key_with_suggestion_and_allowed_keys() -> None:
    msg = message(NodeSpec, {**NODE, "sourse": "x"})
    assert msg == (
        'unknown key "sourse" (did you mean "source"?); allowed: id, type, source, queue, subqueue, config, '
        "retry, timeout_s, on_error, fallback_source, description"
    )
    assert message(EdgeSpec, {"from": "a", "to": "b", "wen": "x"}).startswith('unknown key "wen" (did you mean "when"?); allowed: from, to, when, label')


def test_unknown_key_in_nested_models() -> None:
    assert message(NodeSpec, {**NODE, "retry": {"max_attemps": 2}}).startswith(
        'unknown key "max_attemps" (did you mean "max_attempts"?); allowed: max_attempts, backoff_s'
    )
    # through a list of models
    rules = {"rules": [{"prefix": "a", "intent": "x"}, {"contain": "b", "intent": "y"}]}
    assert message(RouterConfig, rules) == (
        'unknown key "contain" (did you mean "contains"?); allowed: prefix, contains, regex, intent, case_sensitive'
    )
    # a list inside the document model (validated whole, as the schema and the runtime do)
    doc = {"id": "w", "nodes": [NODE], "edges": [], "sources": [{"id": "s", "kind": "llm", "provider": "echo", "kid": 1}]}
    assert message(WorkflowSpec, doc).startswith('unknown key "kid" (did you mean "kind"?); allowed: id, kind, provider')


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: int = 0
    beta: int = 0


class Wide(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by_key: dict[str, Inner] = Field(default_factory=dict)
    annotated: list[Annotated[Inner, Field(description="an item")]] = Field(default_factory=list)
    either: Inner | int | None = None
    f01: int = 0
    f02: int = 0
    f03: int = 0
    f04: int = 0
    f05: int = 0
    f06: int = 0
    f07: int = 0
    f08: int = 0
    f09: int = 0
    f10: int = 0
    f11: int = 0
    f12: int = 0


def test_unknown_key_through_dicts_and_annotated_items() -> None:
    assert message(Wide, {"by_key": {"k": {"alpah": 1}}}) == 'unknown key "alpah" (did you mean "alpha"?); allowed: alpha, beta'
    assert message(Wide, {"annotated": [{"bet": 1}]}) == 'unknown key "bet" (did you mean "beta"?); allowed: alpha, beta'


def test_unknown_key_owner_not_found_gives_no_listing() -> None:
    # a union of a model and another type: pydantic names the member in loc; no owner is guessed
    found = [friendly(Wide, e) for e in errors(Wide, {"either": {"alpah": 1}})]
    assert 'unknown key "alpah"' in found
    assert all("allowed" not in m for m in found)


class Renamed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: Inner = Field(default_factory=Inner, validation_alias="payload")


def test_unknown_key_under_a_name_that_is_no_field_gives_no_listing() -> None:
    # a key the model reads under another name: the owner is not guessed
    assert message(Renamed, {"payload": {"alpah": 1}}) == 'unknown key "alpah"'


def test_many_allowed_keys_are_not_listed() -> None:
    assert len(field_names(Wide)) > 14
    assert message(Wide, {"f13": 1}) == 'unknown key "f13" (did you mean "f12"?)'


def test_literal_error() -> None:
    assert message(NodeSpec, {**NODE, "on_error": "stop"}) == "must be one of 'fail' or 'continue'; got \"stop\""
    assert message(NodeSpec, {**NODE, "on_error": "contine"}) == (
        "must be one of 'fail' or 'continue'; got \"contine\" (did you mean \"continue\"?)"
    )
    assert message(WorkflowSpec, {"id": "w", "nodes": [], "edges": [], "schema_version": 2}) == "must be one of 1; got 2"


def test_pattern_mismatch_for_ids_and_other_patterns() -> None:
    slug = "is not a valid id: use lowercase letters, digits, - and _, starting with a letter or digit, at most 64 characters"
    assert message(NodeSpec, {"id": "Bad Id", "type": "llm"}) == f'"Bad Id" {slug}'
    assert message(NodeSpec, {**NODE, "source": "-x"}) == f'"-x" {slug}'
    assert message(WorkflowSpec, {"id": "w", "nodes": [], "edges": [], "entry": "A"}) == f'"A" {slug}'
    assert message(ImageConfig, {"size": "huge"}) == '"huge" does not match the pattern ^\\d{2,5}x\\d{2,5}$'
    assert message(AggregatorConfig, {"output_key": "1bad"}) == '"1bad" does not match the pattern ^[A-Za-z_][A-Za-z0-9_\\-]{0,63}$'


def test_number_bounds() -> None:
    assert message(QueueSpec, {"id": "q", "max_messages_per_second": 0}) == "must be a positive number; got 0"
    assert message(QueueSpec, {"id": "q", "subqueues": {"a": -1}}) == "must be a positive number; got -1"
    assert message(RetryPolicy, {"max_attempts": 0}) == "must be at least 1; got 0"
    assert message(RetryPolicy, {"max_attempts": 21}) == "must be at most 20; got 21"
    assert message(RunSettings, {"recursion_limit": 10_001}) == "must be at most 10000; got 10001"


class Bounded(BaseModel):
    over: float = Field(0.5, gt=0.25)
    under: float = Field(0.0, lt=1)
    code: str = Field("abc", min_length=3)


def test_other_bounds_and_lengths() -> None:
    assert message(Bounded, {"over": 0.1}) == "must be greater than 0.25; got 0.1"
    assert message(Bounded, {"under": 2}) == "must be less than 1; got 2"
    assert message(Bounded, {"code": "ab"}) == "must be at least 3 characters"
    assert message(NodeSpec, {"id": "n", "type": ""}) == "must not be empty"
    assert message(EdgeSpec, {"from": "a", "to": "b", "when": ""}) == "must not be empty"


def test_type_errors() -> None:
    assert message(NodeSpec, {**NODE, "retry": "often"}) == 'must be a JSON object; got "often"'
    assert message(NodeSpec, {**NODE, "config": ["x"]}) == "must be a JSON object; got ['x']"
    assert message(RouterConfig, {"intents": "a,b"}) == 'must be a list; got "a,b"'
    assert message(WorkflowSpec, {"id": "w", "nodes": [], "edges": [], "name": 5}) == "must be a string; got 5"
    assert message(RunSettings, {"recursion_limit": "many"}) == 'must be a whole number; got "many"'
    assert message(RunSettings, {"recursion_limit": 2.5}) == "must be a whole number; got 2.5"
    assert message(RunSettings, {"recursion_limit": None}) == "must be a whole number; got None"
    assert message(RunSettings, {"timeout_s": "soon"}) == 'must be a number; got "soon"'
    assert message(RunSettings, {"timeout_s": [1]}) == "must be a number; got [1]"
    assert message(AggregatorConfig, {"skip_missing": "maybe"}) == 'must be true or false; got "maybe"'
    assert message(AggregatorConfig, {"skip_missing": [True]}) == "must be true or false; got [True]"


def test_value_errors_from_validators() -> None:
    assert message(RouterConfig, {"mode": "llm"}) == 'mode "llm" needs "intents", the list of intents the model picks from'
    assert message(RouterConfig, {"rules": [{"regex": "(", "intent": "x"}]}).startswith("regex '(' does not compile: ")


def test_other_errors_keep_pydantic_words_and_shorten_the_value() -> None:
    long = "x" * 80
    msg = message(NodeSpec, {**NODE, "subqueue": long})
    assert msg == 'string should have at most 64 characters; got "' + "x" * 56 + "..."
    assert len(msg.split("got ", 1)[1]) == 60


def test_friendly_without_loc_or_ctx() -> None:
    assert friendly(NodeSpec, {"type": "missing"}) == '"" is required'
    assert friendly(NodeSpec, {"type": "value_error", "msg": "Value error, broken thing"}) == "broken thing"
    assert friendly(NodeSpec, {"type": "odd_kind", "input": 1}) == "invalid value; got 1"


def test_path_of() -> None:
    assert path_of("nodes[2]", ("config", "rules", 0, "prefx")) == "nodes[2].config.rules[0].prefx"
    assert path_of("", ("settings", "timeout_s")) == "settings.timeout_s"
    assert path_of("sources[0].config", ("headers", "X A")) == 'sources[0].config.headers["X A"]'


def test_messages_in_a_report_name_the_item() -> None:
    doc = {
        "id": "w",
        "sources": [{"id": "s", "kind": "llm", "provider": "echo", "config": {"latency_ms": -1}}],
        "nodes": [{"id": "input", "type": "input"}, {"type": "llm"}],
        "edges": [{"from": "input", "to": 5}],
    }
    found = {e["path"]: e["message"] for e in check_workflow(doc).errors}
    assert found["sources[0].config.latency_ms"] == 'source "s": must be at least 0; got -1'
    assert found["nodes[1].id"] == 'nodes[1]: "id" is required'
    assert found["edges[0].to"] == "edges[0]: must be a string; got 5"


def test_field_names_use_aliases() -> None:
    assert field_names(EdgeSpec) == ["from", "to", "when", "label"]
    assert field_names(SourceSpec) == ["id", "kind", "provider", "config", "description"]


def test_clean_loc_drops_union_tags_but_keeps_real_parts() -> None:
    from agentflow.spec.messages import clean_loc

    value = {"headers": {"X-A": {"evn": "Q"}}, "rows": [{"a": 1}]}
    assert clean_loc(("headers", "X-A", "function-after[x]", "evn"), value) == ("headers", "X-A", "evn")
    assert clean_loc(("headers", "X-A", "str"), value, names_key=False) == ("headers", "X-A")
    assert clean_loc(("rows", 0, "a"), value) == ("rows", 0, "a")
    assert clean_loc(("rows", 5, "a"), value) == ("rows", "a")
