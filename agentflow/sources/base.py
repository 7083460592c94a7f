"""The provider extension point: one small ABC per source kind.

A provider is the client behind a source (``kind`` + ``provider`` in the document). It is
created once per source configuration and shared by every run and thread (see
:mod:`agentflow.sources.clients`), so implementations must be thread-safe and must not keep
per-run state. Each provider offers a sync and an async form of its call: sync runs use the
first (no event loop needed, e.g. Streamlit threads), async runs the second (no thread hop
per node under ``ainvoke``).

To add one: write ``agentflow/sources/<kind>_<name>.py`` with a subclass of the kind's ABC,
a pydantic ``Config`` model (``extra="forbid"``), and ``providers.register(YourClass)`` at
the bottom; or expose the class through the ``agentflow.providers`` entry point group.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from agentflow.errors import ExecutionError, SourceConnectionError
from agentflow.metrics import estimate_tokens
from agentflow.spec.models import SourceSpec


class ProviderConfig(BaseModel):
    """Base of every provider's config model: unknown keys are errors, as in the document."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretResolver(Protocol):
    """Resolves ``<name>_secret`` references (the workspace's encrypted secrets)."""

    def get_secret(self, name: str) -> str | None: ...


@dataclass(frozen=True)
class CheckResult:
    """Answer of a connection check (the Sources page's "Test connection")."""

    ok: bool
    latency_ms: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "latency_ms": round(self.latency_ms, 1), "message": self.message}


@dataclass
class Usage:
    prompt: int = 0
    completion: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def to_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt, "completion": self.completion, "total": self.total}


class Provider(ABC):
    """Common part of every provider: identity, config, secrets, check, close."""

    kind: ClassVar[str]
    name: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]]
    #: Whether a call may go to the network (offline providers say False; the UI marks them).
    networked: ClassVar[bool] = True

    def __init__(self, source: SourceSpec, config: ProviderConfig, secrets: SecretResolver | None):
        self.source = source
        self.config = config
        self._secrets = secrets

    @property
    def source_id(self) -> str:
        return self.source.id

    def secret(self, field_name: str, *, required: bool = True) -> str | None:
        """Resolve ``<field>_env`` / ``<field>_secret`` of the config to its value."""
        from agentflow.sources.secrets import resolve_secret_field

        return resolve_secret_field(self, field_name, required=required)

    def check(self) -> CheckResult:
        """Cheapest real round trip that proves the source works; never raises."""
        started = time.perf_counter()
        try:
            message = self._check()
        except (SourceConnectionError, ExecutionError) as exc:
            return CheckResult(False, (time.perf_counter() - started) * 1000, exc.message)
        except Exception as exc:
            from agentflow.redact import redact

            msg = redact(f"{type(exc).__name__}: {exc}")
            return CheckResult(False, (time.perf_counter() - started) * 1000, msg)
        return CheckResult(True, (time.perf_counter() - started) * 1000, message)

    @abstractmethod
    def _check(self) -> str:
        """Do the round trip; return a one-line success message or raise."""

    def prepare(self) -> None:  # noqa: B027  (offline providers have nothing to set up)
        """Make this thread's client ready. Called before a queue grant is taken, so a grant
        is not spent on building a client or opening a pool (the call must follow it fast
        for the provider to see the queue's rate)."""

    async def aprepare(self) -> None:  # noqa: B027
        """Async form of :meth:`prepare`: the client of the running event loop."""

    def close(self) -> None:  # noqa: B027  (most providers hold nothing to release)
        """Release pools and sockets (called when the client cache drops this provider)."""

    def fail(self, message: str, **kw: Any) -> SourceConnectionError:
        """A SourceConnectionError naming this source (``raise self.fail(...)``)."""
        return SourceConnectionError(f'source "{self.source_id}": {message}', source=self.source_id, **kw)


# --- llm -------------------------------------------------------------------------------


@dataclass
class LLMRequest:
    prompt: str
    system: str | None = None
    #: Earlier chat turns ({"role", "content"}), sent before ``prompt`` (OpenAI face).
    messages: list[dict[str, str]] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float | None = None
    #: Extra provider parameters from the node config (``response_format``, ``stop``, ...).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LLMResponse:
    text: str
    usage: Usage
    model: str | None = None
    finish_reason: str | None = None


