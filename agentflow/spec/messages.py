"""Turning pydantic's errors into messages a person can act on, with JSON paths."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from agentflow.spec.locate import join_path
from agentflow.spec.suggest import did_you_mean


def clean_loc(loc: tuple[Any, ...], value: Any, names_key: bool = True) -> tuple[Any, ...]:
    """``loc`` without pydantic's union-member tags (``str``, ``function-after[...]``).

    Walks the input alongside: a part that does not index into the value there is a tag,
    unless it is the last part of an error that names a key (missing or unknown).
    """
    kept: list[Any] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1 and names_key
        in_dict = isinstance(value, dict) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        if in_dict or in_list:
            value = value[part]
        elif not last:
            continue
        kept.append(part)
    return tuple(kept)


def path_of(base: str, loc: tuple[Any, ...]) -> str:
    path = base
    for part in loc:
        path = join_path(path, part)
    return path


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (for key suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = _field(current, part)
            current = field.annotation if field is not None else None
        elif typing.get_origin(current) in (list, tuple):
            current = typing.get_args(current)[0]  # ``part`` is the item's index
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]  # ``part`` is the entry's key
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field(model: type[BaseModel], name: Any):
    for fname, field in model.model_fields.items():
        if name in (fname, field.alias):
            return field
    return None


def _unwrap(tp: Any) -> Any:
    """Strip Optional / Annotated (containers are stepped into by ``_model_at``, one
    ``loc`` part each: the index or key)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else None
        else:
            return tp


def field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


_SLUG_FIELDS = {"id", "entry", "source", "queue", "fallback_source"}


def friendly(model: type[BaseModel], err: dict[str, Any]) -> str:
    """One pydantic error as plain words."""
    kind = err["type"]
    loc = tuple(err.get("loc", ()))
    name = loc[-1] if loc else ""
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f'"{name}" is required'
    if kind == "extra_forbidden":
        owner = _model_at(model, loc)
        allowed = field_names(owner) if owner else []
        listing = f"; allowed: {', '.join(allowed)}" if allowed and len(allowed) <= 14 else ""
        return f'unknown key "{name}"{did_you_mean(str(name), allowed)}{listing}'
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        choices = [c.strip().strip("'\"") for c in str(expected).replace(" or ", ",").split(",") if c.strip()]
        return f"must be one of {expected}; got {_short(value)}{did_you_mean(str(value), choices)}"
    if kind == "string_pattern_mismatch":
        if name in _SLUG_FIELDS or (isinstance(name, str) and name.endswith("id")):
            return (
                f"{_short(value)} is not a valid id: use lowercase letters, digits, - and _, "
                "starting with a letter or digit, at most 64 characters"
            )
        return f"{_short(value)} does not match the pattern {ctx.get('pattern')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        bound = next(iter(ctx.values()), "")
        shown = f"{bound:g}" if isinstance(bound, float) else bound
        what = "a positive number" if kind == "greater_than" and bound == 0 else f"{words} {shown}"
        return f"must be {what}; got {_short(value)}"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must be at least {ctx.get('min_length')} characters"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a JSON object; got {_short(value)}"
    if kind == "list_type":
        return f"must be a list; got {_short(value)}"
    if kind in ("string_type",):
        return f"must be a string; got {_short(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number; got {_short(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number; got {_short(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false; got {_short(value)}"
    if kind == "value_error":
        return str(ctx.get("error") or err.get("msg", "")).removeprefix("Value error, ")
    msg = str(err.get("msg", "invalid value"))
    return f"{msg[:1].lower()}{msg[1:]}; got {_short(value)}"
