"""Validation of a workflow document: every problem at once, each with a path and a fix.

Each part of the document (the top level, every source, queue, node and edge) is checked
on its own, so one broken node does not hide the problems of the others; the graph checks
then run on the parts that are sound. Errors stop a run; warnings (template keys no
earlier node writes, edges a router never takes) are shown but do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from agentflow.errors import ValidationError
from agentflow.nodes.base import NodeType
from agentflow.nodes.registry import node_class, node_types
from agentflow.runtime.workspace import Workspace
from agentflow.sources.registry import provider_class, provider_names
from agentflow.spec import graph_checks as gc
from agentflow.spec.loader import read_document
from agentflow.spec.locate import locate, position_of
from agentflow.spec.messages import clean_loc, field_names, friendly, path_of
from agentflow.spec.models import END, STATE_KEYS, EdgeSpec, NodeSpec, QueueSpec, SourceSpec, WorkflowSpec
from agentflow.spec.secrets_check import find_inline_secrets
from agentflow.spec.suggest import did_you_mean

#: Keys a run may start with without any node writing them.
INITIAL_KEYS = frozenset({"user_input", "messages", "metadata", "errors"})
_LISTS = ("sources", "queues", "nodes", "edges")


@dataclass
class Report:
    """Outcome of :func:`check_workflow`: problems, and the spec when there are no errors."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    spec: WorkflowSpec | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_workflow(document: Any, *, workspace: Workspace | None = None) -> WorkflowSpec:
    """Validate a dict, JSON text or file path; return the spec or raise ``ValidationError``
    whose ``errors`` lists every problem (``warnings`` the non-fatal ones)."""
    if isinstance(document, WorkflowSpec):
        return document
    raw, text, origin = read_document(document)
    report = _Checker(raw, text, workspace).run()
    if report.spec is None:
        raise ValidationError.from_problems(report.errors, report.warnings)
    report.spec._origin = origin
    return report.spec


def load_workflow(document: Any, *, workspace: Workspace | None = None) -> WorkflowSpec:
    """Read and validate a workflow (the seed's name); raises ``ValidationError``."""
    return validate_workflow(document, workspace=workspace)


def check_workflow(document: Any, *, workspace: Workspace | None = None) -> Report:
    """Like :func:`validate_workflow` but returns the report instead of raising (for
    editors that show problems as the user types)."""
    try:
        raw, text, _ = read_document(document)
    except ValidationError as exc:
        return Report(errors=exc.errors)
    return _Checker(raw, text, workspace).run()


