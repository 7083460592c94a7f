"""Form fields derived from a provider's pydantic ``Config`` model.

The Sources page asks this module which fields a provider takes and shows exactly those;
a new provider (a new module with a ``Config`` model) gets its form without UI changes.
Help texts come from each field's ``description`` or, failing that, from the ``#:``
comment written above it in the provider's source.

Secrets are never fields with values: a ``<name>_secret`` field picks a stored secret by
name and a ``<name>_env`` field names an environment variable.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticUndefined

#: String fields shown as multi-line text.
LONG_TEXT = frozenset({"init_sql", "template", "system", "prompt", "query"})

Kind = Literal["bool", "int", "float", "str", "text", "choice", "json", "env_ref", "secret_ref"]


@dataclass(frozen=True)
class FormField:
    """One input of a provider's form."""

    name: str
    kind: Kind
    required: bool
    default: Any = None
    #: Whether the field may be left empty (its type allows None).
    optional: bool = False
    help: str | None = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        text = self.name.replace("_", " ")
        return text + (" *" if self.required else "")

    def initial(self, config: Mapping[str, Any] | None) -> Any:
        """The value the form starts with: the existing config's, else the default."""
        if config is not None and self.name in config:
            return config[self.name]
        return self.default


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return Union[tuple(args)], optional  # noqa: UP007 (rebuilding a runtime union)
    return annotation, False


@lru_cache(maxsize=128)
def _comment_help(model: type[BaseModel]) -> dict[str, str]:
    """``#:`` comments above field definitions, from the model and its bases."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in source.splitlines():
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
                continue
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", stripped)
            if m and pending:
                found[m.group(1)] = " ".join(pending)
            pending = []
    return found


def _bounds(metadata: list[Any], integer: bool) -> tuple[float | None, float | None]:
    """Inclusive bounds for a number input (an exclusive float bound is left to validation)."""
    lo = hi = None
    for m in metadata:
        if getattr(m, "ge", None) is not None:
            lo = float(m.ge)
        elif getattr(m, "gt", None) is not None and integer:
            lo = float(m.gt) + 1
        if getattr(m, "le", None) is not None:
            hi = float(m.le)
        elif getattr(m, "lt", None) is not None and integer:
            hi = float(m.lt) - 1
    return lo, hi


def form_fields(model: type[BaseModel]) -> list[FormField]:
    """The form of a config model, in the model's field order."""
    comments = _comment_help(model)
    out: list[FormField] = []
    for name, info in model.model_fields.items():
        annotation, optional = _strip_optional(info.annotation)
        required = info.is_required()
        if info.default is not PydanticUndefined:
            default = info.default
        elif info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        else:
            default = None
        help_text = info.description or comments.get(name)
        lo, hi = _bounds(list(info.metadata), annotation is int)
        choices: tuple[Any, ...] = ()
        kind: Kind
        if name.endswith("_secret"):
            kind = "secret_ref"
        elif name.endswith("_env"):
            kind = "env_ref"
        elif annotation is bool:
            kind = "bool"
        elif annotation is int:
            kind = "int"
        elif annotation is float:
            kind = "float"
        elif typing.get_origin(annotation) is Literal:
            kind, choices = "choice", typing.get_args(annotation)
        elif annotation is str:
            kind = "text" if name in LONG_TEXT else "str"
        else:
            kind = "json"
        out.append(
            FormField(
                name=name,
                kind=kind,
                required=required,
                default=default,
                optional=optional,
                help=help_text,
                choices=choices,
                minimum=lo,
                maximum=hi,
            )
        )
    return out


def provider_form(kind: str, provider: str) -> list[FormField]:
    """The form of a registered provider (``[]`` for an unknown one)."""
    from agentflow.sources.registry import provider_class

    cls = provider_class(kind, provider)
    return form_fields(cls.Config) if cls is not None else []


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def collect_config(fields: list[FormField], values: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Turn a form's raw values into a source ``config``: blanks and defaults left out,
    JSON fields parsed. Returns ``(config, problems)``, each problem a ``{"path", "message"}``."""
    config: dict[str, Any] = {}
    problems: list[dict[str, str]] = []
    for f in fields:
        raw = values.get(f.name)
        path = f"config.{f.name}"
        if f.kind == "json":
            if isinstance(raw, str):
                if _is_blank(raw):
                    raw = None
                else:
                    try:
                        raw = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        problems.append({"path": path, "message": f"not valid JSON: {exc.msg} (line {exc.lineno})"})
                        continue
        elif f.kind in ("str", "text", "env_ref", "secret_ref") and isinstance(raw, str):
            raw = raw.strip() if f.kind != "text" else raw
        if _is_blank(raw) or (f.kind == "json" and raw in ({}, [])):
            if f.required:
                problems.append({"path": path, "message": f'"{f.name}" is required'})
            elif f.optional and f.default is not None:
                config[f.name] = None  # cleared on purpose (e.g. no api_key_env)
            continue
        if f.kind == "int" and isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if not f.required and raw == f.default:
            continue
        config[f.name] = raw
    return config, problems


def validate_config(kind: str, provider: str, config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The provider's own checks of a config, as ``{"path", "message"}`` problems."""
    from agentflow.sources.registry import provider_class

    cls = provider_class(kind, provider)
    if cls is None:
        return [{"path": "provider", "message": f'no provider "{provider}" for kind "{kind}"'}]
    try:
        cls.Config.model_validate(dict(config))
    except PydanticError as exc:
        out = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            out.append({"path": f"config.{loc}" if loc else "config", "message": msg})
        return out
    return []


def display_value(value: Any) -> str:
    """How a config value shows in a form's text box (JSON for structures)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"), indent=2)
    return str(value)
