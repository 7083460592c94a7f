"""Demo mode: an empty store is seeded once with the offline examples."""

from __future__ import annotations

from agentflow import run_workflow
from agentflow.ui.seed import DEMO_QUEUE, is_offline, load_examples, sample_input, seed_demo


def test_examples_are_sorted_offline_first(examples_dir):
    examples = load_examples(examples_dir)
    offline = [e.id for e in examples if e.offline]
    assert {"triage-demo", "research-fanout", "refine-loop"} <= set(offline)
    assert not is_offline({"sources": [{"kind": "llm", "provider": "openai"}], "nodes": [{}]})
    assert examples[0].offline and not examples[-1].offline


def test_seed_fills_an_empty_store_once(store, examples_dir):
    result = seed_demo(store, load_examples(examples_dir))
    assert result.seeded and "triage-demo" in result.workflows and "openai-chat" not in result.workflows
    assert {"echo", "sketch", "shop"} <= set(result.sources)
    assert store.get_queue(DEMO_QUEUE["id"]) is not None
    assert store.get_workflow("triage-demo")["author"] == "demo"
    again = seed_demo(store, load_examples(examples_dir))
    assert not again.seeded
    assert len(store.list_versions("triage-demo")) == 1


def test_seeded_workflows_run_offline(store, examples_dir):
    seed_demo(store, load_examples(examples_dir))
    for wf in ("triage-demo", "research-fanout", "refine-loop"):
        doc = store.get_workflow(wf)["document"]
        state = run_workflow(doc, {"user_input": sample_input(wf)}, workspace=store)
        assert state["metadata"]["status"] == "succeeded"


def test_a_store_in_use_is_left_alone(store, examples_dir):
    store.put_queue({"id": "mine"})
    assert not seed_demo(store, load_examples(examples_dir)).seeded
    assert store.list_workflows() == []


def test_sample_inputs_come_from_the_example_or_its_description():
    assert sample_input("triage-demo") == "img: a red fox"
    assert sample_input("my-copy", 'Routes things. Runs offline: try "sql: lamp" or any question.') == "sql: lamp"
    assert sample_input("other", "no hint") == "Hello! What can you do?"
