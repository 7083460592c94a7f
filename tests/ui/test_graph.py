"""The graph view's model: levels, colours by type and status, edge labels, agraph objects."""

from __future__ import annotations

import json

from agentflow.ui.graph import (
    END_ID,
    NodeStatus,
    graph_model,
    legend_html,
    levels,
    node_details,
    to_agraph,
    vis_options,
)
from agentflow.ui.theme import NODE_STYLES, STATUS_COLORS


def _doc(examples_dir, name: str) -> dict:
    return json.loads((examples_dir / name).read_text())


def test_levels_follow_the_longest_path_and_ignore_loop_back_edges():
    edges = [("a", "b", None), ("b", "c", None), ("a", "c", None), ("c", "b", "again")]
    assert levels("a", ["a", "b", "c"], edges) == {"a": 0, "b": 1, "c": 2}


def test_unreachable_nodes_still_get_a_place():
    lv = levels("a", ["a", "b", "x", "y"], [("a", "b", None), ("x", "y", None)])
    assert lv["x"] == 0 and lv["y"] == 1


def test_nodes_coloured_and_shaped_by_type(examples_dir):
    model = graph_model(_doc(examples_dir, "triage.json"))
    by_id = {n["id"]: n for n in model.nodes}
    assert by_id["router"]["shape"] == NODE_STYLES["router"].shape
    assert by_id["answer"]["color"]["background"] == NODE_STYLES["llm"].color
    assert by_id["lookup"]["shape"] == "database"
    assert by_id["input"]["level"] == 0 and by_id["router"]["level"] == 1 and by_id["agg"]["level"] == 3
    assert by_id[END_ID]["level"] == 4
    assert model.types == ["input", "router", "llm", "image", "db", "aggregator"]


def test_when_edges_are_labelled_and_the_fallback_is_dashed(examples_dir):
    model = graph_model(_doc(examples_dir, "triage.json"))
    labels = {(e["from"], e["to"]): e.get("label") for e in model.edges}
    assert labels[("router", "draw")] == "image"
    assert labels[("router", "lookup")] == "db"
    fallback = [e for e in model.edges if e.get("label") == "otherwise"]
    assert fallback and fallback[0]["dashes"] is True
    assert labels[("input", "router")] is None


def test_loop_back_edge_is_curved(examples_dir):
    model = graph_model(_doc(examples_dir, "refine_loop.json"))
    back = [e for e in model.edges if e["from"] == "check" and e["to"] == "refine"]
    assert back[0]["smooth"]["type"] == "curvedCW"


def test_statuses_fill_nodes_and_unreached_nodes_show_pending_or_skipped(examples_dir):
    doc = _doc(examples_dir, "triage.json")
    statuses = {"input": NodeStatus("succeeded", 0.2, 1), "router": NodeStatus("running")}
    during = {n["id"]: n for n in graph_model(doc, statuses).nodes}
    assert during["input"]["color"]["background"] == STATUS_COLORS["succeeded"]
    assert during["input"]["color"]["border"] == NODE_STYLES["input"].color  # the type stays visible
    assert "0.2 ms" in during["input"]["label"]
    assert during["router"]["status"] == "running"
    assert during["draw"]["status"] == "pending"
    after = {n["id"]: n for n in graph_model(doc, statuses, run_finished=True).nodes}
    assert after["draw"]["status"] == "skipped"
    assert after["draw"]["shapeProperties"]["borderDashes"]


def test_failed_node_is_red(examples_dir):
    doc = _doc(examples_dir, "triage.json")
    nodes = {n["id"]: n for n in graph_model(doc, {"answer": NodeStatus("failed", 3.0, 1, "boom")}).nodes}
    assert nodes["answer"]["color"]["background"] == STATUS_COLORS["failed"]


def test_half_written_documents_still_draw():
    doc = {
        "nodes": [{"id": "a", "type": "input"}, {"type": "llm"}, "junk", {"id": "b", "type": "mystery"}],
        "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "nowhere"}, 3],
    }
    model = graph_model(doc)
    assert [n["id"] for n in model.nodes] == ["a", "b"]
    assert len(model.edges) == 1
    assert graph_model({}).nodes == []


def test_to_agraph_is_hierarchical_left_to_right_without_physics(examples_dir):
    nodes, edges, config = to_agraph(graph_model(_doc(examples_dir, "fanout.json")))
    assert {n.id for n in nodes} >= {"input", "outline", "report"}
    assert all(n.title == "" for n in nodes)
    data = config.to_dict()
    assert data["layout"]["hierarchical"]["direction"] == "LR"
    assert data["layout"]["hierarchical"]["enabled"] is True
    assert data["layout"]["randomSeed"] == 42
    assert data["physics"] == {"enabled": False}
    assert data["groups"] == {}
    assert all(e.color == "#64748b" for e in edges)
    json.dumps(data)  # what the component receives


def test_vis_options_tighten_for_big_graphs():
    assert vis_options(node_count=200)["layout"]["hierarchical"]["edgeMinimization"] is False
    assert vis_options(node_count=10)["layout"]["hierarchical"]["nodeSpacing"] == 90


def test_legend_lists_types_and_statuses_escaped():
    html = legend_html(["llm", "<b>x</b>"], statuses=["failed"])
    assert NODE_STYLES["llm"].color in html and "&lt;b&gt;" in html and STATUS_COLORS["failed"] in html


def test_node_details_name_source_queue_and_router_intents(examples_dir):
    doc = _doc(examples_dir, "triage.json")
    router = node_details(doc, "router")
    assert router["intents"] == ["image", "db", "text"]
    assert {e["to"] for e in router["edges_out"]} == {"answer", "draw", "lookup"}
    answer = node_details(doc, "answer")
    assert answer["source"]["provider"] == "echo"
    doc["nodes"][2]["queue"] = "shared-q"
    assert node_details(doc, "answer")["queue"] == {"id": "shared-q", "registered": True}
