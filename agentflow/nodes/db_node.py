"""``db``: runs a parameterised query; writes the rows as a list of objects.

Parameters are templates rendered from the state and *bound* by the driver in its named
style (``:name`` for sqlite, ``%(name)s`` for postgres), never spliced into the SQL, so
state text cannot change what the query does. ``allow_state_query`` lets ``state.db_query``
replace the query; the source still runs it read-only unless it says ``read_only: false``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from agentflow.errors import ExecutionError
from agentflow.nodes.base import NodeContext, NodeType, OutputConfig, Problem
from agentflow.nodes.registry import node_types
from agentflow.sources.base import DBProvider, DBResult
from agentflow.spec.templates import Template, parse


class DBConfig(OutputConfig):
    query: str | None = Field(None, min_length=1, description="SQL with named parameters.")
    params: dict[str, Any] = Field(default_factory=dict, description="Name -> template value.")
    allow_state_query: bool = Field(False, description="state.db_query may replace the query.")
    query_key: str = Field("db_query", description="State key read when allow_state_query.")
    max_rows: int = Field(1000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _has_query(self) -> DBConfig:
        if self.query is None and not self.allow_state_query:
            raise ValueError('a db node needs "query" (or "allow_state_query": true)')
        for name, value in self.params.items():
            if isinstance(value, str):
                parse(value)  # syntax errors surface at validation time
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f'parameter name "{name}" must be letters, digits and _')
        return self


class DBNode(NodeType):
    type_name = "db"
    Config = DBConfig
    source_kind = "db"
    default_output_key = "db_result"
    output_shape = "list"
    summary = "Runs a parameterised SQL query."
    config: DBConfig

    def templates(self) -> list[tuple[str, Template]]:
        return [(f"config.params.{k}", parse(v)) for k, v in self.config.params.items() if isinstance(v, str)]

    def read_keys(self) -> list[str]:
        return [self.config.query_key] if self.config.allow_state_query else []

    def check(self, workflow: Any) -> list[Problem]:
        query = self.config.query or ""
        return [
            Problem(
                f"config.params.{name}",
                f'parameter "{name}" is not used in the query (write :{name} for sqlite, '
                f"%({name})s for postgres)",
                "warning",
            )
            for name in self.config.params
            if query and f":{name}" not in query and f"%({name})s" not in query
        ]

    def _query(self, state: dict[str, Any], ctx: NodeContext) -> tuple[str, dict[str, Any]]:
        sql = self.config.query
        if self.config.allow_state_query and state.get(self.config.query_key):
            sql = str(state[self.config.query_key])
        if not sql:
            raise ExecutionError(
                f'node "{self.node_id}": no query: state "{self.config.query_key}" is empty and '
                f'the node has no "query"',
                node=self.node_id,
            )
        params = {k: ctx.render_value(v, state, f"config.params.{k}") for k, v in self.config.params.items()}
        return sql, params

    def _done(self, result: DBResult, ctx: NodeContext) -> dict[str, Any]:
        ctx.note(rows=len(result.rows), truncated=result.truncated)
        return {self.output_key: result.rows}

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        sql, params = self._query(state, ctx)
        with ctx.metered() as m:
            db: DBProvider = m.provider  # type: ignore[assignment]
            result = db.query(sql, params, max_rows=self.config.max_rows, timeout_s=ctx.timeout_s)
        return self._done(result, ctx)

    async def arun(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        sql, params = self._query(state, ctx)
        async with ctx.ametered() as m:
            db: DBProvider = m.provider  # type: ignore[assignment]
            result = await db.aquery(sql, params, max_rows=self.config.max_rows, timeout_s=ctx.timeout_s)
        return self._done(result, ctx)


node_types.register(DBNode)
