"""``llm/openai`` with the real ``openai`` SDK against the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentflow.errors import ExecutionError, SourceConnectionError, ValidationError
from agentflow.sources.base import LLMRequest
from agentflow.sources.clients import create_provider
from agentflow.spec.models import SourceSpec
from tests.conftest import ROOT
from tests.servers import OpenAICompatServer

KEY_ENV = "AF_TEST_OPENAI_KEY"


@pytest.fixture
def srv() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def make(base_url: str | None, **config: Any) -> Any:
    cfg = {"model": "gpt-4o-mini", "api_key_env": KEY_ENV, "max_retries": 0, **config}
    if base_url is not None:
        cfg["base_url"] = base_url
    return create_provider(SourceSpec(id="gpt", kind="llm", provider="openai", config=cfg), None)


def test_complete_sends_system_history_then_prompt(srv: OpenAICompatServer) -> None:
    llm = make(srv.base_url, temperature=0.2, max_tokens=50, price_per_1k_tokens={"input": 1.0, "output": 2.0})
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "noted"}]
    resp = llm.complete(LLMRequest(prompt="hello there", system="be terse", messages=history))
    assert resp.text == "echo: hello there"
    assert (resp.usage.prompt, resp.usage.completion) == (6, 3)
    assert resp.model == "gpt-4o-mini" and resp.finish_reason == "stop"
    assert llm.cost(resp.usage) == pytest.approx((6 * 1.0 + 3 * 2.0) / 1000)
    sent = srv.requests_to("/v1/chat/completions")[0].json
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][-1]["content"] == "hello there"
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 50


def test_request_overrides_and_extra_body(srv: OpenAICompatServer) -> None:
    llm = make(
        srv.base_url, max_tokens_param="max_completion_tokens", extra_body={"seed": 7}, response_format={"type": "text"}
    )
    resp = llm.complete(LLMRequest(prompt="one two three", max_tokens=2, temperature=0.0, extra={"top_p": 0.5}))
    assert resp.finish_reason == "length" and resp.text == "echo: one"
    sent = srv.requests_to("/v1/chat/completions")[0].json
    assert sent["max_completion_tokens"] == 2 and "max_tokens" not in sent
    assert sent["seed"] == 7 and sent["top_p"] == 0.5 and sent["temperature"] == 0.0
    assert sent["response_format"] == {"type": "text"}
    with pytest.raises(ExecutionError, match='"stream" is set by AgentFlow'):
        llm.complete(LLMRequest(prompt="x", extra={"stream": True}))


def test_stream_pieces_and_final_usage(srv: OpenAICompatServer) -> None:
    llm = make(srv.base_url)
    chunks = list(llm.stream(LLMRequest(prompt="a b c")))
    pieces = [c.text for c in chunks if c.response is None]
    final = chunks[-1].response
    assert final is not None and len(pieces) == 4
    assert "".join(pieces) == final.text == "echo: a b c"
    assert (final.usage.prompt, final.usage.completion) == (3, 4)  # the server's counts
    assert srv.requests[0].json["stream_options"] == {"include_usage": True}


def test_stream_without_usage_estimates(srv: OpenAICompatServer) -> None:
    srv.stream_usage = False
    final = list(make(srv.base_url).stream(LLMRequest(prompt="a b c")))[-1].response
    assert final is not None and final.text == "echo: a b c"
    assert final.usage.prompt > 0 and final.usage.completion > 0
    plain = list(make(srv.base_url, stream_usage=False).stream(LLMRequest(prompt="x")))
    assert "stream_options" not in srv.requests[-1].json and plain[-1].response is not None


def test_async_paths_across_event_loops(srv: OpenAICompatServer) -> None:
    llm = make(srv.base_url)

    async def both() -> tuple[str, str]:
        done = await llm.acomplete(LLMRequest(prompt="async"))
        chunks = [c async for c in llm.astream(LLMRequest(prompt="streamed"))]
        assert chunks[-1].response is not None
        return done.text, "".join(c.text for c in chunks)

    # Each asyncio.run is a new loop, as in sync callers: each must get its own client.
    assert asyncio.run(both()) == ("echo: async", "echo: streamed")
    assert asyncio.run(both()) == ("echo: async", "echo: streamed")
    assert len(llm._clients._async) == 0  # the closed loops' clients were not kept alive
    llm.close()


def test_threads_share_one_provider(srv: OpenAICompatServer) -> None:
    llm = make(srv.base_url)
    results: list[str] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            results.append(llm.complete(LLMRequest(prompt=f"n{i}")).text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(results) == sorted(f"echo: n{i}" for i in range(8))


def test_server_error_is_retryable(srv: OpenAICompatServer) -> None:
    srv.fail_next(1, 500)
    with pytest.raises(SourceConnectionError, match=r'source "gpt".*HTTP 500') as info:
        make(srv.base_url).complete(LLMRequest(prompt="x"))
    assert info.value.retryable and info.value.source == "gpt"


def test_429_retry_after_honoured_by_max_retries(srv: OpenAICompatServer) -> None:
    srv.fail_next(1, 429, retry_after=0.3)
    resp = make(srv.base_url, max_retries=1).complete(LLMRequest(prompt="again"))
    assert resp.text == "echo: again"
    first, second = srv.arrivals("/v1/chat/completions")
    assert second - first >= 0.3
    # Without SDK retries the caller gets the wait the server asked for.
    srv.fail_next(1, 429, retry_after=0.3)
    with pytest.raises(SourceConnectionError, match="rate limited") as info:
        make(srv.base_url, max_retries=0).complete(LLMRequest(prompt="x"))
    assert info.value.retryable and info.value.retry_after_s == pytest.approx(0.3)


def test_insufficient_quota_is_not_retryable(srv: OpenAICompatServer) -> None:
    srv.fail_next(
        1,
        429,
        body={
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
    )
    with pytest.raises(SourceConnectionError, match="exceeded your current quota") as info:
        make(srv.base_url).complete(LLMRequest(prompt="x"))
    assert not info.value.retryable


def test_timeout(srv: OpenAICompatServer) -> None:
    srv.set_delay(3.0)
    started = time.monotonic()
    with pytest.raises(SourceConnectionError, match="timed out") as info:
        make(srv.base_url, timeout_s=0.3).complete(LLMRequest(prompt="x"))
    assert info.value.retryable and time.monotonic() - started < 2.0


def test_bad_key_not_retryable_and_masked(srv: OpenAICompatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    srv.api_key = "sk-right-key-0123456789abcdef"
    wrong = "sk-wrong-key-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, wrong)
    with pytest.raises(SourceConnectionError, match="HTTP 401") as info:
        make(srv.base_url).complete(LLMRequest(prompt="x"))
    assert not info.value.retryable
    assert wrong not in info.value.message and wrong not in str(info.value.to_dict())
    assert srv.requests[0].headers["authorization"] == f"Bearer {wrong}"


def test_unknown_model_is_execution_error(srv: OpenAICompatServer) -> None:
    with pytest.raises(ExecutionError, match=r'HTTP 404.*check "model"'):
        make(srv.base_url, model="no-such-model").complete(LLMRequest(prompt="x"))


def test_unreachable_servers(srv: OpenAICompatServer) -> None:
    port = srv.port
    srv.stop()
    with pytest.raises(SourceConnectionError, match="connection refused") as refused:
        make(f"http://127.0.0.1:{port}/v1").complete(LLMRequest(prompt="x"))
    assert refused.value.retryable
    with pytest.raises(SourceConnectionError, match="resolve") as dns:
        make("http://no-such-host.invalid/v1").complete(LLMRequest(prompt="x"))
    # NXDOMAIN is a config error; a resolver that cannot answer (no network) is transient.
    assert dns.value.retryable == ("right now" in dns.value.message)


def test_keyless_local_server_gets_dummy_key(srv: OpenAICompatServer) -> None:
    make(srv.base_url).complete(LLMRequest(prompt="x"))
    assert srv.requests[0].headers["authorization"] == "Bearer agentflow-no-key"


def test_missing_key_for_openai_itself() -> None:
    with pytest.raises(SourceConnectionError, match=f"environment variable {KEY_ENV}") as info:
        make(None).complete(LLMRequest(prompt="x"))
    assert not info.value.retryable


def test_literal_key_refused() -> None:
    spec = SourceSpec(
        id="gpt", kind="llm", provider="openai", config={"model": "m", "api_key": "sk-literal-0123456789abcdef"}
    )
    with pytest.raises(ValidationError, match='"api_key_env"'):
        create_provider(spec, None)


def test_check(srv: OpenAICompatServer) -> None:
    ok = make(srv.base_url).check()
    assert ok.ok and "3 models" in ok.message
    assert "not among them" in make(srv.base_url, model="other").check().message
    srv.models_endpoint = False
    fallback = make(srv.base_url).check()
    assert fallback.ok and "1-token completion" in fallback.message
    assert srv.requests[-1].json["max_tokens"] == 1
    srv.stop()
    down = make(srv.base_url).check()
    assert not down.ok and "connection refused" in down.message


def test_import_is_cheap() -> None:
    """Importing the provider module (the registry does, for every run) loads no client library."""
    code = (
        "import sys, agentflow.sources.base; before = set(sys.modules);"
        "import agentflow.sources.llm_openai, agentflow.sources.image_openai;"
        "heavy = {m.split('.')[0] for m in set(sys.modules) - before}"
        " & {'openai', 'httpx', 'httpx2', 'psycopg', 'psycopg_pool'};"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_example_workflow_runs(srv: OpenAICompatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/openai_chat.json, pointed at the local server: plain run and token stream."""
    from agentflow import run_workflow, stream_workflow, validate_workflow

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    doc = json.loads((ROOT / "examples" / "openai_chat.json").read_text())
    doc["sources"][0]["config"]["base_url"] = srv.base_url
    spec = validate_workflow(doc)
    state = run_workflow(spec, {"user_input": "hello"})
    assert state["text_result"] == "echo: hello" and state["metadata"]["status"] == "succeeded"
    assert state["metadata"]["tokens"]["total"] > 0 and state["metadata"]["cost_usd"] > 0
    tokens = [e["data"] for e in stream_workflow(spec, {"user_input": "a b"}) if e["type"] == "token"]
    assert "".join(tokens) == "echo: a b"  # spec section 10: the pieces join to the output


class Departures:
    """Stands in for a queue grant: counts the times the HTTP layer says the call left."""

    def __init__(self) -> None:
        self.count = 0

    def gone_out(self) -> None:
        self.count += 1

    async def agone_out(self) -> None:
        self.count += 1


def test_the_sdk_reports_when_a_metered_request_is_written(srv: OpenAICompatServer) -> None:
    """The queue learns when the request's bytes go out (the httpcore trace hook), in the
    sync and the async client; requests outside a metered call report nothing."""
    from agentflow.sending import calling

    llm = make(srv.base_url)
    llm.complete(LLMRequest(prompt="unmetered"))  # no grant: the hook stays out of the way
    sync = Departures()
    token = calling.set(sync)
    try:
        assert llm.complete(LLMRequest(prompt="metered")).text == "echo: metered"
    finally:
        calling.reset(token)
    assert sync.count == 1

    async def metered() -> int:
        seen = Departures()
        calling.set(seen)
        resp = await llm.acomplete(LLMRequest(prompt="async"))
        assert resp.text == "echo: async"
        return seen.count

    assert asyncio.run(metered()) == 1
