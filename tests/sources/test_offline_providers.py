"""The offline providers: llm/echo, image/placeholder and db/sqlite, called directly."""

from __future__ import annotations

import base64
import io
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agentflow import (
    ExecutionError,
    SourceConnectionError,
    ValidationError,
    check_source,
    get_db_connection,
    get_image_model,
    get_llm_from_source,
)
from agentflow.metrics import estimate_tokens
from agentflow.sources.base import ImageRequest, LLMRequest, Usage
from agentflow.sources.clients import create_provider
from agentflow.sources.db_sqlite import SqliteDB
from agentflow.sources.image_placeholder import PlaceholderImage
from agentflow.sources.llm_echo import EchoLLM
from agentflow.spec.models import SourceSpec


def fresh(kind: str, provider: str, **config: Any) -> Any:
    """A new provider instance (not the shared cached one), so counters start at zero."""
    return create_provider(SourceSpec(id="src", kind=kind, provider=provider, config=config), None)


def echo(**config: Any) -> EchoLLM:
    return fresh("llm", "echo", **config)


def sqlite(**config: Any) -> SqliteDB:
    return fresh("db", "sqlite", **config)


def placeholder(**config: Any) -> PlaceholderImage:
    return fresh("image", "placeholder", **config)


# --- llm/echo ----------------------------------------------------------------------------------


def test_echo_replies_with_the_prompt_and_counts_tokens() -> None:
    request = LLMRequest(prompt="Hello, world!", system="Be brief.", messages=[{"role": "user", "content": "earlier turn"}])
    reply = echo().complete(request)
    assert reply.text == "Hello, world!"
    assert reply.model == "echo" and reply.finish_reason == "stop"
    assert reply.usage == Usage(prompt=estimate_tokens("Be brief.earlier turnHello, world!"), completion=4)
    assert reply.usage.total == reply.usage.prompt + 4
    assert reply.usage.to_dict() == {"prompt": reply.usage.prompt, "completion": 4, "total": reply.usage.total}


def test_echo_template() -> None:
    llm = echo(template="[{model}] {system} -> {prompt}", model="mini")
    assert llm.complete(LLMRequest(prompt="q", system="s")).text == "[mini] s -> q"
    assert llm.complete(LLMRequest(prompt="q")).text == "[mini]  -> q"


async def test_echo_async() -> None:
    reply = await echo(template="A: {prompt}").acomplete(LLMRequest(prompt="x y"))
    assert reply.text == "A: x y" and reply.usage.completion == 4


def test_echo_latency() -> None:
    started = time.perf_counter()
    echo(latency_ms=60).complete(LLMRequest(prompt="x"))
    assert time.perf_counter() - started >= 0.055


async def test_echo_async_latency() -> None:
    started = time.perf_counter()
    await echo(latency_ms=60).acomplete(LLMRequest(prompt="x"))
    assert time.perf_counter() - started >= 0.055


def test_echo_timeout_is_a_retryable_source_error() -> None:
    started = time.perf_counter()
    with pytest.raises(SourceConnectionError, match=r'source "src": timed out after 0.05 s \(latency_ms=5000\)') as info:
        echo(latency_ms=5000).complete(LLMRequest(prompt="x", timeout_s=0.05))
    assert 0.045 <= time.perf_counter() - started < 1
    assert info.value.retryable and info.value.source == "src"


async def test_echo_async_timeout() -> None:
    started = time.perf_counter()
    with pytest.raises(SourceConnectionError, match=r"timed out after 0\.05 s"):
        await echo(latency_ms=5000).acomplete(LLMRequest(prompt="x", timeout_s=0.05))
    assert time.perf_counter() - started < 1


def test_echo_streams_pieces_that_join_to_the_reply() -> None:
    llm = echo(template="{prompt}  done")
    request = LLMRequest(prompt=" one two\nthree ")
    chunks = list(llm.stream(request))
    pieces = [c.text for c in chunks[:-1]]
    assert pieces == [" one ", "two\n", "three   ", "done"]
    final = chunks[-1]
    assert final.text == "" and final.response is not None
    assert "".join(pieces) == final.response.text == llm.complete(request).text
    assert final.response.usage == llm.complete(request).usage


def test_echo_streams_an_empty_reply_as_one_empty_piece() -> None:
    chunks = list(echo().stream(LLMRequest(prompt="")))
    assert [c.text for c in chunks] == ["", ""]
    assert chunks[-1].response.text == "" and chunks[-1].response.usage.completion == 0


