"""Templates: parsing, rendering, lookups, escapes and every syntax error."""

from __future__ import annotations

import pytest

from agentflow.spec.templates import (
    MissingKey,
    Template,
    TemplateSyntaxError,
    lookup,
    parse,
    render_tree,
    templates_in,
    to_text,
)

STATE = {
    "user_input": "a fox",
    "n": 41,
    "ratio": 0.5,
    "ok": True,
    "none": None,
    "profile": {"name": "Ada", "tags": ["math", "code"], "nested": {"deep": [{"x": 1}]}},
    "rows": [{"id": 7}, {"id": 8}],
    "zero": 0,
}


# --- parse ----------------------------------------------------------------------------------


def test_parse_splits_text_and_keys() -> None:
    t = parse("Hi {user_input}, you are {profile.name}!")
    assert t.parts == ("Hi ", ("user_input",), ", you are ", ("profile", "name"), "!")
    assert t.keys == ["user_input", "profile.name"]
    assert t.root_keys == ["user_input", "profile"]
    assert t.source == "Hi {user_input}, you are {profile.name}!"
    assert not t.is_single_key


def test_parse_single_key_and_plain_text() -> None:
    assert parse("{n}").parts == (("n",),)
    assert parse("{n}").is_single_key
    assert parse("{ n }").parts == (("n",),)  # blanks around the key are ignored
    assert parse("plain").parts == ("plain",)
    assert parse("").parts == ()
    assert parse("{a}{b}").parts == (("a",), ("b",))
    assert not parse("{a}{b}").is_single_key
    assert not parse("x{a}").is_single_key


def test_keys_may_hold_digits_dashes_and_underscores() -> None:
    assert parse("{_a-b.0.c_d}").keys == ["_a-b.0.c_d"]


def test_escaped_braces() -> None:
    t = parse("{{literal}} and {{{n}}}")
    assert t.parts == ("{literal} and {", ("n",), "}")
    assert t.keys == ["n"]
    assert t.render(STATE) == "{literal} and {41}"
    assert parse('{{"json": true}}').render({}) == '{"json": true}'


def test_parse_is_cached() -> None:
    assert parse("cached {x}") is parse("cached {x}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {user_input", 'unmatched "{" at character 4; write "{{" for a literal brace'),
        ("Hi user_input}", 'unmatched "}" at character 14; write "}}" for a literal brace'),
        ("{a}}", 'unmatched "}" at character 4; write "}}" for a literal brace'),
        ("{{a}", 'unmatched "}" at character 4; write "}}" for a literal brace'),
        ("x {a {b}", 'unmatched "{" at character 3; write "{{" for a literal brace'),
    ],
)
def test_unmatched_brace_messages(text: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse(text)
    assert str(info.value) == message


@pytest.mark.parametrize("body", ["", " ", "a b", "1abc", "a.", ".a", "a..b", "a()", "a[0]", "a:b", "a!r", "é"])
def test_not_a_key_messages(body: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse("x {" + body + "} y")
    assert str(info.value) == (
        f'"{{{body}}}" is not a state key; templates allow only {{key}} or {{key.sub}} '
        "(letters, digits, _ and -), write {{ and }} for literal braces"
    )


def test_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not a state key"):
        parse("{0}")


# --- render / render_value ----------------------------------------------------------------------


def test_render_to_text() -> None:
    assert parse("{user_input}!").render(STATE) == "a fox!"
    assert parse("n={n} r={ratio} ok={ok} none=[{none}]").render(STATE) == "n=41 r=0.5 ok=True none=[]"
    assert parse("tags: {profile.tags}").render(STATE) == 'tags: ["math", "code"]'
    assert parse("{profile.nested}").render(STATE) == '{"deep": [{"x": 1}]}'
    assert parse("{n}").render(STATE) == "41"  # render() always gives text
    assert parse("{zero}").render(STATE) == "0"


def test_render_value_keeps_a_lone_placeholder_raw() -> None:
    assert parse("{n}").render_value(STATE) == 41
    assert parse("{profile.tags}").render_value(STATE) == ["math", "code"]
    assert parse("{none}").render_value(STATE) is None
    assert parse("{ok}").render_value(STATE) is True
    assert parse("{n} items").render_value(STATE) == "41 items"
    assert parse("no keys").render_value(STATE) == "no keys"


def test_render_non_ascii_json() -> None:
    assert parse("x{v}").render({"v": {"name": "Zoë"}}) == 'x{"name": "Zoë"}'


def test_render_missing_key_raises_missing_key() -> None:
    with pytest.raises(MissingKey) as info:
        parse("Hi {profile.age}").render(STATE)
    assert info.value.key == "profile.age"
    assert isinstance(info.value, LookupError)
    with pytest.raises(MissingKey, match="nope"):
        parse("{nope}").render_value(STATE)


# --- lookup -----------------------------------------------------------------------------------


def test_lookup_dicts_and_list_indexes() -> None:
    assert lookup(STATE, ("profile", "name")) == "Ada"
    assert lookup(STATE, ("profile", "tags", "1")) == "code"
    assert lookup(STATE, ("rows", "0", "id")) == 7
    assert lookup(STATE, ("profile", "nested", "deep", "0", "x")) == 1
    assert lookup(STATE, ("none",)) is None  # present with a null value is not missing


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        (("nope",), "nope"),
        (("profile", "age"), "profile.age"),
        (("profile", "tags", "2"), "profile.tags.2"),  # index out of range
        (("profile", "tags", "-1"), "profile.tags.-1"),  # no negative indexes
        (("profile", "tags", "first"), "profile.tags.first"),
        (("profile", "name", "x"), "profile.name.x"),  # into a string
        (("n", "0"), "n.0"),
        (("rows", "²"), "rows.²"),  # a digit to str.isdigit, not an index
        (("rows", "1", "id", "x"), "rows.1.id.x"),
    ],
)
def test_lookup_missing_names_the_path_up_to_the_failure(path: tuple[str, ...], missing: str) -> None:
    with pytest.raises(MissingKey) as info:
        lookup(STATE, path)
    assert info.value.key == missing


# --- helpers ----------------------------------------------------------------------------------


def test_to_text() -> None:
    assert to_text(None) == ""
    assert to_text("s") == "s"
    assert to_text(3) == "3"
    assert to_text(2.5) == "2.5"
    assert to_text([1, "a"]) == '[1, "a"]'
    assert to_text({"when": object}).startswith('{"when": "<class')  # not JSON: str() of it


def test_templates_in_finds_every_string() -> None:
    value = {"a": "{x}", "b": [1, "{y}", {"c": "z"}], "d": None, "e": True}
    assert templates_in(value) == ["{x}", "{y}", "z"]
    assert templates_in("{only}") == ["{only}"]
    assert templates_in(5) == []


def test_render_tree_renders_every_string_keeping_raw_values() -> None:
    tree = {"q": "{user_input}", "n": "{n}", "list": ["{profile.name}", 3, "{n}/{zero}"], "flag": False, "none": None}
    assert render_tree(tree, STATE) == {"q": "a fox", "n": 41, "list": ["Ada", 3, "41/0"], "flag": False, "none": None}
    assert render_tree("{rows}", STATE) == [{"id": 7}, {"id": 8}]
    with pytest.raises(MissingKey, match="gone"):
        render_tree({"a": ["{gone}"]}, STATE)


def test_template_is_a_frozen_value() -> None:
    t = parse("{a}")
    assert t == Template("{a}", (("a",),))
    with pytest.raises(AttributeError):
        t.source = "x"  # type: ignore[misc]
