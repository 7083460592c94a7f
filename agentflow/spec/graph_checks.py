"""Checks on the workflow as a graph: reachability, exits from cycles, parallel writes.

Pure functions over plain adjacency data, so they stay fast on 1,000-node workflows and
are testable without building anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentflow.spec.models import END


@dataclass(frozen=True)
class Edge:
    index: int
    src: str
    dst: str
    when: str | None


def successors(edges: Iterable[Edge]) -> dict[str, list[Edge]]:
    out: dict[str, list[Edge]] = {}
    for e in edges:
        out.setdefault(e.src, []).append(e)
    return out


def reachable(start: str, succ: dict[str, list[Edge]]) -> set[str]:
    """Nodes reachable from ``start`` (itself included), following every edge."""
    seen = {start}
    stack = [start]
    while stack:
        for e in succ.get(stack.pop(), ()):
            if e.dst not in seen:
                seen.add(e.dst)
                stack.append(e.dst)
    return seen


def strongly_connected(nodes: list[str], succ: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's SCCs (iterative, so deep graphs do not hit Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            outs = [e.dst for e in succ.get(node, ()) if e.dst != END]
            if i < len(outs):
                work.append((node, i + 1))
                nxt = outs[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def cycles_without_exit(nodes: list[str], succ: dict[str, list[Edge]]) -> list[list[str]]:
    """Cycles no conditional edge can leave (each as its nodes in document order)."""
    order = {n: i for i, n in enumerate(nodes)}
    bad = []
    for comp in strongly_connected(nodes, succ):
        members = set(comp)
        is_cycle = len(comp) > 1 or any(e.dst == comp[0] for e in succ.get(comp[0], ()))
        if not is_cycle:
            continue
        exits = [e for n in comp for e in succ.get(n, ()) if e.dst not in members and e.when is not None]
        if not exits:
            bad.append(sorted(comp, key=order.__getitem__))
    return bad


def fan_out_groups(succ: dict[str, list[Edge]], routers: set[str]) -> list[list[str]]:
    """Sets of targets that start together: a node's unconditional edges, or a router's
    edges sharing one ``when``."""
    groups = []
    for src, edges in succ.items():
        by_when: dict[str | None, list[str]] = {}
        for e in edges:
            if e.dst == END:
                continue
            key = e.when if src in routers else None
            targets = by_when.setdefault(key, [])
            if e.dst not in targets:
                targets.append(e.dst)
        groups.extend(t for t in by_when.values() if len(t) > 1)
    return groups


def parallel_conflicts(
    succ: dict[str, list[Edge]], routers: set[str], writers: dict[str, set[str]]
) -> list[tuple[str, str, str]]:
    """(node, node, key) for two nodes on different branches of one fan-out, before the
    branches join, that both write ``key`` (``writers``: key -> nodes writing it)."""
    found: set[tuple[str, str, str]] = set()
    cache: dict[str, set[str]] = {}
    shared = {k: w for k, w in writers.items() if len(w) > 1}
    if not shared:
        return []

    def reach(n: str) -> set[str]:
        if n not in cache:
            cache[n] = reachable(n, succ) - {END}
        return cache[n]

    for targets in fan_out_groups(succ, routers):
        for i, a in enumerate(targets):
            for b in targets[i + 1 :]:
                ra, rb = reach(a), reach(b)
                only_a, only_b = ra - rb, rb - ra
                for key, nodes in shared.items():
                    for x in nodes & only_a:
                        for y in nodes & only_b:
                            found.add((min(x, y), max(x, y), key))
    return sorted(found)
