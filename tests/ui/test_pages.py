"""Every page under Streamlit's AppTest: renders, main interactions, error paths.

The app runs open (no users, bound to localhost) here; sign-in is tested in
``test_pages_auth.py``.
"""

from __future__ import annotations

import json
import socket

import pytest

from agentflow.ui.theme import STATUS_COLORS
from tests.ui.conftest import PAGES, no_exception, page_app, texts, wait_for_run


def test_home_seeds_the_demo_and_lists_workflows(app, store):
    at = app.run()
    no_exception(at)
    shown = texts(at)
    assert "Open workbench" in shown and "Demo workspace ready" in shown
    table = at.dataframe[0].value
    assert {"triage-demo", "research-fanout", "refine-loop"} <= set(table["id"])
    assert set(table.columns) >= {"name", "versions", "last run", "last edited"}
    assert [m.value for m in at.metric][:2] == ["3", "7"]


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_in_the_app_and_on_its_own(app, name):
    at = app.run()
    at.switch_page(PAGES[name]).run()
    no_exception(at)
    assert at.title[0].value.endswith(name)
    alone = page_app(name).run()
    no_exception(alone)
    assert alone.title[0].value.endswith(name)


def test_create_a_workflow_from_an_example(app, store):
    at = app.run()
    at.selectbox(key="home_example").select("fanout.json").run()
    at.text_input(key="home_new_id_research-fanout").input("my-fanout").run()
    at.button(key="home_create").click().run()
    no_exception(at)
    saved = store.get_workflow("my-fanout")
    assert saved["version"] == 1 and saved["document"]["nodes"][1]["id"] == "outline"
    assert at.session_state["focus_workflow"] == "my-fanout"


def test_create_from_an_example_with_a_taken_id_explains(app, store):
    at = app.run()
    at.selectbox(key="home_example").select("triage.json").run()
    at.text_input(key="home_new_id_triage-demo").input("triage-demo").run()
    at.button(key="home_create").click().run()
    assert "ConflictError" in texts(at)
    assert len(store.list_versions("triage-demo")) == 1


def test_import_a_json_file(app, store, examples_dir):
    at = app.run()
    doc = json.loads((examples_dir / "triage.json").read_text()) | {"id": "imported"}
    at.file_uploader(key="home_import").upload("flow.json", json.dumps(doc).encode(), "application/json").run()
    assert "is valid" in texts(at)
    at.button(key="home_import_save").click().run()
    assert store.get_workflow("imported")["message"] == "imported flow.json"


# -- Editor --------------------------------------------------------------------------------


def _editor(app, workflow: str = "triage-demo"):
    at = app.run()
    at.session_state["focus_workflow"] = workflow
    at.switch_page(PAGES["Editor"]).run()
    return at


def _type(at, text: str):
    buf = at.session_state["ed_buffers"][at.session_state["focus_workflow"]]
    at.session_state[buf.editor_key] = {"id": f"e{len(text)}", "type": "change", "text": text, "lang": "json"}
    return at.run()


def test_edit_and_save_a_new_version(app, store):
    at = _editor(app)
    text = json.dumps(store.get_workflow("triage-demo")["document"] | {"name": "Triage, renamed"}, indent=2)
    _type(at, text)
    assert "unsaved changes" in texts(at)
    at.text_input(key="ed_message").input("rename it").run()
    at.button(key="ed_save").click().run()
    no_exception(at)
    latest = store.get_workflow("triage-demo")
    assert latest["version"] == 2 and latest["message"] == "rename it"
    assert latest["document"]["name"] == "Triage, renamed" and latest["author"] == "local"
    assert "Saved **triage-demo** as version 2" in texts(at)
    # The version list shows both, with a diff between them.
    assert "Triage, renamed" in "\n".join(c.value for c in at.code)
    assert {c["change"] for c in at.dataframe[1].value.to_dict("records")} == {"changed"}


def test_invalid_json_shows_its_path_and_line(app):
    at = _editor(app)
    _type(at, '{\n  "id": "triage-demo",\n  "nodes": [\n}')
    shown = texts(at)
    assert "1 problem to fix before saving" in shown
    assert "`$` (line 4, column 1): invalid JSON at line 4, column 1" in shown
    assert at.button(key="ed_save").disabled


