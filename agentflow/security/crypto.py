"""Encryption keys for stored secrets and session tokens.

Two ways to hold the key, because a laptop and a fleet want different things:

* ``AGENTFLOW_SECRET_KEY``: a passphrase (16+ characters) that every process sharing a store
  is given. The Fernet key is derived from it with scrypt and a salt kept in the store, so
  the same passphrase opens the same store from any machine.
* unset: a key file (``<home>/secret.key``, mode 0600) generated on first start. Good for one
  machine; nothing to configure.

Rotation: the newest key encrypts, every known key decrypts (``MultiFernet``). To change the
passphrase, set the new one in ``AGENTFLOW_SECRET_KEY`` and the old one in
``AGENTFLOW_PREVIOUS_SECRET_KEY`` (one passphrase, taken whole: passphrases may contain any
character, so no list syntax), then run ``store.rotate_secrets()`` (``secrets rotate``) and
drop the old one. The key file may hold several keys, one per line, newest first. When a
passphrase is set, an existing key file's keys are also tried, so moving from the file to a
passphrase is the same two steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from agentflow.errors import InternalServerError
from agentflow.settings import get_settings

log = logging.getLogger("agentflow.security")

MIN_PASSPHRASE_CHARS = 16
KEY_FILE_NAME = "secret.key"
SECRET_KEY_ENV = "AGENTFLOW_SECRET_KEY"
PREVIOUS_KEY_ENV = "AGENTFLOW_PREVIOUS_SECRET_KEY"
_SCRYPT_N = 2**15  # ~30 MiB, ~0.1 s: cheap once per process, costly per guess
_JWT_SALT = b"agentflow/session-tokens/v1"
_file_lock = threading.Lock()


class SecretKeyError(InternalServerError):
    """The configured key cannot serve: too short, unreadable, or not the key the data used.

    A configuration problem on the server side, hence an InternalServerError (HTTP 500)
    whose message names the variable or file to fix.
    """


def check_passphrase(passphrase: str, variable: str = SECRET_KEY_ENV) -> str:
    """Refuse passphrases too short to resist guessing, saying what to do instead."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        instead = (
            ", or unset it to use a generated key file under AGENTFLOW_HOME"
            if variable == SECRET_KEY_ENV
            else ""
        )
        raise SecretKeyError(
            f"{variable} is too short ({len(passphrase)} characters): use a passphrase of "
            f"{MIN_PASSPHRASE_CHARS} or more characters{instead}"
        )
    return passphrase


@lru_cache(maxsize=32)
def derive_key(passphrase: str, salt: bytes) -> bytes:
    """A Fernet key (urlsafe base64) from a passphrase; cached since scrypt is slow on purpose."""
    kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode("utf-8")))


def key_file_path(home: Path | None = None) -> Path:
    return (home or get_settings().home) / KEY_FILE_NAME


def ensure_key_file(home: Path | None = None) -> Path:
    """Create the key file (mode 0600) unless it exists; safe against concurrent starters.

    The key is written to a private temporary file and hard-linked into place, so a reader
    never sees a half-written file and two processes starting at once end up sharing one key.
    """
    path = key_file_path(home)
    if path.exists():
        return path
    with _file_lock:
        if path.exists():
            return path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)
                log.info("generated secret key file %s", path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    return path


def read_key_file(path: Path) -> list[bytes]:
    """The keys in a key file, newest first; a damaged file is an error that names it."""
    try:
        lines = [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip()]
        for key in lines:
            Fernet(key)
    except (OSError, ValueError) as exc:
        raise SecretKeyError(
            f"the secret key file {path} cannot be used ({type(exc).__name__}); restore it from "
            f"a backup, or set {SECRET_KEY_ENV} if the secrets were stored with a passphrase"
        ) from None
    if not lines:
        raise SecretKeyError(f"the secret key file {path} is empty; restore it from a backup")
    return lines


def rotate_key_file(home: Path | None = None) -> Path:
    """Put a new key first in the key file, keeping the old ones for decryption."""
    path = ensure_key_file(home)
    with _file_lock:
        keys = [Fernet.generate_key(), *read_key_file(path)]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.rotate.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\n".join(keys) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    log.info("added a new key to %s", path)
    return path


def _previous_keys(salt: bytes) -> list[bytes]:
    """The key of ``AGENTFLOW_PREVIOUS_SECRET_KEY``, read at each call like the settings."""
    old = os.environ.get(PREVIOUS_KEY_ENV) or ""
    return [derive_key(check_passphrase(old, PREVIOUS_KEY_ENV), salt)] if old else []


class SecretCipher:
    """Encrypts with the newest key, decrypts with any; errors say which key to fix."""

    def __init__(self, keys: list[bytes], origin: str, hint: str) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.origin = origin
        self._hint = hint
        #: Identifies the key set (not the keys): lets a store remember it checked this one.
        self.fingerprint = hashlib.sha256(b"|".join(keys)).hexdigest()[:16]

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise self.wrong_key_error() from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise self.wrong_key_error() from None

    def wrong_key_error(self) -> SecretKeyError:
        return SecretKeyError(
            f"stored secrets cannot be decrypted with the configured key ({self.origin}): they "
            f"were encrypted with another key. {self._hint}"
        )


def cipher_for(salt: bytes) -> SecretCipher:
    """The cipher the current settings describe, for a store whose KDF salt is ``salt``."""
    settings = get_settings()
    path = key_file_path(settings.home)
    previous = _previous_keys(salt)
    if settings.secret_key:
        primary = [derive_key(check_passphrase(settings.secret_key), salt)]
        from_file = read_key_file(path) if path.exists() else []
        return SecretCipher(
            primary + previous + from_file,
            origin=SECRET_KEY_ENV,
            hint=(
                f"Set {SECRET_KEY_ENV} to the passphrase they were stored with; to move to a new "
                f"passphrase, put the old one in {PREVIOUS_KEY_ENV} and run "
                f"`python -m agentflow secrets rotate`."
            ),
        )
    ensure_key_file(settings.home)
    return SecretCipher(
        read_key_file(path) + previous,
        origin=f"key file {path}",
        hint=(
            f"Set {SECRET_KEY_ENV} to the passphrase they were stored with, or restore the key "
            f"file they were stored with at {path}."
        ),
    )


def session_signing_key() -> bytes:
    """The HMAC key for session tokens: ``JWT_SECRET``, else derived from the secret key.

    Derived with its own fixed salt, so it never equals the key that encrypts secrets, and
    every process given the same passphrase (or sharing the key file) agrees on it.
    """
    settings = get_settings()
    if settings.jwt_secret:
        return settings.jwt_secret.encode("utf-8")
    if settings.secret_key:
        key = derive_key(check_passphrase(settings.secret_key), _JWT_SALT)
        return base64.urlsafe_b64decode(key)
    newest = read_key_file(ensure_key_file(settings.home))[0]
    return hmac.new(base64.urlsafe_b64decode(newest), _JWT_SALT, hashlib.sha256).digest()
