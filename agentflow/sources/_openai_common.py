"""What ``llm/openai`` and ``image/openai`` share: connection config, clients, error mapping.

Clients are made on first use, not at import or construction, so listing providers or
validating a document never imports the SDK or resolves a key. The sync ``OpenAI`` client is
thread-safe and shared; async clients are kept per event loop (:class:`PerLoop`).

Retries: ``max_retries`` is handed to the SDK, which retries connection errors, timeouts,
408, 409, 429 and 5xx with backoff and honours ``Retry-After`` / ``retry-after-ms`` (up to
two minutes), reusing one idempotency key. These retries happen inside one call, and so
inside one queue grant; set ``"max_retries": 0`` to leave every retry to the node's
``retry`` policy, which goes through the queue again. When the SDK gives up, the error
carries ``retry_after_s`` so the node's policy waits as long as the server asked.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from agentflow.errors import AgentFlowError, ExecutionError
from agentflow.sending import atrace_sending, trace_sending
from agentflow.sources._http_errors import body_detail, status_error, transport_error
from agentflow.sources._support import PerLoop, SecretRefConfig

if TYPE_CHECKING:
    import openai

    from agentflow.sources.base import Provider

#: Sent when no key is configured but ``base_url`` names a server (local servers need none;
#: the SDK refuses to start without some key).
NO_KEY = "agentflow-no-key"


class OpenAIConnectionConfig(SecretRefConfig):
    """How to reach an OpenAI-compatible server."""

    secret_fields = ("api_key",)

    #: Any OpenAI-compatible server (vLLM, Ollama, LM Studio, Azure's /openai/v1/); the
    #: SDK's default (OpenAI itself, or ``OPENAI_BASE_URL``) when unset.
    base_url: str | None = None
    #: Environment variable holding the key. With ``base_url`` set and the variable unset or
    #: empty, a dummy key is sent, since local servers need none.
    api_key_env: str | None = "OPENAI_API_KEY"
    #: Name of a stored secret holding the key (wins over ``api_key_env``).
    api_key_secret: str | None = None
    organization: str | None = None
    project: str | None = None
    #: Seconds per attempt (connect, and between streamed chunks).
    timeout_s: float = Field(60.0, gt=0, le=3600)
    #: SDK-level retries inside one call (see the module docstring).
    max_retries: int = Field(2, ge=0, le=10)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError('"base_url" must start with http:// or https://')
        return value or None


class OpenAIClients:
    """The SDK clients of one provider instance."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._lock = threading.Lock()
        self._sync: openai.OpenAI | None = None
        self._async: PerLoop[openai.AsyncOpenAI] = PerLoop(self._new_async, _aclose)

    @property
    def config(self) -> OpenAIConnectionConfig:
        return self._provider.config  # type: ignore[return-value]

    def _kwargs(self) -> dict[str, Any]:
        cfg = self.config
        key = self._provider.secret("api_key", required=cfg.base_url is None)
        return {
            "api_key": key or NO_KEY,
            "base_url": cfg.base_url,
            "organization": cfg.organization,
            "project": cfg.project,
            "timeout": cfg.timeout_s,
            "max_retries": cfg.max_retries,
        }

    def sync(self) -> openai.OpenAI:
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    import openai

                    http = openai.DefaultHttpxClient(event_hooks={"request": [trace_sending]})
                    self._sync = openai.OpenAI(**self._kwargs(), http_client=http)
                client = self._sync
        return client

    def _new_async(self) -> openai.AsyncOpenAI:
        import openai

        http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [atrace_sending]})
        return openai.AsyncOpenAI(**self._kwargs(), http_client=http)

    def async_(self) -> openai.AsyncOpenAI:
        """This event loop's async client."""
        return self._async.get()

    def target(self) -> str:
        return self.config.base_url or "the OpenAI API"

    def close(self) -> None:
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()
        self._async.close()


async def _aclose(client: openai.AsyncOpenAI) -> None:
    await client.close()


def map_openai_error(provider: Provider, exc: BaseException, *, what: str, timeout_s: float | None) -> AgentFlowError:
    """The AgentFlow error for an exception raised by the SDK (or its HTTP layer mid-stream).

    Anything else (a bug, not a failure of the source) is raised again as it is.
    """
    import openai

    try:  # openai 3.x talks through httpx2; earlier majors through httpx
        import httpx2 as http_lib
    except ImportError:  # pragma: no cover - depends on the installed SDK
        import httpx as http_lib

    if isinstance(exc, AgentFlowError):
        return exc
    target = getattr(provider.config, "base_url", None) or "the OpenAI API"
    if isinstance(exc, openai.APIStatusError):
        body = exc.body  # the SDK keeps the inner "error" object here
        quota = exc.code == "insufficient_quota"
        return status_error(
            provider,
            exc.status_code,
            detail=body_detail(body if body is not None else exc.message),
            headers=exc.response.headers,
            what=what,
            auth_hint='check the key ("api_key_env" / "api_key_secret") and "organization"',
            not_found_hint=f'check "model" and that base_url ({target}) ends in /v1',
            # Out of credit is a 429 that no amount of waiting fixes.
            retryable_override=False if quota else None,
        )
    if isinstance(exc, (openai.APIConnectionError, http_lib.TransportError)):
        return transport_error(provider, exc, target=target, timeout_s=timeout_s)
    if isinstance(exc, openai.APIResponseValidationError):
        return provider.fail(
            f"{what}: the server's answer is not an OpenAI response; is base_url ({target}) "
            "an OpenAI-compatible endpoint?",
            retryable=False,
        )
    if isinstance(exc, openai.OpenAIError):
        return ExecutionError(
            f'source "{provider.source_id}": {what} failed: {body_detail(str(exc))}',
            source=provider.source_id,
        )
    raise exc


def list_models(provider: Provider, clients: OpenAIClients) -> list[str] | None:
    """Model ids from ``GET /models`` (one attempt, short timeout); None if the server has none.

    This is the connection check's round trip: it proves the URL and the key and costs
    nothing, unlike a generation.
    """
    import openai

    timeout = min(provider.config.timeout_s, 15.0)  # type: ignore[attr-defined]
    client = clients.sync().with_options(max_retries=0, timeout=timeout)
    try:
        return [m.id for m in client.models.list()]
    except openai.NotFoundError:
        return None
    except Exception as exc:
        raise map_openai_error(provider, exc, what="listing models", timeout_s=timeout) from exc


def models_message(target: str, model: str, models: list[str]) -> str:
    if not models or model in models:
        return f"{target}: reachable, {len(models)} models listed"
    return f'{target}: reachable, {len(models)} models listed, but "{model}" is not among them; check the model name'