def test_validation_errors_name_the_path(app):
    at = _editor(app)
    buf = at.session_state["ed_buffers"]["triage-demo"]
    doc = json.loads(buf.text)
    doc["nodes"][2]["source"] = "ecko"
    _type(at, json.dumps(doc, indent=2))
    assert "`nodes[2].source` (line" in texts(at) and 'did you mean "echo"' in texts(at)


def test_a_concurrent_edit_shows_both_texts(app, store):
    at = _editor(app)
    theirs = store.get_workflow("triage-demo")["document"] | {"name": "Saved by Bob"}
    store.save_workflow(theirs, author="bob", message="bob's", base_version=1)
    mine = store.get_workflow("triage-demo", 1)["document"] | {"name": "Mine, unsaved"}
    _type(at, json.dumps(mine, indent=2))
    at.button(key="ed_save").click().run()
    no_exception(at)
    shown = texts(at)
    assert "ConflictError" in shown and "version 2" in shown
    codes = [c.value for c in at.code]
    assert any("Saved by Bob" in c for c in codes) and any("Mine, unsaved" in c for c in codes)
    assert len(store.list_versions("triage-demo")) == 2
    at.button(key="ed_keep_mine").click().run()
    at.button(key="ed_save").click().run()
    assert store.get_workflow("triage-demo")["document"]["name"] == "Mine, unsaved"


def test_restore_an_old_version(app, store):
    at = _editor(app)
    store.save_workflow(store.get_workflow("triage-demo")["document"] | {"name": "v2"}, author="bob")
    at.run()
    at.selectbox(key="ed_restore_v").select(1).run()
    at.button(key="ed_restore").click().run()
    latest = store.get_workflow("triage-demo")
    assert latest["version"] == 3 and latest["document"]["name"] == "Triage demo"
    assert "Restored version 1 as version 3" in texts(at)


def test_export_format_and_revert(app):
    at = _editor(app)
    assert at.get("download_button")
    buf = at.session_state["ed_buffers"]["triage-demo"]
    compact = json.dumps(json.loads(buf.text))
    _type(at, compact)
    at.button(key="ed_format").click().run()
    buf = at.session_state["ed_buffers"]["triage-demo"]
    assert buf.text == buf.saved_text and not buf.dirty  # formatting alone changes nothing
    _type(at, compact.replace("Triage demo", "Changed"))
    at.button(key="ed_revert").click().run()
    assert not at.session_state["ed_buffers"]["triage-demo"].dirty


# -- Sources -------------------------------------------------------------------------------


def _sources(app):
    at = app.run()
    at.switch_page(PAGES["Sources"]).run()
    return at


def test_add_a_source_with_the_providers_own_form(app, store):
    at = _sources(app)
    at.selectbox(key="src_kind").select("db").run()
    at.selectbox(key="src_provider").select("sqlite").run()
    prefix = "src_f_new_db_sqlite_"
    labels = {w.label for w in at.text_input} | {w.label for w in at.text_area} | {w.label for w in at.checkbox}
    assert {"path", "init sql", "read only"} <= labels and "base url" not in labels
    at.text_input(key=prefix + "id").input("my-db")
    at.text_area(key=prefix + "init_sql").input("CREATE TABLE t (x INT);")
    at.button(key="src_save").click().run()
    no_exception(at)
    src = store.get_source("my-db")
    assert src.kind == "db" and src.provider == "sqlite" and src.config == {"init_sql": "CREATE TABLE t (x INT);"}
    assert "Saved source **my-db**" in texts(at)


def test_a_form_with_problems_says_which_field(app, store):
    at = _sources(app)
    at.selectbox(key="src_kind").select("api").run()
    # Named, not left to the default: other tests register api providers in this process.
    at.selectbox(key="src_provider").select("http").run()
    prefix = "src_f_new_api_http_"
    at.text_input(key=prefix + "id").input("bad-api")
    at.text_input(key=prefix + "base_url").input("ftp://nowhere")
    at.button(key="src_save").click().run()
    assert "`config.base_url`" in texts(at) and "http:// or https://" in texts(at)
    assert store.get_source("bad-api") is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_source_shows_a_clear_error(app, store):
    store.put_source(
        {
            "id": "down-api",
            "kind": "api",
            "provider": "http",
            "config": {"base_url": f"http://127.0.0.1:{_closed_port()}", "max_retries": 0},
        }
    )
    at = _sources(app)
    at.selectbox(key="src_selected").select("down-api").run()
    at.button(key="src_test").click().run()
    no_exception(at)
    error = at.error[0].value
    assert error.startswith("Could not connect") and "down-api" in error
    assert "refused" in error.lower() or "could not" in error.lower()


