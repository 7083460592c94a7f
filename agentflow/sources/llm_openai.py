"""``llm/openai``: chat completions through the official ``openai`` SDK.

``base_url`` makes any OpenAI-compatible server work (vLLM, Ollama, LM Studio, Azure's
``/openai/v1/``). A server that needs no key works without one: when ``base_url`` is set and
no key is configured (``api_key_env`` unset or empty, no ``api_key_secret``), a dummy key is
sent. Against OpenAI itself (no ``base_url``) a missing key is an error naming the variable.

Streaming asks for usage with ``stream_options.include_usage``, so the final chunk carries
the server's token counts; servers that send none (or reject the option: set
``"stream_usage": false``) get an estimate from :func:`agentflow.metrics.estimate_tokens`.
Retries: see :mod:`agentflow.sources._openai_common`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from agentflow.errors import AgentFlowError, ExecutionError
from agentflow.metrics import estimate_tokens
from agentflow.sources._openai_common import (
    OpenAIClients,
    OpenAIConnectionConfig,
    list_models,
    map_openai_error,
    models_message,
)
from agentflow.sources.base import LLMChunk, LLMProvider, LLMRequest, LLMResponse, Price, Usage
from agentflow.sources.registry import providers

if TYPE_CHECKING:
    from agentflow.sources.base import SecretResolver
    from agentflow.spec.models import SourceSpec

#: Body keys AgentFlow sets itself; ``extra`` may not override them.
_RESERVED = frozenset({"model", "messages", "stream", "stream_options", "n"})


class OpenAIChatConfig(OpenAIConnectionConfig):
    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    #: Newer OpenAI models take ``max_completion_tokens``; most compatible servers take
    #: ``max_tokens``.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    #: Passed through, e.g. ``{"type": "json_object"}``.
    response_format: dict[str, Any] | None = None
    #: More body fields for the server (``seed``, ``top_p``, vendor options).
    extra_body: dict[str, Any] = Field(default_factory=dict)
    #: Ask for usage in streams (``stream_options.include_usage``).
    stream_usage: bool = True
    price_per_1k_tokens: Price | None = None


class OpenAIChat(LLMProvider):
    """Chat completions against OpenAI or any compatible server."""

    name: ClassVar[str] = "openai"
    Config: ClassVar[type[OpenAIChatConfig]] = OpenAIChatConfig
    config: OpenAIChatConfig

    def __init__(self, source: SourceSpec, config: OpenAIChatConfig, secrets: SecretResolver | None) -> None:
        super().__init__(source, config, secrets)
        self._clients = OpenAIClients(self)

    def prepare(self) -> None:
        self._clients.sync()

    async def aprepare(self) -> None:
        self._clients.async_()

    # -- request building -------------------------------------------------------------

    def _params(self, request: LLMRequest, *, stream: bool) -> dict[str, Any]:
        cfg = self.config
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend(dict(m) for m in request.messages)
        messages.append({"role": "user", "content": request.prompt})
        params: dict[str, Any] = {"model": cfg.model, "messages": messages}
        temperature = request.temperature if request.temperature is not None else cfg.temperature
        if temperature is not None:
            params["temperature"] = temperature
        max_tokens = request.max_tokens or cfg.max_tokens
        if max_tokens:
            params[cfg.max_tokens_param] = max_tokens
        if cfg.response_format is not None:
            params["response_format"] = cfg.response_format
        extra = {**cfg.extra_body, **request.extra}
        clash = sorted(_RESERVED & extra.keys())
        if clash:
            raise ExecutionError(
                f'source "{self.source_id}": extra parameter "{clash[0]}" is set by AgentFlow and cannot be overridden',
                source=self.source_id,
            )
        if extra:
            params["extra_body"] = extra
        if stream:
            params["stream"] = True
            if cfg.stream_usage:
                params["stream_options"] = {"include_usage": True}
        params["timeout"] = request.timeout_s or cfg.timeout_s
        return params

    def _error(self, exc: BaseException, params: dict[str, Any]) -> AgentFlowError:
        what = f'chat completion with "{self.config.model}"'
        return map_openai_error(self, exc, what=what, timeout_s=params.get("timeout"))

    def _response(self, resp: Any, request: LLMRequest) -> LLMResponse:
        if not resp.choices:
            raise ExecutionError(
                f'source "{self.source_id}": the server answered with no choices',
                source=self.source_id,
            )
        choice = resp.choices[0]
        text = choice.message.content or getattr(choice.message, "refusal", None) or ""
        if resp.usage is not None:
            usage = Usage(resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0)
        else:
            usage = _estimate(request, text)
        return LLMResponse(text=text, usage=usage, model=resp.model, finish_reason=choice.finish_reason)

    # -- calls ------------------------------------------------------------------------

    def complete(self, request: LLMRequest) -> LLMResponse:
        params = self._params(request, stream=False)
        try:
            resp = self._clients.sync().chat.completions.create(**params)
        except Exception as exc:
            raise self._error(exc, params) from exc
        return self._response(resp, request)

    async def acomplete(self, request: LLMRequest) -> LLMResponse:
        params = self._params(request, stream=False)
        try:
            resp = await self._clients.async_().chat.completions.create(**params)
        except Exception as exc:
            raise self._error(exc, params) from exc
        return self._response(resp, request)

    def stream(self, request: LLMRequest) -> Iterator[LLMChunk]:
        params = self._params(request, stream=True)
        acc = _Accumulator(request)
        try:
            with self._clients.sync().chat.completions.create(**params) as chunks:
                for chunk in chunks:
                    piece = acc.add(chunk)
                    if piece:
                        yield LLMChunk(text=piece)
        except Exception as exc:
            raise self._error(exc, params) from exc
        yield LLMChunk(response=acc.response())

    async def astream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        params = self._params(request, stream=True)
        acc = _Accumulator(request)
        try:
            chunks = await self._clients.async_().chat.completions.create(**params)
            async with chunks:
                async for chunk in chunks:
                    piece = acc.add(chunk)
                    if piece:
                        yield LLMChunk(text=piece)
        except Exception as exc:
            raise self._error(exc, params) from exc
        yield LLMChunk(response=acc.response())

    # -- lifecycle --------------------------------------------------------------------

    def _check(self) -> str:
        """``GET /models``; servers without it get a one-token completion instead."""
        target = self._clients.target()
        models = list_models(self, self._clients)
        if models is not None:
            return models_message(target, self.config.model, models)
        probe = LLMRequest(prompt="ping", max_tokens=1, timeout_s=min(self.config.timeout_s, 15.0))
        params = self._params(probe, stream=False)
        try:
            self._clients.sync().with_options(max_retries=0).chat.completions.create(**params)
        except Exception as exc:
            raise self._error(exc, params) from exc
        return f'{target}: answered a 1-token completion with "{self.config.model}"'

    def close(self) -> None:
        self._clients.close()


class _Accumulator:
    """Collects a stream's pieces, usage, model and finish reason into the final response."""

    def __init__(self, request: LLMRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None

    def add(self, chunk: Any) -> str:
        if chunk.usage is not None:
            self.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        if chunk.model:
            self.model = chunk.model
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        if choice.finish_reason:
            self.finish_reason = choice.finish_reason
        piece = (choice.delta.content if choice.delta is not None else None) or ""
        if piece:
            self.parts.append(piece)
        return piece

    def response(self) -> LLMResponse:
        text = "".join(self.parts)
        usage = self.usage if self.usage is not None else _estimate(self.request, text)
        return LLMResponse(text=text, usage=usage, model=self.model, finish_reason=self.finish_reason)


def _estimate(request: LLMRequest, text: str) -> Usage:
    """Token counts for a server that reported none."""
    sent = (
        (request.system or "")
        + " "
        + " ".join(str(m.get("content", "")) for m in request.messages)
        + " "
        + request.prompt
    )
    return Usage(prompt=estimate_tokens(sent), completion=estimate_tokens(text))


providers.register(OpenAIChat)
