"""Builder: a validated spec -> a compiled LangGraph graph (spec sections 4, 5, 7).

- Nodes are added with wrappers from :mod:`agentflow.runtime.node_runner`.
- A router's edges become one conditional edge keyed by its intent, ``"*"`` the fallback;
  an intent with neither is an ``ExecutionError``. Several targets for one intent fan out.
- Several unconditional edges out of a node fan out (LangGraph runs them in one step).
- A node with several predecessors (a fan-in, such as an aggregator) is added with
  ``defer=True``, so it runs once after every branch that was taken, whatever their length.
- Nodes with no outgoing edge, and edges to ``END``, finish the run.

Compiled graphs are immutable and safe to share between threads, so they are cached per
spec content (and per extra state keys a run brings); a run pays only for invoking.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import END as LG_END
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agentflow.errors import ExecutionError
from agentflow.nodes.base import NodeType
from agentflow.nodes.registry import node_class
from agentflow.runtime.context import RunContext
from agentflow.runtime.node_runner import make_node
from agentflow.runtime.state import state_schema
from agentflow.runtime.workspace import Workspace
from agentflow.spec.models import END, WorkflowSpec
from agentflow.spec.validate import validate_workflow


class CompiledWorkflow:
    """A spec with its node implementations and its compiled graphs (one per key set)."""

    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self.nodes: dict[str, NodeType] = {}
        for node in spec.nodes:
            cls = node_class(node.type)
            if cls is None:  # validation makes this unreachable; keep the message clear anyway
                raise ExecutionError(f'node "{node.id}": unknown node type "{node.type}"', node=node.id)
            self.nodes[node.id] = cls(node, cls.Config.model_validate(node.config))
        keys: set[str] = {"errors"} if any(n.on_error == "continue" for n in spec.nodes) else set()
        for impl in self.nodes.values():
            keys.update(impl.written_keys())
            keys.update(impl.read_keys())
            for _, template in impl.templates():
                keys.update(template.root_keys)
        self.keys = frozenset(keys)
        self.predecessors: dict[str, set[str]] = {n: set() for n in self.nodes}
        for e in spec.edges:
            if e.to != END:
                self.predecessors[e.to].add(e.from_)
        self._graphs: dict[tuple[frozenset[str], int], tuple[CompiledStateGraph, Any]] = {}
        self._lock = threading.Lock()

    def graph(
        self, extra_keys: Iterable[str] = (), checkpointer: Any = None, *, cache: bool = True
    ) -> CompiledStateGraph:
        """The compiled graph declaring also ``extra_keys``, cached per key set and
        checkpointer (plain runs have none; sync debug runs share the store's long-lived
        saver). Pass ``cache=False`` for a short-lived checkpointer (async savers)."""
        extra = frozenset(k for k in extra_keys if k not in self.keys)
        if not cache:
            return self._build(extra).compile(checkpointer=checkpointer)
        key = (extra, id(checkpointer))
        found = self._graphs.get(key)
        if found is None:
            with self._lock:
                found = self._graphs.get(key)
                if found is None:
                    # the saver is kept with its graph, so its id cannot be reused meanwhile
                    found = (self._build(extra).compile(checkpointer=checkpointer), checkpointer)
                    if len(self._graphs) < 64:
                        self._graphs[key] = found
        return found[0]

    def _build(self, extra: frozenset[str]) -> StateGraph:
        spec = self.spec
        builder = StateGraph(state_schema(self.keys | extra), context_schema=RunContext)
        for node in spec.nodes:
            fan_in = len(self.predecessors[node.id]) > 1
            builder.add_node(node.id, make_node(self.nodes[node.id], spec), defer=fan_in)
        builder.add_edge(START, spec.entry_node)
        outgoing: dict[str, list[Any]] = {n.id: [] for n in spec.nodes}
        for e in spec.edges:
            outgoing[e.from_].append(e)
        for node_id, edges in outgoing.items():
            impl = self.nodes[node_id]
            if not edges:
                builder.add_edge(node_id, LG_END)
            elif impl.is_router:
                route, targets = _router(node_id, impl.output_key or "intent", edges)
                builder.add_conditional_edges(node_id, route, targets)
            else:
                for target in dict.fromkeys(_target(e.to) for e in edges):
                    builder.add_edge(node_id, target)
        return builder


def _target(node_id: str) -> str:
    return LG_END if node_id == END else node_id


def _router(router_id: str, key: str, edges: list[Any]) -> tuple[Any, list[str]]:
    """The routing function of a router and every node it can lead to."""
    by_intent: dict[str, list[str]] = {}
    for e in edges:
        targets = by_intent.setdefault(e.when, [])
        if _target(e.to) not in targets:
            targets.append(_target(e.to))
    fallback = by_intent.pop("*", None)
    choices = sorted(by_intent)

    def route(state: dict[str, Any]) -> list[str]:
        intent = state.get(key)
        targets = by_intent.get(intent) if isinstance(intent, str) else None
        if targets is None:
            targets = fallback
        if targets is None:
            raise ExecutionError(
                f'router "{router_id}": intent {intent!r} has no edge and there is no "*" fallback; '
                f'add an edge with "when": {intent!r} (edges exist for {", ".join(map(repr, choices))}) '
                'or one with "when": "*"',
                node=router_id,
            )
        return targets

    async def aroute(state: dict[str, Any]) -> list[str]:
        return route(state)

    route.__name__ = f"route_{router_id}"
    every = list(dict.fromkeys(t for ts in [*by_intent.values(), fallback or []] for t in ts))
    # With only a sync function, LangGraph would run each routing decision of an async run
    # in a worker thread; the async twin keeps async runs on their event loop.
    return RunnableCallable(route, aroute, name=route.__name__, trace=False), every


_cache: OrderedDict[str, CompiledWorkflow] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 128


def compile_workflow(spec: WorkflowSpec) -> CompiledWorkflow:
    """The (cached) compiled form of a validated spec; keyed by content, so equal documents
    share one build and an edited document gets a new one."""
    key = spec.fingerprint
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    built = CompiledWorkflow(spec)
    with _cache_lock:
        found = _cache.setdefault(key, built)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def build_graph_from_json(spec: Any, *, workspace: Workspace | None = None) -> CompiledStateGraph:
    """The seed's builder: a spec (or document, JSON text, path) -> a compiled LangGraph graph.

    The graph runs on its own (``graph.invoke({"user_input": "hi"})``); run it through
    :func:`agentflow.run_workflow` to get traces, queues, events and run history.
    """
    return compile_workflow(validate_workflow(spec, workspace=workspace)).graph()
