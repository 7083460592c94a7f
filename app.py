"""AgentFlow workbench: ``streamlit run app.py``.

The entry point builds the sidebar navigation (every page in ``pages/``) and is the home
page: workflows at a glance, a one-click start, new workflows from the examples or a JSON
file. Until the session is signed in (when users are configured) only the sign-in form is
shown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from agentflow.errors import AgentFlowError  # noqa: E402
from agentflow.ui import auth, nav, page  # noqa: E402
from agentflow.ui.overview import free_id, workflow_rows  # noqa: E402
from agentflow.ui.render import error_dict, show_error, show_problems  # noqa: E402
from agentflow.ui.seed import load_examples  # noqa: E402


def home() -> None:
    ctx = page.setup_page("Home", "LLM workflows written as JSON, drawn as graphs and run live on LangGraph.")
    store = ctx.store
    if ctx.mode == "open":
        st.info(
            "**Open workbench.** No users are configured, so anyone who can reach this machine's "
            "localhost can use it; it listens on 127.0.0.1 only. To require sign-in, add a user: "
            "`python -m agentflow users add NAME --role admin`.",
            icon=":material/lock_open:",
        )
    if ctx.seed.seeded:
        st.success(
            f"Demo workspace ready: {len(ctx.seed.workflows)} example workflows and their sources run "
            "offline, with no keys and no network. Try one below.",
            icon=":material/celebration:",
        )

    rows = workflow_rows(store)
    runs, more = store.list_runs(limit=1000)
    cols = st.columns(4)
    cols[0].metric("Workflows", len(rows))
    cols[1].metric("Sources", len(store.list_sources()))
    cols[2].metric("Queues", len(store.list_queues()))
    cols[3].metric("Runs", f"{len(runs)}+" if more else len(runs))

    st.subheader("Start here")
    if rows:
        ids = [r["id"] for r in rows]
        start = "triage-demo" if "triage-demo" in ids else ids[0]
        c1, c2, c3 = st.columns(3)
        with c1.container(border=True):
            st.markdown(f"**1 · Run it**  \nRun **{start}** and watch each step stream in.")
            if st.button(
                ":material/play_arrow: Run the demo", key="home_quick_run", type="primary", disabled=not ctx.can("run")
            ):
                page.set_focus(start)
                nav.go("Run")
        with c2.container(border=True):
            st.markdown("**2 · See it**  \nThe workflow drawn as a graph, coloured by its last run.")
            if st.button(":material/account_tree: Open the graph", key="home_quick_graph"):
                page.set_focus(start)
                nav.go("Graph")
        with c3.container(border=True):
            st.markdown("**3 · Change it**  \nEdit the JSON; problems show as you type.")
            if st.button(":material/edit_note: Open the editor", key="home_quick_edit"):
                page.set_focus(start)
                nav.go("Editor")

    st.subheader("Workflows")
    if not rows:
        st.info(
            "No workflows yet: create one from an example or import a JSON file below.", icon=":material/auto_awesome:"
        )
    else:
        st.dataframe(
            rows,
            hide_index=True,
            width="stretch",
            column_config={
                "last edited": st.column_config.DatetimeColumn("last edited", format="distance"),
                "last run at": st.column_config.DatetimeColumn("last run at", format="distance"),
                "versions": st.column_config.NumberColumn("versions", format="%d"),
            },
        )
        pick, b1, b2, b3 = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
        names = {r["id"]: r["name"] for r in rows}
        chosen = pick.selectbox(
            "Open a workflow", list(names), key="home_open", format_func=lambda i: f"{names[i]} · {i}"
        )
        for col, title, label in (
            (b1, "Editor", ":material/edit_note: Edit"),
            (b2, "Graph", ":material/account_tree: Graph"),
            (b3, "Run", ":material/play_arrow: Run"),
        ):
            if col.button(label, key=f"home_open_{title.lower()}", width="stretch"):
                page.set_focus(chosen)
                nav.go(title)

    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Create from an example")
        examples = load_examples()
        by_file = {e.path.name: e for e in examples}
        choice = st.selectbox(
            "Example",
            list(by_file),
            key="home_example",
            format_func=lambda f: f"{by_file[f].name} ({'offline' if by_file[f].offline else 'needs a key or server'})",
        )
        example = by_file[choice]
        st.caption(example.description)
        taken = [r["id"] for r in rows]
        suggested = free_id(f"my-{example.id}", taken)
        new_id = st.text_input("New workflow id", value=suggested, key=f"home_new_id_{example.id}")
        if st.button("Create workflow", key="home_create", type="primary", disabled=not ctx.can("save")):
            doc = dict(example.document, id=new_id.strip())
            doc["name"] = f"{example.name} (copy)" if new_id.strip() != example.id else example.name
            try:
                version = store.save_workflow(
                    doc, author=ctx.principal.name, message=f"created from example {choice}", base_version=0
                )
            except AgentFlowError as exc:
                show_error(error_dict(exc))
            else:
                st.toast(f"Created {new_id} (version {version})", icon=":material/check_circle:")
                page.set_focus(new_id.strip())
                nav.go("Editor")
    with right:
        st.subheader("Import a JSON file")
        upload = st.file_uploader("Workflow JSON", type=["json"], key="home_import")
        if upload is not None:
            text = upload.getvalue().decode("utf-8", errors="replace")
            from agentflow import check_workflow

            report = check_workflow(text, workspace=store)
            if report.errors:
                st.error(f"{upload.name} has {len(report.errors)} problem(s); fix them and upload again.")
                show_problems(report.errors, report.warnings)
            else:
                doc = json.loads(text)
                exists = doc["id"] in [r["id"] for r in rows]
                what = f"a new version of **{doc['id']}**" if exists else f"the new workflow **{doc['id']}**"
                st.success(f"{upload.name} is valid: it will be saved as {what}.")
                if st.button("Import", key="home_import_save", type="primary", disabled=not ctx.can("save")):
                    version = store.save_workflow(text, author=ctx.principal.name, message=f"imported {upload.name}")
                    st.toast(f"Imported {doc['id']} (version {version})", icon=":material/check_circle:")
                    page.set_focus(doc["id"])
                    nav.go("Editor")

    st.subheader("Everything else")
    links = st.columns(len(nav.PAGES))
    for col, (_, title, _) in zip(links, nav.PAGES, strict=True):
        with col:
            nav.link(title)


store = page.get_store()
open_or_signed_in = auth.auth_mode(store) == "open" or auth.current_principal(store) is not None
if open_or_signed_in:
    st.navigation(nav.navigation_pages(home)).run()
else:
    st.navigation([st.Page(home, title="Sign in", icon=":material/lock:", default=True)], position="hidden").run()
