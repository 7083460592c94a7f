"""The ``api/http`` provider's wire rules: where a request may go, what it carries, and
what an answer becomes in a run's state.

- A request stays on ``base_url``'s host (:func:`site`, :func:`allowed`).
- Credential headers are written as references (:class:`HeaderRef`), never literally.
- Run state is JSON and is stored, traced and shown, so a body must be JSON-safe (binary as
  base64, flagged) and bounded (read as it streams, refused past the source's limit), and
  headers that carry credentials (``Set-Cookie``, an echoed ``Authorization``) must not be
  copied into it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, model_validator

from agentflow.errors import AgentFlowError

#: Headers that carry credentials, in requests or answers.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "set-cookie2",
        "x-api-key",
        "api-key",
        "x-auth-token",
    }
)

_TEXT_TYPES = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/x-ndjson",
        "application/yaml",
        "application/graphql",
    }
)


class BodyReader:
    """Collects a streamed body up to ``limit`` bytes.

    Past the limit it raises ``on_overflow()``, or with ``soft`` keeps the first ``limit``
    bytes and asks the caller to stop (an error answer's excerpt). A declared
    ``Content-Length`` over the limit fails before anything is read.
    """

    def __init__(
        self,
        limit: int,
        *,
        soft: bool = False,
        declared: str | None = None,
        on_overflow: Callable[[], AgentFlowError] | None = None,
    ) -> None:
        self.limit = limit
        self.soft = soft
        self.on_overflow = on_overflow
        self.size = 0
        self._parts: list[bytes] = []
        if declared and declared.isdigit() and int(declared) > limit and not soft:
            self._overflow()

    def _overflow(self) -> None:
        if self.on_overflow is None:
            raise ValueError(f"body larger than {self.limit} bytes")
        raise self.on_overflow()

    def add(self, chunk: bytes) -> bool:
        """Take ``chunk``; True when reading should stop."""
        room = self.limit - self.size
        self.size += len(chunk)
        if len(chunk) <= room:
            self._parts.append(chunk)
            return False
        if not self.soft:
            self._overflow()
        self._parts.append(chunk[:room])
        return True

    @property
    def data(self) -> bytes:
        return b"".join(self._parts)


def decode_body(data: bytes, content_type: str, encoding: str | None) -> Any:
    """JSON for JSON types, text for text types (or undeclared UTF-8), else flagged base64."""
    if not data:
        return None
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            return json.loads(data)
        except ValueError:
            return _text(data, encoding)
    if ctype.startswith("text/") or ctype in _TEXT_TYPES or ctype.endswith("+xml"):
        return _text(data, encoding)
    if not ctype and (text := _utf8(data)) is not None:
        return text
    return {
        "encoding": "base64",
        "data": base64.b64encode(data).decode("ascii"),
        "content_type": ctype or None,
        "size": len(data),
    }


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text(data: bytes, encoding: str | None) -> str:
    try:
        return data.decode(encoding or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


def public_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Answer headers (lower-case names, repeats joined) minus those carrying credentials."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}


def is_credential_header(name: str) -> bool:
    """Whether a request header's value is a secret (so it must be a reference)."""
    low = name.lower()
    return low in SENSITIVE_HEADERS or any(w in low for w in ("token", "secret", "api-key", "apikey", "password"))


class HeaderRef(BaseModel):
    """A header value read from an environment variable or a stored secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str | None = None
    secret: str | None = None
    #: Put before the value, e.g. "Bearer " when the variable holds only the token.
    prefix: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> HeaderRef:
        if bool(self.env) == bool(self.secret):
            raise ValueError('a header reference needs exactly one of "env" or "secret"')
        return self

    def reference(self) -> dict[str, str]:
        """The ``{"env": NAME}`` / ``{"secret": NAME}`` form :func:`resolve_reference` takes."""
        return {"env": self.env} if self.env else {"secret": self.secret or ""}


def site(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, default ports filled in."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def allowed(base: tuple[str, str, int], target: tuple[str, str, int]) -> bool:
    """Same host, and same scheme and port, or an upgrade from http to https on 443."""
    if target[1] != base[1]:
        return False
    return target == base or (base[0] == "http" and target[0] == "https" and target[2] == 443)
