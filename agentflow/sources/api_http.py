"""``api/http``: calls to one HTTP API through ``httpx``, confined to its ``base_url``'s host.

A source is a trust boundary: its headers may carry a token, so a request may only go to the
source's own host. ``APIRequest.path`` is joined to ``base_url``; an absolute URL to another
host is refused, and so is a redirect that leaves the host (checked on every hop, before it
is sent). Cookies are never kept: one client serves every run and user in the process.

Retries inside one call (``max_retries``, exponential backoff from ``retry_backoff_s``):

- a connection that was never made (refused, connect timeout) and 429/503 answers, which
  mean "not processed", are retried for every method, waiting as ``Retry-After`` says
  (up to ``max_retry_wait_s``; a longer wait is left to the node's retry policy);
- other 5xx answers, read timeouts and dropped connections only for idempotent methods
  (GET, HEAD, OPTIONS, PUT, DELETE), since a POST may have been applied already.

Bodies are read as they stream and refused past ``max_response_bytes``. JSON content types
are parsed; text types are decoded; anything else comes back as
``{"encoding": "base64", "data": ..., "content_type": ..., "size": ...}``.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import random
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from agentflow.errors import AgentFlowError, ExecutionError
from agentflow.redact import redact
from agentflow.sending import atrace_sending, trace_sending
from agentflow.sources._http_errors import body_detail, status_error, transport_error
from agentflow.sources._http_wire import (
    BodyReader,
    HeaderRef,
    allowed,
    decode_body,
    is_credential_header,
    public_headers,
    site,
)
from agentflow.sources._support import PerLoop, SecretRefConfig
from agentflow.sources.base import APIProvider, APIRequest, APIResponse
from agentflow.sources.registry import providers
from agentflow.sources.secrets import resolve_reference

if TYPE_CHECKING:
    import httpx

    from agentflow.sources.base import SecretResolver
    from agentflow.spec.models import SourceSpec

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_ERROR_BODY_BYTES = 4096


class HTTPConfig(SecretRefConfig):
    secret_fields = ("api_key", "token")

    #: Every request goes to this scheme, host and port.
    base_url: str
    #: Literal values for plain headers; ``{"env": NAME}`` / ``{"secret": NAME}`` (optional
    #: ``"prefix": "Bearer "``) for anything secret, which credential headers must use.
    headers: dict[str, HeaderRef | str] = Field(default_factory=dict)
    timeout_s: float = Field(30.0, gt=0, le=3600)
    max_retries: int = Field(2, ge=0, le=10)
    #: Wait before the first retry; doubled for each next one (with jitter).
    retry_backoff_s: float = Field(0.5, ge=0, le=60)
    #: Longest wait (backoff or ``Retry-After``) spent inside one call.
    max_retry_wait_s: float = Field(30.0, ge=0, le=600)
    max_response_bytes: int = Field(10 * 1024 * 1024, gt=0)
    #: Redirects are followed only within base_url's host (https upgrades allowed).
    follow_redirects: bool = True
    max_redirects: int = Field(5, ge=0, le=30)
    verify_tls: bool = True
    #: Path the connection check GETs (default: base_url itself).
    health_path: str | None = None
    #: False: 4xx/5xx answers are returned as results (``status``, ``body``), not errors.
    raise_for_status: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError('"base_url" must be an http:// or https:// URL with a host')
        return value

    @field_validator("headers")
    @classmethod
    def _no_literal_credentials(cls, headers: dict[str, Any]) -> dict[str, Any]:
        for name, value in headers.items():
            if isinstance(value, str) and is_credential_header(name):
                raise ValueError(
                    f'header "{name}" carries a credential: write its value as '
                    '{"env": "NAME"} or {"secret": "NAME"} (with "prefix": "Bearer " if needed)'
                )
        return headers


class _Failed(Exception):
    """An attempt failed with ``error``; ``unsent`` when the server cannot have acted on it."""

    def __init__(self, error: AgentFlowError, *, unsent: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.unsent = unsent


class _OffSite(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class HTTPAPI(APIProvider):
    """Any HTTP API under one base URL."""

    name: ClassVar[str] = "http"
    Config: ClassVar[type[HTTPConfig]] = HTTPConfig
    config: HTTPConfig

    def __init__(self, source: SourceSpec, config: HTTPConfig, secrets: SecretResolver | None) -> None:
        super().__init__(source, config, secrets)
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._async: PerLoop[httpx.AsyncClient] = PerLoop(self._new_async, _aclose)
        self._site = site(config.base_url)

    # -- clients ----------------------------------------------------------------------

    def _client_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        headers = {}
        for name, value in cfg.headers.items():
            if isinstance(value, HeaderRef):
                secret = resolve_reference(
                    value.reference(), source_id=self.source_id, what=f'header "{name}"', secrets=self._secrets
                )
                headers[name] = value.prefix + secret
            else:
                headers[name] = value
        no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        return {
            "headers": headers,
            "timeout": cfg.timeout_s,
            "verify": cfg.verify_tls,
            "follow_redirects": cfg.follow_redirects,
            "max_redirects": cfg.max_redirects,
            "cookies": no_cookies,
        }

    def prepare(self) -> None:
        self._sync_client()

    async def aprepare(self) -> None:
        self._async.get()

    def _sync_client(self) -> httpx.Client:
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    import httpx

                    self._sync = httpx.Client(**self._client_kwargs(), event_hooks={"request": [self._sync_guard]})
                client = self._sync
        return client

    def _new_async(self) -> httpx.AsyncClient:
        import httpx

        async def guard(request: httpx.Request) -> None:
            self._guard(request)
            await atrace_sending(request)

        return httpx.AsyncClient(**self._client_kwargs(), event_hooks={"request": [guard]})

    def _guard(self, request: httpx.Request) -> None:
        """Runs before every hop, redirects included: nothing leaves base_url's host."""
        if not allowed(self._site, site(str(request.url))):
            raise _OffSite(str(request.url.copy_with(query=None)))

    def _sync_guard(self, request: httpx.Request) -> None:
        self._guard(request)
        trace_sending(request)  # a queue counts a late call where it lands

    # -- one request ------------------------------------------------------------------

    def _prepare(self, req: APIRequest) -> tuple[str, str, dict[str, Any]]:
        method = req.method.upper()
        if method not in _METHODS:
            raise ExecutionError(
                f'source "{self.source_id}": unknown HTTP method "{req.method}"', source=self.source_id
            )
        kwargs: dict[str, Any] = {"params": req.params or None, "headers": req.headers or None}
        if req.json is not None:
            kwargs["json"] = req.json
        if req.timeout_s:
            kwargs["timeout"] = req.timeout_s
        return method, self._url(req.path), kwargs

    def _url(self, path: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(path or "")
        if parts.scheme or parts.netloc or (path or "").startswith("//"):
            if not allowed(self._site, site(path)):
                raise ExecutionError(
                    f'source "{self.source_id}": "{parts.scheme}://{parts.hostname}..." is not on '
                    f"the source's host ({self._site[1]}); a source only calls its own base_url",
                    source=self.source_id,
                )
            return path
        base = self.config.base_url
        return base.rstrip("/") + "/" + path.lstrip("/") if path else base

    def _what(self, method: str, url: str) -> str:
        from urllib.parse import urlsplit

        return f"{method} {urlsplit(url).path or '/'}"

    def _failure(self, exc: Exception, method: str, url: str, timeout: float) -> Exception:
        """The error for an exception out of httpx (or our redirect guard)."""
        import httpx

        what = self._what(method, url)
        if isinstance(exc, _OffSite):
            return self.fail(
                redact(
                    f"{what}: refused a redirect to another host ({exc.url}); the source only calls "
                    f"{self._site[1]}: point base_url at the final host"
                ),
                retryable=False,
            )
        if isinstance(exc, httpx.TooManyRedirects):
            return self.fail(redact(f"{what}: more than {self.config.max_redirects} redirects"), retryable=False)
        if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
            return ExecutionError(
                redact(f'source "{self.source_id}": {what}: invalid URL: {exc}'), source=self.source_id
            )
        if isinstance(exc, httpx.TransportError):
            err = transport_error(self, exc, target=self._site[1], timeout_s=timeout)
            return _Failed(err, unsent=isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)))
        return exc

    def _status_failure(self, method: str, url: str, resp: httpx.Response, head: bytes) -> _Failed:
        err = status_error(
            self,
            resp.status_code,
            detail=body_detail(head),
            headers=resp.headers,
            what=self._what(method, url),
            auth_hint="check the credential headers of the source",
            not_found_hint="check the path against base_url",
        )
        return _Failed(err, unsent=resp.status_code in (429, 503))

    def _once(self, method: str, url: str, kwargs: dict[str, Any], *, raise_status: bool) -> APIResponse:
        client = self._sync_client()
        timeout = kwargs.get("timeout", self.config.timeout_s)
        try:
            with client.stream(method, url, **kwargs) as resp:
                reader = self._reader(method, url, resp, raise_status)
                for chunk in resp.iter_bytes():
                    if reader.add(chunk):
                        break
                return self._finish(method, url, resp, reader, raise_status)
        except (_Failed, AgentFlowError):
            raise
        except Exception as exc:
            mapped = self._failure(exc, method, url, timeout)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _aonce(self, method: str, url: str, kwargs: dict[str, Any], *, raise_status: bool) -> APIResponse:
        client = self._async.get()
        timeout = kwargs.get("timeout", self.config.timeout_s)
        try:
            async with client.stream(method, url, **kwargs) as resp:
                reader = self._reader(method, url, resp, raise_status)
                async for chunk in resp.aiter_bytes():
                    if reader.add(chunk):
                        break
                return self._finish(method, url, resp, reader, raise_status)
        except (_Failed, AgentFlowError):
            raise
        except Exception as exc:
            mapped = self._failure(exc, method, url, timeout)
            if mapped is exc:
                raise
            raise mapped from exc

    def _reader(self, method: str, url: str, resp: httpx.Response, raise_status: bool) -> BodyReader:
        if raise_status and resp.status_code >= 400:
            return BodyReader(_ERROR_BODY_BYTES, soft=True)  # an excerpt for the message
        return BodyReader(
            self.config.max_response_bytes,
            declared=resp.headers.get("content-length"),
            on_overflow=lambda: self._too_big(method, url),
        )

    def _finish(
        self, method: str, url: str, resp: httpx.Response, reader: BodyReader, raise_status: bool
    ) -> APIResponse:
        if raise_status and resp.status_code >= 400:
            raise self._status_failure(method, url, resp, reader.data)
        body = decode_body(reader.data, resp.headers.get("content-type", ""), resp.encoding)
        return APIResponse(status=resp.status_code, headers=public_headers(resp.headers), body=body)

    def _too_big(self, method: str, url: str) -> ExecutionError:
        limit = self.config.max_response_bytes
        return ExecutionError(
            redact(
                f'source "{self.source_id}": {self._what(method, url)} answered more than {limit} bytes '
                '("max_response_bytes"); raise the limit or ask for less (paging, filters)'
            ),
            source=self.source_id,
        )

    # -- retries ----------------------------------------------------------------------

    def _waits(self) -> Iterator[float]:
        """Backoff waits, one per allowed retry."""
        cfg = self.config
        for attempt in range(cfg.max_retries):
            base = cfg.retry_backoff_s * 2**attempt
            yield min(base * (0.75 + 0.25 * random.random()), cfg.max_retry_wait_s)

    def _retry_wait(self, failure: _Failed, method: str, backoff: float | None) -> float | None:
        """How long to wait before trying again, or None to give up now."""
        err = failure.error
        if backoff is None:  # retries used up
            return None
        if not getattr(err, "retryable", False) or not (failure.unsent or method in _IDEMPOTENT):
            return None
        asked = getattr(err, "retry_after_s", None)
        if asked is None:
            return backoff
        return asked if asked <= self.config.max_retry_wait_s else None

    def request(self, request: APIRequest) -> APIResponse:
        method, url, kwargs = self._prepare(request)
        waits = self._waits()
        while True:
            try:
                return self._once(method, url, kwargs, raise_status=self.config.raise_for_status)
            except _Failed as failure:
                wait = self._retry_wait(failure, method, next(waits, None))
                if wait is None:
                    raise failure.error from failure.__cause__
                time.sleep(wait)

    async def arequest(self, request: APIRequest) -> APIResponse:
        method, url, kwargs = self._prepare(request)
        waits = self._waits()
        while True:
            try:
                return await self._aonce(method, url, kwargs, raise_status=self.config.raise_for_status)
            except _Failed as failure:
                wait = self._retry_wait(failure, method, next(waits, None))
                if wait is None:
                    raise failure.error from failure.__cause__
                await asyncio.sleep(wait)

    # -- lifecycle --------------------------------------------------------------------

    def _check(self) -> str:
        """One GET of ``health_path`` (or base_url); 404/405 on base_url still proves reachability."""
        cfg = self.config
        url = self._url(cfg.health_path) if cfg.health_path else cfg.base_url
        try:
            resp = self._once("GET", url, {}, raise_status=False)
        except _Failed as failure:
            raise failure.error from failure.__cause__
        if resp.status < 400:
            return f"{url}: HTTP {resp.status}"
        if resp.status in (404, 405) and not cfg.health_path:
            return f'{url}: reachable (HTTP {resp.status}); set "health_path" for a real health check'
        raise status_error(
            self,
            resp.status,
            detail=body_detail(resp.body),
            what=f"GET {url}",
            auth_hint="check the credential headers of the source",
        )

    def close(self) -> None:
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()
        self._async.close()


async def _aclose(client: httpx.AsyncClient) -> None:
    await client.aclose()


providers.register(HTTPAPI)
