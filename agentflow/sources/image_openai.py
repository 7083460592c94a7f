"""``image/openai``: ``images.generate`` through the official ``openai`` SDK.

The result is kept as base64 (``response_format: "b64_json"``, the default) so a run's state
holds the image itself rather than a URL that expires within the hour. ``gpt-image-*``
models always answer in base64 and refuse the ``response_format`` parameter, so it is sent
only to other models (``dall-e-*`` and compatible servers). Connection setup, the dummy key
for keyless local servers, and retries are as for ``llm/openai``
(:mod:`agentflow.sources._openai_common`).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from agentflow.errors import AgentFlowError, ExecutionError
from agentflow.sources._openai_common import (
    OpenAIClients,
    OpenAIConnectionConfig,
    list_models,
    map_openai_error,
    models_message,
)
from agentflow.sources.base import ImageProvider, ImageRequest, ImageResponse
from agentflow.sources.registry import providers

if TYPE_CHECKING:
    from agentflow.sources.base import SecretResolver
    from agentflow.spec.models import SourceSpec

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class OpenAIImageConfig(OpenAIConnectionConfig):
    model: str = Field("gpt-image-1", min_length=1)
    #: e.g. "1024x1024", "1536x1024", "auto"; the server's default when unset.
    size: str | None = None
    #: e.g. "low" / "medium" / "high" (gpt-image), "standard" / "hd" (dall-e-3).
    quality: str | None = None
    response_format: Literal["b64_json", "url"] = "b64_json"
    #: Image generation is slow: a longer default than chat.
    timeout_s: float = Field(120.0, gt=0, le=3600)
    #: USD per generated image, for the run's cost.
    price_per_image: float | None = Field(None, ge=0)


class OpenAIImage(ImageProvider):
    """Image generation against OpenAI or any compatible server."""

    name: ClassVar[str] = "openai"
    Config: ClassVar[type[OpenAIImageConfig]] = OpenAIImageConfig
    config: OpenAIImageConfig

    def __init__(self, source: SourceSpec, config: OpenAIImageConfig, secrets: SecretResolver | None) -> None:
        super().__init__(source, config, secrets)
        self._clients = OpenAIClients(self)

    def prepare(self) -> None:
        self._clients.sync()

    async def aprepare(self) -> None:
        self._clients.async_()

    def _params(self, request: ImageRequest) -> dict[str, Any]:
        cfg = self.config
        params: dict[str, Any] = {"model": cfg.model, "prompt": request.prompt, "n": 1}
        size = request.size or cfg.size
        if size:
            params["size"] = size
        quality = request.quality or cfg.quality
        if quality:
            params["quality"] = quality
        if not cfg.model.startswith("gpt-image"):
            params["response_format"] = cfg.response_format
        params["timeout"] = request.timeout_s or cfg.timeout_s
        return params

    def _error(self, exc: BaseException, params: dict[str, Any]) -> AgentFlowError:
        what = f'image generation with "{self.config.model}"'
        return map_openai_error(self, exc, what=what, timeout_s=params.get("timeout"))

    def _response(self, resp: Any, size: str | None) -> ImageResponse:
        item = resp.data[0] if resp.data else None
        if item is None or not (item.b64_json or item.url):
            raise ExecutionError(
                f'source "{self.source_id}": the server answered with no image',
                source=self.source_id,
            )
        width, height = _dimensions(item.b64_json, size)
        return ImageResponse(
            data=item.b64_json or item.url,
            is_url=not item.b64_json,
            revised_prompt=getattr(item, "revised_prompt", None),
            width=width,
            height=height,
        )

    def generate(self, request: ImageRequest) -> ImageResponse:
        params = self._params(request)
        try:
            resp = self._clients.sync().images.generate(**params)
        except Exception as exc:
            raise self._error(exc, params) from exc
        return self._response(resp, params.get("size"))

    async def agenerate(self, request: ImageRequest) -> ImageResponse:
        params = self._params(request)
        try:
            resp = await self._clients.async_().images.generate(**params)
        except Exception as exc:
            raise self._error(exc, params) from exc
        return self._response(resp, params.get("size"))

    def _check(self) -> str:
        """``GET /models`` only: a test generation would cost money."""
        target = self._clients.target()
        models = list_models(self, self._clients)
        if models is None:
            return f"{target}: reachable (the server lists no models; no test image was made)"
        return models_message(target, self.config.model, models)

    def close(self) -> None:
        self._clients.close()


def _dimensions(b64: str | None, size: str | None) -> tuple[int | None, int | None]:
    """Width and height from a PNG's header, else from the requested ``WxH`` size."""
    if b64:
        try:
            head = base64.b64decode(b64[:44])
        except (binascii.Error, ValueError):
            head = b""
        if head[:8] == _PNG_MAGIC and head[12:16] == b"IHDR" and len(head) >= 24:
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
    if size and "x" in size:
        w_txt, _, h_txt = size.partition("x")
        if w_txt.isdigit() and h_txt.isdigit():
            return int(w_txt), int(h_txt)
    return None, None


providers.register(OpenAIImage)
