"""Who is calling, and what their role lets them do.

One small value object shared by the workbench sign-in, session tokens and API keys, so the
HTTP routes, the pages and the CLI ask the same question (``principal.can("save")``) and
get the same answer. Roles are cumulative: viewer < editor < admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentflow.errors import PermissionDenied, ValidationError

Role = Literal["viewer", "editor", "admin"]
Kind = Literal["user", "api_key"]

#: Roles from least to most trusted.
ROLES: tuple[str, ...] = ("viewer", "editor", "admin")

#: Every action a role may be granted, and the least role that grants it.
ACTIONS: dict[str, str] = {
    "read": "viewer",
    "save": "editor",
    "delete": "editor",
    "run": "editor",
    "cancel": "editor",
    "register": "editor",  # sources, queues and secrets
    "manage_users": "admin",
    "manage_keys": "admin",
}


def check_role(role: str) -> str:
    """Return ``role`` if it is known, else raise a ValidationError naming the choices."""
    if role not in ROLES:
        raise ValidationError(
            f'unknown role "{role}": use one of {", ".join(ROLES)}',
            errors=[{"path": "role", "message": f"must be one of {', '.join(ROLES)}"}],
        )
    return role


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a signed-in user or an API key."""

    name: str
    role: str
    kind: str = "user"

    def can(self, action: str) -> bool:
        """Whether this principal's role grants ``action`` (one of :data:`ACTIONS`).

        An unknown action is a programming error, so it raises instead of quietly
        answering False (which would hide a typo behind a 403).
        """
        try:
            needed = ACTIONS[action]
        except KeyError:
            known = ", ".join(ACTIONS)
            raise ValueError(f'unknown action "{action}": use one of {known}') from None
        if self.role not in ROLES:
            return False
        return ROLES.index(self.role) >= ROLES.index(needed)

    def require(self, action: str) -> None:
        """Raise PermissionDenied unless :meth:`can` allows ``action``."""
        if not self.can(action):
            raise PermissionDenied(
                f'{self.kind} "{self.name}" (role {self.role}) may not {action.replace("_", " ")}; '
                f"this needs the {ACTIONS[action]} role"
            )
