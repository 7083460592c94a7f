"""The run state's schema, built per workflow, and how parallel writes merge.

Every state key is declared (spec keys, each node's ``output_key``, keys the templates
read, keys the initial state brings), because LangGraph drops undeclared keys. Two rules
keep parallel branches from losing work (spec section 7):

- ``errors`` always appends and ``metadata`` always merges, across the whole run;
- every other key takes the value written in a step, and when several nodes write it in
  the *same* step (parallel branches) lists are concatenated and dicts merged. Differing
  scalars, or dicts disagreeing on a key, are a conflict the executor reports naming the
  nodes. Across steps the newest value wins, so a loop's second pass replaces its first.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, TypedDict

from langgraph._internal._typing import MISSING
from langgraph.channels.base import BaseChannel
from langgraph.errors import EmptyChannelError, InvalidUpdateError

CONFLICT_PREFIX = "agentflow-conflict:"


class StateConflict(InvalidUpdateError):
    """Two writes to one key in one step that cannot be merged."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{CONFLICT_PREFIX}{key}")
        self.key = key


def merge_step(key: str, values: Sequence[Any]) -> Any:
    """Merge the writes one step made to ``key`` (see the module docstring)."""
    if len(values) == 1:
        return values[0]
    first = values[0]
    if all(isinstance(v, list) for v in values):
        out: list[Any] = []
        for v in values:
            out.extend(v)
        return out
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, Any] = {}
        for v in values:
            for k, item in v.items():
                if k in merged and merged[k] != item:
                    raise StateConflict(key)
                merged[k] = item
        return merged
    if all(v == first for v in values):
        return first
    raise StateConflict(key)


class StepMerge(BaseChannel[Any, Any, Any]):
    """A LangGraph channel applying :func:`merge_step` to each step's writes."""

    __slots__ = ("value",)

    def __init__(self, typ: Any = Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value: Any = MISSING

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StepMerge)

    @property
    def ValueType(self) -> Any:
        return self.typ

    @property
    def UpdateType(self) -> Any:
        return self.typ

    def copy(self) -> StepMerge:
        new = StepMerge(self.typ, self.key)
        new.value = self.value
        return new

    def from_checkpoint(self, checkpoint: Any) -> StepMerge:
        new = StepMerge(self.typ, self.key)
        if checkpoint is not MISSING:
            new.value = checkpoint
        return new

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        self.value = merge_step(self.key, values)
        return True

    def get(self) -> Any:
        if self.value is MISSING:
            raise EmptyChannelError()
        return self.value

    def is_available(self) -> bool:
        return self.value is not MISSING

    def checkpoint(self) -> Any:
        return self.value


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


def state_schema(keys: Iterable[str]) -> type:
    """A ``TypedDict`` declaring ``keys`` with their merge rules.

    Only keys some node reads or writes (and those the initial state brings) become
    channels: LangGraph's per-step cost grows with the channel count, and the executor
    fills the spec's other keys (``text_result``, ...) into the final state anyway.
    """
    special: dict[str, Any] = {
        "errors": Annotated[list, operator.add],
        "metadata": Annotated[dict, merge_dicts],
    }
    fields: dict[str, Any] = {}
    for key in sorted(set(keys)):
        fields[key] = special.get(key) or Annotated[Any, StepMerge(Any)]
    if not fields:  # LangGraph needs at least one channel
        fields["user_input"] = Annotated[Any, StepMerge(Any)]
    return TypedDict("RunState", fields, total=False)  # type: ignore[operator]
