"""The workspace catalogue: registered sources and queues, and encrypted secrets.

Sources and queues are stored in their spec JSON shape after validation by the same
pydantic models a document uses, so a registered entry resolves exactly like an inline one.
A source config may name secrets but never hold one: a literal key or password is refused
(by the document validator's own rules), or the catalogue would store in plain text what
the secrets table encrypts.

Secrets are Fernet tokens keyed as :mod:`agentflow.security.crypto` describes. The first
time a key set is used with a store, it must decrypt the store's key-check token; so a
wrong ``AGENTFLOW_SECRET_KEY`` is reported at once, before it could mix keys in one table.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from typing import Any, TypeVar

import pydantic

from agentflow import redact
from agentflow.errors import NotFoundError, ValidationError
from agentflow.security import crypto
from agentflow.spec.models import QueueSpec, SourceSpec
from agentflow.store import codec
from agentflow.store.core import SQLCore

log = logging.getLogger("agentflow.store")

M = TypeVar("M", SourceSpec, QueueSpec)

SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_KEY_CHECK = "agentflow-key-check"


def _validate(model: type[M], spec: M | dict[str, Any]) -> M:
    if isinstance(spec, model):
        return spec
    try:
        return model.model_validate(spec)
    except pydantic.ValidationError as exc:
        problems = [
            {"path": ".".join(str(p) for p in e["loc"]) or "", "message": e["msg"]}
            for e in exc.errors()
        ]
        head = problems[0] if problems else {"path": "", "message": "invalid"}
        raise ValidationError(
            f"invalid {model.__name__[:-4].lower()}: {head['path']}: {head['message']}",
            errors=problems,
        ) from None


def _refuse_inline_secrets(spec: SourceSpec) -> None:
    """A literal secret in a registered source is refused by the same rules as in a document."""
    from agentflow.spec.secrets_check import find_inline_secrets

    found = list(find_inline_secrets({"config": spec.config}))
    if found:
        errors = [
            {"path": path, "message": message.replace("in a workflow", "in a source")}
            for path, message in found
        ]
        raise ValidationError(
            f'source "{spec.id}": {errors[0]["path"]}: {errors[0]["message"]}', errors=errors
        )


def _check_secret_name(name: str) -> str:
    if not isinstance(name, str) or not SECRET_NAME.match(name):
        raise ValidationError(
            f"invalid secret name {name!r}: use letters, digits, '_', '-' and '.' (at most 128)",
            errors=[{"path": "name", "message": "letters, digits, '_', '-', '.'"}],
        )
    return name


class CatalogueMixin(SQLCore):
    # -- sources and queues --------------------------------------------------------------
    def _put(self, table: str, model: type[M], spec: M | dict[str, Any]) -> M:
        valid = _validate(model, spec)
        if isinstance(valid, SourceSpec):
            _refuse_inline_secrets(valid)
        text = codec.dumps(valid.model_dump(mode="json", exclude_none=True))
        with self._write() as tx:
            tx.run(
                f"INSERT INTO {table} (id, updated_at, spec) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, "
                "spec = excluded.spec",
                (valid.id, codec.now(), text),
            )
        log.info("registered %s %s", table[3:-1], valid.id)
        return valid

    def _get(self, table: str, model: type[M], item_id: str) -> M | None:
        with self._read() as tx:
            row = tx.one(f"SELECT spec FROM {table} WHERE id = ?", (item_id,))
        return model.model_validate_json(row["spec"]) if row else None

    def _list(self, table: str, model: type[M]) -> list[M]:
        with self._read() as tx:
            rows = tx.all(f"SELECT spec FROM {table} ORDER BY id")
        return [model.model_validate_json(r["spec"]) for r in rows]

    def _delete(self, table: str, item_id: str) -> None:
        with self._write() as tx:
            gone = tx.run(f"DELETE FROM {table} WHERE id = ?", (item_id,))
        if not gone:
            raise NotFoundError(f'{table[3:-1]} "{item_id}" not found')
        log.info("removed %s %s", table[3:-1], item_id)

    def put_source(self, spec: SourceSpec | dict[str, Any]) -> SourceSpec:
        return self._put("af_sources", SourceSpec, spec)

    def get_source(self, source_id: str) -> SourceSpec | None:
        return self._get("af_sources", SourceSpec, source_id)

    def list_sources(self) -> list[SourceSpec]:
        return self._list("af_sources", SourceSpec)

    def delete_source(self, source_id: str) -> None:
        self._delete("af_sources", source_id)

    def put_queue(self, spec: QueueSpec | dict[str, Any]) -> QueueSpec:
        return self._put("af_queues", QueueSpec, spec)

    def get_queue(self, queue_id: str) -> QueueSpec | None:
        return self._get("af_queues", QueueSpec, queue_id)

    def list_queues(self) -> list[QueueSpec]:
        return self._list("af_queues", QueueSpec)

    def delete_queue(self, queue_id: str) -> None:
        self._delete("af_queues", queue_id)

    # -- secrets ---------------------------------------------------------------------------
    def _cipher(self) -> crypto.SecretCipher:
        """The configured cipher, proven against this store's key-check token once per key set."""
        salt = base64.urlsafe_b64decode(
            self._meta("kdf_salt", base64.urlsafe_b64encode(os.urandom(16)).decode("ascii"))
        )
        cipher = crypto.cipher_for(salt)
        if cipher.fingerprint not in self._checked_keys:
            token = self._meta("key_check", cipher.encrypt(_KEY_CHECK))
            if cipher.decrypt(token) != _KEY_CHECK:
                raise cipher.wrong_key_error()
            self._checked_keys.add(cipher.fingerprint)
        return cipher

    def set_secret(self, name: str, value: str) -> None:
        _check_secret_name(name)
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f'secret "{name}": the value is empty',
                errors=[{"path": "value", "message": "required"}],
            )
        token = self._cipher().encrypt(value)
        stamp = codec.now()
        with self._write() as tx:
            tx.run(
                "INSERT INTO af_secrets (name, created_at, updated_at, ciphertext) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "updated_at = excluded.updated_at, ciphertext = excluded.ciphertext",
                (name, stamp, stamp, token),
            )
        redact.remember(value)
        log.info("stored secret %s", name)

    def get_secret(self, name: str) -> str | None:
        with self._read() as tx:
            row = tx.one("SELECT ciphertext FROM af_secrets WHERE name = ?", (name,))
        if row is None:
            return None
        value = self._cipher().decrypt(row["ciphertext"])
        redact.remember(value)
        return value

    def list_secrets(self) -> list[dict[str, Any]]:
        with self._read() as tx:
            rows = tx.all("SELECT name, updated_at FROM af_secrets ORDER BY name")
        return [{"name": r["name"], "updated_at": codec.iso(r["updated_at"])} for r in rows]

    def delete_secret(self, name: str) -> None:
        with self._write() as tx:
            gone = tx.run("DELETE FROM af_secrets WHERE name = ?", (name,))
        if not gone:
            raise NotFoundError(f'secret "{name}" not found')
        log.info("deleted secret %s", name)

    def rotate_secrets(self) -> int:
        cipher = self._cipher()
        with self._write() as tx:
            rows = tx.all(f"SELECT name, ciphertext FROM af_secrets{self.for_update}")
            for r in rows:
                tx.run(
                    "UPDATE af_secrets SET ciphertext = ? WHERE name = ?",
                    (cipher.rotate(r["ciphertext"]), r["name"]),
                )
            check = tx.one("SELECT value FROM af_meta WHERE key = 'key_check'")
            if check is not None:
                self._set_meta(tx, "key_check", cipher.rotate(check["value"]))
        log.info("re-encrypted %d secrets with the newest key", len(rows))
        return len(rows)
