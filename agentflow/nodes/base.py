"""The node-type extension point.

A node type turns a node of the document into work on the run state. It is instantiated
once per node when a workflow is built (its config already validated by its ``Config``
model) and shared by every run of that build, so it keeps no per-run state: everything a
run needs comes through the :class:`NodeContext` (sources, queues, streaming, usage).

To add one: write ``agentflow/nodes/<name>_node.py`` with a subclass, a ``Config`` model and
``node_types.register(YourNode)`` at the bottom, or expose it via the ``agentflow.nodes``
entry point group. The builder and validator find it by ``type_name``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentflow.spec.templates import Template, TemplateSyntaxError, parse

if TYPE_CHECKING:
    from agentflow.sources.base import Provider, Usage
    from agentflow.spec.models import NodeSpec, WorkflowSpec


def _check_template(value: str) -> str:
    try:
        parse(value)
    except TemplateSyntaxError as exc:
        raise ValueError(str(exc)) from None
    return value


TemplateStr = Annotated[str, AfterValidator(_check_template)]
"""A config string that is a template; its syntax is checked at validation time."""

OutputKey = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")]


class NodeConfig(BaseModel):
    """Base of node configs: unknown keys are errors, like everywhere in the document."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputConfig(NodeConfig):
    """Config of a node that writes one state key."""

    output_key: OutputKey | None = Field(None, description="State key the node writes.")


@dataclass(frozen=True)
class Problem:
    """A validation finding: ``path`` relative to the node (e.g. ``config.rules[0]``)."""

    path: str
    message: str
    severity: Literal["error", "warning"] = "error"


class Meter(Protocol):
    """One provider call: the provider to use (the node's source, or its
    ``fallback_source`` when the run's budget demands) and what the call cost."""

    provider: Provider
    usage: Usage | None
    cost_usd: float


Estimator = Callable[["Provider"], tuple[int, float]]
"""Given the provider about to be called: (tokens to reserve, estimated cost in USD)."""


class NodeContext(Protocol):
    """What the runtime gives a node for one execution (see ``runtime/context.py``)."""

    node_id: str
    run_id: str
    streaming: bool
    #: Seconds left for this attempt (node ``timeout_s`` / run deadline), or None.
    timeout_s: float | None

    def render(self, template: Template | str, state: dict[str, Any], field: str) -> str: ...

    def render_value(self, value: Any, state: dict[str, Any], field: str) -> Any: ...

    def provider(self) -> Provider: ...

    def metered(self, estimate: Estimator | None = None) -> AbstractContextManager[Meter]:
        """Around one provider call: run budget, queue admission, usage and cost."""

    def ametered(self, estimate: Estimator | None = None) -> AbstractAsyncContextManager[Meter]: ...

    def emit_token(self, text: str) -> None: ...

    def note(self, **fields: Any) -> None:
        """Add fields to the node's trace entry (e.g. ``rows=12``, ``model="..."``)."""


class NodeType(ABC):
    """One node type: config model, what it needs and writes, and how it runs."""

    type_name: ClassVar[str]
    Config: ClassVar[type[NodeConfig]] = NodeConfig
    #: Source kind the node needs (None: no source).
    source_kind: ClassVar[str | None] = None
    default_output_key: ClassVar[str | None] = None
    #: Value written: "scalar" (text, intent), "list" (rows) or "record" (a dict). Two
    #: nodes that may run in the same step may share an output key only for "list".
    output_shape: ClassVar[Literal["scalar", "list", "record"]] = "scalar"
    is_router: ClassVar[bool] = False
    #: One line for the UI's palette and legend.
    summary: ClassVar[str] = ""

    def __init__(self, spec: NodeSpec, config: NodeConfig) -> None:
        self.spec = spec
        self.config = config

    @property
    def node_id(self) -> str:
        return self.spec.id

    @classmethod
    def required_source_kind(cls, config: NodeConfig) -> str | None:
        """Source kind this node's config needs (routers need one only in llm mode)."""
        return cls.source_kind

    @property
    def output_key(self) -> str | None:
        return getattr(self.config, "output_key", None) or self.default_output_key

    def written_keys(self) -> list[str]:
        """State keys this node may write (besides ``errors``)."""
        return [self.output_key] if self.output_key else []

    def templates(self) -> list[tuple[str, Template]]:
        """(config path, parsed template) of every template field, for key checks."""
        return []

    def read_keys(self) -> list[str]:
        """State keys the node reads other than through templates (e.g. the router)."""
        return []

    def check(self, workflow: WorkflowSpec) -> list[Problem]:
        """Cross-checks against the whole document (beyond the config model)."""
        return []

    @abstractmethod
    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        """Do the work (sync form); return the state update."""

    async def arun(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        """Async form; nodes that do no I/O reuse :meth:`run`."""
        return self.run(state, ctx)


def iter_tokens(chunks: Iterator[Any], ctx: NodeContext) -> Iterator[Any]:
    """Forward streamed text pieces to the run's token events."""
    for chunk in chunks:
        if chunk.text:
            ctx.emit_token(chunk.text)
        yield chunk


async def aiter_tokens(chunks: AsyncIterator[Any], ctx: NodeContext) -> AsyncIterator[Any]:
    async for chunk in chunks:
        if chunk.text:
            ctx.emit_token(chunk.text)
        yield chunk