class _Checker:
    def __init__(self, raw: Any, text: str | None, workspace: Workspace | None) -> None:
        self.raw = raw
        self.text = text
        self._workspace = workspace
        self._positions: dict[str, tuple[int, int]] | None = None
        self.report = Report()
        self.secret_paths: set[str] = set()
        self.sources: dict[str, SourceSpec] = {}
        self.queues: dict[str, QueueSpec] = {}
        self.declared: dict[str, set[str]] = {k: set() for k in _LISTS}
        self.nodes: list[tuple[int, NodeSpec, NodeType | None]] = []
        self.edges: list[tuple[int, EdgeSpec]] = []
        self.resolved_sources: dict[str, SourceSpec] = {}
        self.resolved_queues: dict[str, QueueSpec] = {}

    # --- reporting --------------------------------------------------------------------

    def _add(self, bucket: list[dict[str, Any]], path: str, message: str) -> None:
        entry: dict[str, Any] = {"path": path or "$", "message": message}
        if self.text is not None:
            if self._positions is None:
                self._positions = locate(self.text)
            pos = position_of(self._positions, path or "$")
            if pos:
                entry["line"], entry["column"] = pos
        if entry not in bucket:
            bucket.append(entry)

    def error(self, path: str, message: str) -> None:
        self._add(self.report.errors, path, message)

    def warn(self, path: str, message: str) -> None:
        self._add(self.report.warnings, path, message)

    def _pydantic(
        self, exc: PydanticError, model: type[BaseModel], base: str, label: str, value: Any = None
    ) -> None:
        seen: set[str] = set()
        for err in exc.errors():
            loc = tuple(err["loc"])
            if value is not None:
                loc = clean_loc(loc, value, err["type"] in ("missing", "extra_forbidden"))
            path = path_of(base, loc)
            if path in self.secret_paths or path in seen:
                continue
            seen.add(path)
            err = {**err, "loc": loc}
            self.error(path, f"{label}: {friendly(model, err)}" if label else friendly(model, err))

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from agentflow.runtime.workspace import default_workspace

            self._workspace = default_workspace()
        return self._workspace

    # --- the run ----------------------------------------------------------------------

    def run(self) -> Report:
        if not isinstance(self.raw, dict):
            self.error("$", "a workflow must be a JSON object")
            return self.report
        for path, message in find_inline_secrets(self.raw):
            self.secret_paths.add(path)
            self.error(path, f"{_label_for(self.raw, path)}{message}")
        self._top_level()
        self._sources()
        self._queues()
        self._nodes()
        self._edges()
        if self.nodes:
            self._references()
            self._graph()
        if not self.report.errors:
            spec = WorkflowSpec.model_validate(self.raw)
            spec._warnings = self.report.warnings
            spec._resolved_sources = self.resolved_sources
            spec._resolved_queues = self.resolved_queues
            self.report.spec = spec
        return self.report

    def _top_level(self) -> None:
        top = {k: v for k, v in self.raw.items() if k not in _LISTS}
        top.update(nodes=[], edges=[])
        for key in ("id", "nodes", "edges"):
            if key not in self.raw:
                hint = {
                    "id": ' (a slug such as "my-flow")',
                    "nodes": " (the list of steps)",
                    "edges": ' (the list of {"from", "to"} transitions)',
                }[key]
                self.error(key, f'"{key}" is required{hint}')
        try:
            WorkflowSpec.model_validate(top)
        except PydanticError as exc:
            self._pydantic(exc, WorkflowSpec, "", "", top)
        for key in _LISTS:
            if key in self.raw and not isinstance(self.raw[key], list):
                self.error(key, f'"{key}" must be a list; got {type(self.raw[key]).__name__}')
        if isinstance(self.raw.get("nodes"), list) and not self.raw["nodes"]:
            self.error("nodes", 'a workflow needs at least one node (e.g. {"id": "input", "type": "input"})')

    def _items(self, key: str):
        items = self.raw.get(key)
        if not isinstance(items, list):
            return
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            base = f"{key}[{i}]"
            if not isinstance(item, dict):
                self.error(base, f"each entry of {key} must be a JSON object; got {type(item).__name__}")
                continue
            item_id = item.get("id")
            if isinstance(item_id, str):
                if item_id in seen:
                    self.error(
                        f"{base}.id",
                        f'{_singular(key)} id "{item_id}" is used twice ({key}[{seen[item_id]}] and {base}); '
                        "ids must be unique",
                    )
                seen.setdefault(item_id, i)
                self.declared[key].add(item_id)
            yield i, base, item

    def _sources(self) -> None:
        for i, base, item in self._items("sources"):
            label = _label("source", item, i)
            try:
                spec = SourceSpec.model_validate(item)
            except PydanticError as exc:
                self._pydantic(exc, SourceSpec, base, label, item)
                continue
            cls = provider_class(spec.kind, spec.provider)
            if cls is None:
                names = provider_names(spec.kind)
                self.error(
                    f"{base}.provider",
                    f'{label}: no provider "{spec.provider}" for kind "{spec.kind}"'
                    f"{did_you_mean(spec.provider, names)}; available: {', '.join(names) or 'none'}",
                )
                continue
            try:
                cls.Config.model_validate(spec.config)
            except PydanticError as exc:
                self._pydantic(exc, cls.Config, f"{base}.config", label, spec.config)
                continue
            self.sources.setdefault(spec.id, spec)

    def _queues(self) -> None:
        for i, base, item in self._items("queues"):
            try:
                spec = QueueSpec.model_validate(item)
            except PydanticError as exc:
                self._pydantic(exc, QueueSpec, base, _label("queue", item, i), item)
                continue
            self.queues.setdefault(spec.id, spec)

    def _nodes(self) -> None:
        ids: set[str] = set()
        for i, base, item in self._items("nodes"):
            label = _label("node", item, i)
            try:
                spec = NodeSpec.model_validate(item)
            except PydanticError as exc:
                self._pydantic(exc, NodeSpec, base, label, item)
                continue
            cls = node_class(spec.type)
            impl: NodeType | None = None
            if cls is None:
                known = sorted(node_types.keys())
                self.error(
                    f"{base}.type",
                    f'{label}: unknown node type "{spec.type}"{did_you_mean(spec.type, known)}; '
                    f"known types: {', '.join(known)}",
                )
            else:
                try:
                    impl = cls(spec, cls.Config.model_validate(spec.config))
                except PydanticError as exc:
                    self._pydantic(exc, cls.Config, f"{base}.config", label, spec.config)
            if spec.id not in ids:
                ids.add(spec.id)
                self.nodes.append((i, spec, impl))

    def _edges(self) -> None:
        for i, base, item in self._items("edges"):
            try:
                self.edges.append((i, EdgeSpec.model_validate(item)))
            except PydanticError as exc:
                frm, to = item.get("from"), item.get("to")
                label = f'edge "{frm}" -> "{to}"' if isinstance(frm, str) and isinstance(to, str) else f"edges[{i}]"
                self._pydantic(exc, EdgeSpec, base, label, item)

    # --- cross references ---------------------------------------------------------------

    def _resolve_source(self, source_id: str) -> SourceSpec | None:
        if source_id in self.sources:
            return self.sources[source_id]
        if source_id in self.declared["sources"]:
            return None  # declared but broken: its own errors say why
        found = self.workspace.get_source(source_id)
        if found is not None:
            self.resolved_sources[source_id] = found
        return found

    def _references(self) -> None:
        for i, node, impl in self.nodes:
            base, label = f"nodes[{i}]", f'node "{node.id}"'
            cls = node_class(node.type)
            if cls is not None:
                need = impl.required_source_kind(impl.config) if impl is not None else cls.source_kind
                self._source_ref(base, label, node, need, "source")
                if node.fallback_source:
                    self._source_ref(base, label, node, need, "fallback_source")
            if node.queue and node.queue not in self.declared["queues"]:
                found = self.workspace.get_queue(node.queue)
                if found is None:
                    self.error(
                        f"{base}.queue",
                        f'{label}: queue "{node.queue}" is not defined'
                        f"{did_you_mean(node.queue, self.declared['queues'])}; add it to \"queues\" "
                        "or register it on the Queues page",
                    )
                else:
                    self.resolved_queues[node.queue] = found
            if node.subqueue and not node.queue:
                self.warn(f"{base}.subqueue", f'{label}: "subqueue" has no effect without "queue"')

    def _source_ref(self, base: str, label: str, node: NodeSpec, need: str | None, attr: str) -> None:
        source_id = getattr(node, attr)
        path = f"{base}.{attr}"
        what = f"{_a(node.type)} {node.type} node"
        if source_id is None:
            if need is not None and attr == "source":
                self.error(path, f'{label}: {what} needs a source of kind "{need}"; set "source"')
            return
        if need is None and attr == "source":
            self.warn(path, f'{label}: {what} does not use a source; "source" is ignored')
            return
        source = self._resolve_source(source_id)
        if source is None:
            if source_id not in self.declared["sources"]:
                self.error(
                    path,
                    f'{label}: source "{source_id}" is not defined'
                    f"{did_you_mean(source_id, self.declared['sources'])}; add it to \"sources\" "
                    "or register it on the Sources page",
                )
            return
        if need is not None and source.kind != need:
            self.error(
                path,
                f'{label}: {_a(node.type)} {node.type} node needs a source of kind "{need}", but "{source_id}" '
                f'is of kind "{source.kind}"',
            )

    # --- the graph ------------------------------------------------------------------------

    def _graph(self) -> None:
        index = {n.id: i for i, n, _ in self.nodes}
        impls = {n.id: impl for _, n, impl in self.nodes}
        # By type, not by a built impl: a router whose config is broken is still a router, and
        # its edges must not also be reported as "when" on a non-router or as parallel writes.
        routers = {n.id for _, n, _ in self.nodes if (cls := node_class(n.type)) is not None and cls.is_router}
        types = {n.id: n.type for _, n, _ in self.nodes}
        all_ids = self.declared["nodes"] | set(index)
        edges: list[gc.Edge] = []
        for i, e in self.edges:
            base, label = f"edges[{i}]", f'edge "{e.from_}" -> "{e.to}"'
            ok = True
            if e.from_ == END:
                self.error(f"{base}.from", f'{label}: an edge cannot leave END; END finishes the run')
                ok = False
            elif e.from_ not in all_ids:
                self.error(
                    f"{base}.from",
                    f'{label}: node "{e.from_}" is not defined{did_you_mean(e.from_, all_ids)}',
                )
                ok = False
            if e.to != END and e.to not in all_ids:
                self.error(
                    f"{base}.to",
                    f'{label}: node "{e.to}" is not defined{did_you_mean(e.to, [*all_ids, END])}',
                )
                ok = False
            if e.from_ in routers and e.when is None:
                self.error(
                    base,
                    f'{label}: edges leaving router "{e.from_}" need "when" (an intent, or "*" for '
                    "the fallback)",
                )
            if e.when is not None and e.from_ in index and e.from_ not in routers:
                kind = types[e.from_]
                self.error(
                    f"{base}.when",
                    f'{label}: "when" works only on edges leaving a router, and "{e.from_}" is '
                    f'{_a(kind)} {kind} node; add a router node or drop "when"',
                )
            if ok and e.from_ in index and (e.to in index or e.to == END):
                edges.append(gc.Edge(i, e.from_, e.to, e.when))
        seen_edges: dict[tuple[str, str, str | None], int] = {}
        for e in edges:
            key = (e.src, e.dst, e.when)
            if key in seen_edges:
                self.warn(f"edges[{e.index}]", f'edge "{e.src}" -> "{e.dst}" repeats edges[{seen_edges[key]}]')
            seen_edges.setdefault(key, e.index)
        succ = gc.successors(edges)
        entry = self._entry(index)
        if entry is None:
            return
        reached = gc.reachable(entry, succ)
        for i, node, _ in self.nodes:
            if node.id not in reached:
                self.error(
                    f"nodes[{i}]",
                    f'node "{node.id}" is unreachable from the entry "{entry}"; add an edge to it or remove it',
                )
        order = [n.id for _, n, _ in self.nodes]
        for cycle in gc.cycles_without_exit(order, succ):
            loop = " -> ".join(f'"{n}"' for n in [*cycle, cycle[0]])
            self.error(
                f"nodes[{index[cycle[0]]}]",
                f"the cycle {loop} has no way out: add an edge from a router in it with a \"when\" "
                "that leads out of the loop (or to END)",
            )
        self._node_checks(index, impls)
        self._parallel_writes(index, impls, succ, routers)
        self._template_keys(index, impls, succ, entry)

    def _entry(self, index: dict[str, int]) -> str | None:
        entry = self.raw.get("entry")
        if isinstance(entry, str):
            if entry not in index:
                if entry in self.declared["nodes"]:
                    return None
                self.error("entry", f'entry "{entry}" is not a node{did_you_mean(entry, index)}')
                return None
            return entry
        inputs = [n.id for _, n, _ in self.nodes if n.type == "input"]
        if len(inputs) == 1:
            return inputs[0]
        if not inputs:
            self.error("entry", 'no entry: add a node of type "input" or set "entry" to the first node\'s id')
        else:
            names = ", ".join(f'"{n}"' for n in inputs)
            self.error("entry", f'several input nodes ({names}): set "entry" to the one runs start at')
        return None

    def _node_checks(self, index: dict[str, int], impls: dict[str, NodeType | None]) -> None:
        spec_view = _SpecView(self.raw, [n for _, n, _ in self.nodes], [e for _, e in self.edges])
        for node_id, impl in impls.items():
            if impl is None:
                continue
            base = f"nodes[{index[node_id]}]"
            for problem in impl.check(spec_view):
                path = problem.path[1:] if problem.path.startswith("@") else f"{base}.{problem.path}"
                message = problem.message if problem.path.startswith("@") else f'node "{node_id}": {problem.message}'
                (self.error if problem.severity == "error" else self.warn)(path, message)

    def _parallel_writes(self, index, impls, succ, routers) -> None:
        writers: dict[str, set[str]] = {}
        for node_id, impl in impls.items():
            if impl is None or impl.output_shape == "list":
                continue
            for key in impl.written_keys():
                writers.setdefault(key, set()).add(node_id)
        for a, b, key in gc.parallel_conflicts(succ, routers, writers):
            later = max(a, b, key=index.__getitem__)
            self.error(
                f"nodes[{index[later]}].config.output_key",
                f'nodes "{a}" and "{b}" may run at the same time (parallel branches) and both write '
                f'"{key}"; give one of them another config.output_key',
            )

    def _template_keys(self, index, impls, succ, entry: str) -> None:
        """Warn about template keys that no node before can have written (a dataflow pass)."""
        initial = set(INITIAL_KEYS)
        for impl in impls.values():
            if impl is not None and impl.type_name == "input":
                initial.update(getattr(impl.config, "required", []))
        writes = {n: set(impl.written_keys()) if impl else set() for n, impl in impls.items()}
        before: dict[str, set[str]] = {entry: set(initial)}
        work = [entry]
        while work:
            node = work.pop()
            out = before[node] | writes.get(node, set())
            for e in succ.get(node, ()):
                if e.dst == END:
                    continue
                known = before.get(e.dst)
                if known is None:
                    before[e.dst] = set(out)
                    work.append(e.dst)
                elif not out <= known:
                    known |= out
                    work.append(e.dst)
        all_written = set().union(*writes.values()) | set(STATE_KEYS) | initial
        for node_id, impl in impls.items():
            if impl is None or node_id not in before:
                continue
            for path, template in impl.templates():
                for key in template.root_keys:
                    if key in before[node_id]:
                        continue
                    self.warn(
                        f"nodes[{index[node_id]}].{path}",
                        f'node "{node_id}": template key "{key}" is not written by any node before '
                        f"it{did_you_mean(key, all_written)}; unless the initial state carries it "
                        "(then list it in the input node's config.required) the run will fail here",
                    )


@dataclass
class _SpecView:
    """What node checks see of the document while it is being validated."""

    raw: dict[str, Any]
    nodes: list[NodeSpec]
    edges: list[EdgeSpec]


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" or word == "llm" else "a"


def _singular(key: str) -> str:
    return key[:-1]


def _label(kind: str, item: dict[str, Any], i: int) -> str:
    item_id = item.get("id")
    return f'{kind} "{item_id}"' if isinstance(item_id, str) else f"{kind}s[{i}]"


def _label_for(raw: dict[str, Any], path: str) -> str:
    """``node "x": `` for a path inside nodes[i] (used for findings made on raw JSON)."""
    for key in ("sources", "queues", "nodes"):
        prefix = f"{key}["
        if path.startswith(prefix):
            try:
                i = int(path[len(prefix) : path.index("]")])
                item = raw[key][i]
            except (ValueError, IndexError, KeyError, TypeError):
                return ""
            if isinstance(item, dict):
                return _label(_singular(key), item, i) + ": "
    return ""


__all__ = ["Report", "check_workflow", "field_names", "load_workflow", "validate_workflow"]
