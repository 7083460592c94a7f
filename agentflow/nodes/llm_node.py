"""``llm``: renders a prompt from the state, calls the model, writes its text.

In a streamed run (``stream_workflow``) the reply arrives as ``token`` events while the
model writes it; otherwise one call returns the whole text. Earlier chat turns in
``state.messages`` (the OpenAI-compatible face puts them there) go before the prompt.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentflow.errors import SourceConnectionError
from agentflow.nodes.base import NodeContext, NodeType, OutputConfig, TemplateStr, aiter_tokens, iter_tokens
from agentflow.nodes.registry import node_types
from agentflow.sources.base import LLMProvider, LLMRequest, LLMResponse
from agentflow.spec.templates import Template, parse


class LLMConfig(OutputConfig):
    prompt: TemplateStr = Field("{user_input}", description="The user message, a template.")
    system: TemplateStr | None = Field(None, description="System message, a template.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    stream: bool = Field(True, description="Stream tokens in streamed runs.")
    history_key: str | None = Field("messages", description="State key of earlier chat turns.")


class LLMNode(NodeType):
    type_name = "llm"
    Config = LLMConfig
    source_kind = "llm"
    default_output_key = "text_result"
    summary = "Calls a language model with a rendered prompt."
    config: LLMConfig

    def templates(self) -> list[tuple[str, Template]]:
        out = [("config.prompt", parse(self.config.prompt))]
        if self.config.system:
            out.append(("config.system", parse(self.config.system)))
        return out

    def _request(self, state: dict[str, Any], ctx: NodeContext) -> LLMRequest:
        cfg = self.config
        history = state.get(cfg.history_key) if cfg.history_key else None
        messages = [
            {"role": str(m["role"]), "content": str(m["content"])}
            for m in history or []
            if isinstance(m, dict) and "role" in m and "content" in m
        ] if isinstance(history, list) else []
        return LLMRequest(
            prompt=ctx.render(cfg.prompt, state, "config.prompt"),
            system=ctx.render(cfg.system, state, "config.system") if cfg.system else None,
            messages=messages,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            timeout_s=ctx.timeout_s,
        )

    def _done(self, response: LLMResponse, ctx: NodeContext) -> dict[str, Any]:
        if response.model:
            ctx.note(model=response.model)
        return {self.output_key: response.text}

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        request = self._request(state, ctx)
        with ctx.metered(lambda p: p.estimate(request)) as m:
            llm: LLMProvider = m.provider  # type: ignore[assignment]
            if ctx.streaming and self.config.stream:
                response = None
                for chunk in iter_tokens(llm.stream(request), ctx):
                    response = chunk.response or response
                response = _finished(response, self.node_id)
            else:
                response = llm.complete(request)
            m.usage, m.cost_usd = response.usage, llm.cost(response.usage)
        return self._done(response, ctx)

    async def arun(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        request = self._request(state, ctx)
        async with ctx.ametered(lambda p: p.estimate(request)) as m:
            llm: LLMProvider = m.provider  # type: ignore[assignment]
            if ctx.streaming and self.config.stream:
                response = None
                async for chunk in aiter_tokens(llm.astream(request), ctx):
                    response = chunk.response or response
                response = _finished(response, self.node_id)
            else:
                response = await llm.acomplete(request)
            m.usage, m.cost_usd = response.usage, llm.cost(response.usage)
        return self._done(response, ctx)


def _finished(response: LLMResponse | None, node_id: str) -> LLMResponse:
    if response is None:
        raise SourceConnectionError(f'node "{node_id}": the model\'s stream ended without a reply', node=node_id)
    return response


node_types.register(LLMNode)
