"""Masking of secrets in anything that leaves the process: logs, errors, pages, exports.

Two nets, because either alone leaks: every secret value the runtime resolves (from an
environment variable or the encrypted store) is remembered here and masked wherever it
appears, and text that merely *looks* secret (``sk-...`` keys, bearer tokens, passwords in
DSNs) is masked by pattern even when we never resolved it.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_known_re: re.Pattern[str] | None = None

_KEY_WORDS = ("password=", "passwd=", "pwd=", "apikey=", "api_key=", "api-key=", "secret=", "token=")

#: (pattern, replacement, a cheap test that must pass for the pattern to match at all).
#: The tests matter: every log line goes through here, and the four patterns cost ~40 us
#: on a 300-character line where the tests cost ~1 us.
_PATTERNS: list[tuple[re.Pattern[str], str, Any]] = [
    # OpenAI-style and similar provider keys.
    (
        re.compile(r"\b(sk|rk|pk)-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
        MASK,
        lambda text, low: "sk-" in text or "rk-" in text or "pk-" in text,
    ),
    # Authorization headers and bearer tokens.
    (
        re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"),
        r"\1 " + MASK,
        lambda text, low: "bearer" in low or "basic" in low,
    ),
    # user:password@ in URLs and DSNs.
    (
        re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s/]+@"),
        r"\1" + MASK + "@",
        lambda text, low: "://" in text,
    ),
    # key=value pairs in libpq DSNs and query strings.
    (
        re.compile(r"(?i)\b(password|passwd|pwd|api[_-]?key|secret|token)=([^\s&;]+)"),
        r"\1=" + MASK,
        lambda text, low: "=" in text and any(word in low for word in _KEY_WORDS),
    ),
]


def remember(value: str | None) -> None:
    """Mask ``value`` from now on wherever it appears (short values are ignored)."""
    global _known, _known_re
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _known:
            return
        _known = _known | {value}
        alts = sorted(_known, key=len, reverse=True)
        _known_re = re.compile("|".join(re.escape(v) for v in alts))


def redact(text: str) -> str:
    """Return ``text`` with known secrets and secret-looking substrings masked."""
    if not text:
        return text
    known = _known_re
    if known is not None:
        text = known.sub(MASK, text)
    low = text.casefold()
    for pattern, repl, may_match in _PATTERNS:
        if may_match(text, low):
            text = pattern.sub(repl, text)
    return text


_SECRET_KEYS = re.compile(r"(?i)^(api[_-]?key|password|passwd|secret|token|authorization|dsn)$")


def redact_obj(obj: Any) -> Any:
    """Redact every string inside a JSON-like structure; values of secret-named keys masked."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str) and _SECRET_KEYS.match(k) and isinstance(v, str) and v:
                out[k] = MASK
            else:
                out[k] = redact_obj(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj
