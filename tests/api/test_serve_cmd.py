"""``python -m agentflow serve``: its refusals, its uvicorn options, and the listener fix."""

from __future__ import annotations

import argparse
import socket
from typing import Any

import pytest
import uvicorn
from uvicorn.config import Config

from agentflow.cli import build_parser, main, serve_cmds
from agentflow.errors import ValidationError
from agentflow.store import Store, default_store


def test_refuses_without_principals_or_redis(store: Store) -> None:
    with pytest.raises(ValidationError, match="users add NAME --role admin"):
        serve_cmds.check_can_serve(store, 1, None)
    store.create_token("k", "viewer")
    serve_cmds.check_can_serve(store, 1, None)
    with pytest.raises(ValidationError, match="AGENTFLOW_REDIS_URL"):
        serve_cmds.check_can_serve(store, 4, None)
    serve_cmds.check_can_serve(store, 4, "redis://127.0.0.1:6379/0")
    with pytest.raises(ValidationError, match="1 or more"):
        serve_cmds.check_can_serve(store, 0, None)


def test_serve_runs_uvicorn_with_the_options(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert main(["serve"]) == 2  # nobody could call it yet
    assert "users add" in capsys.readouterr().err
    default_store().create_token("ops", "admin")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    assert main(["serve", "--host", "0.0.0.0", "--port", "9999", "--access-log",
                 "--forwarded-allow-ips", "10.0.0.1"]) == 0
    app, kw = calls[-1]
    assert app == "agentflow.api.main:app"
    assert kw["host"] == "0.0.0.0" and kw["port"] == 9999 and kw["workers"] == 1
    assert kw["access_log"] is True and kw["log_level"] == "warning" and kw["forwarded_allow_ips"] == "10.0.0.1"
    monkeypatch.setenv("LOG_LEVEL", "NOTSET")
    args = build_parser().parse_args(["serve"])
    assert isinstance(args, argparse.Namespace) and serve_cmds.cmd_serve(args) == 0
    assert calls[-1][1]["log_level"] == "info" and calls[-1][1]["host"] == "127.0.0.1"


def test_the_workers_listener_says_it_is_tcp() -> None:
    # uvicorn 0.54 binds it with proto 0, so asyncio leaves Nagle on for its connections
    # (uvicorn issue 3149); inside the context the socket reports IPPROTO_TCP.
    config = Config("agentflow.api.main:app", host="127.0.0.1", port=0)
    original = Config.bind_socket
    with serve_cmds.tcp_nodelay_listener():
        fixed = config.bind_socket()
        try:
            assert fixed.proto == socket.IPPROTO_TCP and fixed.getsockname()[0] == "127.0.0.1"
        finally:
            fixed.close()
    assert Config.bind_socket is original
