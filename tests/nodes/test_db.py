"""The db node: bound parameters, state queries, read-only sources, max_rows, validation hooks."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from agentflow import ExecutionError, arun_workflow, check_workflow, run_workflow
from tests.nodes.helpers import at, chain, entry, impl_of

INIT = (
    "CREATE TABLE items (name TEXT, price REAL, qty INTEGER);"
    "INSERT INTO items VALUES ('lamp', 24.5, 12), ('pen', 1.1, 500), ('desk', 120.0, 2), ('ink', 4.0, 40);"
)


def shop(**config: Any) -> dict[str, Any]:
    """A read-only in-memory shop; ``marker`` in init_sql keeps cached clients apart."""
    return {"id": "shop", "kind": "db", "provider": "sqlite", "config": {"init_sql": INIT, **config}}


def db(**config: Any) -> dict[str, Any]:
    return {"id": "q", "type": "db", "source": "shop", "config": config}


def file_db(tmp_path: Path, *, read_only: bool) -> tuple[dict[str, Any], Path]:
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE t (name TEXT); INSERT INTO t VALUES ('a'), ('b');")
    conn.close()
    return {"id": "shop", "kind": "db", "provider": "sqlite", "config": {"path": str(path), "read_only": read_only}}, path


def rows_in(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT name FROM t ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_query_with_params_rendered_from_state() -> None:
    doc = chain(db(query="SELECT name, price FROM items WHERE price < :limit AND name LIKE :pat ORDER BY price",
                   params={"limit": "{budget}", "pat": "%{letter}%"}), sources=[shop()])
    state = run_workflow(doc, {"user_input": "x", "budget": 30, "letter": "n"})
    assert state["db_result"] == [{"name": "pen", "price": 1.1}, {"name": "ink", "price": 4.0}]
    assert entry(state, "q")["output"] == {"rows": 2, "truncated": False}


def test_injection_text_is_bound_as_data_and_the_table_stays(tmp_path: Path) -> None:
    source, path = file_db(tmp_path, read_only=False)
    attack = "x'; DROP TABLE t; --"
    doc = chain(db(query="INSERT INTO t (name) VALUES (:name)", params={"name": "{user_input}"}), sources=[source])
    run_workflow(doc, attack)
    assert rows_in(path) == [("a",), ("b",), (attack,)]
    doc = chain(db(query="SELECT count(*) AS n FROM t WHERE name = :name", params={"name": "{user_input}"}), sources=[source])
    assert run_workflow(doc, "a' OR '1'='1")["db_result"] == [{"n": 0}]


def test_single_placeholder_params_keep_their_type() -> None:
    doc = chain(db(query="SELECT typeof(:n) AS t, :n + 1 AS next, typeof(:s) AS ts, :lit AS lit",
                   params={"n": "{count}", "s": "{count} items", "lit": 7}), sources=[shop()])
    (row,) = run_workflow(doc, {"count": 41})["db_result"]
    assert row == {"t": "integer", "next": 42, "ts": "text", "lit": 7}


def test_state_query_replaces_the_query_when_allowed() -> None:
    doc = chain(db(query="SELECT 'configured' AS src", allow_state_query=True), sources=[shop()])
    assert run_workflow(doc, {"db_query": "SELECT name FROM items WHERE qty > 100"})["db_result"] == [{"name": "pen"}]
    assert run_workflow(doc, {"db_query": ""})["db_result"] == [{"src": "configured"}]
    assert run_workflow(doc, {})["db_result"] == [{"src": "configured"}]


def test_state_query_is_ignored_unless_allowed() -> None:
    doc = chain(db(query="SELECT 'configured' AS src"), sources=[shop()])
    assert run_workflow(doc, {"db_query": "SELECT 1 AS other"})["db_result"] == [{"src": "configured"}]


def test_custom_query_key() -> None:
    doc = chain(db(allow_state_query=True, query_key="sql"), sources=[shop()])
    assert run_workflow(doc, {"sql": "SELECT count(*) AS n FROM items"})["db_result"] == [{"n": 4}]


def test_read_only_source_refuses_a_write_from_the_state() -> None:
    doc = chain(db(allow_state_query=True), sources=[shop()])
    with pytest.raises(ExecutionError, match=r'source "shop": query failed: .*readonly.*the source is read-only; set "read_only": false') as info:
        run_workflow(doc, {"db_query": "INSERT INTO items VALUES ('hack', 0, 0)"})
    assert entry(info.value.state, "q")["status"] == "failed"
    count = run_workflow(doc, {"db_query": "SELECT count(*) AS n FROM items WHERE name = 'hack'"})
    assert count["db_result"] == [{"n": 0}]


def test_read_only_file_source_refuses_a_write(tmp_path: Path) -> None:
    source, path = file_db(tmp_path, read_only=True)
    doc = chain(db(allow_state_query=True), sources=[source])
    with pytest.raises(ExecutionError, match="the source is read-only"):
        run_workflow(doc, {"db_query": "DELETE FROM t"})
    assert rows_in(path) == [("a",), ("b",)]


def test_max_rows_truncates_and_the_trace_says_so() -> None:
    doc = chain(db(query="SELECT name FROM items ORDER BY name", max_rows=2), sources=[shop()])
    state = run_workflow(doc, "x")
    assert state["db_result"] == [{"name": "desk"}, {"name": "ink"}]
    assert entry(state, "q")["output"] == {"rows": 2, "truncated": True}
    doc = chain(db(query="SELECT name FROM items", max_rows=4), sources=[shop()])
    assert entry(run_workflow(doc, "x"), "q")["output"] == {"rows": 4, "truncated": False}


def test_no_query_and_empty_state_query_is_an_error() -> None:
    doc = chain(db(allow_state_query=True), sources=[shop()])
    with pytest.raises(ExecutionError, match=r'node "q": no query: state "db_query" is empty and the node has no "query"') as info:
        run_workflow(doc, {"db_query": ""})
    assert info.value.node == "q"


def test_bad_sql_names_the_source_and_hints() -> None:
    doc = chain(db(query="SELECT nope FROM items"), sources=[shop()])
    with pytest.raises(ExecutionError, match=r"no such column: nope \(check the SQL and that every :name parameter is in config.params\)"):
        run_workflow(doc, "x")


async def test_async_paths() -> None:
    doc = chain(db(query="SELECT name FROM items WHERE qty = :q", params={"q": "{qty}"}, max_rows=1), sources=[shop()])
    state = await arun_workflow(doc, {"qty": 2})
    assert state["db_result"] == [{"name": "desk"}]
    assert entry(state, "q")["output"] == {"rows": 1, "truncated": False}
    refusing = chain(db(allow_state_query=True), sources=[shop()])
    with pytest.raises(ExecutionError, match="the source is read-only"):
        await arun_workflow(refusing, {"db_query": "DROP TABLE items"})
    with pytest.raises(ExecutionError, match="no query"):
        await arun_workflow(refusing, {})


def test_parallel_db_nodes_append_rows() -> None:
    doc = chain(sources=[shop()])
    doc["nodes"] += [
        {"id": "a", "type": "db", "source": "shop", "config": {"query": "SELECT 'a' AS v"}},
        {"id": "b", "type": "db", "source": "shop", "config": {"query": "SELECT 'b' AS v"}},
    ]
    doc["edges"] = [{"from": "input", "to": "a"}, {"from": "input", "to": "b"}]
    assert sorted(r["v"] for r in run_workflow(doc, "x")["db_result"]) == ["a", "b"]


# --- validation hooks -------------------------------------------------------------------------


def test_config_errors() -> None:
    errors = check_workflow(chain(db(), sources=[shop()])).errors
    assert at(errors, "nodes[1].config") == ['node "q": a db node needs "query" (or "allow_state_query": true)']
    errors = check_workflow(chain(db(query="SELECT 1", params={"bad-name": "x"}), sources=[shop()])).errors
    assert at(errors, "nodes[1].config") == ['node "q": parameter name "bad-name" must be letters, digits and _']
    errors = check_workflow(chain(db(query="SELECT :a", params={"a": "{oops"}), sources=[shop()])).errors
    assert at(errors, "nodes[1].config")[0].startswith('node "q": unmatched "{" at character 1')
    errors = check_workflow(chain(db(query="SELECT 1", max_rows=0), sources=[shop()])).errors
    assert at(errors, "nodes[1].config.max_rows") == ['node "q": must be at least 1; got 0']


def test_unused_params_warn_both_placeholder_styles_count() -> None:
    doc = chain(db(query="SELECT :used AS a, %(pg)s AS b", params={"used": "1", "pg": "2", "spare": "3"}), sources=[shop()])
    report = check_workflow(doc)
    assert report.ok
    assert [w["path"] for w in report.warnings] == ["nodes[1].config.params.spare"]
    assert report.warnings[0]["message"] == (
        'node "q": parameter "spare" is not used in the query (write :spare for sqlite, %(spare)s for postgres)'
    )
    state_only = chain(db(allow_state_query=True, params={"p": "1"}), sources=[shop()])
    assert check_workflow(state_only).warnings == []  # no fixed query to check against


def test_needs_a_db_source() -> None:
    doc = chain({**db(query="SELECT 1"), "source": "e"})
    assert at(check_workflow(doc).errors, "nodes[1].source") == [
        'node "q": a db node needs a source of kind "db", but "e" is of kind "llm"'
    ]
    impl = impl_of(db(query="SELECT 1"))
    assert impl.required_source_kind(impl.config) == "db"


def test_templates_and_keys() -> None:
    impl = impl_of(db(query="SELECT :a, :b, :c", params={"a": "{user.id}", "b": "x{y}", "c": 5}, output_key="rows"))
    assert [(p, t.keys) for p, t in impl.templates()] == [("config.params.a", ["user.id"]), ("config.params.b", ["y"])]
    assert impl.read_keys() == []
    assert impl.written_keys() == ["rows"]
    state_q = impl_of(db(allow_state_query=True, query_key="sql"))
    assert state_q.read_keys() == ["sql"]
    assert state_q.written_keys() == ["db_result"]
    report = check_workflow(chain(db(query="SELECT :a", params={"a": "{user.id}"}), sources=[shop()]))
    assert at(report.warnings, "nodes[1].config.params.a")[0].startswith('node "q": template key "user" is not written')
