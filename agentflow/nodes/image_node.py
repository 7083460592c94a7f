"""``image``: renders a prompt, generates an image; writes base64 PNG or a URL."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentflow.nodes.base import NodeContext, NodeType, OutputConfig, TemplateStr
from agentflow.nodes.registry import node_types
from agentflow.sources.base import ImageProvider, ImageRequest, ImageResponse
from agentflow.spec.templates import Template, parse


class ImageConfig(OutputConfig):
    prompt: TemplateStr = Field("{user_input}", description="What to draw, a template.")
    size: str | None = Field(None, pattern=r"^\d{2,5}x\d{2,5}$", description='e.g. "1024x1024".')
    quality: str | None = None


class ImageNode(NodeType):
    type_name = "image"
    Config = ImageConfig
    source_kind = "image"
    default_output_key = "image_result"
    summary = "Generates an image from a rendered prompt."
    config: ImageConfig

    def templates(self) -> list[tuple[str, Template]]:
        return [("config.prompt", parse(self.config.prompt))]

    def _request(self, state: dict[str, Any], ctx: NodeContext) -> ImageRequest:
        return ImageRequest(
            prompt=ctx.render(self.config.prompt, state, "config.prompt"),
            size=self.config.size,
            quality=self.config.quality,
            timeout_s=ctx.timeout_s,
        )

    def _done(self, response: ImageResponse, ctx: NodeContext) -> dict[str, Any]:
        ctx.note(
            image={
                "format": "url" if response.is_url else "png",
                "width": response.width,
                "height": response.height,
                "revised_prompt": response.revised_prompt,
            }
        )
        return {self.output_key: response.data}

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        request = self._request(state, ctx)
        with ctx.metered(lambda p: (0, p.cost(None))) as m:
            images: ImageProvider = m.provider  # type: ignore[assignment]
            response = images.generate(request)
            m.cost_usd = images.cost(response)
        return self._done(response, ctx)

    async def arun(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        request = self._request(state, ctx)
        async with ctx.ametered(lambda p: (0, p.cost(None))) as m:
            images: ImageProvider = m.provider  # type: ignore[assignment]
            response = await images.agenerate(request)
            m.cost_usd = images.cost(response)
        return self._done(response, ctx)


node_types.register(ImageNode)