def test_echo_stream_spreads_latency_and_times_out() -> None:
    llm = echo(latency_ms=80)
    stamps = []
    for _chunk in llm.stream(LLMRequest(prompt="a b c d")):
        stamps.append(time.perf_counter())
    assert stamps[3] - stamps[0] >= 0.05  # pieces arrive over the latency, not at once
    started = time.perf_counter()
    with pytest.raises(SourceConnectionError, match=r"timed out after 0\.03 s"):
        list(echo(latency_ms=4000).stream(LLMRequest(prompt="a b c d", timeout_s=0.03)))
    assert time.perf_counter() - started < 1


async def test_echo_async_stream_and_timeout() -> None:
    chunks = [c async for c in echo(latency_ms=20).astream(LLMRequest(prompt="x y z"))]
    assert "".join(c.text for c in chunks) == "x y z" and chunks[-1].response.text == "x y z"
    with pytest.raises(SourceConnectionError, match="timed out"):
        async for _ in echo(latency_ms=4000).astream(LLMRequest(prompt="a b", timeout_s=0.03)):
            pass


def test_echo_fail_first_counts_per_prompt() -> None:
    llm = echo(fail_first=2)
    for n in (1, 2):
        with pytest.raises(SourceConnectionError, match=rf"simulated failure {n} of 2 \(fail_first\)") as info:
            llm.complete(LLMRequest(prompt="a"))
        assert info.value.retryable
    with pytest.raises(SourceConnectionError, match="simulated failure 1 of 2"):
        llm.complete(LLMRequest(prompt="b"))  # another prompt has its own count
    assert llm.complete(LLMRequest(prompt="a")).text == "a"
    assert llm.complete(LLMRequest(prompt="a")).text == "a"


async def test_echo_fail_first_applies_to_streams_too() -> None:
    llm = echo(fail_first=1)
    with pytest.raises(SourceConnectionError, match="simulated failure 1 of 1"):
        list(llm.stream(LLMRequest(prompt="s")))
    assert next(c.text for c in llm.stream(LLMRequest(prompt="s"))) == "s"
    with pytest.raises(SourceConnectionError, match="simulated failure 1 of 1"):
        [c async for c in llm.astream(LLMRequest(prompt="t"))]


def test_echo_price_gives_cost_and_estimate() -> None:
    llm = echo(price_per_1k_tokens={"input": 1.0, "output": 2.0}, max_tokens=100)
    assert llm.cost(Usage(prompt=1000, completion=500)) == pytest.approx(2.0)
    request = LLMRequest(prompt="one two three", system="s")
    tokens, cost = llm.estimate(request)
    assert tokens == estimate_tokens("sone two three") + 100
    assert cost == pytest.approx(((tokens - 100) * 1.0 + 100 * 2.0) / 1000)
    assert llm.estimate_tokens(LLMRequest(prompt="x", max_tokens=7)) == 1 + 7
    assert echo().cost(Usage(prompt=1000, completion=1000)) == 0.0
    assert echo().default_max_tokens == 256


def test_echo_check_and_helpers() -> None:
    source = {"id": "e", "kind": "llm", "provider": "echo"}
    result = check_source(source)
    assert result.ok and result.message == "echo is offline and always available"
    assert result.to_dict()["ok"] is True and result.latency_ms >= 0
    llm = get_llm_from_source(source)
    assert isinstance(llm, EchoLLM) and llm is get_llm_from_source(SourceSpec.model_validate(source))
    assert not llm.networked
    with pytest.raises(ValidationError, match='source "e" is of kind "llm", not "db"'):
        get_db_connection(source)


def test_check_source_reports_a_bad_config() -> None:
    result = check_source({"id": "e", "kind": "llm", "provider": "echo", "config": {"latency_ms": -5}})
    assert not result.ok and result.latency_ms == 0.0
    assert result.message.startswith('source "e": invalid config: Input should be greater than or equal to 0')


# --- image/placeholder -------------------------------------------------------------------------


def png_of(data: str) -> Image.Image:
    raw = base64.b64decode(data)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


def test_placeholder_draws_a_real_png_of_the_configured_size() -> None:
    response = placeholder(size="120x80").generate(ImageRequest(prompt="a red fox in the snow"))
    image = png_of(response.data)
    assert image.format == "PNG" and image.size == (120, 80) and image.mode == "RGB"
    assert (response.width, response.height) == (120, 80)
    assert response.revised_prompt == "a red fox in the snow" and not response.is_url
    assert image.getpixel((2, 40)) == (255, 255, 255)  # the frame
    colours = image.getcolors(maxcolors=120 * 80)
    assert colours is not None and len(colours) > 2  # the text is drawn, not just frame and background


