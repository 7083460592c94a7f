"""Users (argon2 password hashes) and API keys (SHA-256 hashes) for sign-in and the HTTP API.

Neither a password nor a key is ever stored, logged or returned after creation. A key is
looked up by its hash on every request, so revoking it (deleting its row) takes effect on
the next request in every process sharing the store. Last use is recorded at most once a
minute per key, so a busy API client does not turn every read into a write.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from agentflow import redact
from agentflow.errors import ConflictError, NotFoundError, ValidationError
from agentflow.security import passwords
from agentflow.security.principal import Principal, check_role
from agentflow.security.tokens import hash_api_key, is_api_key, new_api_key
from agentflow.store import codec
from agentflow.store.core import DuplicateKey, SQLCore

log = logging.getLogger("agentflow.store")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_LAST_USED_EVERY = timedelta(seconds=60)


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError(
            f"invalid {what} name {name!r}: use letters, digits, '_', '-', '.', '@' (at most 64)",
            errors=[{"path": "name", "message": "letters, digits, '_', '-', '.', '@'"}],
        )
    return name


def _user(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "role": row["role"],
        "created_at": codec.iso(row["created_at"]),
        "updated_at": codec.iso(row["updated_at"]),
    }


class AccountsMixin(SQLCore):
    # -- users -------------------------------------------------------------------------------
    def add_user(self, name: str, password: str, role: str) -> dict[str, Any]:
        _check_name(name, "user")
        check_role(role)
        digest = passwords.hash_password(password)
        stamp = codec.now()
        try:
            with self._write() as tx:
                tx.run(
                    "INSERT INTO af_users (name, role, created_at, updated_at, password_hash) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, role, stamp, stamp, digest),
                )
        except DuplicateKey:
            raise ConflictError(f'user "{name}" already exists', details={"user": name}) from None
        log.info("added user %s (%s)", name, role)
        return self.get_user(name)

    def get_user(self, name: str) -> dict[str, Any]:
        with self._read() as tx:
            row = tx.one(
                "SELECT name, role, created_at, updated_at FROM af_users WHERE name = ?", (name,)
            )
        if row is None:
            raise NotFoundError(f'user "{name}" not found')
        return _user(row)

    def list_users(self) -> list[dict[str, Any]]:
        with self._read() as tx:
            rows = tx.all("SELECT name, role, created_at, updated_at FROM af_users ORDER BY name")
        return [_user(r) for r in rows]

    def set_role(self, name: str, role: str) -> dict[str, Any]:
        check_role(role)
        with self._write() as tx:
            gone = tx.run(
                "UPDATE af_users SET role = ?, updated_at = ? WHERE name = ?",
                (role, codec.now(), name),
            )
        if not gone:
            raise NotFoundError(f'user "{name}" not found')
        log.info("user %s is now %s", name, role)
        return self.get_user(name)

    def set_password(self, name: str, password: str) -> None:
        digest = passwords.hash_password(password)
        with self._write() as tx:
            done = tx.run(
                "UPDATE af_users SET password_hash = ?, updated_at = ? WHERE name = ?",
                (digest, codec.now(), name),
            )
        if not done:
            raise NotFoundError(f'user "{name}" not found')
        log.info("changed the password of user %s", name)

    def delete_user(self, name: str) -> None:
        with self._write() as tx:
            gone = tx.run("DELETE FROM af_users WHERE name = ?", (name,))
        if not gone:
            raise NotFoundError(f'user "{name}" not found')
        log.info("deleted user %s", name)

    def verify_password(self, name: str, password: str) -> dict[str, Any] | None:
        with self._read() as tx:
            row = tx.one(
                "SELECT name, role, created_at, updated_at, password_hash FROM af_users "
                "WHERE name = ?",
                (name,),
            )
        if row is None:
            passwords.burn_time(password)
            return None
        if not passwords.verify_password(row["password_hash"], password):
            return None
        if passwords.needs_rehash(row["password_hash"]):
            with self._write() as tx:
                tx.run(
                    "UPDATE af_users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    (passwords.hash_password(password), name, row["password_hash"]),
                )
            log.info("upgraded the password hash of user %s", name)
        return _user(row)

    # -- API keys ----------------------------------------------------------------------------
    def create_token(self, name: str, role: str, *, expires_days: float | None = None) -> str:
        _check_name(name, "token")
        check_role(role)
        if expires_days is not None and not expires_days > 0:
            raise ValidationError(
                "expires_days must be a positive number of days",
                errors=[{"path": "expires_days", "message": "must be > 0"}],
            )
        key = new_api_key()
        stamp = codec.now()
        expires = stamp + timedelta(days=expires_days) if expires_days is not None else None
        try:
            with self._write() as tx:
                tx.run(
                    "INSERT INTO af_api_tokens (name, key_hash, role, created_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, hash_api_key(key), role, stamp, expires),
                )
        except DuplicateKey:
            raise ConflictError(
                f'an API token named "{name}" already exists; revoke it first or pick another name',
                details={"token": name},
            ) from None
        redact.remember(key)  # masked in this process's logs and errors from now on
        log.info("created API token %s (%s)", name, role)
        return key

    def verify_api_key(self, key: str) -> Principal | None:
        if not isinstance(key, str) or not is_api_key(key):
            return None
        digest = hash_api_key(key)
        with self._read() as tx:
            row = tx.one(
                "SELECT name, role, expires_at, last_used_at FROM af_api_tokens WHERE key_hash = ?",
                (digest,),
            )
        if row is None:
            return None
        now = codec.now()
        if row["expires_at"] is not None and codec.parse_time(row["expires_at"]) <= now:
            return None
        last = row["last_used_at"]
        if last is None or now - codec.parse_time(last) >= _LAST_USED_EVERY:
            with self._write() as tx:
                tx.run(
                    "UPDATE af_api_tokens SET last_used_at = ? WHERE key_hash = ?", (now, digest)
                )
        redact.remember(key)
        return Principal(name=row["name"], role=row["role"], kind="api_key")

    def revoke_token(self, name: str) -> None:
        with self._write() as tx:
            gone = tx.run("DELETE FROM af_api_tokens WHERE name = ?", (name,))
        if not gone:
            raise NotFoundError(f'API token "{name}" not found')
        log.info("revoked API token %s", name)

    def list_tokens(self) -> list[dict[str, Any]]:
        with self._read() as tx:
            rows = tx.all(
                "SELECT name, role, created_at, expires_at, last_used_at FROM af_api_tokens "
                "ORDER BY name"
            )
        return [
            {
                "name": r["name"],
                "role": r["role"],
                "created_at": codec.iso(r["created_at"]),
                "expires_at": codec.iso(r["expires_at"]),
                "last_used_at": codec.iso(r["last_used_at"]),
            }
            for r in rows
        ]

    def has_principals(self) -> bool:
        with self._read() as tx:
            user = tx.one("SELECT name FROM af_users LIMIT 1")
            key = tx.one(
                "SELECT name FROM af_api_tokens WHERE expires_at IS NULL OR expires_at > ? LIMIT 1",
                (codec.now(),),
            )
        return user is not None or key is not None
