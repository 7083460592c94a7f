"""The OpenAI-compatible face: every saved workflow is a "model" any OpenAI client can call.

``model`` names the workflow id; the last user message becomes ``user_input`` and the
messages before it go into the state as ``messages`` (the history an llm node's
``history_key`` reads). The answer is the run's ``text_result``, else
``final_output.text``, else ``final_output`` as JSON text; ``usage`` holds the run's
tokens. ``stream: true`` sends chat-completion chunks from the token events of the llm
nodes that write ``text_result`` (other answers arrive whole in one chunk at the end).
The run is the same as ``POST /api/v1/workflows/{id}/runs`` (recorded, same roles).
Errors take OpenAI's shape on these routes (``agentflow.api.errors``).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.responses import Response

from agentflow.api import running
from agentflow.api.auth import Context, need
from agentflow.api.errors import AUTH, BODY, RUN, errors, openai_error, status_of
from agentflow.api.requests import ChatRequest
from agentflow.api.responses import ChatCompletion, ModelList, ModelObject
from agentflow.errors import error_from_dict
from agentflow.security.principal import Principal
from agentflow.spec.models import WorkflowSpec

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_PAGE = 1000


def _epoch(text: str | None) -> int:
    if not text:
        return 0
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@router.get("/models", response_model=ModelList, responses=errors(*AUTH, openai=True), dependencies=[need("read")])
async def list_models(ctx: Context) -> Any:
    """Every saved workflow, as a model."""
    data: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await ctx.call(ctx.store.list_workflows, limit=_PAGE, offset=offset)
        data += [
            {"id": w["id"], "object": "model", "created": _epoch(w["updated_at"]),
             "owned_by": w["updated_by"] or "agentflow"}
            for w in page
        ]
        if len(page) < _PAGE:
            return {"object": "list", "data": data}
        offset += _PAGE


@router.get("/models/{model}", response_model=ModelObject, responses=errors(*AUTH, 404, 422, openai=True),
            dependencies=[need("read")])
async def get_model(ctx: Context, model: Annotated[str, Path(max_length=64)]) -> Any:
    """One saved workflow, as a model."""
    saved = await ctx.call(ctx.store.get_workflow, model)
    return {"id": saved["id"], "object": "model", "created": _epoch(saved["created_at"]),
            "owned_by": saved["author"] or "agentflow"}


def answer_text(final: dict[str, Any]) -> str:
    """The run's answer: ``text_result``, else ``final_output.text``, else ``final_output`` as JSON."""
    text = final.get("text_result")
    if text is not None:
        return text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    out = final.get("final_output")
    if isinstance(out, dict) and out.get("text") is not None:
        return str(out["text"])
    return json.dumps(out, ensure_ascii=False, default=str)


def usage(final: dict[str, Any]) -> dict[str, int]:
    tokens = (final.get("metadata") or {}).get("tokens") or {}
    prompt, completion = int(tokens.get("prompt") or 0), int(tokens.get("completion") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": int(tokens.get("total") or prompt + completion)}


def _answer_nodes(spec: WorkflowSpec) -> set[str]:
    return {n.id for n in spec.nodes if n.type == "llm" and (n.output_key or "text_result") == "text_result"}


class _Chunks:
    """Turns a run's live events into chat-completion chunks (``data: <json>`` lines)."""

    def __init__(self, model: str, answer_nodes: set[str], include_usage: bool) -> None:
        self.model = model
        self.answer_nodes = answer_nodes
        self.include_usage = include_usage
        self.id = "chatcmpl-"
        self.created = int(time.time())
        self.sent = ""

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": choices, **extra}
        return b"data: " + running.dumps(body).encode("utf-8") + b"\n\n"

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def render(self, event: dict[str, Any]) -> list[bytes]:
        kind = event["type"]
        if kind == "run_start":
            self.id = f"chatcmpl-{event['run_id']}"
            return [self._chunk(self._delta({"role": "assistant", "content": ""}))]
        if kind == "token" and event.get("node") in self.answer_nodes:
            self.sent += event["data"]
            return [self._chunk(self._delta({"content": event["data"]}))]
        if kind != "run_end":
            return []
        final = event["data"]
        meta = final.get("metadata") or {}
        if meta.get("status") == "failed" and meta.get("error"):
            err = error_from_dict(meta["error"])
            body = openai_error(err, status_of(err))
            body["error"]["run_id"] = meta.get("run_id")
            return [b"data: " + running.dumps(body).encode("utf-8") + b"\n\n"]
        out: list[bytes] = []
        answer = answer_text(final)
        if answer.startswith(self.sent) and len(answer) > len(self.sent):
            out.append(self._chunk(self._delta({"content": answer[len(self.sent):]})))
        if self.include_usage:
            out.append(self._chunk(self._delta({}, "stop")))
            out.append(self._chunk([], usage=usage(final)))
        else:
            out.append(self._chunk(self._delta({}, "stop"), usage=usage(final)))
        return out


@router.post(
    "/chat/completions",
    response_model=None,
    responses={
        200: {
            "model": ChatCompletion,
            "description": "a chat completion; with `stream: true`, chat-completion chunks as Server-Sent Events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors(*AUTH, 404, *BODY, *RUN, openai=True),
    },
)
async def chat_completions(ctx: Context, body: ChatRequest, who: Principal = need("run")) -> Response:
    """Run the workflow ``model`` names on the conversation; answer as OpenAI's chat API does."""
    saved, spec = await ctx.find_spec(body.model)
    user_input, history = body.split()
    state: dict[str, Any] = {"user_input": user_input}
    if history:
        state["messages"] = history
    kw = {"user": who.name, "version": saved["version"]}
    if body.stream:
        events = await running.start_stream(ctx, spec, state, **kw)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _Chunks(body.model, _answer_nodes(spec), include_usage)
        return running.event_stream(events, chunks.render, trailer=b"data: [DONE]\n\n")
    final = await running.run_to_end(ctx, spec, state, **kw)
    run_id = final["metadata"]["run_id"]
    answer = {
        "id": f"chatcmpl-{run_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_text(final)},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage(final),
    }
    return running.json_answer(answer, headers={"X-AgentFlow-Run-Id": run_id})
