"""Masking of secret-looking text: each pattern, and the cheap tests that skip a pattern
(they must never skip one that would have matched)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflow import redact as redact_mod
from agentflow.redact import MASK, redact


def every_pattern(text: str) -> str:
    """What redact did before the cheap tests: every pattern on every text."""
    for pattern, repl, _ in redact_mod._PATTERNS:
        text = pattern.sub(repl, text)
    return text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key sk-proj-abcdefghijklmnopqrstu end", f"key {MASK} end"),
        ("Authorization: Bearer abcdefghijklmnop", f"Authorization: Bearer {MASK}"),
        ("BASIC   dXNlcjpwYXNzd29yZA==", f"BASIC {MASK}"),
        ("postgresql://app:pw123@db/prod", f"postgresql://app:{MASK}@db/prod"),
        ("host=db API_KEY=abc123 user=x", f"host=db API_KEY={MASK} user=x"),
        ("dsn password=s3cr3t; next", f"dsn password={MASK}; next"),
        ("run 1a2b workflow=triage status=succeeded tokens=4 cost=$0.01", None),
    ],
)
def test_each_pattern_masks_and_plain_lines_pass_unchanged(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


FRAGMENTS = ["sk-", "rk-", "pk-", "proj-", "Bearer ", "bAsIc ", "://", "u:", "@", "=", "PASSWORD=", "Api-Key=",
             "token=", "tokens=", "secret", "ſecret=", "\u212aey", "a" * 16, "0123456789", " ", ";", "&", "/", "İ"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=14).map("".join))
def test_the_cheap_tests_never_skip_a_pattern_that_matches(text: str) -> None:
    assert redact(text) == every_pattern(text)
