"""The six-node workload shared by the engine and batch benchmarks (issues 2 and 10).

input -> router -> draft (llm) -> answer (llm) -> agg -> done, the two llm nodes waiting
50 ms each on the offline ``echo`` provider; and the same graph written by hand in raw
LangGraph (async nodes sleeping 50 ms, an async router like AgentFlow's, so neither side
pays a thread hop per routing decision).

Not named ``six.py``: a script in ``bench/`` runs with ``bench/`` first on ``sys.path``,
where such a module hides PyPI's ``six`` (which Celery imports through dateutil).
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph


def six_doc(workflow_id: str = "fleet-six", latency_ms: float = 50) -> dict[str, Any]:
    """The workflow document (the batch tests use it too, with their own latency)."""
    return {
        "id": workflow_id,
        "sources": [{"id": "model", "kind": "llm", "provider": "echo", "config": {"latency_ms": latency_ms}}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "router", "type": "router"},
            {"id": "draft", "type": "llm", "source": "model", "config": {"prompt": "{user_input}", "output_key": "draft"}},
            {"id": "answer", "type": "llm", "source": "model", "config": {"prompt": "{draft}"}},
            {"id": "agg", "type": "aggregator", "config": {"fields": {"text": "text_result"}}},
            {"id": "done", "type": "aggregator", "config": {"fields": {"final": "final_output"}, "output_key": "result"}},
        ],
        "edges": [
            {"from": "input", "to": "router"},
            {"from": "router", "to": "draft", "when": "*"},
            {"from": "draft", "to": "answer"},
            {"from": "answer", "to": "agg"},
            {"from": "agg", "to": "done"},
        ],
    }


class RawSix(TypedDict, total=False):
    user_input: str
    intent: str
    draft: str
    text_result: str
    final_output: Any
    result: Any


def raw_six() -> Any:
    """The hand-written raw LangGraph graph of the same workflow, compiled."""

    async def inp(s):
        return {}

    async def router(s):
        return {"intent": "image" if s["user_input"].startswith("img:") else "text"}

    async def draft(s):
        await asyncio.sleep(0.05)
        return {"draft": s["user_input"]}

    async def answer(s):
        await asyncio.sleep(0.05)
        return {"text_result": s["draft"]}

    async def agg(s):
        return {"final_output": {"text": s["text_result"]}}

    async def done(s):
        return {"result": {"final": s["final_output"]}}

    async def route(s):
        return "draft"

    g = StateGraph(RawSix)
    for name, fn in [("input", inp), ("router", router), ("draft", draft), ("answer", answer), ("agg", agg),
                     ("done", done)]:
        g.add_node(name, fn)
    g.add_edge(START, "input")
    g.add_edge("input", "router")
    g.add_conditional_edges("router", route, ["draft"])
    g.add_edge("draft", "answer")
    g.add_edge("answer", "agg")
    g.add_edge("agg", "done")
    g.add_edge("done", END)
    return g.compile()
