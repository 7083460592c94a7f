"""Pydantic models of the workflow format (spec sections 1-5).

These models describe the *shape* of a document. Cross-references (does the source exist,
is the graph sound) are checked in :mod:`agentflow.spec.validate`, which reports every
problem at once; node and provider ``config`` objects are typed by their plugin's own
model (see :mod:`agentflow.nodes` and :mod:`agentflow.sources`).

Models are frozen: a validated spec is shared by threads and its compiled graph is cached
by content, so nobody may change it in place. Use ``model_copy(update=...)`` instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
END = "END"

STATE_KEYS = (
    "user_input",
    "intent",
    "text_result",
    "image_result",
    "db_result",
    "api_result",
    "final_output",
    "errors",
    "metadata",
)
"""Keys every run state has (spec section 7); ``output_key``s add to them."""

SourceKind = Literal["llm", "image", "db", "api"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


M = TypeVar("M", bound=BaseModel)


def _forget(copied: M, cache: str, update: Mapping[str, Any] | None) -> M:
    """``copied`` (a ``model_copy``), its cached ``cache`` dropped when fields changed."""
    if update and copied.__pydantic_private__ is not None:
        copied.__pydantic_private__[cache] = None
    return copied


class RetryPolicy(_Model):
    """How a node retries provider errors and timeouts (not template or config errors)."""

    max_attempts: int = Field(3, ge=1, le=20, description="Total attempts, the first included.")
    backoff_s: float = Field(0.5, ge=0, le=600, description="Wait before the second attempt.")
    backoff_multiplier: float = Field(2.0, ge=1, le=10, description="Growth of each next wait.")
    max_backoff_s: float = Field(30.0, ge=0, le=3600, description="Upper bound of one wait.")

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based); a provider's Retry-After wins."""
        base = self.backoff_s * self.backoff_multiplier ** (attempt - 1)
        wait = min(base, self.max_backoff_s)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_backoff_s))
        return wait


class SourceSpec(_Model):
    """A connection to an LLM, image model, database or HTTP API (spec section 2)."""

    id: Slug
    kind: SourceKind
    provider: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None

    _client_key: str | None = PrivateAttr(default=None)

    @property
    def client_key(self) -> str:
        """Canonical text of kind, provider and config: one shared client per distinct key.

        Read on every provider call: the private dict is used directly, because reaching a
        private attribute through pydantic's ``__getattr__`` costs microseconds each time."""
        private = self.__pydantic_private__
        assert private is not None
        key = private.get("_client_key")
        if key is None:
            key = private["_client_key"] = json.dumps(
                [self.kind, self.provider, self.config], sort_keys=True, default=str
            )
        return key

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> SourceSpec:
        """A copy; with ``update``, one that works out its own client key."""
        return _forget(super().model_copy(update=update, deep=deep), "_client_key", update)


class QueueSpec(_Model):
    """A bandwidth limit shared by every run that names it (spec section 3)."""

    id: Slug
    max_messages_per_second: float | None = Field(None, gt=0)
    max_requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    subqueues: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    on_limit: Literal["wait", "reject"] = "wait"
    max_wait_s: float | None = Field(None, gt=0)
    max_cost_usd_per_day: float | None = Field(None, gt=0)
    description: str | None = None

    def weight(self, subqueue: str) -> float:
        return self.subqueues.get(subqueue, 1.0)


class NodeSpec(_Model):
    """One step of the workflow (spec section 4); ``config`` is typed by the node type."""

    id: Slug
    type: str = Field(min_length=1)
    source: Slug | None = None
    queue: Slug | None = None
    subqueue: str | None = Field(None, min_length=1, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(None, gt=0)
    on_error: Literal["fail", "continue"] = "fail"
    fallback_source: Slug | None = None
    description: str | None = None

    @property
    def output_key(self) -> str | None:
        value = self.config.get("output_key")
        return value if isinstance(value, str) else None


class EdgeSpec(_Model):
    """A transition; ``when`` makes it conditional on the router's intent (spec section 5)."""

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    when: str | None = Field(None, min_length=1)
    label: str | None = None

    def model_dump_json_compatible(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class RunSettings(_Model):
    """Run-wide limits."""

    recursion_limit: int = Field(25, ge=1, le=10_000)
    timeout_s: float | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, gt=0)


class WorkflowSpec(_Model):
    """A whole workflow document, shape-checked. Build with :func:`validate_workflow`."""

    schema_version: Literal[1] = 1
    id: Slug
    name: str | None = None
    description: str | None = None
    sources: list[SourceSpec] = Field(default_factory=list)
    queues: list[QueueSpec] = Field(default_factory=list)
    nodes: list[NodeSpec]
    edges: list[EdgeSpec]
    entry: Slug | None = None
    settings: RunSettings = Field(default_factory=RunSettings)

    # Set by validation: non-fatal findings, and sources/queues resolved from the workspace.
    _warnings: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _resolved_sources: dict[str, SourceSpec] = PrivateAttr(default_factory=dict)
    _resolved_queues: dict[str, QueueSpec] = PrivateAttr(default_factory=dict)
    _fingerprint: str | None = PrivateAttr(default=None)
    _origin: str | None = PrivateAttr(default=None)

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """Non-fatal findings of validation (e.g. template keys no earlier node writes)."""
        return self._warnings

    @property
    def origin(self) -> str | None:
        """The file this spec was read from, when it was read from a file."""
        return self._origin

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @property
    def entry_node(self) -> str:
        if self.entry:
            return self.entry
        inputs = [n.id for n in self.nodes if n.type == "input"]
        return inputs[0] if inputs else self.nodes[0].id

    def source(self, source_id: str) -> SourceSpec | None:
        for s in self.sources:
            if s.id == source_id:
                return s
        return self._resolved_sources.get(source_id)

    def queue(self, queue_id: str) -> QueueSpec | None:
        for q in self.queues:
            if q.id == queue_id:
                return q
        return self._resolved_queues.get(queue_id)

    def to_document(self) -> dict[str, Any]:
        """The JSON document as the format spells it (``from``), ``None`` fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def fingerprint(self) -> str:
        """Content hash of the document plus its resolved catalogue entries (cache key).

        Read on every run: the private dict is used directly (see ``SourceSpec.client_key``)."""
        private = self.__pydantic_private__
        assert private is not None
        fingerprint = private.get("_fingerprint")
        if fingerprint is None:
            payload = {
                "doc": self.model_dump(mode="json", by_alias=True),
                "src": {k: v.model_dump(mode="json") for k, v in sorted(self._resolved_sources.items())},
                "q": {k: v.model_dump(mode="json") for k, v in sorted(self._resolved_queues.items())},
            }
            raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
            fingerprint = private["_fingerprint"] = hashlib.sha256(raw.encode()).hexdigest()[:32]
        return fingerprint

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> WorkflowSpec:
        """A copy; with ``update``, one that works out its own fingerprint."""
        return _forget(super().model_copy(update=update, deep=deep), "_fingerprint", update)
