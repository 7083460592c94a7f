"""Editor: a workflow's JSON with line numbers, problems as you type, versions, diff, restore."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

try:  # streamlit-code-editor (Ace, offline); a plain text area if it is not installed
    from code_editor import code_editor
except ImportError:  # pragma: no cover
    code_editor = None

from agentflow import check_workflow  # noqa: E402
from agentflow.errors import AgentFlowError  # noqa: E402
from agentflow.ui import editor, page  # noqa: E402
from agentflow.ui.diff import changes, unified_diff  # noqa: E402
from agentflow.ui.render import error_dict, show_error, show_problems  # noqa: E402

ctx = page.setup_page("Editor", "Edit a workflow's JSON. Problems show as you type, with their path and line.")
store = ctx.store

pick, new = st.columns([4, 1], vertical_alignment="bottom")
with pick:
    wf_id = page.workflow_picker(store, "ed_wf", on_change=lambda: st.session_state.pop("ed_new", None))
with new:
    if st.button(":material/add: New workflow", key="ed_new_btn", width="stretch", disabled=not ctx.can("save")):
        st.session_state["ed_new"] = True
new_mode = bool(st.session_state.get("ed_new")) or wf_id is None
if new_mode and wf_id is not None and st.button("Back to the saved workflows", key="ed_new_cancel"):
    st.session_state.pop("ed_new", None)
    st.rerun()
buf = editor.buffer_for(st.session_state, store, None if new_mode else wf_id)

# What the editor sent since the last run (a widget keeps its value under its key).
if code_editor is not None:
    editor.take_editor_value(buf, st.session_state.get(buf.editor_key))
elif isinstance(st.session_state.get(buf.editor_key + "_text"), str):  # pragma: no cover
    editor.take_editor_value(buf, {"type": "change", "text": st.session_state[buf.editor_key + "_text"]})
report = check_workflow(buf.text, workspace=store)


def do_save() -> None:
    message = st.session_state.get("ed_message", "")
    try:
        version = editor.save(buf, store, author=ctx.principal.name, message=message)
    except AgentFlowError as exc:
        st.session_state["ed_flash"] = ("error", exc.to_dict())
        return
    editor.adopt(st.session_state, buf)
    page.set_focus(buf.workflow_id)
    st.session_state.pop("ed_new", None)
    st.session_state["ed_message"] = ""
    st.session_state["ed_flash"] = ("saved", f"Saved **{buf.workflow_id}** as version {version}.")


if buf.conflict:
    c = buf.conflict
    show_error(c["error"], title="Not saved")
    st.markdown(
        f"Someone saved **version {c['latest_version']}** while you were editing. Both texts are below; "
        "your text is also kept as a draft. Choose one, or merge by hand and save again."
    )
    theirs_col, mine_col = st.columns(2)
    with theirs_col:
        st.markdown(f"**Latest saved (version {c['latest_version']})**")
        st.code(c["theirs"], language="json", line_numbers=True, height=360)
    with mine_col:
        st.markdown("**Yours (not saved)**")
        st.code(c["mine"], language="json", line_numbers=True, height=360)
    with st.expander("What differs", expanded=True):
        st.code(
            unified_diff(c["theirs"], c["mine"], old_label="latest", new_label="yours") or "(no difference)",
            language="diff",
        )
    a, b, _ = st.columns([1, 1, 2])
    if a.button("Load theirs (drop mine)", key="ed_take_theirs"):
        editor.take_theirs(buf)
        st.rerun()
    if b.button(f"Keep mine (save over version {c['latest_version']})", key="ed_keep_mine"):
        editor.keep_mine(buf)
        st.rerun()

flash = st.session_state.pop("ed_flash", None)
if flash and flash[0] == "saved":
    st.success(flash[1], icon=":material/check_circle:")
elif flash and flash[0] == "error" and not buf.conflict:
    show_error(flash[1], title="Not saved")

left, right = st.columns([3, 2], gap="medium")
with left:
    title = buf.workflow_id or "new workflow"
    state = "unsaved changes" if buf.dirty else (f"version {buf.base_version}" if buf.base_version else "not saved yet")
    st.markdown(f"**{title}** · {state}")
    if code_editor is not None:
        code_editor(
            buf.shown or "",
            lang="json",
            height=[22, 36],
            options={"showLineNumbers": True, "useWorker": False, "tabSize": 2, "wrap": True},
            props={"annotations": editor.annotations(report)},
            response_mode="debounce",
            key=buf.editor_key,
        )
    else:
        st.text_area("Workflow JSON", value=buf.shown or "", height=600, key=buf.editor_key + "_text")
    st.caption("Changes are checked when you stop typing (or press Ctrl+Enter). Problems are marked in the gutter.")
    tools = st.columns(3)
    formatted = editor.formatted(buf.text)
    if tools[0].button("Format JSON", key="ed_format", width="stretch", disabled=formatted in (None, buf.text)):
        buf.replace(formatted or buf.text)
        st.rerun()
    tools[1].download_button(
        ":material/download: Export JSON",
        data=buf.text,
        file_name=f"{editor.document_id(buf.text) or 'workflow'}.json",
        mime="application/json",
        key="ed_download",
        width="stretch",
    )
    if tools[2].button("Revert", key="ed_revert", width="stretch", disabled=not buf.dirty or not buf.saved_text):
        buf.replace(buf.saved_text)
        st.rerun()

with right:
    st.markdown("**Check**")
    if report.errors:
        st.error(f"{len(report.errors)} problem{'s' if len(report.errors) != 1 else ''} to fix before saving")
        show_problems(report.errors, report.warnings)
    else:
        spec = report.spec
        st.success(f"Valid: {len(spec.nodes)} nodes, {len(spec.edges)} edges" if spec else "Valid")
        if report.warnings:
            st.warning(f"{len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''} (saving is allowed)")
            show_problems([], report.warnings)
    with st.container(border=True):
        st.text_input("Message for this version", key="ed_message", placeholder="What changed, and why")
        can_save = ctx.can("save") and not report.errors and (buf.dirty or buf.base_version == 0)
        st.button(
            ":material/save: Save as new version",
            key="ed_save",
            type="primary",
            on_click=do_save,
            disabled=not can_save,
            width="stretch",
        )
        if not ctx.can("save"):
            st.caption("Your role can read workflows but not save them.")
        elif report.errors:
            st.caption("Fix the problems above to save.")
        elif not buf.dirty and buf.base_version:
            st.caption("No changes since the version loaded.")

if buf.workflow_id and not new_mode:
    versions_tab, drafts_tab = st.tabs([":material/history: Versions", ":material/inbox: Refused saves"])
    with versions_tab:
        versions = store.list_versions(buf.workflow_id)
        st.dataframe(
            versions,
            hide_index=True,
            width="stretch",
            column_config={"created_at": st.column_config.DatetimeColumn("saved", format="distance")},
        )
        numbers = [v["version"] for v in versions]
        if len(numbers) > 1:
            a, b = st.columns(2)
            old = a.selectbox("Compare version", numbers, index=1, key="ed_diff_a")
            new_v = b.selectbox("with version", numbers, index=0, key="ed_diff_b")
            old_doc = store.get_workflow(buf.workflow_id, old)["document"]
            new_doc = store.get_workflow(buf.workflow_id, new_v)["document"]
            listed = changes(old_doc, new_doc)
            if listed:
                st.dataframe(listed, hide_index=True, width="stretch")
                st.code(unified_diff(old_doc, new_doc, old_label=f"v{old}", new_label=f"v{new_v}"), language="diff")
            else:
                st.caption("These versions hold the same document.")
        else:
            st.caption("Only one version so far: save a change to compare versions.")
        r1, r2 = st.columns([1, 2], vertical_alignment="bottom")
        target = r1.selectbox("Restore version", numbers, key="ed_restore_v")
        if r2.button(f"Restore version {target} as a new version", key="ed_restore", disabled=not ctx.can("save")):
            try:
                version = store.restore_version(buf.workflow_id, target, author=ctx.principal.name)
            except AgentFlowError as exc:
                show_error(error_dict(exc))
            else:
                restored = store.get_workflow(buf.workflow_id, version)["document"]
                buf.replace(editor.pretty(restored), base_version=version, saved=True)
                st.session_state["ed_flash"] = ("saved", f"Restored version {target} as version {version}.")
                st.rerun()
    with drafts_tab:
        drafts = store.list_drafts(buf.workflow_id)
        if not drafts:
            st.caption("No refused saves. When someone else saves first, your text is kept here.")
        for d in drafts:
            with st.expander(f"Draft {d['draft_id']} by {d.get('author') or '?'} (on version {d['base_version']})"):
                st.code(editor.pretty(d["document"]), language="json", line_numbers=True)
                c1, c2 = st.columns(2)
                if c1.button("Load into the editor", key=f"ed_draft_load_{d['draft_id']}"):
                    buf.replace(editor.pretty(d["document"]))
                    st.rerun()
                if c2.button("Delete draft", key=f"ed_draft_del_{d['draft_id']}", disabled=not ctx.can("save")):
                    store.delete_draft(d["draft_id"])
                    st.rerun()
