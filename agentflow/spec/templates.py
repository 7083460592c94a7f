"""Templates: ``{key}`` and ``{key.sub}`` lookups into the run state, nothing else.

No expressions, attribute access or format specs, so a document can never run code.
``{{`` and ``}}`` write literal braces. Templates are parsed once (at validation and
build time) and rendered per call.

A template that is exactly one placeholder renders to the raw value (a number stays a
number), which is what query parameters and JSON bodies need; anything else renders to
text, with lists and dicts as JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\{|\}")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")


class TemplateSyntaxError(ValueError):
    """A template that is not text with ``{key}``/``{key.sub}`` placeholders."""


class MissingKey(LookupError):
    """The state has no value at a placeholder's key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Template:
    source: str
    #: Literal text and keys, alternating: str for text, tuple[str, ...] for a key path.
    parts: tuple[str | tuple[str, ...], ...]

    @property
    def keys(self) -> list[str]:
        """Dotted keys referenced, in order."""
        return [".".join(p) for p in self.parts if isinstance(p, tuple)]

    @property
    def root_keys(self) -> list[str]:
        """Top-level state keys referenced."""
        return [p[0] for p in self.parts if isinstance(p, tuple)]

    @property
    def is_single_key(self) -> bool:
        return len(self.parts) == 1 and isinstance(self.parts[0], tuple)

    def render(self, state: dict[str, Any]) -> str:
        if self.is_single_key:
            return to_text(lookup(state, self.parts[0]))  # type: ignore[arg-type]
        out: list[str] = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else to_text(lookup(state, part)))
        return "".join(out)

    def render_value(self, state: dict[str, Any]) -> Any:
        """Raw value for a lone placeholder, else the rendered text."""
        if self.is_single_key:
            return lookup(state, self.parts[0])  # type: ignore[arg-type]
        return self.render(state)


@lru_cache(maxsize=4096)
def parse(text: str) -> Template:
    """Parse ``text`` (cached); raise :class:`TemplateSyntaxError` with what to fix."""
    parts: list[str | tuple[str, ...]] = []
    buf: list[str] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        buf.append(text[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token == "{{":
            buf.append("{")
        elif token == "}}":
            buf.append("}")
        elif token in ("{", "}"):
            raise TemplateSyntaxError(
                f'unmatched "{token}" at character {m.start() + 1}; write "{token}{token}" for a literal brace'
            )
        else:
            key = m.group(1).strip()
            if not _KEY.match(key):
                raise TemplateSyntaxError(
                    f'"{{{m.group(1)}}}" is not a state key; templates allow only {{key}} or '
                    f"{{key.sub}} (letters, digits, _ and -), write {{{{ and }}}} for literal braces"
                )
            literal = "".join(buf)
            if literal:  # no empty text part: "{key}" alone must stay a single key
                parts.append(literal)
            buf = []
            parts.append(tuple(key.split(".")))
    buf.append(text[pos:])
    tail = "".join(buf)
    if tail:
        parts.append(tail)
    return Template(text, tuple(parts))


def lookup(state: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Value at ``path``; dicts by key, lists by integer index. Raise :class:`MissingKey`."""
    value: Any = state
    for i, part in enumerate(path):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isascii() and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise MissingKey(".".join(path[: i + 1]))
    return value


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def templates_in(value: Any) -> list[str]:
    """Every string inside ``value`` (nested dicts and lists): the templates of a config."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in templates_in(v)]
    if isinstance(value, list):
        return [t for v in value for t in templates_in(v)]
    return []


def render_tree(value: Any, state: dict[str, Any]) -> Any:
    """Render every string in a nested structure (JSON bodies, params, headers)."""
    if isinstance(value, str):
        return parse(value).render_value(state)
    if isinstance(value, dict):
        return {k: render_tree(v, state) for k, v in value.items()}
    if isinstance(value, list):
        return [render_tree(v, state) for v in value]
    return value
