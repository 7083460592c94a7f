"""``serve``: the HTTP API under uvicorn (spec section 12).

Refuses to start while nobody could call it (no user and no API key in the store), and,
with more than one worker, without ``AGENTFLOW_REDIS_URL`` (queue limits must hold across
the workers); each refusal says which command or variable fixes it.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from collections.abc import Iterator

from agentflow.errors import ValidationError

APP = "agentflow.api.main:app"

NO_PRINCIPALS = (
    "nobody could call the API: the store has no user and no API key. Add one first:\n"
    "  python -m agentflow users add NAME --role admin      (the password is read from stdin)\n"
    "  python -m agentflow tokens create NAME --role editor  (prints the key once)"
)
NO_REDIS = (
    "--workers {n} needs AGENTFLOW_REDIS_URL (e.g. redis://127.0.0.1:6379/0), so that queue "
    "limits hold across the workers; set it, or serve with --workers 1"
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API (FastAPI under uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes (above 1 needs AGENTFLOW_REDIS_URL)")
    p.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    p.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="proxies trusted for X-Forwarded-For (comma-separated, or '*'; default: "
        "FORWARDED_ALLOW_IPS or 127.0.0.1)",
    )
    p.set_defaults(handler=cmd_serve)


def check_can_serve(store: object, workers: int, redis_url: str | None) -> None:
    """Raise ValidationError (with the fix) unless ``serve`` may start."""
    if workers < 1:
        raise ValidationError(
            f"--workers must be 1 or more, not {workers}", errors=[{"path": "--workers", "message": "at least 1"}]
        )
    if not store.has_principals():  # type: ignore[attr-defined]
        raise ValidationError(NO_PRINCIPALS, errors=[{"path": "users", "message": "no user or API key"}])
    if workers > 1 and not redis_url:
        raise ValidationError(
            NO_REDIS.format(n=workers), errors=[{"path": "AGENTFLOW_REDIS_URL", "message": "not set"}]
        )


@contextlib.contextmanager
def tcp_nodelay_listener() -> Iterator[None]:
    """Make uvicorn's pre-bound listener (``--workers`` > 1) say it is TCP.

    uvicorn binds it with ``proto=0``; accepted sockets inherit that, and asyncio turns on
    TCP_NODELAY only for ``IPPROTO_TCP``. Without it, a keep-alive response whose headers
    and body go out in two writes waits ~40 ms for the client's delayed ACK (uvicorn issue
    3149). Re-wrapping the descriptor lets the kernel report the real protocol.
    """
    from uvicorn.config import Config

    original = Config.bind_socket

    def bind_socket(self: Config) -> socket.socket:
        sock = original(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(fileno=sock.detach())
        return sock

    Config.bind_socket = bind_socket  # type: ignore[method-assign]
    try:
        yield
    finally:
        Config.bind_socket = original  # type: ignore[method-assign]


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from agentflow.settings import get_settings
    from agentflow.store import default_store

    settings = get_settings()
    try:
        check_can_serve(default_store(), args.workers, settings.redis_url)
    except ValidationError as exc:
        sys.stderr.write(f"serve: {exc.message}\n")
        raise
    level = settings.log_level.lower()
    with tcp_nodelay_listener():
        uvicorn.run(
            APP,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=args.access_log,
            log_level=level if level in ("critical", "error", "warning", "info", "debug", "trace") else "info",
            proxy_headers=True,
            forwarded_allow_ips=args.forwarded_allow_ips,
            timeout_graceful_shutdown=30,
        )
    return 0
