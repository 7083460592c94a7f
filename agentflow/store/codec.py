"""Values as both backends store them: UTC timestamps, JSON text, page cursors.

Timestamps go in as aware datetimes and come out as ISO strings in UTC with microseconds
and a ``Z`` (``2026-01-02T03:04:05.000006Z``), identical on SQLite (where they are stored as
fixed-width text, so text order is time order) and Postgres (``timestamptz``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson

from agentflow.errors import ValidationError


def now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any, *, field: str = "time") -> datetime:
    """An aware UTC datetime from a datetime or an ISO string (naive means UTC)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f'{field}: "{value}" is not an ISO 8601 time',
                errors=[{"path": field, "message": "expected an ISO 8601 time"}],
            ) from None
    else:
        raise ValidationError(
            f"{field}: expected an ISO 8601 time, got {type(value).__name__}",
            errors=[{"path": field, "message": "expected an ISO 8601 time"}],
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def sqlite_time(dt: datetime) -> str:
    """Fixed-width UTC text, so SQLite's text comparison orders by time."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def iso(value: Any) -> str | None:
    """The one output form of a stored time (see module docstring); None stays None."""
    if value is None:
        return None
    return parse_time(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: orjson, as the standard library would write it: datetimes and everything else it does not
#: know go through ``_fallback``; non-string keys become strings.
_ORJSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> str:
    """JSON text for storage; values JSON cannot hold (bytes, sets, ...) become strings.

    orjson writes a run's state and trace several times faster than ``json`` (every run and
    batch row is stored so); what it refuses (integers beyond 64 bits, lone surrogates) goes
    to ``json`` as before. Non-finite floats are stored as ``null``."""
    try:
        return orjson.dumps(obj, default=_fallback, option=_ORJSON).decode("utf-8")
    except (TypeError, OverflowError, orjson.JSONEncodeError):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_fallback)


def dumps_bytes(obj: Any, default: Any = None) -> bytes:
    """Valid UTF-8 JSON for the wire (``default``: the fallback for unknown values, else
    :func:`dumps`'s); non-finite floats become ``null``, lone surrogates are escaped."""
    fallback = default or _fallback
    try:
        return orjson.dumps(obj, default=fallback, option=_ORJSON)
    except (TypeError, OverflowError, orjson.JSONEncodeError):
        return json.dumps(_finite(obj), separators=(",", ":"), default=fallback).encode("ascii")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _fallback(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, datetime):
        return iso(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return str(obj)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def encode_cursor(*parts: Any) -> str:
    """An opaque page cursor: the sort key of the last row of a page."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        parts = None
    if not isinstance(parts, list) or len(parts) != arity:
        raise ValidationError(
            "cursor: not a cursor this store returned; start again without one",
            errors=[{"path": "cursor", "message": "invalid cursor"}],
        )
    return parts
