"""Demo mode: on first start, fill an empty store with the examples that run offline.

"First start" is an empty workspace (no workflows, sources or queues): the offline example
workflows are saved (version 1, author ``demo``), their sources are registered on the
Sources page, and one demo queue is defined, so every page shows something real at once
and every seeded workflow runs with no keys and no network.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.errors import ConflictError

log = logging.getLogger("agentflow.ui")

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
DEMO_AUTHOR = "demo"

#: A queue for the Queues page to show from the start (no example needs it).
DEMO_QUEUE: dict[str, Any] = {
    "id": "demo-q",
    "description": "A demo bandwidth: 2 calls a second, 60 a minute; interactive work gets 3 of every 4 turns.",
    "max_messages_per_second": 2,
    "max_requests_per_minute": 60,
    "tokens_per_minute": 20000,
    "subqueues": {"interactive": 3, "batch": 1},
    "on_limit": "wait",
    "max_wait_s": 30,
}

#: A first input that shows off each example (the Run page's default).
SAMPLE_INPUTS: dict[str, str] = {
    "triage-demo": "img: a red fox",
    "research-fanout": "foxes",
    "refine-loop": "A haiku about rivers",
    "openai-chat": "Say hello in five words.",
    "postgres-report": "user",
}
DEFAULT_INPUT = "Hello! What can you do?"


@dataclass
class Example:
    """An example file and what the workbench needs to know about it."""

    path: Path
    document: dict[str, Any]
    offline: bool

    @property
    def id(self) -> str:
        return str(self.document.get("id"))

    @property
    def name(self) -> str:
        return str(self.document.get("name") or self.id)

    @property
    def description(self) -> str:
        return str(self.document.get("description") or "")


@dataclass
class SeedResult:
    workflows: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)

    @property
    def seeded(self) -> bool:
        return bool(self.workflows or self.sources or self.queues)


def is_offline(document: Mapping[str, Any]) -> bool:
    """Whether every source the document defines is an offline provider (and it defines
    at least one node): such a workflow runs with no keys and no network."""
    from agentflow.sources.registry import provider_class

    for source in document.get("sources") or []:
        cls = provider_class(str(source.get("kind")), str(source.get("provider")))
        if cls is None or cls.networked:
            return False
    return bool(document.get("nodes"))


def load_examples(directory: Path = EXAMPLES_DIR) -> list[Example]:
    """Every example in ``directory``, offline ones first."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping example %s: %s", path.name, exc)
            continue
        if isinstance(doc, dict):
            found.append(Example(path, doc, is_offline(doc)))
    return sorted(found, key=lambda e: (not e.offline, e.path.name))


def sample_input(workflow_id: str | None, description: str | None = None) -> str:
    """A first input for the Run page: the example's own, else one the description suggests
    (``try "img: a red fox"``), else a friendly default."""
    if workflow_id in SAMPLE_INPUTS:
        return SAMPLE_INPUTS[workflow_id]
    m = re.search(r'\b[Tt]ry "([^"]{1,200})"', description or "")
    return m.group(1) if m else DEFAULT_INPUT


def is_empty(store: Any) -> bool:
    return not store.list_workflows(limit=1) and not store.list_sources() and not store.list_queues()


def seed_demo(store: Any, examples: Iterable[Example] | None = None) -> SeedResult:
    """Seed an empty store with the offline examples; does nothing to a store in use."""
    result = SeedResult()
    if not is_empty(store):
        return result
    examples = list(examples) if examples is not None else load_examples()
    for ex in examples:
        if not ex.offline:
            continue
        try:
            store.save_workflow(ex.document, author=DEMO_AUTHOR, message=f"example {ex.path.name}", base_version=0)
        except ConflictError:  # another replica seeded it first
            continue
        result.workflows.append(ex.id)
        for source in ex.document.get("sources") or []:
            if source.get("id") in result.sources:
                continue
            try:
                store.put_source(source)
            except Exception as exc:  # one odd source must not stop the demo
                log.warning("demo source %s not registered: %s", source.get("id"), exc)
                continue
            result.sources.append(str(source["id"]))
    store.put_queue(DEMO_QUEUE)
    result.queues.append(DEMO_QUEUE["id"])
    log.info(
        "demo mode: seeded %d workflows, %d sources, %d queue",
        len(result.workflows),
        len(result.sources),
        len(result.queues),
    )
    return result
