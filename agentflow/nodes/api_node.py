"""``api``: an HTTP call to the source's host; writes ``{"status", "headers", "body"}``.

Method, path, query params, JSON body and headers are templates rendered from the state;
the source holds the base URL and any secret headers, so documents never carry keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentflow.nodes.base import NodeContext, NodeType, OutputConfig
from agentflow.nodes.registry import node_types
from agentflow.sources.base import APIProvider, APIRequest
from agentflow.spec.templates import Template, parse, templates_in


class APIConfig(OutputConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: str = Field("", description='Joined to the source\'s base_url, e.g. "/items/{item_id}".')
    params: dict[str, Any] = Field(default_factory=dict, description="Query parameters.")
    json_body: Any = Field(None, alias="json", description="JSON body (templates inside).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra non-secret headers.")

    @model_validator(mode="after")
    def _templates_parse(self) -> APIConfig:
        for text in [self.path, *templates_in(self.params), *templates_in(self.json_body), *self.headers.values()]:
            parse(text)  # TemplateSyntaxError is a ValueError: reported with its path
        return self


class APINode(NodeType):
    type_name = "api"
    Config = APIConfig
    source_kind = "api"
    default_output_key = "api_result"
    output_shape = "record"
    summary = "Calls an HTTP API."
    config: APIConfig

    def templates(self) -> list[tuple[str, Template]]:
        cfg = self.config
        fields = [("config.path", cfg.path)]
        fields += [("config.params", t) for t in templates_in(cfg.params)]
        fields += [("config.json", t) for t in templates_in(cfg.json_body)]
        fields += [("config.headers", t) for t in cfg.headers.values()]
        return [(path, parse(text)) for path, text in fields]

    def _request(self, state: dict[str, Any], ctx: NodeContext) -> APIRequest:
        cfg = self.config
        return APIRequest(
            method=cfg.method,
            path=ctx.render(cfg.path, state, "config.path"),
            params=ctx.render_value(cfg.params, state, "config.params"),
            json=ctx.render_value(cfg.json_body, state, "config.json") if cfg.json_body is not None else None,
            headers={k: ctx.render(v, state, f"config.headers.{k}") for k, v in cfg.headers.items()},
            timeout_s=ctx.timeout_s,
        )

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        request = self._request(state, ctx)
        with ctx.metered() as m:
            api: APIProvider = m.provider  # type: ignore[assignment]
            response = api.request(request)
        ctx.note(status=response.status)
        return {self.output_key: response.to_dict()}

    async def arun(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        request = self._request(state, ctx)
        async with ctx.ametered() as m:
            api: APIProvider = m.provider  # type: ignore[assignment]
            response = await api.arequest(request)
        ctx.note(status=response.status)
        return {self.output_key: response.to_dict()}


node_types.register(APINode)
