"""The Batch page under AppTest: dataset preview, start, live progress, results, compare;
and the page's logic without a browser (``agentflow.ui.batch_view``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from agentflow.batch import read_dataset, run_batch
from agentflow.ui import batch_view as bv
from tests.ui.conftest import ROOT, TIMEOUT, no_exception, texts

PAGE = ROOT / "pages" / "8_Batch.py"
CSV = b"user_input,expected\nsql: desk lamp,desk lamp\nsql: pen,pen\nsql: stapler,stapler\nbad,row,here\n"


@pytest.fixture
def batch_page(bind_address, agentflow_home) -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)


def wait_done(at: AppTest, timeout: float = 30.0) -> None:
    handle = at.session_state["batch_handle"]
    assert handle.join(timeout), "the batch did not finish in time"
    at.run()


def test_the_page_renders_with_nothing_chosen(batch_page) -> None:
    at = batch_page.run()
    no_exception(at)
    assert at.title[0].value.endswith("Batch")
    assert "Upload a dataset or name a file" in texts(at)
    assert "No batches yet" in texts(at)


def test_upload_preview_start_watch_and_download(batch_page, store) -> None:
    at = batch_page.run()
    at.selectbox(key="batch_wf").select("triage-demo").run()
    at.file_uploader(key="batch_upload").upload("products.csv", CSV, "text/csv").run()
    no_exception(at)
    shown = texts(at)
    assert "4 rows in products.csv, 1 of them malformed" in shown
    preview = at.dataframe[0].value
    assert list(preview["user_input"][:2]) == ["sql: desk lamp", "sql: pen"]
    assert preview["error"][3].startswith("line 5: expected 2 fields")
    assert at.selectbox(key="batch_column").value == "user_input"
    assert at.selectbox(key="batch_expected").value == "expected"
    at.selectbox(key="batch_scorer").select("json:").run()
    at.text_input(key="batch_json_path").input("db.0.name").run()
    at.button(key="batch_start").click().run()
    no_exception(at)
    bid = at.session_state["batch_current"]
    wait_done(at)
    no_exception(at)
    counts = store.batch_counts(bid)
    assert counts["status"] == "finished" and (counts["done"], counts["failed"]) == (3, 1)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Done"] == "3" and metrics["Failed"] == "1" and metrics["Mean score"] == "0.500"
    results = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert list(results["score"]) == [1.0, 1.0, 0.0, 0.0]
    assert len(at.get("download_button")) >= 2
    batch = store.get_batch(bid)
    assert batch["workflow_id"] == "triage-demo" and batch["options"]["scorer"] == "json:db.0.name"


def test_a_file_path_bad_input_and_compare(batch_page, store, examples_dir: Path) -> None:
    at = batch_page.run()
    at.selectbox(key="batch_wf").select("triage-demo").run()
    at.text_input(key="batch_path").input("examples/data/nope.txt").run()
    assert "name a .csv or .jsonl file" in texts(at)
    at.text_input(key="batch_path").input("examples/data/products.csv").run()
    assert "6 rows in products.csv" in texts(at)
    # two batches of the same workflow, then the compare tab
    doc = store.get_workflow("triage-demo")["document"]
    a = run_batch(doc, examples_dir / "data" / "products.csv", expected="expected", scorer="json:db.0.name",
                  store=store)
    b = run_batch(doc, examples_dir / "data" / "products.csv", expected="expected", scorer="contains", store=store)
    at.run()
    no_exception(at)
    at.selectbox(key="batch_cmp_a").set_value(a.batch_id).run()
    at.selectbox(key="batch_cmp_b").set_value(b.batch_id).run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows"] == "6" and metrics["Same output"] == "6"
    compared = next(d.value for d in at.dataframe if "Δ score" in getattr(d.value, "columns", []))
    assert len(compared) == 6 and list(compared["score A"][:2]) == [1.0, 1.0]
    # the Batches tab opens one with its results
    at.selectbox(key="batch_open").set_value(a.batch_id).run()
    no_exception(at)


def test_a_refused_start_shows_the_error(batch_page, store, monkeypatch) -> None:
    monkeypatch.delenv("AGENTFLOW_REDIS_URL", raising=False)
    at = batch_page.run()
    at.selectbox(key="batch_wf").select("triage-demo").run()
    at.file_uploader(key="batch_upload").upload("rows.csv", b"user_input\nhello\n", "text/csv").run()
    at.selectbox(key="batch_backend").select("celery").run()
    at.button(key="batch_start").click().run()
    assert "AGENTFLOW_REDIS_URL" in texts(at)
    assert store.list_batches() == []


def test_cancel_from_the_page(batch_page, store) -> None:
    at = batch_page.run()
    at.selectbox(key="batch_wf").select("triage-demo").run()
    rows = b"user_input\n" + b"".join(f"q{i}\n".encode() for i in range(30))
    at.file_uploader(key="batch_upload").upload("many.csv", rows, "text/csv").run()
    at.number_input(key="batch_concurrency").set_value(1).run()
    at.button(key="batch_start").click().run()
    bid = at.session_state["batch_current"]
    at.button(key="batch_cancel").click().run()
    no_exception(at)
    wait_done(at)
    counts = store.batch_counts(bid)
    assert counts["status"] == "cancelled" and counts["done"] < 30


# -- the logic, without a browser --------------------------------------------------------------


def test_columns_are_guessed() -> None:
    assert bv.guess_columns(read_dataset(b"question,answer\na,b\n", name="x.csv")) == ("question", "answer")
    assert bv.guess_columns(read_dataset(b"gold,user_input\na,b\n", name="x.csv")) == ("user_input", "gold")
    assert bv.guess_columns(read_dataset([])) == (None, None)


def test_progress_and_tables() -> None:
    p = bv.progress_of({"total": 10, "done": 4, "failed": 1, "running": 2, "pending": 1, "dispatched": 2,
                        "waiting": 1, "status": "running", "mean_score": 0.5})
    assert p.fraction == 0.5 and p.pending == 3 and p.active and "5 of 10 rows" in p.text
    assert not bv.progress_of({"total": 0, "status": "finished"}).active
    data, mime = bv.download([{"row": 0, "status": "succeeded", "final_output": {"a": 1}}], "csv")
    assert mime == "text/csv" and b'"{""a"": 1}"' in data
    assert bv.download([{"row": 0}], "jsonl")[1] == "application/x-ndjson"
    assert bv.scorer_text("json:", " a.b ") == "json:a.b" and bv.scorer_text("exact", "x") == "exact"
    assert bv.load_dataset(None, None, "  ") is None
    label = bv.batch_label({"batch_id": "abcdef123456", "workflow_id": "wf", "workflow_version": 2,
                            "dataset": "d.csv", "status": "finished", "mean_score": 0.5,
                            "created_at": "2026-01-01T10:00:00.000Z"})
    assert label == "wf v2 · d.csv · finished · score 0.50 · 2026-01-01 10:00:00 · abcdef12"
