"""Workflows with every saved version, and the texts of saves refused as stale.

A save reads the workflow's latest version number and writes the next one in one
transaction that holds the workflow's row lock (Postgres ``FOR UPDATE``; SQLite's write
lock), with the primary key (workflow_id, version) as a second guard: of two saves on the
same base, exactly one wins. The loser's text is not thrown away; it becomes a draft row
that the editor offers back ("both texts kept").
"""

from __future__ import annotations

import json
import logging
from typing import Any

from agentflow.errors import ConflictError, InternalServerError, NotFoundError, ValidationError
from agentflow.store import codec
from agentflow.store.core import DuplicateKey, SQLCore

log = logging.getLogger("agentflow.store")

_SAVE_ATTEMPTS = 5


class _StaleBase(Exception):
    def __init__(self, latest: int) -> None:
        self.latest = latest


def document_text(document: dict[str, Any] | str) -> tuple[str, str, str]:
    """``(text, id, name)`` of a document given as a dict or as JSON text (kept as given)."""
    if isinstance(document, str):
        text = document
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ValidationError(
                f"invalid JSON at {where}: {exc.msg}",
                errors=[{"path": "", "message": f"{where}: {exc.msg}"}],
            ) from None
    elif isinstance(document, dict):
        parsed = document
        text = codec.dumps(document)
    else:
        parsed, text = None, ""
    if not isinstance(parsed, dict):
        raise ValidationError(
            "a workflow must be a JSON object",
            errors=[{"path": "", "message": "a workflow must be a JSON object"}],
        )
    wf_id = parsed.get("id")
    if not isinstance(wf_id, str) or not wf_id:
        raise ValidationError(
            'a workflow document needs a string "id"',
            errors=[{"path": "id", "message": "required"}],
        )
    name = parsed.get("name")
    return text, wf_id, name if isinstance(name, str) and name else wf_id


def _check_base(base_version: int | None) -> None:
    if base_version is not None and (
        isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0
    ):
        raise ValidationError(
            f"base_version must be a version number (0 for a new workflow), not {base_version!r}",
            errors=[{"path": "base_version", "message": "expected an integer >= 0"}],
        )


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= int(limit) <= 1000 or int(offset) < 0:
        raise ValidationError(
            "limit must be 1..1000 and offset 0 or more",
            errors=[{"path": "limit", "message": "1..1000"}],
        )
    return int(limit), int(offset)


