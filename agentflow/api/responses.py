"""Response bodies, declared so the OpenAPI document says what each route answers.

Shapes follow what the store and the runtime return (spec sections 8, 9 and 12); models
that carry a user's state or a provider's figures allow extra keys, since those grow with
the workflow and with new releases.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["succeeded", "failed", "interrupted", "cancelled"]
StoredRunStatus = Literal["succeeded", "failed", "interrupted", "cancelled", "running"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Open):
    """Spec section 9: every non-2xx answer outside ``/v1/``."""

    status: Literal["error"] = "error"
    error_type: str = Field(examples=["ValidationError"])
    message: str
    details: Any = Field(None, description="a string or an object: paths, node id, run_id and trace of a failed run")


class OpenAIErrorObject(_Open):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape, on the ``/v1/`` routes."""

    error: OpenAIErrorObject


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    store: Literal["ok"]
    queues: str = Field(description='"in-process" or "redis: ok"')


class TokenAnswer(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the token is refused")


class WhoAmI(BaseModel):
    name: str
    role: Literal["viewer", "editor", "admin"]
    kind: Literal["user", "api_key"]


class Problem(_Open):
    path: str
    message: str
    line: int | None = None
    column: int | None = None


class ValidateAnswer(BaseModel):
    valid: Literal[True] = True
    id: str
    warnings: list[Problem] = Field(default_factory=list)


class WorkflowSummary(BaseModel):
    id: str
    name: str
    latest_version: int
    updated_at: str | None = None
    updated_by: str | None = None


class WorkflowVersion(BaseModel):
    id: str
    version: int
    document: dict[str, Any]
    message: str | None = None
    created_at: str | None = None
    author: str | None = None


class VersionInfo(BaseModel):
    version: int
    message: str | None = None
    author: str | None = None
    created_at: str | None = None


class Saved(BaseModel):
    id: str
    version: int
    warnings: list[Problem] = Field(default_factory=list)


class Deleted(BaseModel):
    id: str
    deleted: Literal[True] = True


class Tokens(_Open):
    prompt: int = 0
    completion: int = 0
    total: int = 0


class TraceEntry(_Open):
    node: str
    type: str
    status: str


class RunMetadata(_Open):
    run_id: str
    workflow_id: str
    status: RunStatus
    total_runtime_ms: float
    nodes_executed: list[str]
    trace: list[TraceEntry]
    tokens: Tokens
    cost_usd: float


class RunState(_Open):
    """A run's final state (spec section 8): the state's keys, and ``metadata``."""

    metadata: RunMetadata


class RunSummary(BaseModel):
    run_id: str
    workflow_id: str | None = None
    workflow_version: int | None = None
    status: StoredRunStatus
    user: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    total_runtime_ms: float | None = None
    tokens: Tokens
    cost_usd: float | None = None
    error: dict[str, Any] | None = None


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


class RunRecord(RunSummary):
    input: dict[str, Any] | None = None
    final_state: dict[str, Any] | None = None
    trace: list[dict[str, Any]] = Field(default_factory=list)


class CancelAnswer(BaseModel):
    run_id: str
    status: Literal["cancelled", "cancelling"] = Field(
        description="cancelled: it was paused and is now cancelled; cancelling: it stops at its next node"
    )


class Checkpoint(_Open):
    checkpoint_id: str
    node: str
    nodes: list[str] = Field(default_factory=list)
    next: list[str] = Field(default_factory=list)
    created_at: str | None = None
    changed_keys: list[str] = Field(default_factory=list)
    step: int | None = None
    source: str | None = None


class CheckAnswer(BaseModel):
    ok: bool
    latency_ms: float
    message: str


class LimitUse(_Open):
    limit: float
    window_s: float
    used: float


class QueueStats(_Open):
    queue_id: str
    backend: str
    on_limit: str
    waiting: dict[str, int] = Field(default_factory=dict)
    waiters: int = 0
    granted: int = 0
    rejected: int = 0
    wait_ms_avg: float = 0.0
    wait_ms_max: float = 0.0
    limits: dict[str, LimitUse] = Field(default_factory=dict)
    cost_usd_today: float = 0.0


class SecretInfo(BaseModel):
    name: str
    updated_at: str | None = None


class SecretStored(BaseModel):
    name: str
    stored: Literal[True] = True


class SecretDeleted(BaseModel):
    name: str
    deleted: Literal[True] = True


# -- the OpenAI-compatible face -------------------------------------------------------------


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None
