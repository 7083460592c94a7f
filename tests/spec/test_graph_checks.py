"""Graph checks on plain adjacency data: reachability, SCCs, exits, fan-outs, parallel writes."""

from __future__ import annotations

import random
import sys

from agentflow.spec.graph_checks import (
    Edge,
    cycles_without_exit,
    fan_out_groups,
    parallel_conflicts,
    reachable,
    strongly_connected,
    successors,
)
from agentflow.spec.models import END


def graph(*pairs: tuple[str, str] | tuple[str, str, str]) -> dict[str, list[Edge]]:
    """Edges from (src, dst) or (src, dst, when) tuples."""
    edges = [Edge(i, p[0], p[1], p[2] if len(p) == 3 else None) for i, p in enumerate(pairs)]  # type: ignore[misc]
    return successors(edges)


def as_sets(components: list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(c) for c in components}


def test_successors_keeps_edge_order_per_node() -> None:
    succ = graph(("a", "b"), ("a", "c", "x"), ("b", "c"))
    assert [(e.dst, e.when, e.index) for e in succ["a"]] == [("b", None, 0), ("c", "x", 1)]
    assert [e.dst for e in succ["b"]] == ["c"]
    assert "c" not in succ


def test_reachable() -> None:
    succ = graph(("a", "b"), ("b", "c"), ("c", "a"), ("c", END), ("d", "a"))
    assert reachable("a", succ) == {"a", "b", "c", END}
    assert reachable("d", succ) == {"a", "b", "c", "d", END}
    assert reachable("lonely", succ) == {"lonely"}


def test_strongly_connected_components() -> None:
    succ = graph(("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("e", END), ("f", "f"))
    comps = strongly_connected(["a", "b", "c", "d", "e", "f", "g"], succ)
    assert as_sets(comps) == {frozenset("abc"), frozenset("de"), frozenset("f"), frozenset("g")}
    assert sum(len(c) for c in comps) == 7  # every node exactly once, END left out
    # Tarjan emits components in reverse topological order: sinks first
    order = [next(i for i, c in enumerate(comps) if n in c) for n in "adf"]
    assert order[1] < order[0]


def brute_force_sccs(nodes: list[str], succ: dict[str, list[Edge]]) -> set[frozenset[str]]:
    reach = {n: reachable(n, succ) for n in nodes}
    return {frozenset(m for m in nodes if m in reach[n] and n in reach[m]) for n in nodes}


def test_strongly_connected_matches_brute_force_on_random_graphs() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        nodes = [f"n{i}" for i in range(rng.randint(1, 9))]
        pairs = [(rng.choice(nodes), rng.choice([*nodes, END])) for _ in range(rng.randint(0, 16))]
        succ = graph(*pairs)
        comps = strongly_connected(nodes, succ)
        assert as_sets(comps) == brute_force_sccs(nodes, succ), pairs
        assert sorted(n for c in comps for n in c) == sorted(nodes)


def test_deep_chain_needs_no_recursion() -> None:
    n = 5000
    assert n > sys.getrecursionlimit()
    nodes = [f"n{i}" for i in range(n)]
    chain = graph(*[(nodes[i], nodes[i + 1]) for i in range(n - 1)])
    comps = strongly_connected(nodes, chain)
    assert len(comps) == n and all(len(c) == 1 for c in comps)
    assert cycles_without_exit(nodes, chain) == []
    loop = graph(*[(nodes[i], nodes[(i + 1) % n]) for i in range(n)])
    (one,) = strongly_connected(nodes, loop)
    assert len(one) == n
    (cycle,) = cycles_without_exit(nodes, loop)
    assert cycle == nodes  # reported in document order
    assert len(reachable("n0", loop)) == n


def test_cycles_without_exit() -> None:
    nodes = ["a", "b", "c", "d", "e"]
    # a <-> b is closed; c loops on itself; d <-> e has a router exit to END
    succ = graph(("a", "b"), ("b", "a"), ("c", "c"), ("d", "e"), ("e", "d", "again"), ("e", END, "done"))
    assert cycles_without_exit(nodes, succ) == [["a", "b"], ["c"]]


def test_an_unconditional_edge_out_is_no_exit() -> None:
    # b -> c is unconditional: the run always also goes back to a, so the loop never ends
    succ = graph(("a", "b"), ("b", "a"), ("b", "c"))
    assert cycles_without_exit(["a", "b", "c"], succ) == [["a", "b"]]


def test_a_conditional_edge_inside_the_cycle_is_no_exit() -> None:
    succ = graph(("r", "x", "again"), ("x", "r"))
    assert cycles_without_exit(["r", "x"], succ) == [["r", "x"]]
    succ = graph(("r", "x", "again"), ("x", "r"), ("r", "out", "done"))
    assert cycles_without_exit(["r", "x", "out"], succ) == []


def test_a_single_node_without_self_loop_is_not_a_cycle() -> None:
    assert cycles_without_exit(["a", "b"], graph(("a", "b"))) == []


def test_fan_out_groups() -> None:
    succ = graph(
        ("in", "a"), ("in", "b"), ("in", "a"), ("in", END),  # unconditional fan-out, duplicate and END ignored
        ("r", "x", "t"), ("r", "y", "t"), ("r", "z", "u"), ("r", END, "t"),  # a router's edges by when
        ("a", "c"),  # a single target is no group
    )
    groups = fan_out_groups(succ, routers={"r"})
    assert sorted(map(sorted, groups)) == [["a", "b"], ["x", "y"]]
    # the same edges from a node that is not a router all start together
    assert sorted(map(sorted, fan_out_groups(succ, routers=set()))) == [["a", "b"], ["x", "y", "z"]]


def test_parallel_conflicts_on_branches_before_they_join() -> None:
    # in -> a -> a2 -> join ; in -> b -> join ; join -> after
    succ = graph(("in", "a"), ("a", "a2"), ("a2", "join"), ("in", "b"), ("b", "join"), ("join", "after"))
    writers = {"k": {"a2", "b"}, "solo": {"a"}, "joined": {"join", "after"}}
    assert parallel_conflicts(succ, set(), writers) == [("a2", "b", "k")]


def test_parallel_conflicts_after_the_join_and_on_router_branches_are_fine() -> None:
    succ = graph(("in", "a"), ("in", "b"), ("a", "j"), ("b", "j"), ("j", "x"), ("j", "y"))
    assert parallel_conflicts(succ, set(), {"k": {"j", "a"}}) == []  # j runs after a
    routed = graph(("r", "a", "one"), ("r", "b", "two"))
    assert parallel_conflicts(routed, {"r"}, {"k": {"a", "b"}}) == []  # only one branch is taken
    assert parallel_conflicts(routed, set(), {"k": {"a", "b"}}) == [("a", "b", "k")]


def test_parallel_conflicts_need_a_key_with_two_writers() -> None:
    succ = graph(("in", "a"), ("in", "b"))
    assert parallel_conflicts(succ, set(), {}) == []
    assert parallel_conflicts(succ, set(), {"k": {"a"}, "j": {"b"}}) == []
    found = parallel_conflicts(succ, set(), {"k": {"b", "a"}, "j": {"a", "b"}})
    assert found == [("a", "b", "j"), ("a", "b", "k")]  # sorted, each pair named once
