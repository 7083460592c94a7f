"""Request bodies: checked by pydantic before any route code runs (strictly: unknown keys
are refused, and no value is coerced to another type, so ``true`` is not a rate of 1).

A refused body is answered 422 in the section 9 shape with every problem's path
(``agentflow.api.errors.validation_error``), never with the values sent, which may be
secrets. Workflow documents are only checked to be JSON objects here: the package's own
validator (``validate_workflow``) judges them, as it does for the CLI and the pages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentflow.spec.models import QueueSpec, SourceSpec

#: The id rule of spec section 1 (workflows, nodes, sources, queues).
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: The secret name rule of the store.
SECRET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"

#: Largest version number (and other counters) a request may name: the store's integer range.
MAX_INT = 2**31 - 1

Document = dict[str, Any]
NodeId = Annotated[str, Field(pattern=SLUG)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


_INPUT_OR_STATE = {"anyOf": [{"required": ["input"]}, {"required": ["state"]}]}


class _RunFields(_Body):
    input: str | None = Field(None, description="the user_input text", max_length=1_000_000)
    state: dict[str, Any] | None = Field(None, description="initial state (input, if given, sets user_input)")
    subqueue: str | None = Field(None, min_length=1, max_length=64, description='queue subqueue, e.g. "batch"')
    breakpoints: list[NodeId] | None = Field(
        None, max_length=256, description="pause before these nodes (the run is checkpointed and can be resumed)"
    )

    @model_validator(mode="after")
    def _input_or_state(self) -> _RunFields:
        if self.input is None and self.state is None:
            raise ValueError('give "input" (the user_input text) or "state" (an initial state object)')
        return self

    def initial_state(self) -> dict[str, Any]:
        state = dict(self.state or {})
        if self.input is not None:
            state["user_input"] = self.input
        return state


class RunRequest(_RunFields):
    """``POST /api/v1/workflows/{id}/runs``: ``input`` or ``state``, the rest optional."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, json_schema_extra=_INPUT_OR_STATE)

    version: int | None = Field(None, ge=1, le=MAX_INT, description="a saved version (default: the latest)")


class InlineRunRequest(_RunFields):
    """``POST /api/v1/runs``: the same with the workflow document inline."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, json_schema_extra=_INPUT_OR_STATE)

    document: Document = Field(description="a workflow document (spec section 1)")


class SaveWorkflowRequest(_Body):
    """``PUT /api/v1/workflows/{id}``: a new version of the workflow."""

    document: Document = Field(description="the workflow document; its id must be the path's id")
    message: str | None = Field(None, max_length=10_000, description="why this version")
    base_version: int | None = Field(
        None,
        ge=0,
        le=MAX_INT,
        description="refuse (409, nothing saved) unless this is the latest version; 0 for a new workflow",
    )


class ResumeRequest(_Body):
    state_patch: dict[str, Any] | None = Field(None, description="state changes applied before going on")


class ForkRequest(_Body):
    checkpoint_id: str = Field(min_length=1, max_length=256)
    state_patch: dict[str, Any] | None = None


class SecretValue(_Body):
    """``PUT /api/v1/secrets/{name}``: the value is stored encrypted and never returned."""

    value: str = Field(min_length=1, max_length=65_536, json_schema_extra={"writeOnly": True, "format": "password"})


class SourceBody(SourceSpec):
    """A source (spec section 2); ``id`` may be left out (the path names it)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    id: str | None = Field(None, pattern=SLUG)  # type: ignore[assignment]


class QueueBody(QueueSpec):
    """A queue (spec section 3); ``id`` may be left out (the path names it)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    id: str | None = Field(None, pattern=SLUG)  # type: ignore[assignment]


# -- the OpenAI-compatible face -------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text (text parts of a multi-part message joined)."""
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""

    def as_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.text()}
        if self.name:
            out["name"] = self.name
        return out


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    include_usage: bool = False


def _needs_user_message(schema: dict[str, Any]) -> None:
    schema["properties"]["messages"]["contains"] = {"properties": {"role": {"const": "user"}}, "required": ["role"]}


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``. Sampling parameters (temperature, ...) are accepted
    and ignored: the workflow's own sources decide them."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, json_schema_extra=_needs_user_message)

    model: str = Field(min_length=1, description="a saved workflow's id")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _has_user_message(self) -> ChatRequest:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages: at least one message must have the role user")
        return self

    def split(self) -> tuple[str, list[dict[str, Any]]]:
        """``(user_input, earlier messages)``: the last user message, and what came before it."""
        last = max(i for i, m in enumerate(self.messages) if m.role == "user")
        return self.messages[last].text(), [m.as_state() for m in self.messages[:last]]
