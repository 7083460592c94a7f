"""``llm/echo``: an offline, deterministic model for demos and tests.

Replies with the rendered prompt (or ``template`` filled with ``{prompt}``, ``{system}``,
``{model}``), counts tokens the way :func:`agentflow.metrics.estimate_tokens` does, waits
``latency_ms`` like a real model would, and streams its reply one word at a time, so token
events, queue pacing and retries behave as they would against a real provider.
``fail_first`` makes the first N calls for each distinct prompt fail with a retryable
error, to show retries without a network.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator

from pydantic import Field

from agentflow.metrics import estimate_tokens
from agentflow.sources.base import LLMChunk, LLMProvider, LLMRequest, LLMResponse, Price, ProviderConfig, Usage
from agentflow.sources.registry import providers

_PIECES = re.compile(r"\s*\S+\s*|\s+")


class EchoConfig(ProviderConfig):
    model: str = "echo"
    template: str | None = Field(None, description="Reply template: {prompt}, {system}, {model}.")
    latency_ms: float = Field(0.0, ge=0, le=600_000, description="Time the whole reply takes.")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    price_per_1k_tokens: Price | None = None
    fail_first: int = Field(0, ge=0, description="Fail the first N calls of each prompt.")


class EchoLLM(LLMProvider):
    name = "echo"
    Config = EchoConfig
    networked = False
    config: EchoConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def _check(self) -> str:
        return "echo is offline and always available"

    def _reply(self, request: LLMRequest) -> str:
        self._maybe_fail(request)
        if self.config.template is None:
            return request.prompt
        return (
            self.config.template.replace("{prompt}", request.prompt)
            .replace("{system}", request.system or "")
            .replace("{model}", self.config.model)
        )

    def _maybe_fail(self, request: LLMRequest) -> None:
        if not self.config.fail_first:
            return
        with self._lock:
            seen = self._failures.get(request.prompt, 0)
            self._failures[request.prompt] = seen + 1
        if seen < self.config.fail_first:
            raise self.fail(f"simulated failure {seen + 1} of {self.config.fail_first} (fail_first)")

    def _response(self, request: LLMRequest, text: str) -> LLMResponse:
        prompt_text = (request.system or "") + "".join(m["content"] for m in request.messages) + request.prompt
        usage = Usage(prompt=estimate_tokens(prompt_text), completion=estimate_tokens(text))
        return LLMResponse(text=text, usage=usage, model=self.config.model, finish_reason="stop")

    @property
    def _latency_s(self) -> float:
        return self.config.latency_ms / 1000.0

    def _timeout_error(self, request: LLMRequest) -> Exception:
        return self.fail(f"timed out after {request.timeout_s:g} s (latency_ms={self.config.latency_ms:g})")

    def complete(self, request: LLMRequest) -> LLMResponse:
        text = self._reply(request)
        delay = self._latency_s
        if request.timeout_s is not None and delay > request.timeout_s:
            time.sleep(request.timeout_s)
            raise self._timeout_error(request)
        if delay:
            time.sleep(delay)
        return self._response(request, text)

    async def acomplete(self, request: LLMRequest) -> LLMResponse:
        text = self._reply(request)
        delay = self._latency_s
        if request.timeout_s is not None and delay > request.timeout_s:
            await asyncio.sleep(request.timeout_s)
            raise self._timeout_error(request)
        if delay:
            await asyncio.sleep(delay)
        return self._response(request, text)

    def _pieces(self, text: str) -> list[str]:
        return _PIECES.findall(text) or [""]

    def stream(self, request: LLMRequest) -> Iterator[LLMChunk]:
        text = self._reply(request)
        pieces = self._pieces(text)
        step = self._latency_s / len(pieces)
        deadline = None if request.timeout_s is None else time.monotonic() + request.timeout_s
        for piece in pieces:
            if step:
                if deadline is not None and time.monotonic() + step > deadline:
                    time.sleep(max(deadline - time.monotonic(), 0))
                    raise self._timeout_error(request)
                time.sleep(step)
            yield LLMChunk(text=piece)
        yield LLMChunk(response=self._response(request, text))

    async def astream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        text = self._reply(request)
        pieces = self._pieces(text)
        step = self._latency_s / len(pieces)
        deadline = None if request.timeout_s is None else time.monotonic() + request.timeout_s
        for piece in pieces:
            if step:
                if deadline is not None and time.monotonic() + step > deadline:
                    await asyncio.sleep(max(deadline - time.monotonic(), 0))
                    raise self._timeout_error(request)
                await asyncio.sleep(step)
            yield LLMChunk(text=piece)
        yield LLMChunk(response=self._response(request, text))


providers.register(EchoLLM)
