"""The OpenAI-compatible face, driven by the official ``openai`` SDK (in-process here; against a
real server in test_server.py)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from agentflow.store import Store
from tests.api.conftest import Client, failing_doc, parse_sse


@pytest.fixture
async def sdk(app: Any, keys: dict[str, str]) -> Any:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False))
    async with openai.AsyncOpenAI(base_url="http://api.test/v1", api_key=keys["editor"], http_client=http,
                                  max_retries=0) as client:
        yield client


async def test_models_are_the_saved_workflows(sdk: Any, saved: dict) -> None:
    models = [m async for m in sdk.models.list()]
    assert [m.id for m in models] == ["triage-demo"]
    assert models[0].owned_by == "editor-key" and models[0].created > 0
    one = await sdk.models.retrieve("triage-demo")
    assert one.id == "triage-demo"
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.models.retrieve("nope")
    assert err.value.body["code"] == "model_not_found"


async def test_chat_completion_answers_with_usage(sdk: Any, saved: dict, store: Store, app: Any) -> None:
    answer = await sdk.chat.completions.create(
        model="triage-demo",
        messages=[{"role": "system", "content": "be nice"}, {"role": "user", "content": "earlier"},
                  {"role": "assistant", "content": "ok"}, {"role": "user", "content": "what now"}],
        temperature=0.3,
    )
    assert answer.choices[0].message.content == "You asked: what now"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens > 0
    run_id = answer.id.removeprefix("chatcmpl-")
    await app.state.agentflow.settled(run_id)  # its row is written while the answer goes out
    record = store.get_run(run_id)
    assert record["user"] == "editor-key" and record["status"] == "succeeded"
    assert record["input"]["messages"] == [
        {"role": "system", "content": "be nice"}, {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "ok"},
    ]


async def test_chat_completion_streams_token_chunks(sdk: Any, saved: dict) -> None:
    stream = await sdk.chat.completions.create(
        model="triage-demo", messages=[{"role": "user", "content": "one two three"}], stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == "You asked: one two three"
    assert len([p for p in pieces if p]) > 1  # streamed word by word
    assert finish == "stop" and usage.total_tokens > 0


async def test_answers_that_are_not_streamed_tokens_arrive_whole(client: Client, doc: dict) -> None:
    ed = client.as_("editor")
    doc["id"] = "pictures"
    await client.put("/api/v1/workflows/pictures", json={"document": doc}, headers=ed)
    r = await client.post("/v1/chat/completions", headers=ed, json={
        "model": "pictures", "stream": True, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "img: "}, {"type": "text", "text": "a fox"}]}]})
    chunks = [data for _, data in parse_sse(r.text.replace("data: [DONE]", ""))]
    assert r.text.rstrip().endswith("data: [DONE]")
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert '"image":' in content  # final_output as JSON text: no text_result, no final_output.text
    assert chunks[-1]["usage"]["total_tokens"] == 0


async def test_failed_runs_and_bad_requests_in_openai_s_shape(sdk: Any, client: Client) -> None:
    ed = client.as_("editor")
    await client.put("/api/v1/workflows/fails", json={"document": failing_doc()}, headers=ed)
    with pytest.raises(openai.UnprocessableEntityError) as err:
        await sdk.chat.completions.create(model="fails", messages=[{"role": "user", "content": "hi"}])
    assert "missing_key" in err.value.message and err.value.body["run_id"]
    with pytest.raises(openai.APIError) as err:
        stream = await sdk.chat.completions.create(model="fails", messages=[{"role": "user", "content": "hi"}],
                                                   stream=True)
        async for _ in stream:
            pass
    assert "missing_key" in str(err.value)
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    r = await client.post("/v1/chat/completions", headers=ed, json={"model": "fails", "messages": [
        {"role": "system", "content": "no user here"}]})
    assert r.status_code == 422
    assert set(r.json()["error"]) >= {"message", "type", "param", "code"}
    r = await client.post("/v1/chat/completions", json={"model": "fails", "messages": []})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