class WorkflowsMixin(SQLCore):
    def save_workflow(
        self,
        document: dict[str, Any] | str,
        *,
        author: str | None,
        message: str | None = None,
        base_version: int | None = None,
    ) -> int:
        text, wf_id, name = document_text(document)
        _check_base(base_version)
        return self._save_text(wf_id, name, text, author, message, base_version)

    def _save_text(
        self,
        wf_id: str,
        name: str,
        text: str,
        author: str | None,
        message: str | None,
        base_version: int | None,
    ) -> int:
        for _ in range(_SAVE_ATTEMPTS):
            try:
                version = self._insert_version(wf_id, name, text, author, message, base_version)
            except _StaleBase as stale:
                latest = stale.latest
                break
            except DuplicateKey:
                if base_version is None:
                    continue  # no base to check: take the next number
                latest = self._latest_version(wf_id)
                break
            log.info("saved workflow %s version %d", wf_id, version)
            return version
        else:
            raise InternalServerError(
                f'workflow "{wf_id}" could not be saved: {_SAVE_ATTEMPTS} concurrent saves '
                f"took every number first; save again"
            )
        draft_id = self._keep_draft(wf_id, text, author, message, base_version, latest)
        log.info("refused stale save of %s (base %s, latest %s)", wf_id, base_version, latest)
        what = (
            f"version {latest} is the latest, not {base_version}"
            if latest
            else "it does not exist (it may have been deleted)"
        )
        raise ConflictError(
            f'workflow "{wf_id}" has changed since you loaded it: {what}. Nothing was saved; '
            f"your text is kept as draft {draft_id}. Load the latest version, merge, and save "
            f"again.",
            details={
                "workflow_id": wf_id,
                "latest_version": latest or None,
                "base_version": base_version,
                "draft_id": draft_id,
            },
        )

    def _insert_version(
        self,
        wf_id: str,
        name: str,
        text: str,
        author: str | None,
        message: str | None,
        base_version: int | None,
    ) -> int:
        with self._write() as tx:
            stamp = codec.now()
            # A placeholder row (latest 0) gives a new workflow a row to lock; it is rolled
            # back with the transaction if the save is refused.
            tx.run(
                "INSERT INTO af_workflows (id, name, latest_version, created_at, updated_at, "
                "updated_by) VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (wf_id, name, stamp, stamp, author),
            )
            row = tx.one(
                f"SELECT latest_version FROM af_workflows WHERE id = ?{self.for_update}", (wf_id,)
            )
            latest = int(row["latest_version"]) if row else 0
            if base_version is not None and base_version != latest:
                raise _StaleBase(latest)
            version = latest + 1
            tx.run(
                "INSERT INTO af_workflow_versions (workflow_id, version, message, author, "
                "created_at, document) VALUES (?, ?, ?, ?, ?, ?)",
                (wf_id, version, message, author, stamp, text),
            )
            tx.run(
                "UPDATE af_workflows SET name = ?, latest_version = ?, updated_at = ?, "
                "updated_by = ? WHERE id = ?",
                (name, version, stamp, author, wf_id),
            )
            return version

    def _latest_version(self, wf_id: str) -> int:
        with self._read() as tx:
            row = tx.one("SELECT latest_version FROM af_workflows WHERE id = ?", (wf_id,))
        return int(row["latest_version"]) if row else 0

    def _keep_draft(
        self,
        wf_id: str,
        text: str,
        author: str | None,
        message: str | None,
        base_version: int | None,
        latest: int,
    ) -> int:
        with self._write() as tx:
            row = tx.one(
                "INSERT INTO af_workflow_drafts (workflow_id, base_version, latest_version, "
                "message, author, created_at, document) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (wf_id, base_version, latest or None, message, author, codec.now(), text),
            )
        return int(row["id"]) if row else 0

    def _version_row(self, wf_id: str, version: int | None, document: bool = True) -> dict[str, Any]:
        doc = "v.document" if document else "NULL AS document"
        with self._read() as tx:
            if version is None:
                row = tx.one(
                    f"SELECT v.workflow_id, v.version, v.message, v.author, v.created_at, {doc} "
                    "FROM af_workflows w JOIN af_workflow_versions v "
                    "ON v.workflow_id = w.id AND v.version = w.latest_version WHERE w.id = ?",
                    (wf_id,),
                )
            else:
                row = tx.one(
                    f"SELECT v.workflow_id, v.version, v.message, v.author, v.created_at, {doc} "
                    "FROM af_workflow_versions v WHERE v.workflow_id = ? AND v.version = ?",
                    (wf_id, int(version)),
                )
        if row is None:
            latest = self._latest_version(wf_id)
            if not latest:
                raise NotFoundError(f'workflow "{wf_id}" not found')
            raise NotFoundError(f'workflow "{wf_id}" has no version {version} (latest is {latest})')
        return row

    def get_workflow(
        self, workflow_id: str, version: int | None = None, *, document: bool = True
    ) -> dict[str, Any]:
        row = self._version_row(workflow_id, version, document)
        return {
            "id": row["workflow_id"],
            "version": int(row["version"]),
            "document": json.loads(row["document"]) if document else None,
            "message": row["message"],
            "created_at": codec.iso(row["created_at"]),
            "author": row["author"],
        }

    def list_workflows(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        limit, offset = _page(limit, offset)
        with self._read() as tx:
            rows = tx.all(
                "SELECT id, name, latest_version, updated_at, updated_by FROM af_workflows "
                "WHERE latest_version > 0 ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
                (limit, offset),
            )
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "latest_version": int(r["latest_version"]),
                "updated_at": codec.iso(r["updated_at"]),
                "updated_by": r["updated_by"],
            }
            for r in rows
        ]

    def list_versions(self, workflow_id: str) -> list[dict[str, Any]]:
        with self._read() as tx:
            rows = tx.all(
                "SELECT version, message, author, created_at FROM af_workflow_versions "
                "WHERE workflow_id = ? ORDER BY version DESC",
                (workflow_id,),
            )
        if not rows:
            raise NotFoundError(f'workflow "{workflow_id}" not found')
        return [
            {
                "version": int(r["version"]),
                "message": r["message"],
                "author": r["author"],
                "created_at": codec.iso(r["created_at"]),
            }
            for r in rows
        ]

    def restore_version(
        self, workflow_id: str, version: int, *, author: str | None, message: str | None = None
    ) -> int:
        row = self._version_row(workflow_id, version)
        text, wf_id, name = document_text(row["document"])
        note = message or f"restored version {int(version)}"
        return self._save_text(wf_id, name, text, author, note, None)

    def delete_workflow(self, workflow_id: str) -> None:
        with self._write() as tx:
            tx.run("DELETE FROM af_workflow_versions WHERE workflow_id = ?", (workflow_id,))
            tx.run("DELETE FROM af_workflow_drafts WHERE workflow_id = ?", (workflow_id,))
            gone = tx.run("DELETE FROM af_workflows WHERE id = ?", (workflow_id,))
        if not gone:
            raise NotFoundError(f'workflow "{workflow_id}" not found')
        log.info("deleted workflow %s", workflow_id)

    def list_drafts(self, workflow_id: str) -> list[dict[str, Any]]:
        with self._read() as tx:
            rows = tx.all(
                "SELECT id, workflow_id, base_version, latest_version, message, author, "
                "created_at, document FROM af_workflow_drafts WHERE workflow_id = ? "
                "ORDER BY id DESC",
                (workflow_id,),
            )
        return [
            {
                "draft_id": int(r["id"]),
                "workflow_id": r["workflow_id"],
                "base_version": r["base_version"],
                "latest_version": r["latest_version"],
                "document": json.loads(r["document"]),
                "message": r["message"],
                "author": r["author"],
                "created_at": codec.iso(r["created_at"]),
            }
            for r in rows
        ]

    def delete_draft(self, draft_id: int) -> None:
        with self._write() as tx:
            gone = tx.run("DELETE FROM af_workflow_drafts WHERE id = ?", (int(draft_id),))
        if not gone:
            raise NotFoundError(f"draft {draft_id} not found")
