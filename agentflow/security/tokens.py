"""Bearer tokens: signed session tokens (JWT) and API keys.

Session tokens are short-lived HS256 JWTs carrying the user's name and role, checked with
no leeway: a token is refused once its lifetime has passed (the issuer rounds the issue
time down, so a token never outlives its lifetime).
API keys are long random strings shown once and stored only as their SHA-256, so a copy
of the database does not let anyone call the API.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt

from agentflow.errors import AuthenticationError, NotFoundError, ValidationError
from agentflow.security.crypto import session_signing_key
from agentflow.security.principal import Principal, check_role
from agentflow.settings import get_settings

if TYPE_CHECKING:
    from agentflow.store.base import Store

ALGORITHM = "HS256"
ISSUER = "agentflow"
API_KEY_PREFIX = "af_"


def issue(user: str, role: str, ttl: int | None = None) -> str:
    """A signed session token for ``user``, valid for ``ttl`` seconds (default: settings)."""
    check_role(role)
    lifetime = int(ttl if ttl is not None else get_settings().token_ttl_s)
    if lifetime <= 0:
        raise ValidationError(f"a session token needs a positive lifetime, not {lifetime} s")
    now = int(time.time())  # rounded down, so the token never outlives its ttl
    claims = {
        "sub": user,
        "role": role,
        "kind": "user",
        "iss": ISSUER,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, session_signing_key(), algorithm=ALGORITHM)


def decode(token: str) -> dict[str, Any]:
    """The claims of a valid token; AuthenticationError for a bad, tampered or expired one."""
    try:
        return jwt.decode(
            token,
            session_signing_key(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=0,
            options={"require": ["exp", "iat", "sub", "role", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the session token has expired; sign in again") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("the session token is not valid; sign in again") from None


def verify(token: str, *, store: Store | None = None) -> Principal:
    """The principal a session token names.

    With ``store``, the user must still exist and the role is read from the store, so a
    deleted user or a lowered role takes effect before the token expires.
    """
    claims = decode(token)
    name, role = str(claims["sub"]), str(claims["role"])
    if store is not None:
        try:
            role = store.get_user(name)["role"]
        except NotFoundError:
            raise AuthenticationError("the session token's user no longer exists") from None
    return Principal(name=name, role=role, kind="user")


def new_api_key() -> str:
    """A fresh API key: the prefix plus 32 random bytes, URL-safe."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """What the store keeps of a key. A key carries 256 random bits, so a plain hash suffices."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_api_key(token: str) -> bool:
    """Whether a bearer token looks like an API key rather than a session JWT."""
    return token.startswith(API_KEY_PREFIX)
