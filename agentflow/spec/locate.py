"""Line and column of every value in a JSON text, by JSON path.

Validation messages name a JSON path; editors want a line to mark. Python's ``json`` keeps
no positions, so this scanner walks the (already valid) text once and records where each
value starts, keyed by the same path strings the validator writes (``nodes[3].source``).
"""

from __future__ import annotations

import contextlib
import re

_WS = re.compile(r"[ \t\r\n]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


def join_path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    if re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", key):
        return f"{base}.{key}" if base else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{escaped}"]'


def locate(text: str) -> dict[str, tuple[int, int]]:
    """Map each path (``$`` for the root) to the (line, column) where its value starts, 1-based."""
    import json

    positions: dict[str, tuple[int, int]] = {}
    line_starts = [0]
    for m in re.finditer("\n", text):
        line_starts.append(m.end())

    def where(offset: int) -> tuple[int, int]:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - line_starts[lo] + 1

    def ws(i: int) -> int:
        return _WS.match(text, i).end()  # type: ignore[union-attr]

    def value(i: int, path: str) -> int:
        i = ws(i)
        positions[path or "$"] = where(i)
        ch = text[i]
        if ch == "{":
            i = ws(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                m = _STRING.match(text, i)
                key = json.loads(m.group(0))  # type: ignore[union-attr]
                i = ws(m.end())  # type: ignore[union-attr]
                i = value(i + 1, join_path(path, key))  # skip ':'
                i = ws(i)
                if text[i] == "}":
                    return i + 1
                i = ws(i + 1)  # skip ','
        if ch == "[":
            i = ws(i + 1)
            if text[i] == "]":
                return i + 1
            n = 0
            while True:
                i = ws(value(i, join_path(path, n)))
                n += 1
                if text[i] == "]":
                    return i + 1
                i += 1
        if ch == '"':
            return _STRING.match(text, i).end()  # type: ignore[union-attr]
        return _SCALAR.match(text, i).end()  # type: ignore[union-attr]

    with contextlib.suppress(AttributeError, IndexError, ValueError):  # invalid JSON: what was found
        value(0, "")
    return positions


def position_of(positions: dict[str, tuple[int, int]], path: str) -> tuple[int, int] | None:
    """Position of ``path`` or of its nearest located parent (a missing key's object)."""
    while True:
        if path in positions:
            return positions[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return positions.get("$")
        path = path[:cut]
