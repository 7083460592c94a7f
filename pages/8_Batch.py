"""Batch: run a workflow over every row of a dataset, watch it, read the scores, compare two."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from agentflow.batch import compare_batches  # noqa: E402
from agentflow.batch.options import BACKENDS  # noqa: E402
from agentflow.ui import batch_view as bv  # noqa: E402
from agentflow.ui import nav, page  # noqa: E402
from agentflow.ui.render import error_dict, show_error  # noqa: E402

ctx = page.setup_page("Batch", "One workflow over every row of a CSV or JSON Lines file, paced by its queues.")
store = ctx.store

run_tab, list_tab, compare_tab = st.tabs(
    [":material/playlist_play: Run a batch", ":material/list: Batches", ":material/compare_arrows: Compare two"]
)


def live(batch_id: str) -> None:
    """The batch's progress, refreshed every second while it runs; then its results."""
    running = bv.progress_of(store.batch_counts(batch_id)).active

    @st.fragment(run_every=1.0 if running else None)
    def view() -> None:
        p = bv.progress_of(store.batch_counts(batch_id))
        bv.show_progress(p)
        if p.active:
            if st.button(":material/stop_circle: Cancel", key="batch_cancel", disabled=not ctx.can("cancel")):
                from agentflow.batch import cancel_batch

                cancel_batch(batch_id, store=store)
                st.toast("No more rows are handed out; running rows finish.", icon=":material/stop_circle:")
            return
        if running:  # it just ended: redraw the page without the timer
            st.rerun()
        bv.show_results(store, batch_id, key="batch_live")

    view()


def run_form() -> None:
    """Pick a workflow and a dataset, preview the rows, choose the options, start."""
    pick, ver = st.columns([3, 2], vertical_alignment="bottom")
    with pick:
        wf_id = page.workflow_picker(store, "batch_wf")
    if wf_id is None:
        st.info("No workflow yet: create one on the Home page or in the Editor.", icon=":material/playlist_play:")
        nav.link("Editor", "Open the editor")
        return
    with ver:
        version = page.version_picker(store, wf_id, "batch_version")
    document = page.load_document(store, wf_id, version)

    up, path_col = st.columns(2)
    upload = up.file_uploader("Dataset (.csv with a header, or .jsonl)", type=["csv", "jsonl"], key="batch_upload")
    path_text = path_col.text_input("…or a file path", key="batch_path", placeholder="examples/data/capitals.csv")
    try:
        dataset = bv.load_dataset(upload.name if upload else None, upload.getvalue() if upload else None, path_text)
    except Exception as exc:
        show_error(error_dict(exc))
        return
    if dataset is None:
        st.caption("Upload a dataset or name a file to preview its rows.")
        return
    st.caption(
        f"{len(dataset)} rows in {dataset.name or 'the data'}"
        + (f", {len(dataset.malformed)} of them malformed (they are recorded as failed)" if dataset.malformed else "")
    )
    st.dataframe(bv.preview(dataset), hide_index=True, width="stretch")
    column, expected = bv.guess_columns(dataset)
    cols = dataset.columns or ["user_input"]
    c1, c2, c3 = st.columns(3)
    column = c1.selectbox("Input column (becomes user_input)", cols,
                          index=cols.index(column) if column in cols else 0, key="batch_column")
    choices = ["", *cols]
    expected = c2.selectbox("Expected column (scores the rows)", choices,
                            index=choices.index(expected) if expected in choices else 0,
                            key="batch_expected", format_func=lambda c: c or "no scoring")
    output_key = c3.text_input("Output key", value="final_output", key="batch_output_key")
    s1, s2, s3, s4 = st.columns(4)
    scorer = s1.selectbox("Scorer", bv.SCORER_CHOICES, key="batch_scorer", disabled=not expected)
    json_path = s2.text_input("JSON path", key="batch_json_path", disabled=scorer != "json:",
                              placeholder="answer.value")
    backend = s3.selectbox("Backend", BACKENDS, key="batch_backend",
                           help="celery needs AGENTFLOW_REDIS_URL and running `python -m agentflow worker`s")
    concurrency = s4.number_input("Rows at once", min_value=1, max_value=1000, value=20, key="batch_concurrency")
    if not ctx.can("run"):
        st.caption("Your role can look at batches but not start them.")
    if st.button(":material/play_arrow: Start the batch", key="batch_start", type="primary",
                 disabled=not ctx.can("run")):
        try:
            handle = bv.start(
                store, document, dataset, user=ctx.principal.name, workflow_version=version,
                column=column, expected=expected or None,
                scorer=bv.scorer_text(scorer, json_path) if expected else None,
                output_key=output_key.strip() or "final_output", backend=backend, concurrency=int(concurrency),
            )
        except Exception as exc:
            show_error(error_dict(exc))
        else:
            st.session_state["batch_handle"] = handle
            st.session_state["batch_current"] = handle.batch_id


with run_tab:
    run_form()
    current = st.session_state.get("batch_current")
    if current:
        st.subheader(f"Batch {current}")
        live(current)

with list_tab:
    batches = store.list_batches(limit=200)
    if not batches:
        st.info("No batches yet: start one in the first tab, or with `python -m agentflow batch run`.",
                icon=":material/list:")
    else:
        st.dataframe(bv.batches_table(batches), hide_index=True, width="stretch")
        labels = {b["batch_id"]: bv.batch_label(b) for b in batches}
        chosen = st.selectbox("Open a batch", list(labels), key="batch_open", format_func=labels.get)
        p = bv.progress_of(store.batch_counts(chosen))
        bv.show_progress(p)
        bv.show_results(store, chosen, key="batch_opened")

with compare_tab:
    batches = store.list_batches(limit=200)
    if len(batches) < 2:
        st.caption("Two batches are needed to compare (e.g. two versions of a workflow on one dataset).")
    else:
        labels = {b["batch_id"]: bv.batch_label(b) for b in batches}
        ids = list(labels)
        a_col, b_col = st.columns(2)
        a_id = a_col.selectbox("Batch A", ids, index=1, key="batch_cmp_a", format_func=labels.get)
        b_id = b_col.selectbox("Batch B", ids, index=0, key="batch_cmp_b", format_func=labels.get)
        bv.show_compare(compare_batches(a_id, b_id, store=store))
