"""A local OpenAI-compatible server for tests: chat (plain and SSE), images, models.

    with OpenAICompatServer() as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")   # srv.base_url ends in /v1
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        srv.requests_to("/v1/chat/completions")[0].json["messages"]

Behaviour, deterministic so tests can assert on it:

- ``POST /v1/chat/completions``: the reply is ``reply`` (a string, or a function of the
  messages), by default ``"echo: <last user message>"``, cut to ``max_tokens`` (or
  ``max_completion_tokens``) words with ``finish_reason: "length"``. Usage counts words.
  With ``stream: true`` it answers Server-Sent Events, one word per chunk (``chunk_delay_s``
  apart), then a chunk with ``choices: []`` and ``usage`` when the request asked for
  ``stream_options.include_usage`` and ``stream_usage`` is true, then ``[DONE]``.
- ``POST /v1/images/generations``: a real PNG of the requested ``size`` (small sizes only;
  1x1 otherwise) as ``b64_json``, or a URL under ``/files/`` for ``response_format: "url"``;
  ``revised_prompt`` is ``"revised: <prompt>"``. Like OpenAI, ``gpt-image-*`` models refuse
  ``response_format`` with a 400.
- ``GET /v1/models``: ``models`` (404 when ``models_endpoint`` is false).
- A ``model`` not in ``models`` gets OpenAI's 404 ``model_not_found``; with ``api_key`` set,
  a request without ``Authorization: Bearer <api_key>`` gets 401 ``invalid_api_key``.

Failures, delays and request records come from :class:`tests.servers.base.LocalServer`
(``fail_next(1, 429, retry_after=0.2)``, ``set_delay(2.0)``, ``arrivals(path)``).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from tests.servers.base import LocalServer, RecordedRequest, Reply, count_words

CHAT_PATH = "/v1/chat/completions"
IMAGES_PATH = "/v1/images/generations"
MODELS_PATH = "/v1/models"

ReplyFn = Callable[[list[dict[str, Any]]], str]


class OpenAICompatServer(LocalServer):
    """An in-process stand-in for the OpenAI API (see the module docstring)."""

    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("gpt-4o-mini", "gpt-image-1", "dall-e-3"),
        reply: str | ReplyFn | None = None,
        api_key: str | None = None,
        stream_usage: bool = True,
        models_endpoint: bool = True,
        chunk_delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.models = list(models)
        self.reply = reply
        self.api_key = api_key
        self.stream_usage = stream_usage
        self.models_endpoint = models_endpoint
        self.chunk_delay_s = chunk_delay_s
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``: ``http://127.0.0.1:<port>/v1``."""
        return self.url + "/v1"

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        if callable(self.reply):
            return self.reply(messages)
        if isinstance(self.reply, str):
            return self.reply
        last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        return f"echo: {last.get('content', '')}"

    # -- routing ------------------------------------------------------------------

    def handle(self, req: RecordedRequest) -> Reply:
        if self.api_key is not None and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if req.method == "POST" and req.path == CHAT_PATH:
            return self._chat(req)
        if req.method == "POST" and req.path == IMAGES_PATH:
            return self._images(req)
        if req.method == "GET" and req.path == MODELS_PATH and self.models_endpoint:
            return Reply.json(
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "agentflow-tests"} for m in self.models
                    ],
                }
            )
        if req.method == "GET" and req.path.startswith("/files/"):
            return Reply(200, _png(2, 2), {"Content-Type": "image/png"})
        return _error(404, f"Invalid URL ({req.method} {req.path})", "invalid_request_error", None)

    def _model_error(self, body: dict[str, Any]) -> Reply | None:
        model = body.get("model")
        if not model:
            return _error(400, "you must provide a model parameter", "invalid_request_error", None)
        if self.models and model not in self.models:
            return _error(404, f"The model `{model}` does not exist", "invalid_request_error", "model_not_found")
        return None

    def _chat(self, req: RecordedRequest) -> Reply:
        body = req.json or {}
        problem = self._model_error(body)
        if problem is not None:
            return problem
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array", "invalid_request_error", None)
        text, finish = self.reply_for(messages), "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit and count_words(text) > limit:
            text, finish = " ".join(text.split()[: int(limit)]), "length"
        prompt_tokens = sum(count_words(str(m.get("content", ""))) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count_words(text),
            "total_tokens": prompt_tokens + count_words(text),
        }
        ident, created, model = f"chatcmpl-{next(self._ids)}", int(time.time()), body["model"]
        if not body.get("stream"):
            return Reply.json(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish,
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = self._stream(
            ident, created, model, text, finish, usage if include_usage and self.stream_usage else None
        )
        return Reply(200, events, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    def _stream(
        self,
        ident: str,
        created: int,
        model: str,
        text: str,
        finish: str,
        usage: dict[str, int] | None,
    ) -> Iterator[bytes]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            if usage is not None and "usage" not in extra:
                chunk["usage"] = None
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        pieces = re.findall(r"\s*\S+", text)
        rest = text[len("".join(pieces)) :]
        for piece in [*pieces, rest] if rest else pieces:
            if self.chunk_delay_s and not self.sleep(self.chunk_delay_s):
                return
            yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        yield event([{"index": 0, "delta": {}, "finish_reason": finish}])
        if usage is not None:
            yield event([], usage=usage)
        yield b"data: [DONE]\n\n"

    def _images(self, req: RecordedRequest) -> Reply:
        body = req.json or {}
        problem = self._model_error(body)
        if problem is not None:
            return problem
        model, fmt = body["model"], body.get("response_format")
        if model.startswith("gpt-image") and fmt is not None:
            return _error(400, "Unknown parameter: 'response_format'.", "invalid_request_error", "unknown_parameter")
        width, height = _parse_size(body.get("size"))
        item: dict[str, Any] = {"revised_prompt": f"revised: {body.get('prompt', '')}"}
        if fmt == "url":
            item["url"] = f"{self.url}/files/image-{next(self._ids)}.png"
        else:
            item["b64_json"] = base64.b64encode(_png(width, height)).decode()
        return Reply.json({"created": int(time.time()), "data": [item]})


def _error(status: int, message: str, kind: str, code: str | None) -> Reply:
    return Reply.json({"error": {"message": message, "type": kind, "param": None, "code": code}}, status)


def _parse_size(size: Any) -> tuple[int, int]:
    if isinstance(size, str) and re.fullmatch(r"\d{1,4}x\d{1,4}", size):
        w, h = (int(v) for v in size.split("x"))
        if 0 < w <= 2048 and 0 < h <= 2048:
            return w, h
    return 1, 1


def _png(width: int, height: int) -> bytes:
    """A valid grey PNG of the given size (tiny when compressed)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = (b"\x00" + b"\x80" * width) * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
