"""Database values made JSON-safe, so rows can go into run state, traces and the store.

Conversions (a run's state must survive ``json.dumps`` without a custom encoder):

- ``datetime``, ``date``, ``time``: ISO 8601 strings (with the offset when there is one);
- ``timedelta`` (``interval``): seconds as a number;
- ``Decimal`` (``numeric``): an integer when it is whole; else a float when the float's
  shortest form is the same number (``12.50`` -> ``12.5``); else the exact value as a
  string (``"12345678901234567.891"``), since a float would silently change it; NaN and
  infinities as strings;
- non-finite floats: the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
- ``UUID``, IP addresses, ranges and any other type: ``str()``;
- ``bytes`` (``bytea``): base64;
- ``json``/``jsonb`` arrive as Python objects, arrays as lists: converted item by item.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal
from enum import Enum
from typing import Any

_FLOAT_NAMES = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_safe(value: Any) -> Any:
    """``value`` as something ``json.dumps`` writes without loss it can avoid."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else _FLOAT_NAMES[value]
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Enum):
        return json_safe(value.value)
    return str(value)


def _decimal(value: Decimal) -> Any:
    if not value.is_finite():
        return "NaN" if value.is_nan() else ("-Infinity" if value < 0 else "Infinity")
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) == value:
        return as_float
    return str(value)


def unique_names(names: Iterable[str]) -> list[str]:
    """Column names made unique (``id``, ``id_2``), so no value is lost in a row object."""
    seen: dict[str, int] = {}
    out: list[str] = []
    taken = set()
    for name in names:
        candidate = name
        while candidate in taken:
            seen[name] = seen.get(name, 1) + 1
            candidate = f"{name}_{seen[name]}"
        taken.add(candidate)
        out.append(candidate)
    return out
