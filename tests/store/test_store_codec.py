"""Stored value forms: times, JSON text, cursors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentflow.errors import ValidationError
from agentflow.spec.models import QueueSpec
from agentflow.store import codec


def test_times_normalise_to_utc_with_microseconds() -> None:
    plus2 = datetime(2026, 1, 2, 5, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert codec.iso(plus2) == "2026-01-02T03:04:05.000006Z"
    assert codec.iso("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05.000000Z"
    assert codec.iso("2026-01-02T03:04:05") == "2026-01-02T03:04:05.000000Z"  # naive is UTC
    assert codec.iso(None) is None
    assert codec.sqlite_time(plus2) == "2026-01-02T03:04:05.000006+00:00"
    with pytest.raises(ValidationError, match="not an ISO 8601 time"):
        codec.parse_time("soon", field="since")
    with pytest.raises(ValidationError, match="got int"):
        codec.parse_time(5, field="since")


def test_json_text_keeps_what_json_cannot_hold() -> None:
    text = codec.dumps(
        {
            "bytes": b"\x89PNG",
            "set": {1},
            "tuple": (1, 2),
            "when": datetime(2026, 1, 1, tzinfo=UTC),
            "model": QueueSpec(id="q"),
            "other": object,
        }
    )
    data = json.loads(text)
    assert data["bytes"] == "iVBORw==" and data["set"] == [1] and data["tuple"] == [1, 2]
    assert data["when"] == "2026-01-01T00:00:00.000000Z" and data["model"]["id"] == "q"
    assert data["other"] == "<class 'object'>"
    assert codec.loads(None) is None


def test_json_text_matches_the_standard_library_where_orjson_cannot_write() -> None:
    """orjson writes most values; big integers and lone surrogates fall back to ``json``."""
    value = {"a": [1, 2.5, None, True], "é": "ü", 3: "int key", None: "none key"}
    assert json.loads(codec.dumps(value)) == json.loads(json.dumps(value, ensure_ascii=False))
    assert codec.dumps({"big": 2**70}) == '{"big":1180591620717411303424}'
    assert codec.dumps({"s": "\ud800"}) == '{"s":"\ud800"}'  # kept as the standard library keeps it
    assert codec.dumps({"x": float("nan")}) == '{"x":null}'
    wire = codec.dumps_bytes({"s": "\ud800", "big": 2**70, "inf": float("inf")})
    assert json.loads(wire.decode("utf-8")) == {"s": "\ud800", "big": 2**70, "inf": None}  # valid UTF-8 JSON


def test_cursors_round_trip_and_reject_junk() -> None:
    cursor = codec.encode_cursor("2026-01-01T00:00:00.000000Z", "run-1")
    assert codec.decode_cursor(cursor, 2) == ["2026-01-01T00:00:00.000000Z", "run-1"]
    for junk in ("!!!", codec.encode_cursor("only-one"), "e30"):
        with pytest.raises(ValidationError, match="cursor"):
            codec.decode_cursor(junk, 2)
