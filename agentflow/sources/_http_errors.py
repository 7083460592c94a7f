"""Turning HTTP failures into the error tree, the same way for every HTTP-based provider.

The OpenAI SDK (over ``httpx2``) and the ``api/http`` provider (over ``httpx``) fail in the
same ways: a refused connection, a name that does not resolve, a bad certificate, a timeout,
or a status code. A user should read one kind of message for each, naming the source and
saying what to do, and the node's retry policy should see the same ``retryable`` verdict:

- refused, timed out, dropped, 408, 429, 5xx: :class:`SourceConnectionError`, retryable
  (429/503 carry ``retry_after_s`` from the headers);
- DNS failure, TLS failure, 401, 403: :class:`SourceConnectionError`, not retryable (the
  configuration is wrong and trying again will not fix it);
- any other 4xx: :class:`ExecutionError` (the request itself is wrong).

Every message goes through :func:`agentflow.redact.redact`.
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentflow.errors import AgentFlowError, ExecutionError, SourceConnectionError
from agentflow.redact import redact

if TYPE_CHECKING:
    from agentflow.sources.base import Provider

#: How a transport failure is described, and whether trying again may help.
_TRANSPORT: dict[str, tuple[str, bool]] = {
    "timeout": ("timed out", True),
    "refused": ("connection refused", True),
    "dns": ("the host name does not resolve", False),
    "dns-temporary": ("the host name could not be resolved right now", True),
    "tls": ("TLS/certificate error", False),
    "network": ("network error", True),
}

_HINTS: dict[str, str] = {
    "timeout": 'raise "timeout_s" if the service is just slow, or try again later',
    "refused": "is the service running, and are the host and port right?",
    "dns": "check the host name in the source's URL",
    "dns-temporary": "check the network and DNS, then try again",
    "tls": "check the server's certificate and the URL's scheme (https to a plain-HTTP port fails so)",
    "network": "the connection broke; try again",
}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first (bounded: chains can be cyclic)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 12:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def transport_kind(exc: BaseException) -> str:
    """Classify a transport failure: timeout, refused, dns, dns-temporary, tls or network."""
    for e in _chain(exc):
        name = type(e).__name__
        text = str(e)
        if isinstance(e, TimeoutError) or "Timeout" in name:
            return "timeout"
        if isinstance(e, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text or "[SSL" in text:
            return "tls"
        if isinstance(e, socket.gaierror):
            return "dns-temporary" if e.errno == socket.EAI_AGAIN else "dns"
        if "Temporary failure in name resolution" in text:
            return "dns-temporary"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return "dns"
        if isinstance(e, ConnectionRefusedError) or "Connection refused" in text:
            return "refused"
    return "network"


def transport_error(
    provider: Provider, exc: BaseException, *, target: str, timeout_s: float | None = None
) -> SourceConnectionError:
    """A SourceConnectionError for a request that got no HTTP answer."""
    kind = transport_kind(exc)
    what, retryable = _TRANSPORT[kind]
    if kind == "timeout" and timeout_s:
        what = f"no answer within {timeout_s:g} s (timed out)"
    msg = f"cannot reach {target}: {what}; {_HINTS[kind]}"
    return provider.fail(redact(msg), retryable=retryable, details={"cause": kind})


def _seconds(raw: str | None, scale: float) -> float | None:
    try:
        value = float(raw) / scale if raw else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asks us to wait (``retry-after-ms``, ``retry-after`` secs or date)."""
    if not headers:
        return None
    wait = _seconds(headers.get("retry-after-ms"), 1000.0)
    if wait is not None:
        return wait
    raw = headers.get("retry-after")
    wait = _seconds(raw, 1.0)
    if wait is not None or not raw:
        return wait
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def body_detail(body: Any, limit: int = 300) -> str:
    """A short, redacted, one-line excerpt of an error body (OpenAI's shape understood)."""
    if isinstance(body, (bytes, bytearray)):
        text = bytes(body[: limit * 4]).decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            body = err["message"]
        elif isinstance(err, str):
            body = err
        else:
            body = json.dumps(body, default=str)
    text = " ".join(str(body).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return redact(text)


def status_error(
    provider: Provider,
    status: int,
    *,
    detail: str = "",
    headers: Mapping[str, str] | None = None,
    what: str = "the request",
    auth_hint: str = "check the credentials the source uses",
    not_found_hint: str = "check the path",
    retryable_override: bool | None = None,
) -> AgentFlowError:
    """The error for an HTTP answer with status ``status`` (4xx or 5xx)."""
    said = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    wait = retry_after_s(headers)
    if status in (401, 403):
        verb = "refused the credentials" if status == 401 else "denied access"
        return provider.fail(
            redact(f"{what}: the server {verb} ({said}); {auth_hint}"),
            retryable=False,
            details={"status": status},
        )
    if status == 429 or status == 408 or status >= 500:
        reason = {429: "rate limited", 408: "request timed out at the server"}.get(status, "server error")
        hint = (f"retry after {wait:g} s" if wait is not None else "try again later") + (
            ", or slow down with a queue" if status == 429 else ""
        )
        return provider.fail(
            redact(f"{what}: {reason} ({said}); {hint}"),
            retryable=True if retryable_override is None else retryable_override,
            retry_after_s=wait,
            details={"status": status},
        )
    hint = f"; {not_found_hint}" if status == 404 else ""
    return ExecutionError(
        redact(f'source "{provider.source_id}": {what} was rejected ({said}){hint}'),
        {"status": status},
        source=provider.source_id,
    )
