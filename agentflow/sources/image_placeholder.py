"""``image/placeholder``: an offline image model that draws the prompt into a real PNG.

Demos and tests get a genuine image (a colour derived from the prompt, the prompt's text
wrapped on it) with no key and no network; the Run page shows it like any other image.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import textwrap
import time

from pydantic import Field

from agentflow.sources.base import ImageProvider, ImageRequest, ImageResponse, ProviderConfig
from agentflow.sources.registry import providers


class PlaceholderConfig(ProviderConfig):
    size: str = Field("512x512", pattern=r"^\d{2,4}x\d{2,4}$")
    latency_ms: float = Field(0.0, ge=0, le=600_000)
    price_per_image: float = Field(0.0, ge=0)


class PlaceholderImage(ImageProvider):
    name = "placeholder"
    Config = PlaceholderConfig
    networked = False
    config: PlaceholderConfig

    def _check(self) -> str:
        from PIL import Image  # noqa: F401  (the one thing that can be missing)

        return "placeholder draws offline with Pillow"

    def _draw(self, request: ImageRequest) -> ImageResponse:
        from PIL import Image, ImageDraw, ImageFont

        width, height = (int(v) for v in (request.size or self.config.size).split("x"))
        digest = hashlib.sha256(request.prompt.encode()).digest()
        background = (64 + digest[0] // 2, 64 + digest[1] // 2, 64 + digest[2] // 2)
        image = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(image)
        font_size = max(12, min(width, height) // 16)
        try:
            font = ImageFont.load_default(size=font_size)
        except TypeError:  # Pillow < 10.1 has no sized default font
            font = ImageFont.load_default()
        chars = max(8, int(width / (font_size * 0.6)))
        lines = textwrap.wrap(request.prompt or "(empty prompt)", chars)[: max(1, height // (font_size + 6) - 1)]
        y = max(8, (height - len(lines) * (font_size + 6)) // 2)
        for line in lines:
            draw.text((width // 2, y), line, fill=(255, 255, 255), font=font, anchor="ma")
            y += font_size + 6
        draw.rectangle((2, 2, width - 3, height - 3), outline=(255, 255, 255), width=2)
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=False)
        return ImageResponse(
            data=base64.b64encode(buf.getvalue()).decode("ascii"),
            revised_prompt=request.prompt,
            width=width,
            height=height,
        )

    def _wait_s(self, request: ImageRequest) -> float:
        wait = self.config.latency_ms / 1000.0
        if request.timeout_s is not None and wait > request.timeout_s:
            raise self.fail(f"timed out after {request.timeout_s:g} s (latency_ms={self.config.latency_ms:g})")
        return wait

    def generate(self, request: ImageRequest) -> ImageResponse:
        wait = self._wait_s(request)
        if wait:
            time.sleep(wait)
        return self._draw(request)

    async def agenerate(self, request: ImageRequest) -> ImageResponse:
        wait = self._wait_s(request)
        if wait:
            await asyncio.sleep(wait)
        return self._draw(request)


providers.register(PlaceholderImage)