def test_a_working_source_shows_its_latency(app):
    at = _sources(app)
    at.selectbox(key="src_selected").select("shop").run()
    at.button(key="src_test").click().run()
    assert at.success[0].value.startswith("Connected in ")


def test_a_source_missing_its_secret_says_how_to_fix_it(app, store):
    store.put_source({"id": "pg", "kind": "db", "provider": "postgres", "config": {"dsn_secret": "PG_DSN"}})
    at = _sources(app)
    at.selectbox(key="src_selected").select("pg").run()
    at.button(key="src_test").click().run()
    assert 'secret "PG_DSN"' in at.error[0].value and "Sources page" in at.error[0].value


def test_secrets_are_write_only(app, store):
    at = _sources(app)
    at.text_input(key="src_secret_name").input("MY_TOKEN")
    at.text_input(key="src_secret_value").input("very-secret-value-123")
    at.button(key="src_secret_store").click().run()
    assert store.get_secret("MY_TOKEN") == "very-secret-value-123"
    assert "MY_TOKEN" in texts(at) and "very-secret-value-123" not in texts(at)


# -- Queues --------------------------------------------------------------------------------


def test_define_a_queue_with_limits_and_weights(app, store):
    at = app.run()
    at.switch_page(PAGES["Queues"]).run()
    no_exception(at)
    assert "demo-q" in texts(at)
    at.text_input(key="q_form_new_id").input("llm-q")
    at.number_input(key="q_form_new_rpm").set_value(120)
    at.number_input(key="q_form_new_mps").set_value(3)
    at.radio(key="q_form_new_on").set_value("reject")
    at.text_input(key="q_form_new_weights").input("chat=4, batch=1")
    at.button(key="q_save").click().run()
    no_exception(at)
    q = store.get_queue("llm-q")
    assert q.max_requests_per_minute == 120 and q.max_messages_per_second == 3
    assert q.subqueues == {"chat": 4.0, "batch": 1.0} and q.on_limit == "reject"
    assert "Saved queue **llm-q**" in texts(at)


def test_bad_weights_are_explained(app, store):
    at = app.run()
    at.switch_page(PAGES["Queues"]).run()
    at.text_input(key="q_form_new_id").input("q2")
    at.text_input(key="q_form_new_weights").input("chat")
    at.button(key="q_save").click().run()
    assert "`subqueues`" in texts(at) and "name=weight" in texts(at)
    assert store.get_queue("q2") is None


def test_live_meters_show_usage_waiters_and_rejections(app):
    at = app.run()
    at.switch_page(PAGES["Queues"]).run()
    at.button(key="q_traffic").click().run()
    import time

    time.sleep(0.3)
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Granted"]) >= 1 and "Rejected" in metrics and "Average wait" in metrics
    assert any("this second" in (p.proto.text or "") for p in at.get("progress"))


# -- Graph ---------------------------------------------------------------------------------


def _graph_data(at) -> dict:
    comp = at.get("component_instance")[0]
    assert comp.proto.component_name == "streamlit_agraph.agraph"
    args = json.loads(comp.proto.json_args)
    return {"data": json.loads(args["data"]), "config": json.loads(args["config"])}


def test_graph_page_draws_the_workflow_with_a_legend(app):
    at = app.run()
    at.session_state["focus_workflow"] = "triage-demo"
    at.switch_page(PAGES["Graph"]).run()
    no_exception(at)
    g = _graph_data(at)
    assert {n["id"] for n in g["data"]["nodes"]} >= {"input", "router", "answer", "draw", "lookup", "agg"}
    assert {e.get("label") for e in g["data"]["edges"]} >= {"image", "db", "otherwise"}
    assert g["config"]["layout"]["hierarchical"]["direction"] == "LR"
    assert any("aggregator" in m.value for m in at.markdown)  # the legend
    assert "Entry point" in texts(at)  # the first node's details


