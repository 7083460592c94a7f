"""Version diffs: a canonical line diff and a list of named changes."""

from __future__ import annotations

import json

from agentflow.ui.diff import changes, pretty, unified_diff


def test_formatting_alone_is_no_difference():
    a = '{"id": "x", "nodes": [], "edges": []}'
    b = json.dumps(json.loads(a), indent=4)
    assert unified_diff(a, b) == ""
    assert changes(a, b) == []


def test_line_diff_and_named_changes(examples_dir):
    old = json.loads((examples_dir / "triage.json").read_text())
    new = json.loads(json.dumps(old))
    new["nodes"][2]["config"]["prompt"] = "Answer: {user_input}"
    new["nodes"].append({"id": "extra", "type": "aggregator"})
    new["edges"].append({"from": "agg", "to": "extra"})
    new["edges"] = [e for e in new["edges"] if not (e["from"] == "router" and e["to"] == "lookup")]
    new["name"] = "Renamed"
    diff = unified_diff(old, new, old_label="v1", new_label="v2")
    assert diff.startswith("--- v1\n+++ v2") and '+        "prompt": "Answer: {user_input}"' in diff
    found = {(c["what"], c["id"], c["change"]) for c in changes(old, new)}
    assert ("node", "answer", "changed: config") in found
    assert ("node", "extra", "added") in found
    assert ("edge", "agg -> extra", "added") in found
    assert ("edge", "router -> lookup when db", "removed") in found
    assert ("field", "name", "changed") in found


def test_pretty_keeps_invalid_text_as_it_is():
    assert pretty("{oops") == "{oops"
    assert changes("[]", {"id": "x"}) == [{"what": "field", "id": "id", "change": "added"}]
