"""Scorers exactly as spec section 13 says: exact, contains, regex, json:PATH; 1 or 0."""

from __future__ import annotations

import pytest

from agentflow.batch import parse_scorer
from agentflow.batch.rows import state_result
from agentflow.batch.scorers import output_text
from agentflow.errors import ValidationError


def score(spec: str, output, expected) -> float:
    return parse_scorer(spec)(output, expected)


def test_output_text_is_the_string_or_its_json() -> None:
    assert output_text("Paris") == "Paris"
    assert output_text({"a": 1, "b": [True, None]}) == '{"a": 1, "b": [true, null]}'
    assert output_text(3) == "3" and output_text(None) == "null" and output_text("é") == "é"


def test_exact() -> None:
    assert score("exact", "Paris", "Paris") == 1.0
    assert score("exact", "Paris ", "Paris") == 0.0
    assert score("exact", "paris", "Paris") == 0.0
    assert score("exact", {"a": 1}, '{"a": 1}') == 1.0  # a non-string output is compared as its JSON text
    assert score("exact", 42, "42") == 1.0


def test_contains() -> None:
    assert score("contains", "The capital is Paris.", "Paris") == 1.0
    assert score("contains", "The capital is paris.", "Paris") == 0.0
    assert score("contains", {"city": "Paris"}, '"city": "Paris"') == 1.0
    assert score("contains", "anything", "") == 1.0


def test_regex() -> None:
    assert score("regex", "order #12345 shipped", r"#\d{5}\b") == 1.0
    assert score("regex", "order #123 shipped", r"#\d{5}") == 0.0
    assert score("regex", "x", "(unclosed") == 0.0  # a pattern that does not compile scores 0
    assert score("regex", {"n": 7}, r'"n": \d') == 1.0


def test_json_path() -> None:
    out = {"answer": {"value": 42, "unit": "kg"}, "items": [{"name": "a"}, {"name": "b"}], "ok": True}
    assert score("json:answer.value", out, 42) == 1.0
    assert score("json:answer.value", out, "42") == 1.0  # a CSV column gives "42"
    assert score("json:$.answer.unit", out, "kg") == 1.0
    assert score("json:items[1].name", out, "b") == 1.0
    assert score("json:items.0.name", out, "a") == 1.0
    assert score("json:items[-1].name", out, "b") == 1.0
    assert score("json:items[5].name", out, "b") == 0.0
    assert score("json:answer.missing", out, None) == 0.0
    assert score("json:answer.value.deeper", out, 42) == 0.0
    assert score("json:items.x", out, "a") == 0.0
    assert score("json:ok", out, True) == 1.0 and score("json:ok", out, "true") == 1.0
    assert score("json:ok", out, 1) == 0.0  # true never equals 1
    assert score("json:answer", out, {"unit": "kg", "value": 42}) == 1.0
    # a string output holding JSON is parsed; one that does not scores 0
    assert score("json:a", '{"a": "x"}', "x") == 1.0
    assert score("json:a", "not json", "x") == 0.0


@pytest.mark.parametrize("bad", ["", "fuzzy", "json:", "json:a..b", "json:[x]"])
def test_unknown_scorers_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="scorer"):
        parse_scorer(bad)


def test_the_spec_text_round_trips() -> None:
    assert parse_scorer("json:$.items[0].name").spec == "json:items.0.name"
    assert parse_scorer("regex").spec == "regex"


def test_a_row_reads_the_output_key_and_a_failed_row_scores_zero() -> None:
    final = {"text_result": "Paris!", "final_output": {"text": "Paris!"},
             "metadata": {"run_id": "r", "status": "succeeded", "total_runtime_ms": 3.0,
                          "tokens": {"prompt": 1, "completion": 1, "total": 2}, "cost_usd": 0.0,
                          "trace": [{"node": "a", "queue_wait_ms": 2.5}, {"node": "b", "queue_wait_ms": 1.0}]}}
    r = state_result(final, output_key="text_result", scorer=parse_scorer("contains"), expected="Paris")
    assert r["score"] == 1.0 and r["output"] == "Paris!" and r["queue_wait_ms"] == 3.5 and r["trace"] is None
    r = state_result(final, output_key="final_output", scorer=parse_scorer("json:text"), expected="Paris!")
    assert r["score"] == 1.0
    final["metadata"]["status"] = "failed"
    r = state_result(final, output_key="text_result", scorer=parse_scorer("contains"), expected="Paris")
    assert r["score"] == 0.0 and r["trace"] == final["metadata"]["trace"]
    assert state_result(final, output_key="text_result", scorer=None)["score"] is None