def test_clicking_a_node_shows_its_config_source_and_queue(app, monkeypatch):
    import streamlit_agraph

    monkeypatch.setattr(streamlit_agraph, "agraph", lambda nodes, edges, config: "router")
    at = app.run()
    at.session_state["focus_workflow"] = "triage-demo"
    at.switch_page(PAGES["Graph"]).run()
    assert at.selectbox(key="gr_node").value == "router"
    assert "**Intents** `image`, `db`, `text`" in texts(at)
    monkeypatch.setattr(streamlit_agraph, "agraph", lambda nodes, edges, config: "answer")
    at.run()
    assert "**Source** `echo`: llm / echo" in texts(at)


# -- Run and Runs --------------------------------------------------------------------------


def _run(app, workflow: str, text: str | None = None):
    at = app.run()
    at.session_state["focus_workflow"] = workflow
    at.switch_page(PAGES["Run"]).run()
    if text is not None:
        at.text_input(key=f"run_input_{workflow}").input(text)
    at.button(key="run_go").click().run()
    view = wait_for_run(at)
    no_exception(at)
    return at, view


def test_run_an_example_and_see_its_output_and_trace(app, store):
    at, view = _run(app, "triage-demo", "sql: desk lamp")
    assert view.status == "succeeded"
    shown = texts(at)
    assert "Output" in shown and "Trace" in shown and "**Timeline**" in shown
    assert "intent **db**" in shown
    frames = [d.value for d in at.dataframe]
    assert any(list(f.columns[:3]) == ["node", "type", "status"] and len(f) == 4 for f in frames)  # the trace
    assert any("desk lamp" in f.to_csv() for f in frames)  # db rows as a table
    assert {m.label: m.value for m in at.metric}["Status"] == "succeeded"
    assert at.get("vega_lite_chart")  # the timeline
    stored = store.get_run(view.run_id)
    assert stored["status"] == "succeeded" and stored["user"] == "local" and stored["workflow_version"] == 1


def test_run_with_extra_state_and_a_fan_out(app):
    at = app.run()
    at.session_state["focus_workflow"] = "research-fanout"
    at.switch_page(PAGES["Run"]).run()
    at.text_area(key="run_state_research-fanout").input('{"topic": "owls"}')
    at.button(key="run_go").click().run()
    view = wait_for_run(at)
    assert view.input == {"topic": "owls", "user_input": "foxes"}
    assert {s.node for s in view.steps} == {"input", "outline", "draft", "keywords", "facts", "report"}


def test_bad_extra_state_is_refused_before_running(app):
    at = app.run()
    at.switch_page(PAGES["Run"]).run()
    wf = at.session_state["run_wf"]
    at.text_area(key=f"run_state_{wf}").input("{nope")
    at.button(key="run_go").click().run()
    assert "not valid JSON" in at.error[0].value
    assert "run_handle" not in at.session_state


def test_a_failing_node_is_shown_in_the_error_shape_and_highlighted(app, store):
    doc = {
        "id": "flaky",
        "name": "Flaky",
        "sources": [{"id": "bad", "kind": "llm", "provider": "echo", "config": {"fail_first": 9}}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "ask", "type": "llm", "source": "bad"},
            {"id": "after", "type": "aggregator"},
        ],
        "edges": [{"from": "input", "to": "ask"}, {"from": "ask", "to": "after"}],
    }
    store.save_workflow(doc, author="ann")
    at, view = _run(app, "flaky")
    assert view.status == "failed" and view.failed_nodes == ["ask"]
    errors = [e.value for e in at.error]
    assert any("**SourceConnectionError** in node **ask**" in e for e in errors)
    graph = json.loads(json.loads(at.get("component_instance")[0].proto.json_args)["data"])
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert (
        nodes["ask"]["color"]["background"] == STATUS_COLORS["failed"]
        and nodes["after"]["label"] == "after\naggregator"
    )
    assert store.get_run(view.run_id)["status"] == "failed"


def test_an_invalid_saved_workflow_fails_with_its_problems(app, store):
    store.save_workflow(
        {"id": "broken", "nodes": [{"id": "a", "type": "llm", "source": "nope"}], "edges": []}, author="ann"
    )
    at, view = _run(app, "broken")
    assert view.status == "failed" and view.error["error_type"] == "ValidationError"
    assert "`nodes[0].source`" in texts(at)


