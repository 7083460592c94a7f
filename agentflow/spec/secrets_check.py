"""Finding secrets written into a document, which must never hold one (spec section 2).

Keys that name a secret (``api_key``, ``password``, ...) holding a literal, credentials in
URLs and DSNs, ``Authorization``-like headers with literal values, and strings shaped like
provider keys are all errors whose message says how to store the value instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from agentflow.spec.locate import join_path

_SECRET_KEY = re.compile(
    r"(?i)^(api[_-]?key|apikey|password|passwd|pwd|secret|client[_-]?secret|token|"
    r"access[_-]?token|refresh[_-]?token|auth[_-]?token|private[_-]?key|dsn|connection[_-]?string)$"
)
_SECRET_HEADER = re.compile(r"(?i)^(authorization|proxy-authorization|x-api-key|api-key|x-auth-token|cookie)$")
_URL_PASSWORD = re.compile(r"(?i)[a-z][a-z0-9+.\-]*://[^:/@\s]+:[^@\s/]+@")
_DSN_PASSWORD = re.compile(r"(?i)(?:^|\s)password\s*=\s*\S+")
_KEY_SHAPE = re.compile(r"\b(?:sk|rk)-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{20,}")
_REFERENCE_KEYS = {"env", "secret", "prefix"}


def find_inline_secrets(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (path, message) for each secret written into ``doc``."""
    yield from _walk(doc, "", header_block=False)


def _how(name: str) -> str:
    return (
        f'store it as a secret (`python -m agentflow secrets set NAME`, then "{name}_secret": '
        f'"NAME") or name an environment variable ("{name}_env": "VAR")'
    )


def _is_reference(value: Any) -> bool:
    """A header value written the spec's way: ``{"env": NAME}`` / ``{"secret": NAME}``."""
    return isinstance(value, dict) and bool(value) and set(value) <= _REFERENCE_KEYS


def _walk(value: Any, path: str, *, header_block: bool, reference: bool = False) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            sub = join_path(path, str(key))
            if isinstance(key, str) and isinstance(item, str) and item:
                if _SECRET_KEY.match(key) and not (reference and key == "secret"):
                    base = key.lower().replace("-", "_")
                    yield sub, f"a literal {key} is not allowed in a workflow; {_how(base)}"
                    continue
                if header_block and _SECRET_HEADER.match(key):
                    yield sub, (
                        f'header "{key}" holds a literal value; write {{"env": "VAR"}} or '
                        f'{{"secret": "NAME"}} instead (store it with `python -m agentflow secrets set NAME`)'
                    )
                    continue
            yield from _walk(
                item,
                sub,
                header_block=isinstance(key, str) and key.lower() == "headers",
                reference=header_block and _is_reference(item),
            )
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, join_path(path, i), header_block=False)
    elif isinstance(value, str):
        if _URL_PASSWORD.search(value) or _DSN_PASSWORD.search(value):
            yield path, (
                'contains a password; keep the connection string out of the document: use "dsn_env" '
                '(an environment variable) or "dsn_secret" (a stored secret)'
            )
        elif _KEY_SHAPE.search(value):
            yield path, "looks like an API key; keys must not be written into a workflow: " + _how("api_key")
