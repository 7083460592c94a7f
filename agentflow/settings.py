"""Process settings read from the environment (spec section 11).

Read at call time, not import time, so tests and the CLI can change the environment; cached
per distinct environment snapshot so hot paths pay nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_KEYS = (
    "AGENTFLOW_HOME",
    "AGENTFLOW_DB_URL",
    "AGENTFLOW_SECRET_KEY",
    "AGENTFLOW_REDIS_URL",
    "JWT_SECRET",
    "LOG_LEVEL",
    "AGENTFLOW_LOG_FILE",
    "AGENTFLOW_TOKEN_TTL_S",
    "AGENTFLOW_MAX_BODY_BYTES",
    "AGENTFLOW_MAX_UPLOAD_BYTES",
    "AGENTFLOW_CORS_ORIGINS",
    "AGENTFLOW_CELERY_BROKER_URL",
    "AGENTFLOW_DEBUG",
)


@dataclass(frozen=True)
class Settings:
    """What the environment says, with the spec's defaults filled in."""

    home: Path
    """Folder for embedded data (store, key file, log): ``AGENTFLOW_HOME`` or ``./.agentflow``."""
    db_url: str
    secret_key: str | None
    redis_url: str | None
    jwt_secret: str | None
    log_level: str
    log_file: Path
    token_ttl_s: int
    max_body_bytes: int
    max_upload_bytes: int
    cors_origins: tuple[str, ...]
    celery_broker_url: str | None
    debug: bool


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


@lru_cache(maxsize=8)
def _load(snapshot: tuple[tuple[str, str | None], ...]) -> Settings:
    env = dict(snapshot)
    home = Path(env.get("AGENTFLOW_HOME") or ".agentflow").expanduser()
    if not home.is_absolute():
        home = Path.cwd() / home
    db_url = env.get("AGENTFLOW_DB_URL") or f"sqlite:///{home / 'agentflow.db'}"
    redis_url = env.get("AGENTFLOW_REDIS_URL") or None
    log_file = Path(env.get("AGENTFLOW_LOG_FILE") or home / "agentflow_core.log")
    origins = tuple(o.strip() for o in (env.get("AGENTFLOW_CORS_ORIGINS") or "").split(",") if o.strip())
    return Settings(
        home=home,
        db_url=db_url,
        secret_key=env.get("AGENTFLOW_SECRET_KEY") or None,
        redis_url=redis_url,
        jwt_secret=env.get("JWT_SECRET") or None,
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        log_file=log_file,
        token_ttl_s=_int(env.get("AGENTFLOW_TOKEN_TTL_S"), 3600),
        max_body_bytes=_int(env.get("AGENTFLOW_MAX_BODY_BYTES"), 2 * 1024 * 1024),
        max_upload_bytes=_int(env.get("AGENTFLOW_MAX_UPLOAD_BYTES"), 100 * 1024 * 1024),
        cors_origins=origins,
        celery_broker_url=env.get("AGENTFLOW_CELERY_BROKER_URL") or redis_url,
        debug=(env.get("AGENTFLOW_DEBUG") or "").lower() in {"1", "true", "yes", "on"},
    )


def get_settings() -> Settings:
    """Current settings; cheap to call on every use."""
    return _load(tuple((k, os.environ.get(k)) for k in _KEYS))
