"""Reading a workflow from a dict, JSON text, a path or bytes; syntax and file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow import ValidationError, check_workflow, load_workflow, validate_workflow
from agentflow.spec.loader import parse_json, read_document

DOC = {"id": "tiny", "nodes": [{"id": "input", "type": "input"}], "edges": []}
TEXT = json.dumps(DOC, indent=2)


def only_error(exc: ValidationError) -> dict:
    (err,) = exc.errors
    return err


def test_dicts_and_lists_pass_through() -> None:
    assert read_document(DOC) == (DOC, None, None)
    assert read_document([1]) == ([1], None, None)


def test_json_text_and_bytes() -> None:
    assert read_document(TEXT) == (DOC, TEXT, None)
    assert read_document("  \n" + TEXT) == (DOC, "  \n" + TEXT, None)
    assert read_document("[1, 2]") == ([1, 2], "[1, 2]", None)
    assert read_document(TEXT.encode()) == (DOC, TEXT, None)


def test_paths_as_str_and_path(tmp_path: Path) -> None:
    file = tmp_path / "flow.json"
    file.write_text(TEXT, encoding="utf-8")
    assert read_document(file) == (DOC, TEXT, str(file))
    assert read_document(str(file)) == (DOC, TEXT, str(file))
    assert read_document(str(file).encode()) == (DOC, TEXT, str(file))


def test_other_values_are_returned_for_validation_to_refuse() -> None:
    assert read_document(42) == (42, None, None)
    assert read_document(None) == (None, None, None)
    assert check_workflow(42).errors == [{"path": "$", "message": "a workflow must be a JSON object"}]


def test_validate_records_the_origin_file(tmp_path: Path) -> None:
    file = tmp_path / "flow.json"
    file.write_text(TEXT, encoding="utf-8")
    assert load_workflow(file).origin == str(file)
    assert validate_workflow(TEXT).origin is None
    assert validate_workflow(DOC).origin is None


def test_syntax_error_line_and_column() -> None:
    text = '{\n  "id": "x",\n  "nodes": [,]\n}'
    with pytest.raises(ValidationError) as info:
        read_document(text)
    err = only_error(info.value)
    assert (err["line"], err["column"]) == (3, 13)
    assert err["path"] == "$"
    assert err["message"] == "invalid JSON at line 3, column 13: Expecting value"


def test_syntax_error_in_a_file_names_it(tmp_path: Path) -> None:
    file = tmp_path / "broken.json"
    file.write_text('{"id": "x",\n "nodes": []\n "edges": []}', encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        validate_workflow(file)
    err = only_error(info.value)
    assert err["message"] == f"{file}: invalid JSON at line 3, column 2: Expecting ',' delimiter"
    assert (err["line"], err["column"]) == (3, 2)
    assert info.value.to_dict()["details"]["errors"] == [err]


def test_check_workflow_reports_syntax_errors_instead_of_raising() -> None:
    report = check_workflow('{"id": ')
    assert not report.ok and report.spec is None
    assert report.errors[0]["message"].startswith("invalid JSON at line 1, column 8")


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        read_document(text)
    assert only_error(info.value) == {"path": "$", "message": "the document is empty; a workflow must be a JSON object"}
    with pytest.raises(ValidationError, match="the document is empty"):
        parse_json(text, "named.json")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ValidationError) as info:
        read_document(missing)
    assert only_error(info.value) == {"path": "$", "message": f"file {str(missing)!r} does not exist"}
    with pytest.raises(ValidationError, match="does not exist"):
        read_document("workflow-that-is-not-here.json")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        read_document(tmp_path)  # a folder
    message = only_error(info.value)["message"]
    assert message.startswith(f"cannot read {str(tmp_path)!r}: ")
    binary = tmp_path / "image.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValidationError) as info:
        read_document(binary)
    message = only_error(info.value)["message"]
    assert message.startswith(f"cannot read {str(binary)!r}: ") and "utf-8" in message


def test_file_with_an_empty_body(tmp_path: Path) -> None:
    file = tmp_path / "empty.json"
    file.write_text("\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="the document is empty"):
        read_document(file)
