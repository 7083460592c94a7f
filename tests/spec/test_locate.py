"""Positions of values in JSON text by JSON path, and their use in validation reports."""

from __future__ import annotations

import json

import pytest

from agentflow import check_workflow
from agentflow.spec.locate import join_path, locate, position_of

TEXT = """{
  "id": "demo",
  "nodes": [
    {"id": "input", "type": "input"},
    {
      "id": "answer",
      "config": {"a b": 1, "say \\"hi\\"": [true, null, -1.5e3], "empty": {}, "none": []}
    }
  ],
  "edges": []
}"""


def line_of(text: str, line: int) -> str:
    return text.splitlines()[line - 1]


def test_join_path() -> None:
    assert join_path("", "nodes") == "nodes"
    assert join_path("nodes", 3) == "nodes[3]"
    assert join_path("nodes[3]", "source") == "nodes[3].source"
    assert join_path("headers", "X-Api-Key") == "headers.X-Api-Key"
    assert join_path("config", "a b") == 'config["a b"]'
    assert join_path("config", '"q"\\') == 'config["\\"q\\"\\\\"]'
    assert join_path("", "1st") == '["1st"]'
    assert join_path("", 0) == "[0]"


def test_positions_of_nested_paths() -> None:
    pos = locate(TEXT)
    assert pos["$"] == (1, 1)
    assert pos["id"] == (2, 9)
    assert pos["nodes"] == (3, 12)
    assert pos["nodes[0]"] == (4, 5)
    assert pos["nodes[0].type"] == (4, line_of(TEXT, 4).index('"input"}') + 1)
    assert pos["nodes[1]"] == (5, 5)
    assert pos["nodes[1].id"] == (6, 13)
    assert pos["edges"] == (10, 12)
    assert line_of(TEXT, pos["nodes[1].config"][0]).lstrip().startswith('"config"')


def test_keys_needing_quotes_and_scalars_in_lists() -> None:
    pos = locate(TEXT)
    line = line_of(TEXT, 7)
    assert pos['nodes[1].config["a b"]'] == (7, line.index(": 1") + 3)
    key = 'nodes[1].config["say \\"hi\\""]'
    assert pos[key] == (7, line.index("[true") + 1)
    assert pos[key + "[0]"] == (7, line.index("true") + 1)
    assert pos[key + "[1]"] == (7, line.index("null") + 1)
    assert pos[key + "[2]"] == (7, line.index("-1.5e3") + 1)
    assert pos["nodes[1].config.empty"] == (7, line.index("{}") + 1)
    assert pos["nodes[1].config.none"] == (7, line.index("[]") + 1)


def test_every_value_of_a_document_is_located() -> None:
    doc = {"a": [1, {"b": "x", "c d": [[], {}]}], "e": {"f": None, "g": False}, "h": "é\n\"esc\""}
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    assert set(locate(text)) == {
        "$", "a", "a[0]", "a[1]", "a[1].b", 'a[1]["c d"]', 'a[1]["c d"][0]', 'a[1]["c d"][1]',
        "e", "e.f", "e.g", "h",
    }


def test_position_of_falls_back_to_the_nearest_parent() -> None:
    pos = locate(TEXT)
    assert position_of(pos, "nodes[1].id") == (6, 13)
    assert position_of(pos, "nodes[1].source") == pos["nodes[1]"]  # a missing key: its object
    assert position_of(pos, "nodes[1].config.promt.deep") == pos["nodes[1].config"]
    assert position_of(pos, 'nodes[1].config["a b"].x') == pos['nodes[1].config["a b"]']
    assert position_of(pos, "nodes[7].id") == pos["nodes"]
    assert position_of(pos, "settings") == (1, 1)  # a missing top-level key: the root
    assert position_of(pos, "settings.recursion_limit") == (1, 1)
    assert position_of({}, "anything") is None


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2', '{"a": ', '{"a" 1}', "", "   ", "{", '{"a": tru}', '["x", }', '{"a": "unterminated'],
)
def test_invalid_text_does_not_crash(text: str) -> None:
    positions = locate(text)
    assert isinstance(positions, dict)


def test_invalid_text_keeps_what_was_found_before_the_error() -> None:
    pos = locate('{\n  "a": 1,\n  "b": [2, oops]}')
    assert pos["a"] == (2, 8)
    assert pos["b[0]"] == (3, 9)
    assert "b[1]" in pos  # the bad value's start is known, its end is not


def test_validation_errors_carry_line_and_column_only_for_text() -> None:
    doc = {"id": "demo", "nodes": [{"id": "input", "type": "input", "confg": {}}], "edges": []}
    text = json.dumps(doc, indent=2)
    (err,) = check_workflow(text).errors
    assert err["path"] == "nodes[0].confg"
    assert '"confg"' in line_of(text, err["line"])
    (plain,) = check_workflow(doc).errors
    assert "line" not in plain and "column" not in plain


def test_error_for_a_missing_key_points_at_its_object() -> None:
    text = '{\n  "id": "demo",\n  "nodes": [\n    {"type": "input"}\n  ],\n  "edges": []\n}'
    errors = check_workflow(text).errors
    (err,) = [e for e in errors if e["path"] == "nodes[0].id"]
    assert (err["line"], err["column"]) == (4, 5)
