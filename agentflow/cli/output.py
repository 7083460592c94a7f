"""Shared output helpers: JSON on stdout, the error shape, exit codes."""

from __future__ import annotations

import json
import sys
from typing import Any

from agentflow.errors import AgentFlowError, ValidationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_error(exc: AgentFlowError, code: int | None = None) -> int:
    """Print the section 9 error JSON on stdout; return the exit code for it."""
    print_json(exc.to_dict())
    if code is not None:
        return code
    return EXIT_INVALID if isinstance(exc, ValidationError) else EXIT_FAILED


def read_stdin_secret(prompt: str) -> str:
    """A value from stdin: prompted without echo on a terminal, else the first line."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")
