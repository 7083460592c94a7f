"""``router``: sets ``intent``; the edges leaving it are chosen by their ``when``.

Rules mode (default) matches ordered rules against the input text; with no rules, input
starting with ``img:`` is ``image`` and anything else ``text`` (the seed's router). LLM mode
asks a model to pick one of ``config.intents``; the reply is matched to an intent exactly,
else by the first intent named in it, else ``config.default``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentflow.errors import ExecutionError
from agentflow.nodes.base import NodeContext, NodeType, OutputConfig, Problem, TemplateStr
from agentflow.nodes.registry import node_types
from agentflow.sources.base import LLMProvider, LLMRequest
from agentflow.spec.suggest import did_you_mean
from agentflow.spec.templates import Template, lookup, parse, to_text

DEFAULT_SYSTEM = (
    "You route requests. Reply with exactly one of these intents and nothing else: {intents}."
)


class Rule(BaseModel):
    """One routing rule; exactly one of ``prefix``, ``contains``, ``regex``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str | None = None
    contains: str | None = None
    regex: str | None = None
    intent: str = Field(min_length=1)
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _one_matcher(self) -> Rule:
        given = [k for k in ("prefix", "contains", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError('a rule needs exactly one of "prefix", "contains" or "regex"')
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        return self

    def matches(self, text: str) -> bool:
        if self.regex is not None:
            flags = 0 if self.case_sensitive else re.IGNORECASE
            return re.search(self.regex, text, flags) is not None
        subject = text if self.case_sensitive else text.lower()
        needle = (self.prefix if self.prefix is not None else self.contains) or ""
        needle = needle if self.case_sensitive else needle.lower()
        if self.prefix is not None:
            return subject.lstrip().startswith(needle)
        return needle in subject


DEFAULT_RULES = (Rule(prefix="img:", intent="image"),)


class RouterConfig(OutputConfig):
    mode: Literal["rules", "llm"] = "rules"
    rules: list[Rule] | None = Field(None, description='Ordered; default: "img:" -> image.')
    default: str | None = Field(None, description='Intent when nothing matches ("text" in rules mode).')
    input_key: str = Field("user_input", description="State key (or key.sub) routed on.")
    intents: list[str] | None = Field(None, description="LLM mode: the intents to choose from.")
    prompt: TemplateStr = Field("{user_input}", description="LLM mode: the request shown to the model.")
    system: TemplateStr | None = Field(None, description="LLM mode: instructions; {intents} is filled in.")

    @field_validator("intents")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or any(not i for i in v)):
            raise ValueError("intents must be a non-empty list of non-empty names")
        return v

    @model_validator(mode="after")
    def _llm_needs_intents(self) -> RouterConfig:
        if self.mode == "llm" and not self.intents:
            raise ValueError('mode "llm" needs "intents", the list of intents the model picks from')
        return self


class RouterNode(NodeType):
    type_name = "router"
    Config = RouterConfig
    default_output_key = "intent"
    is_router = True
    summary = "Sets intent; its edges are picked by their when."
    config: RouterConfig

    @classmethod
    def required_source_kind(cls, config: Any) -> str | None:
        return "llm" if config.mode == "llm" else None

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(self.config.rules) if self.config.rules is not None else DEFAULT_RULES

    def intents(self) -> list[str]:
        """Every intent this router can produce (for edge checks and the graph view)."""
        if self.config.mode == "llm":
            found = list(self.config.intents or [])
        else:
            found = [r.intent for r in self.rules]
            found.append(self.config.default or "text")
        if self.config.default and self.config.default not in found:
            found.append(self.config.default)
        return list(dict.fromkeys(found))

    def templates(self) -> list[tuple[str, Template]]:
        if self.config.mode != "llm":
            return []
        out = [("config.prompt", parse(self.config.prompt))]
        if self.config.system:
            out.append(("config.system", parse(self.config.system.replace("{intents}", ""))))
        return out

    def read_keys(self) -> list[str]:
        return [self.config.input_key.split(".")[0]] if self.config.mode == "rules" else []

    def check(self, workflow: Any) -> list[Problem]:
        problems: list[Problem] = []
        intents = self.intents()
        whens = [e.when for e in workflow.edges if e.from_ == self.node_id and e.when]
        has_fallback = "*" in whens
        for i, edge in enumerate(workflow.edges):
            if edge.from_ != self.node_id or not edge.when or edge.when == "*":
                continue
            if edge.when not in intents:
                hint = did_you_mean(edge.when, intents)
                problems.append(
                    Problem(
                        f"@edges[{i}].when",
                        f'edge "{edge.from_}" -> "{edge.to}": router "{self.node_id}" never sets '
                        f'intent "{edge.when}" (it can set {", ".join(map(repr, intents))}){hint}',
                        "warning",
                    )
                )
        if not has_fallback:
            for intent in intents:
                if intent not in whens:
                    problems.append(
                        Problem(
                            "config",
                            f'intent "{intent}" has no edge and there is no "*" fallback; a run '
                            f'that routes to it will fail: add an edge with "when": "{intent}" or "*"',
                            "warning",
                        )
                    )
        return problems

    # --- running ----------------------------------------------------------------------

    def _route_rules(self, state: dict[str, Any]) -> str:
        path = tuple(self.config.input_key.split("."))
        try:
            text = to_text(lookup(state, path))
        except LookupError:
            text = ""
        for rule in self.rules:
            if rule.matches(text):
                return rule.intent
        return self.config.default or "text"

    def _request(self, state: dict[str, Any], ctx: NodeContext) -> LLMRequest:
        intents = self.config.intents or []
        system = (self.config.system or DEFAULT_SYSTEM).replace("{intents}", ", ".join(intents))
        return LLMRequest(
            prompt=ctx.render(self.config.prompt, state, "config.prompt"),
            system=ctx.render(system, state, "config.system"),
            max_tokens=16,
            temperature=0,
        )

    def _pick(self, reply: str) -> str:
        intents = self.config.intents or []
        clean = reply.strip().strip(".!\"'`").strip()
        for intent in intents:
            if clean.lower() == intent.lower():
                return intent
        best: tuple[int, str] | None = None
        for intent in intents:
            m = re.search(rf"(?<![\w-]){re.escape(intent)}(?![\w-])", reply, re.IGNORECASE)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), intent)
        if best is not None:
            return best[1]
        if self.config.default:
            return self.config.default
        raise ExecutionError(
            f'node "{self.node_id}": the model answered {reply[:80]!r}, which names none of the '
            f'intents {intents}; set "default" or make the prompt clearer',
            node=self.node_id,
        )

    def run(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        if self.config.mode == "rules":
            return {self.output_key: self._route_rules(state)}
        request = self._request(state, ctx)
        with ctx.metered(lambda p: p.estimate(request)) as m:
            llm: LLMProvider = m.provider  # type: ignore[assignment]
            response = llm.complete(request)
            m.usage, m.cost_usd = response.usage, llm.cost(response.usage)
        return {self.output_key: self._pick(response.text)}

    async def arun(self, state: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        if self.config.mode == "rules":
            return {self.output_key: self._route_rules(state)}
        request = self._request(state, ctx)
        async with ctx.ametered(lambda p: p.estimate(request)) as m:
            llm: LLMProvider = m.provider  # type: ignore[assignment]
            response = await llm.acomplete(request)
            m.usage, m.cost_usd = response.usage, llm.cost(response.usage)
        return {self.output_key: self._pick(response.text)}


node_types.register(RouterNode)
