"""Secret encryption, password hashing, session tokens, sign-in and roles.

    crypto      Fernet keys from AGENTFLOW_SECRET_KEY (scrypt) or a 0600 key file; rotation
    passwords   argon2id hashes, rehashed when parameters change
    tokens      session JWTs (no leeway) and hashed API keys
    signin      password sign-in with per (user, client) exponential slow-down
    principal   who is calling and what their role allows
"""

from __future__ import annotations

from agentflow.security.crypto import SecretCipher, SecretKeyError
from agentflow.security.principal import ACTIONS, ROLES, Principal, check_role
from agentflow.security.signin import SignInThrottle, sign_in

__all__ = [
    "ACTIONS",
    "ROLES",
    "Principal",
    "SecretCipher",
    "SecretKeyError",
    "SignInThrottle",
    "check_role",
    "sign_in",
]
