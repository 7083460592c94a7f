"""Provider forms derived from pydantic Config models."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from agentflow.sources.registry import providers
from agentflow.ui.forms import collect_config, display_value, form_fields, provider_form, validate_config


@pytest.mark.parametrize("cls", sorted(providers, key=lambda c: (c.kind, c.name)), ids=lambda c: f"{c.kind}-{c.name}")
def test_every_provider_gets_a_form_with_exactly_its_fields(cls):
    fields = provider_form(cls.kind, cls.name)
    assert [f.name for f in fields] == list(cls.Config.model_fields)
    assert all(f.kind for f in fields)
    config, problems = collect_config(fields, {f.name: f.default for f in fields})
    required = [f for f in fields if f.required]
    assert len(problems) == len(required) and config == {}


def test_field_kinds_follow_the_annotations():
    fields = {f.name: f for f in provider_form("llm", "openai")}
    assert fields["api_key_secret"].kind == "secret_ref" and fields["api_key_env"].kind == "env_ref"
    assert fields["model"].kind == "str" and fields["model"].required
    assert fields["temperature"].kind == "float" and fields["temperature"].optional
    assert (fields["temperature"].minimum, fields["temperature"].maximum) == (0.0, 2.0)
    assert fields["max_retries"].kind == "int" and fields["max_tokens"].minimum == 1.0  # "> 0" for an int
    assert fields["max_tokens_param"].kind == "choice"
    assert fields["max_tokens_param"].choices == ("max_tokens", "max_completion_tokens")
    assert fields["extra_body"].kind == "json" and fields["price_per_1k_tokens"].kind == "json"
    assert "wins over" in fields["api_key_secret"].help  # from the "#:" comment above the field
    sqlite = {f.name: f for f in provider_form("db", "sqlite")}
    assert sqlite["init_sql"].kind == "text" and sqlite["path"].help.startswith("A file path")


def test_a_new_provider_model_gets_a_form_for_free():
    class Config(BaseModel):
        #: Where the thing lives.
        url: str
        retries: int = Field(3, ge=0, le=9)
        verbose: bool = False
        token_secret: str | None = None

    fields = form_fields(Config)
    assert [(f.name, f.kind) for f in fields] == [
        ("url", "str"),
        ("retries", "int"),
        ("verbose", "bool"),
        ("token_secret", "secret_ref"),
    ]
    assert fields[0].help == "Where the thing lives." and fields[0].label == "url *"


def test_collect_config_leaves_out_defaults_and_blanks_and_parses_json():
    fields = provider_form("api", "http")
    config, problems = collect_config(
        fields,
        {
            "base_url": " http://127.0.0.1:9 ",
            "headers": '{"Authorization": {"secret": "TOKEN", "prefix": "Bearer "}}',
            "timeout_s": 30.0,
            "max_retries": 0.0,
            "health_path": "",
        },
    )
    assert problems == []
    assert config == {
        "base_url": "http://127.0.0.1:9",
        "max_retries": 0,
        "headers": {"Authorization": {"secret": "TOKEN", "prefix": "Bearer "}},
    }
    assert validate_config("api", "http", config) == []


def test_collect_config_reports_bad_json_and_missing_required_fields():
    fields = provider_form("api", "http")
    _config, problems = collect_config(fields, {"base_url": "", "headers": "{nope"})
    paths = [p["path"] for p in problems]
    assert paths == ["config.base_url", "config.headers"]
    assert "not valid JSON" in problems[1]["message"]


def test_clearing_a_field_with_a_default_sets_it_to_none():
    fields = provider_form("llm", "openai")
    config, _ = collect_config(fields, {"model": "m", "api_key_env": ""})
    assert config == {"model": "m", "api_key_env": None}


def test_validate_config_uses_the_providers_own_rules():
    problems = validate_config("db", "postgres", {})
    assert problems and "dsn_env" in problems[0]["message"]
    literal = validate_config("llm", "openai", {"model": "m", "api_key": "sk-123"})
    assert "must not be written" in literal[0]["message"]
    assert validate_config("llm", "nope", {})[0]["path"] == "provider"


def test_display_value():
    assert display_value(None) == "" and display_value(3) == "3"
    assert display_value({"a": 1}) == '{\n  "a": 1\n}'
