"""Reading a workflow from a dict, JSON text or a file, with syntax errors located."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentflow.errors import ValidationError


def read_document(document: Any) -> tuple[Any, str | None, str | None]:
    """Return (parsed value, JSON text if any, file path if any).

    A string whose first non-blank character is ``{`` or ``[`` is JSON text; any other
    string (or a ``Path``) is a file path.
    """
    if isinstance(document, (dict, list)):
        return document, None, None
    if isinstance(document, bytes):
        document = document.decode("utf-8")
    if isinstance(document, str) and (not document.strip() or document.lstrip()[:1] in ("{", "[")):
        return parse_json(document), document, None
    if isinstance(document, (str, Path)):
        path = Path(document)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _one("$", f"file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _one("$", f"cannot read {str(path)!r}: {exc}") from None
        return parse_json(text, str(path)), text, str(path)
    return document, None, None


def parse_json(text: str, filename: str | None = None) -> Any:
    """``json.loads`` whose error names line and column, in the spec's error shape."""
    if not text.strip():
        raise _one("$", "the document is empty; a workflow must be a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{filename}: " if filename else ""
        err = {
            "path": "$",
            "message": f"{where}invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            "line": exc.lineno,
            "column": exc.colno,
        }
        raise ValidationError.from_problems([err]) from None


def _one(path: str, message: str) -> ValidationError:
    return ValidationError.from_problems([{"path": path, "message": message}])
