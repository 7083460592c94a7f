"""Password hashing with argon2id (argon2-cffi).

Salted, memory-hard hashes with the parameters inside the hash string, so a change of
parameters is noticed at the next sign-in (:func:`needs_rehash`) and the stored hash is
upgraded then, without a migration. Unknown users cost the same time as known ones
(:func:`burn_time`), so timing does not tell which names exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agentflow.errors import ValidationError

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024  # hashing cost grows with length; refuse absurd inputs

#: RFC 9106 "low memory" profile (argon2id, t=3, m=64 MiB, p=4): argon2-cffi's defaults.
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def check_password(password: str) -> str:
    """Refuse passwords too short to resist guessing (or absurdly long), naming the limit."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError(
            f"a password needs {MIN_PASSWORD_CHARS} or more characters",
            errors=[{"path": "password", "message": f"at least {MIN_PASSWORD_CHARS} characters"}],
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationError(
            f"a password may have at most {MAX_PASSWORD_CHARS} characters",
            errors=[{"path": "password", "message": f"at most {MAX_PASSWORD_CHARS} characters"}],
        )
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches; a damaged hash counts as a mismatch, never a crash."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


def burn_time(password: str) -> None:
    """Spend what a real verification costs, for names that do not exist."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("agentflow-no-such-user")
    verify_password(_dummy_hash, password if isinstance(password, str) else "")