def test_placeholder_request_size_wins_and_default_size() -> None:
    assert png_of(placeholder(size="64x64").generate(ImageRequest(prompt="x", size="40x30")).data).size == (40, 30)
    assert png_of(placeholder().generate(ImageRequest(prompt="x")).data).size == (512, 512)


def test_placeholder_is_deterministic_per_prompt() -> None:
    images = placeholder(size="64x48")
    a = images.generate(ImageRequest(prompt="owl"))
    b = placeholder(size="64x48").generate(ImageRequest(prompt="owl"))
    c = images.generate(ImageRequest(prompt="cat"))
    assert a.data == b.data != c.data
    assert png_of(a.data).getpixel((30, 4)) != png_of(c.data).getpixel((30, 4))  # background from the prompt


def test_placeholder_empty_prompt_still_draws() -> None:
    assert png_of(placeholder(size="32x32").generate(ImageRequest(prompt="")).data).size == (32, 32)


async def test_placeholder_async_latency_and_timeout() -> None:
    started = time.perf_counter()
    response = await placeholder(size="16x16", latency_ms=50).agenerate(ImageRequest(prompt="x"))
    assert time.perf_counter() - started >= 0.045
    assert png_of(response.data).size == (16, 16)
    started = time.perf_counter()
    with pytest.raises(SourceConnectionError, match=r"timed out after 0.01 s \(latency_ms=5000\)"):
        await placeholder(latency_ms=5000).agenerate(ImageRequest(prompt="x", timeout_s=0.01))
    assert time.perf_counter() - started < 0.5  # refused at once, not after waiting


def test_placeholder_sync_latency_timeout_and_price() -> None:
    started = time.perf_counter()
    placeholder(size="16x16", latency_ms=50).generate(ImageRequest(prompt="x"))
    assert time.perf_counter() - started >= 0.045
    with pytest.raises(SourceConnectionError, match=r"timed out after 0\.01 s"):
        placeholder(latency_ms=5000).generate(ImageRequest(prompt="x", timeout_s=0.01))
    assert placeholder(price_per_image=0.02).cost(None) == 0.02
    assert placeholder().cost(None) == 0.0


def test_placeholder_check_and_helper() -> None:
    source = {"id": "p", "kind": "image", "provider": "placeholder", "config": {"size": "32x32"}}
    result = check_source(source)
    assert result.ok and result.message == "placeholder draws offline with Pillow"
    assert isinstance(get_image_model(source), PlaceholderImage)


# --- db/sqlite ---------------------------------------------------------------------------------


def make_file(tmp_path: Path) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE t (k TEXT, v INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);")
    conn.commit()
    conn.close()
    return path


def read_all(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT k, v FROM t ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_sqlite_memory_with_init_sql_and_named_params() -> None:
    db = sqlite(init_sql="CREATE TABLE t (k TEXT, v INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2);")
    result = db.query("SELECT k, v FROM t WHERE v >= :min ORDER BY v", {"min": 2}, max_rows=10, timeout_s=None)
    assert result.rows == [{"k": "b", "v": 2}] and result.columns == ["k", "v"] and not result.truncated
    assert db.paramstyle == "named" and db.read_only


def test_sqlite_memory_without_init_sql() -> None:
    result = sqlite().query("SELECT 1 + 1 AS two", {}, max_rows=1, timeout_s=None)
    assert result.rows == [{"two": 2}]


def test_sqlite_max_rows_truncates() -> None:
    db = sqlite()
    sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) SELECT x FROM n"
    result = db.query(sql, {}, max_rows=3, timeout_s=None)
    assert result.rows == [{"x": 1}, {"x": 2}, {"x": 3}] and result.truncated
    assert not db.query(sql, {}, max_rows=10, timeout_s=None).truncated


def test_sqlite_file_is_opened_read_only(tmp_path: Path) -> None:
    path = make_file(tmp_path)
    db = sqlite(path=str(path))
    assert db.query("SELECT count(*) AS n FROM t", {}, max_rows=1, timeout_s=None).rows == [{"n": 3}]
    with pytest.raises(ExecutionError, match=r'source "src": query failed: attempt to write a readonly database \(the source is read-only; set "read_only": false on the source to allow writes\)'):
        db.query("DELETE FROM t", {}, max_rows=1, timeout_s=None)
    with pytest.raises(ExecutionError, match="You can only execute one statement at a time"):
        db.query("PRAGMA query_only = OFF; DELETE FROM t", {}, max_rows=1, timeout_s=None)
    assert read_all(path) == [("a", 1), ("b", 2), ("c", 3)]
    # the connection really is mode=ro: even query_only switched off cannot write
    conn = db._connect()
    conn.execute("PRAGMA query_only = OFF")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM t")
    db.close()
    db.close()  # closing twice is harmless