def test_runs_history_open_and_compare(app, store):
    _run(app, "triage-demo", "hello")
    at, _ = _run(app, "triage-demo", "img: a fox")
    at.switch_page(PAGES["Runs"]).run()
    no_exception(at)
    history = at.dataframe[0].value
    assert len(history) == 2 and set(history["status"]) == {"succeeded"}
    assert "Steps" in texts(at) and "Trace" in texts(at)  # the newest run, opened as on the Run page
    compare = next(d.value for d in at.dataframe if "latency A (ms)" in d.value.columns)
    assert {"router", "answer", "draw"} <= set(compare["node"])
    assert "Output A" in texts(at)
    at.selectbox(key="runs_status").select("failed").run()
    assert "No runs match" in texts(at)
    at.selectbox(key="runs_status").select("").run()
    at.text_input(key="runs_user").input("nobody").run()
    assert "No runs match" in texts(at)


def test_graph_colours_nodes_by_the_last_run(app):
    at, _view = _run(app, "triage-demo", "img: a fox")
    at.switch_page(PAGES["Graph"]).run()
    assert at.selectbox(key="gr_run").value == "session"
    nodes = {n["id"]: n for n in _graph_data(at)["data"]["nodes"]}
    assert nodes["draw"]["color"]["background"] == STATUS_COLORS["succeeded"]
    assert nodes["answer"]["color"]["background"] == STATUS_COLORS["skipped"]
    assert "ms" in nodes["draw"]["label"]


def test_runs_filter_by_date(app):
    import datetime as dt

    at, _ = _run(app, "triage-demo", "hello")
    at.switch_page(PAGES["Runs"]).run()
    today = dt.datetime.now(dt.UTC).date()
    at.date_input(key="runs_dates").set_value((today, today)).run()
    assert len(at.dataframe[0].value) == 1
    at.date_input(key="runs_dates").set_value((today - dt.timedelta(days=9), today - dt.timedelta(days=8))).run()
    assert "No runs match" in texts(at)


def test_a_run_going_on_elsewhere_can_be_cancelled_from_the_runs_page(app, store):
    at = app.run()
    store.record_run(
        {
            "user_input": "x",
            "metadata": {
                "run_id": "elsewhere-1",
                "workflow_id": "triage-demo",
                "status": "running",
                "started_at": "2026-01-01T00:00:00Z",
            },
        },
        user="bob",
    )
    at.switch_page(PAGES["Runs"]).run()
    at.button(key="runs_cancel").click().run()
    no_exception(at)
    assert set(store.cancel_requests(["elsewhere-1"])) == {"elsewhere-1"}


def test_add_a_source_with_a_new_secret_stores_it_encrypted(app, store):
    at = _sources(app)
    at.selectbox(key="src_kind").select("llm").run()
    at.selectbox(key="src_provider").select("openai").run()
    prefix = "src_f_new_llm_openai_"
    at.text_input(key=prefix + "id").input("gpt")
    at.text_input(key=prefix + "model").input("gpt-4o-mini")
    at.text_input(key=prefix + "api_key_secret_new_name").input("OPENAI_KEY")
    at.text_input(key=prefix + "api_key_secret_new_value").input("sk-test-abcdefghijklmnopqrstuvwxyz")
    at.button(key="src_save").click().run()
    no_exception(at)
    assert store.get_secret("OPENAI_KEY") == "sk-test-abcdefghijklmnopqrstuvwxyz"
    assert store.get_source("gpt").config == {"model": "gpt-4o-mini", "api_key_secret": "OPENAI_KEY"}
    assert "sk-test-abcdefghijklmnopqrstuvwxyz" not in texts(at)


def test_graph_can_show_unsaved_edits(app):
    at = _editor(app)
    doc = json.loads(at.session_state["ed_buffers"]["triage-demo"].text)
    doc["nodes"].append({"id": "extra", "type": "aggregator"})
    doc["edges"].append({"from": "agg", "to": "extra"})
    _type(at, json.dumps(doc, indent=2))
    at.switch_page(PAGES["Graph"]).run()
    assert "extra" not in {n["id"] for n in _graph_data(at)["data"]["nodes"]}
    at.toggle(key="gr_draft").set_value(True).run()
    assert "extra" in {n["id"] for n in _graph_data(at)["data"]["nodes"]}
