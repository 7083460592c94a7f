"""Reading datasets: CSV and JSON Lines, malformed rows by line number, rows -> initial states."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from agentflow.batch import BatchOptions, read_dataset
from agentflow.batch.rows import prepare_rows
from agentflow.errors import ValidationError


def test_csv_keeps_strings_quoted_newlines_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('question,expected\nhello,hi\n"two\nlines",x\n\nshort\ntoo,many,fields\nlast,ok\n')
    ds = read_dataset(path)
    assert ds.format == "csv" and ds.name == "rows.csv" and ds.columns == ["question", "expected"]
    assert [(r.row, r.line) for r in ds.records] == [(0, 2), (1, 3), (2, 6), (3, 7), (4, 8)]
    assert ds.records[1].data == {"question": "two\nlines", "expected": "x"}
    assert ds.records[2].error == "line 6: expected 2 fields (as in the header), found 1"
    assert ds.records[3].error == "line 7: expected 2 fields (as in the header), found 3"
    assert len(ds.malformed) == 2 and len(ds) == 5
    frame = ds.frame(limit=2)
    assert list(frame.columns) == ["row", "line", "question", "expected", "error"] and len(frame) == 2


def test_jsonl_reports_bad_lines_and_keeps_json_values(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"q": "a", "n": 1}\n\n{not json}\n[1, 2]\n{"q": "b", "extra": {"k": true}}\n')
    ds = read_dataset(path)
    assert ds.format == "jsonl" and ds.columns == ["q", "n", "extra"]
    assert [(r.row, r.line) for r in ds.records] == [(0, 1), (1, 3), (2, 4), (3, 5)]
    assert ds.records[0].data == {"q": "a", "n": 1}
    assert ds.records[1].error.startswith("line 3: not valid JSON (")
    assert ds.records[2].error == "line 4: expected a JSON object, found an array"
    assert ds.records[3].data["extra"] == {"k": True}


def test_uploads_python_rows_and_frames() -> None:
    ds = read_dataset(b"a,b\n1,2\n", name="up.csv")
    assert ds.records[0].data == {"a": "1", "b": "2"}
    ds = read_dataset(b'{"a": 1}\n', format="jsonl")
    assert ds.records[0].data == {"a": 1}
    ds = read_dataset([{"a": 1}, "nope"])
    assert ds.records[0].line is None and ds.records[1].error == "row 1: expected an object, found str"
    ds = read_dataset(pd.DataFrame({"a": ["x", None], "b": [1.0, float("nan")]}))
    assert ds.columns == ["a", "b"] and ds.records[1].data == {"a": None, "b": None}
    assert read_dataset(ds) is ds


@pytest.mark.parametrize(
    ("source", "kw", "message"),
    [
        ("/no/such/file.csv", {}, 'no such file "/no/such/file.csv"'),
        (b"a\n1\n", {"name": "rows.txt"}, 'cannot tell the format of "rows.txt"'),
        (b"", {"name": "x.csv"}, "x.csv is empty"),
        (b"a,a\n1,2\n", {"name": "x.csv"}, "line 1: the CSV header repeats a"),
        (b"\xff\xfe", {"name": "x.csv"}, "not UTF-8"),
        (42, {}, "not int"),
    ],
)
def test_unreadable_data_is_a_validation_error(source, kw, message) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        read_dataset(source, **kw)


def test_rows_become_initial_states_and_missing_columns_fail_their_row() -> None:
    ds = read_dataset([{"question": "q0", "gold": "a", "topic": "t"}, {"gold": "b"}, {"question": "q2"}])
    rows = prepare_rows(ds, BatchOptions(column="question", expected="gold").checked())
    assert rows[0] == {"row": 0, "line": None, "input": {"gold": "a", "topic": "t", "user_input": "q0"}}
    assert rows[1]["input"] is None and rows[1]["result"]["error"]["message"] == 'row 1: missing column "question"'
    assert rows[2]["result"]["error"]["message"] == 'row 2: missing expected column "gold"'
    assert rows[1]["result"]["score"] == 0.0 and rows[1]["result"]["status"] == "failed"


def test_a_csv_without_the_column_is_refused_as_a_whole() -> None:
    ds = read_dataset(b"q,a\n1,2\n", name="x.csv")
    with pytest.raises(ValidationError, match='no column "user_input" \\(its columns: q, a\\); name one with --column'):
        prepare_rows(ds, BatchOptions().checked())
    with pytest.raises(ValidationError, match='no column "gold"'):
        prepare_rows(ds, BatchOptions(column="q", expected="gold").checked())
    with pytest.raises(ValidationError, match="no rows"):
        prepare_rows(read_dataset([]), BatchOptions().checked())


def test_options_are_checked() -> None:
    assert BatchOptions(expected="gold").checked().scorer == "exact"
    assert BatchOptions(backend="celery").checked().queue == "agentflow-batch"
    for bad, match in [
        ({"backend": "spark"}, "unknown backend"),
        ({"concurrency": 0}, "concurrency"),
        ({"scorer": "exact"}, "needs the expected column"),
        ({"expected": "g", "scorer": "fuzzy"}, 'unknown scorer "fuzzy"'),
        ({"chunk_size": 0}, "chunk_size"),
        ({"column": " "}, "column"),
    ]:
        with pytest.raises(ValidationError, match=match):
            BatchOptions(**bad).checked()
    assert BatchOptions(chunk_size=None).chunk_for(100) == 7
    assert BatchOptions().chunk_for(10_000) == 50 and BatchOptions(chunk_size=5).chunk_for(10) == 5