@dataclass
class LLMChunk:
    """One streamed piece; the last chunk of a stream carries the whole ``response``."""

    text: str = ""
    response: LLMResponse | None = None


class LLMProvider(Provider):
    kind: ClassVar[str] = "llm"

    @abstractmethod
    def complete(self, request: LLMRequest) -> LLMResponse: ...

    @abstractmethod
    async def acomplete(self, request: LLMRequest) -> LLMResponse: ...

    @abstractmethod
    def stream(self, request: LLMRequest) -> Iterator[LLMChunk]: ...

    @abstractmethod
    def astream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]: ...

    def estimate_tokens(self, request: LLMRequest) -> int:
        """Tokens to reserve on a queue before the call: prompt estimate + ``max_tokens``."""
        text = (request.system or "") + request.prompt + "".join(m.get("content", "") for m in request.messages)
        return estimate_tokens(text) + (request.max_tokens or self.default_max_tokens)

    def estimate(self, request: LLMRequest) -> tuple[int, float]:
        """(tokens to reserve, cost if the reply uses all of ``max_tokens``) before a call."""
        total = self.estimate_tokens(request)
        completion = request.max_tokens or self.default_max_tokens
        return total, self.cost(Usage(prompt=max(total - completion, 0), completion=completion))

    @property
    def default_max_tokens(self) -> int:
        return int(getattr(self.config, "max_tokens", None) or 256)

    def cost(self, usage: Usage) -> float:
        """USD for ``usage`` from ``price_per_1k_tokens`` ({"input", "output"}) if configured."""
        price = getattr(self.config, "price_per_1k_tokens", None)
        if not price:
            return 0.0
        return (usage.prompt * price.input + usage.completion * price.output) / 1000.0


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = 0.0
    output: float = 0.0


# --- image -----------------------------------------------------------------------------


@dataclass
class ImageRequest:
    prompt: str
    size: str | None = None
    quality: str | None = None
    timeout_s: float | None = None


@dataclass
class ImageResponse:
    #: Base64 PNG (no ``data:`` prefix) or an http(s) URL.
    data: str
    is_url: bool = False
    revised_prompt: str | None = None
    width: int | None = None
    height: int | None = None


class ImageProvider(Provider):
    kind: ClassVar[str] = "image"

    @abstractmethod
    def generate(self, request: ImageRequest) -> ImageResponse: ...

    @abstractmethod
    async def agenerate(self, request: ImageRequest) -> ImageResponse: ...

    def cost(self, response: ImageResponse | None) -> float:
        """USD per image (``price_per_image``); ``None`` asks for the estimate before a call."""
        return float(getattr(self.config, "price_per_image", 0.0) or 0.0)


# --- db --------------------------------------------------------------------------------


@dataclass
class DBResult:
    rows: list[dict[str, Any]]
    columns: list[str]
    truncated: bool = False


class DBProvider(Provider):
    kind: ClassVar[str] = "db"
    #: How ``config.params`` are written in queries: "named" (``:name``) or "pyformat"
    #: (``%(name)s``).
    paramstyle: ClassVar[str] = "named"

    @property
    def read_only(self) -> bool:
        return bool(getattr(self.config, "read_only", True))

    @abstractmethod
    def query(self, sql: str, params: dict[str, Any], *, max_rows: int, timeout_s: float | None) -> DBResult:
        """Run ``sql`` with ``params`` bound by the driver, read-only unless the source allows."""

    @abstractmethod
    async def aquery(
        self, sql: str, params: dict[str, Any], *, max_rows: int, timeout_s: float | None
    ) -> DBResult: ...


# --- api -------------------------------------------------------------------------------


@dataclass
class APIRequest:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None


@dataclass
class APIResponse:
    status: int
    headers: dict[str, str]
    body: Any

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.body}


class APIProvider(Provider):
    kind: ClassVar[str] = "api"

    @abstractmethod
    def request(self, request: APIRequest) -> APIResponse: ...

    @abstractmethod
    async def arequest(self, request: APIRequest) -> APIResponse: ...
