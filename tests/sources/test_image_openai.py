"""``image/openai`` with the real ``openai`` SDK against the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest

from agentflow.errors import SourceConnectionError
from agentflow.sources.base import ImageRequest
from agentflow.sources.clients import create_provider
from agentflow.spec.models import SourceSpec
from tests.servers import OpenAICompatServer


@pytest.fixture
def srv() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer() as server:
        yield server


def make(srv: OpenAICompatServer, **config: Any) -> Any:
    cfg = {"base_url": srv.base_url, "api_key_env": "AF_TEST_UNSET_KEY", "max_retries": 0, **config}
    return create_provider(SourceSpec(id="img", kind="image", provider="openai", config=cfg), None)


def test_gpt_image_returns_base64_png(srv: OpenAICompatServer) -> None:
    img = make(srv, size="16x8", quality="low", price_per_image=0.04)
    out = img.generate(ImageRequest(prompt="a red fox"))
    assert not out.is_url and base64.b64decode(out.data).startswith(b"\x89PNG")
    assert (out.width, out.height) == (16, 8)
    assert out.revised_prompt == "revised: a red fox"
    assert img.cost(out) == pytest.approx(0.04)
    sent = srv.requests[0].json
    # gpt-image models refuse response_format: it must not be sent.
    assert sent == {"model": "gpt-image-1", "prompt": "a red fox", "n": 1, "size": "16x8", "quality": "low"}


def test_other_models_ask_for_base64_or_url(srv: OpenAICompatServer) -> None:
    out = make(srv, model="dall-e-3").generate(ImageRequest(prompt="x", size="4x4"))
    assert srv.requests[-1].json["response_format"] == "b64_json" and not out.is_url
    url = make(srv, model="dall-e-3", response_format="url").generate(ImageRequest(prompt="x"))
    assert url.is_url and url.data.startswith(srv.url + "/files/")


def test_async_generate(srv: OpenAICompatServer) -> None:
    img = make(srv)
    out = asyncio.run(img.agenerate(ImageRequest(prompt="async", size="2x2")))
    assert (out.width, out.height) == (2, 2)
    img.close()


def test_server_error_and_check(srv: OpenAICompatServer) -> None:
    img = make(srv)
    srv.fail_next(1, 503, retry_after=1)
    with pytest.raises(SourceConnectionError, match=r'source "img": image generation.*HTTP 503') as info:
        img.generate(ImageRequest(prompt="x"))
    assert info.value.retryable and info.value.retry_after_s == 1
    result = img.check()
    assert result.ok and "models listed" in result.message
    assert srv.requests[-1].path == "/v1/models"  # the check never generates (it costs money)
