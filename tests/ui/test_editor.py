"""The Editor's buffers, validation annotations and conflict-aware saving."""

from __future__ import annotations

import pytest

from agentflow import check_workflow
from agentflow.errors import ConflictError
from agentflow.ui import editor


@pytest.fixture
def saved(store, examples_dir):
    store.save_workflow((examples_dir / "triage.json").read_text(), author="ann", message="first")
    return store


def test_buffer_loads_the_latest_version_once(saved):
    state: dict = {}
    buf = editor.buffer_for(state, saved, "triage-demo")
    assert buf.base_version == 1 and not buf.dirty and '"triage-demo"' in buf.text
    buf.text += " "
    assert editor.buffer_for(state, saved, "triage-demo") is buf and buf.dirty
    new = editor.buffer_for(state, saved, None)
    assert new.base_version == 0 and new.workflow_id is None and check_workflow(new.text).ok


def test_editor_values_are_taken_once_and_blank_start_is_ignored(saved):
    buf = editor.buffer_for({}, saved, "triage-demo")
    assert not editor.take_editor_value(buf, {"id": "", "type": "", "text": ""})
    assert not editor.take_editor_value(buf, None)
    assert editor.take_editor_value(buf, {"id": "e1", "type": "change", "text": "{}"})
    assert buf.text == "{}"
    assert not editor.take_editor_value(buf, {"id": "e1", "type": "change", "text": "{}"})


def test_replace_changes_the_editor_key(saved):
    buf = editor.buffer_for({}, saved, "triage-demo")
    key = buf.editor_key
    buf.replace("{}")
    assert buf.editor_key != key and buf.shown == "{}" and key.startswith(editor.EDITOR_KEY_PREFIX)


def test_annotations_carry_rows_and_messages():
    report = check_workflow('{\n  "id": "x",\n  "nodes": [\n}')
    notes = editor.annotations(report)
    assert notes == [{"row": 3, "column": 0, "type": "error", "text": "$: " + report.errors[0]["message"]}]


def test_save_makes_a_new_version_on_its_base(saved):
    state: dict = {}
    buf = editor.buffer_for(state, saved, "triage-demo")
    buf.text = buf.text.replace('"Triage demo"', '"Triage demo 2"')
    assert editor.save(buf, saved, author="ann", message="rename") == 2
    assert not buf.dirty and buf.base_version == 2
    assert saved.get_workflow("triage-demo")["message"] == "rename"


def test_a_stale_save_keeps_both_texts_and_can_be_resolved(saved):
    buf = editor.buffer_for({}, saved, "triage-demo")
    other = saved.get_workflow("triage-demo")["document"]
    other["name"] = "Theirs"
    saved.save_workflow(other, author="bob", message="theirs", base_version=1)
    buf.text = buf.text.replace('"Triage demo"', '"Mine"')
    with pytest.raises(ConflictError):
        editor.save(buf, saved, author="ann", message="mine")
    c = buf.conflict
    assert c["latest_version"] == 2 and '"Theirs"' in c["theirs"] and '"Mine"' in c["mine"]
    assert saved.list_drafts("triage-demo")
    editor.keep_mine(buf)
    assert editor.save(buf, saved, author="ann", message="mine wins") == 3


def test_take_theirs_loads_the_latest(saved):
    buf = editor.buffer_for({}, saved, "triage-demo")
    saved.save_workflow(saved.get_workflow("triage-demo")["document"] | {"name": "Theirs"}, author="bob")
    buf.text = buf.text.replace('"Triage demo"', '"Mine"')
    with pytest.raises(ConflictError):
        editor.save(buf, saved, author="ann", message=None)
    editor.take_theirs(buf)
    assert '"Theirs"' in buf.text and buf.base_version == 2 and not buf.dirty and buf.conflict is None


def test_a_new_workflow_is_filed_under_its_id_after_saving(store):
    state: dict = {}
    buf = editor.buffer_for(state, store, None)
    assert editor.save(buf, store, author="ann", message="new") == 1
    editor.adopt(state, buf)
    assert list(editor.buffers(state)) == ["my-workflow"]
    # Changing the id of a saved workflow saves a copy under the new id.
    buf.text = buf.text.replace('"my-workflow"', '"my-copy"')
    assert editor.save(buf, store, author="ann", message="copy") == 1
    assert editor.document_id(buf.text) == "my-copy" and editor.document_id("{") is None


def test_formatting_keeps_the_document_as_written():
    assert editor.formatted('{"id":"x","nodes":[]}') == '{\n  "id": "x",\n  "nodes": []\n}\n'
    assert editor.formatted("{nope") is None
