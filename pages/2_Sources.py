"""Sources: the workspace's LLMs, image models, databases and HTTP APIs, and its secrets."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from agentflow import check_source  # noqa: E402
from agentflow.errors import AgentFlowError  # noqa: E402
from agentflow.sources.registry import KINDS, provider_class, provider_names  # noqa: E402
from agentflow.ui import page  # noqa: E402
from agentflow.ui.forms import collect_config, provider_form, validate_config  # noqa: E402
from agentflow.ui.overview import latest_documents, short_list, usage, usage_text  # noqa: E402
from agentflow.ui.render import error_dict, show_error, show_problems  # noqa: E402
from agentflow.ui.widgets import provider_inputs, show_check  # noqa: E402

KIND_LABELS = {"llm": "LLM", "image": "Image model", "db": "Database", "api": "HTTP API"}

ctx = page.setup_page(
    "Sources", "The models, databases and APIs workflows call. Secrets are stored encrypted and never shown."
)
store = ctx.store
can_register = ctx.can("register")

sources = store.list_sources()
secret_names = [s["name"] for s in store.list_secrets()]
used = usage(latest_documents(store), "source")


sources_tab, secrets_tab = st.tabs([":material/cable: Sources", ":material/key: Secrets"])

with sources_tab:
    flash = st.session_state.pop("src_flash", None)
    if flash:
        st.success(flash, icon=":material/check_circle:")
    if not sources:
        st.info(
            "No sources registered yet. Add one below; workflows then name it by its id.",
            icon=":material/auto_awesome:",
        )
    else:
        st.dataframe(
            [
                {
                    "id": s.id,
                    "kind": KIND_LABELS.get(s.kind, s.kind),
                    "provider": s.provider,
                    "offline": not getattr(provider_class(s.kind, s.provider), "networked", True),
                    "used by": usage_text(used.get(s.id, [])) or "—",
                    "description": s.description or "",
                }
                for s in sources
            ],
            hide_index=True,
            width="stretch",
        )
        by_id = {s.id: s for s in sources}
        sel_col, test_col, edit_col, del_col = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
        if st.session_state.get("src_select_next") in by_id:
            st.session_state["src_selected"] = st.session_state.pop("src_select_next")
        chosen = sel_col.selectbox("Source", list(by_id), key="src_selected")
        spec = by_id[chosen]
        if test_col.button("Test connection", key="src_test", type="primary", width="stretch"):
            with st.spinner(f"Testing {chosen}…"):
                st.session_state["src_check"] = (chosen, check_source(spec, workspace=store))
        if edit_col.button("Edit", key="src_edit", width="stretch", disabled=not can_register):
            st.session_state["src_kind"] = spec.kind
            st.session_state["src_provider"] = spec.provider
            st.session_state["src_editing"] = spec.id
        users = used.get(chosen, [])
        if del_col.button("Delete", key="src_delete", width="stretch", disabled=not can_register):
            store.delete_source(chosen)
            st.toast(f"Deleted source {chosen}", icon=":material/delete:")
            st.rerun()
        checked = st.session_state.get("src_check")
        if checked and checked[0] == chosen:
            show_check(checked[1])
        detail, who = st.columns([3, 2])
        with detail:
            st.markdown(f"**{KIND_LABELS.get(spec.kind, spec.kind)} · {spec.provider}**")
            st.json(spec.config or {}, expanded=True)
        with who:
            st.markdown("**Used by**")
            if not users:
                st.caption("No workflow names this source yet.")
            for u in users:
                own = " (defines its own copy, which wins)" if u["inline"] else ""
                st.markdown(f"- **{u['workflow']}**: nodes {short_list(u['nodes'])}{own}")

    st.divider()
    editing = st.session_state.get("src_editing")
    current = store.get_source(editing) if editing else None
    st.subheader(f"Edit source {editing}" if current else "Add a source")
    k_col, p_col = st.columns(2)
    kind = k_col.selectbox("Kind", list(KINDS), key="src_kind", format_func=lambda k: KIND_LABELS.get(k, k))
    names = provider_names(kind)
    if st.session_state.get("src_provider") not in names:
        st.session_state["src_provider"] = names[0] if names else None
    provider = p_col.selectbox("Provider", names, key="src_provider")
    cls = provider_class(kind, provider) if provider else None
    if cls is not None:
        st.caption(
            (
                ":material/public: Calls the network"
                if cls.networked
                else ":material/wifi_off: Offline: needs no key and no network"
            )
            + (f" · {(cls.__doc__ or '').strip().splitlines()[0]}" if cls.__doc__ else "")
        )
    fields = provider_form(kind, provider) if provider else []
    existing = dict(current.config) if current and current.kind == kind and current.provider == provider else None
    prefix = f"src_f_{editing or 'new'}_{kind}_{provider}_"
    with st.form(f"src_form_{editing or 'new'}_{kind}_{provider}"):
        id_col, desc_col = st.columns([1, 2])
        source_id = id_col.text_input(
            "Id *",
            value=editing or "",
            key=prefix + "id",
            disabled=bool(current),
            help="A slug: lowercase letters, digits, - and _. Workflows name the source by it.",
        )
        description = desc_col.text_input(
            "Description", value=(current.description or "") if current else "", key=prefix + "description"
        )
        values, new_secrets = provider_inputs(fields, existing, prefix, secret_names)
        b1, b2, _ = st.columns([1, 1, 3])
        save = b1.form_submit_button(
            ":material/save: Save source", key="src_save", type="primary", disabled=not can_register
        )
        test = b2.form_submit_button("Test connection", key="src_try")

    if save or test:
        problems = []
        for fname, (name, _value) in new_secrets.items():
            if not name.strip():
                problems.append({"path": f"config.{fname}", "message": "give the new secret a name"})
            elif test:
                problems.append({"path": f"config.{fname}", "message": "save the source to store the new secret first"})
            else:
                values[fname] = name.strip()
        config, more = collect_config(fields, values)
        problems += more
        if not problems:
            problems += validate_config(kind, provider, config)
        doc = {"id": source_id.strip(), "kind": kind, "provider": provider, "config": config}
        if description.strip():
            doc["description"] = description.strip()
        if not source_id.strip():
            problems.insert(0, {"path": "id", "message": "give the source an id"})
        if problems:
            st.error("The source has problems:")
            show_problems(problems)
        elif test:
            with st.spinner("Testing the connection…"):
                try:
                    show_check(check_source(doc, workspace=store))
                except AgentFlowError as exc:
                    show_error(error_dict(exc))
        else:
            try:
                for name, value in new_secrets.values():
                    store.set_secret(name.strip(), value)  # stored encrypted; never shown again
                saved = store.put_source(doc)
            except AgentFlowError as exc:
                show_error(error_dict(exc), title="Not saved")
                if getattr(exc, "errors", None):
                    show_problems(exc.errors)
            else:
                st.session_state.pop("src_editing", None)
                st.session_state["src_flash"] = f"Saved source **{saved.id}** ({saved.kind} / {saved.provider})."
                st.session_state["src_select_next"] = saved.id
                st.rerun()
    if editing and st.button("Cancel editing", key="src_cancel_edit"):
        st.session_state.pop("src_editing", None)
        st.rerun()

with secrets_tab:
    st.markdown(
        "Secrets are stored encrypted. Their values are **write-only**: nobody sees them again here, "
        "in logs or in exports. Sources name them with `<field>_secret`."
    )
    secrets = store.list_secrets()
    if not secrets:
        st.info("No secrets stored yet.", icon=":material/key:")
    for s in secrets:
        c1, c2, c3, c4 = st.columns([2, 2, 2, 1], vertical_alignment="center")
        c1.markdown(f"`{s['name']}`")
        c2.markdown("••••••••")
        c3.caption(f"updated {s.get('updated_at') or '?'}")
        if c4.button("Delete", key=f"src_secret_del_{s['name']}", disabled=not can_register):
            store.delete_secret(s["name"])
            st.rerun()
    with st.form("src_secret_form", clear_on_submit=True):
        st.markdown("**Store a secret**")
        n_col, v_col = st.columns(2)
        name = n_col.text_input("Name", key="src_secret_name", placeholder="OPENAI_API_KEY")
        value = v_col.text_input("Value (write-only)", type="password", key="src_secret_value")
        stored = st.form_submit_button(
            "Store encrypted", key="src_secret_store", type="primary", disabled=not can_register
        )
    if stored:
        if not name.strip() or not value:
            st.error("Give the secret a name and a value.")
        else:
            try:
                store.set_secret(name.strip(), value)
            except AgentFlowError as exc:
                show_error(error_dict(exc), title="Not stored")
            else:
                st.success(
                    f'Stored secret **{name.strip()}** (encrypted). Use it as `"api_key_secret": "{name.strip()}"`.'
                )
