"""Scorers: how well a row's output matches its expected value, as 1 or 0 (spec section 13).

The scorer reads the row's output key (default ``final_output``): a string as it is,
anything else as its JSON text. The expected value is read the same way (CSV values are
strings; JSON Lines values may be anything).

- ``exact``: the output equals the expected value.
- ``contains``: the expected value occurs in the output.
- ``regex``: the expected value, as a pattern, is found in the output (``re.search``); a
  pattern that does not compile scores 0.
- ``json:PATH``: the field at PATH inside the output (a JSON object, or a string holding
  one) equals the expected value. PATH is dot-separated keys with ``[n]`` or ``.n`` for list
  items, optionally starting with ``$.``: ``json:answer``, ``json:$.items[0].name``. Values
  are equal when they are equal as JSON, or when their texts are (``42`` and ``"42"``, as
  a CSV column gives it); ``true`` never equals ``1``.

A failed row scores 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agentflow.errors import ValidationError

__all__ = ["SCORERS", "Scorer", "json_path", "output_text", "parse_scorer"]

SCORERS = ("exact", "contains", "regex", "json:PATH")

_MISSING = object()
_STEP = re.compile(r"\[(-?\d+)\]|\.?([^.\[\]]+)")


def output_text(value: Any) -> str:
    """A string as it is; anything else as its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Scorer:
    """A parsed scorer; call it with the output and the expected value."""

    name: str
    path: tuple[str | int, ...] = ()
    fn: Callable[[Scorer, Any, Any], float] | None = None

    def __call__(self, output: Any, expected: Any) -> float:
        assert self.fn is not None
        return self.fn(self, output, expected)

    @property
    def spec(self) -> str:
        """The text it was parsed from (``json:a.b`` keeps its path)."""
        if self.name != "json":
            return self.name
        return "json:" + ".".join(str(p) for p in self.path)


def _exact(_: Scorer, output: Any, expected: Any) -> float:
    return 1.0 if output_text(output) == output_text(expected) else 0.0


def _contains(_: Scorer, output: Any, expected: Any) -> float:
    return 1.0 if output_text(expected) in output_text(output) else 0.0


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None


def _regex(_: Scorer, output: Any, expected: Any) -> float:
    pattern = _pattern(output_text(expected))
    return 1.0 if pattern is not None and pattern.search(output_text(output)) else 0.0


def _json(scorer: Scorer, output: Any, expected: Any) -> float:
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return 0.0
    found = json_path(output, scorer.path)
    if found is _MISSING:
        return 0.0
    return 1.0 if _same(found, expected) else 0.0


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return (type(a) is type(b) and a == b) or output_text(a) == output_text(b)
    return a == b or output_text(a) == output_text(b)


def json_path(value: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` inside ``value``, or a private marker when there is none."""
    for step in path:
        if isinstance(value, dict):
            key = str(step)
            if key not in value:
                return _MISSING
            value = value[key]
        elif isinstance(value, list):
            try:
                index = int(step)
            except (TypeError, ValueError):
                return _MISSING
            if not -len(value) <= index < len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def _parse_path(text: str) -> tuple[str | int, ...]:
    text = text.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(text)
        steps.append(int(m.group(1)) if m.group(1) is not None else m.group(2))
        pos = m.end()
    if not steps:
        raise ValueError(text)
    return tuple(steps)


def parse_scorer(text: str) -> Scorer:
    """``exact``, ``contains``, ``regex`` or ``json:PATH``; ValidationError otherwise."""
    raw = (text or "").strip()
    if raw == "exact":
        return Scorer("exact", fn=_exact)
    if raw == "contains":
        return Scorer("contains", fn=_contains)
    if raw == "regex":
        return Scorer("regex", fn=_regex)
    if raw.startswith("json:"):
        try:
            return Scorer("json", _parse_path(raw[5:]), fn=_json)
        except ValueError:
            pass
        message = f'"{raw}": json:PATH needs a path of keys, e.g. json:answer or json:$.items[0].name'
        raise ValidationError(f"scorer: {message}", errors=[{"path": "scorer", "message": message}])
    message = f'unknown scorer "{raw}": use one of {", ".join(SCORERS)}'
    raise ValidationError(f"scorer: {message}", errors=[{"path": "scorer", "message": message}])