def test_sqlite_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(SourceConnectionError, match=r"database file .*nope.db does not exist") as info:
        sqlite(path=str(missing)).query("SELECT 1", {}, max_rows=1, timeout_s=None)
    assert not info.value.retryable
    assert not missing.exists()  # a read-only source never creates the file
    result = check_source({"id": "d", "kind": "db", "provider": "sqlite", "config": {"path": str(missing)}})
    assert not result.ok and "does not exist" in result.message


def test_sqlite_writes_when_read_only_is_false(tmp_path: Path) -> None:
    path = make_file(tmp_path)
    db = sqlite(path=str(path), read_only=False)
    assert not db.read_only
    assert db.query("INSERT INTO t VALUES (:k, :v)", {"k": "d", "v": 4}, max_rows=1, timeout_s=None).rows == []
    assert read_all(path)[-1] == ("d", 4)  # committed, visible to another connection
    with pytest.raises(ExecutionError, match="no such table: nope"):
        db.query("INSERT INTO nope VALUES (1)", {}, max_rows=1, timeout_s=None)
    assert len(read_all(path)) == 4


def test_sqlite_new_file_with_init_sql(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    path.parent.mkdir()
    db = sqlite(path=str(path), init_sql="CREATE TABLE t (k TEXT, v INTEGER); INSERT INTO t VALUES ('z', 26);")
    assert db.query("SELECT k FROM t", {}, max_rows=5, timeout_s=None).rows == [{"k": "z"}]
    with pytest.raises(ExecutionError, match="read-only"):
        db.query("DELETE FROM t", {}, max_rows=1, timeout_s=None)
    assert read_all(path) == [("z", 26)]


def test_sqlite_bad_init_sql_is_a_source_error() -> None:
    with pytest.raises(SourceConnectionError, match=r'source "src": cannot open :memory:: near "CREAT": syntax error') as info:
        sqlite(init_sql="CREAT TABLE x").query("SELECT 1", {}, max_rows=1, timeout_s=None)
    assert not info.value.retryable


def test_sqlite_statement_timeout() -> None:
    db = sqlite(timeout_s=0.2)
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.perf_counter()
    with pytest.raises(ExecutionError, match=r"query failed: interrupted \(the query ran longer than 0.2 s\)"):
        db.query(endless, {}, max_rows=1, timeout_s=None)
    assert 0.15 < time.perf_counter() - started < 2
    started = time.perf_counter()
    with pytest.raises(ExecutionError, match=r"the query ran longer than 0\.05 s"):
        db.query(endless, {}, max_rows=1, timeout_s=0.05)  # the call's own, shorter limit wins
    assert time.perf_counter() - started < 1
    assert db.query("SELECT 1 AS ok", {}, max_rows=1, timeout_s=None).rows == [{"ok": 1}]  # still usable


def test_sqlite_bytes_come_back_as_base64() -> None:
    db = sqlite(init_sql="CREATE TABLE b (name TEXT, data BLOB); INSERT INTO b VALUES ('x', x'00ff10');")
    (row,) = db.query("SELECT name, data FROM b", {}, max_rows=1, timeout_s=None).rows
    assert row == {"name": "x", "data": base64.b64encode(b"\x00\xff\x10").decode()}


def test_sqlite_missing_parameter_hint() -> None:
    with pytest.raises(ExecutionError, match=r"check the SQL and that every :name parameter is in config.params"):
        sqlite().query("SELECT :absent", {}, max_rows=1, timeout_s=None)


async def test_sqlite_async_query() -> None:
    db = sqlite(init_sql="CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3);")
    result = await db.aquery("SELECT v FROM t WHERE v > :v", {"v": 1}, max_rows=1, timeout_s=5)
    assert result.rows == [{"v": 2}] and result.truncated


def test_sqlite_check_and_helper(tmp_path: Path) -> None:
    source = {"id": "d", "kind": "db", "provider": "sqlite", "config": {"path": str(make_file(tmp_path))}}
    result = check_source(source)
    assert result.ok and result.message == f"sqlite {sqlite3.sqlite_version} at {source['config']['path']}"
    assert isinstance(get_db_connection(source), SqliteDB)
