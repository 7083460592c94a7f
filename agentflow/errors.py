"""The one error tree every interface renders the same way (spec section 9).

    AgentFlowError                      base: error_type, message, details, to_dict()
    ├── ValidationError                 the document (or a request) is wrong; .errors, .warnings
    ├── ExecutionError                  a node failed while running (template key, routing, ...)
    ├── SourceConnectionError           a provider could not be reached or refused the call
    ├── QueueRateLimitExceeded          a queue refused or would wait too long; .retry_after_s
    │   └── BudgetExceeded              a cost budget would be passed (run or queue per day)
    ├── InternalServerError             a bug: the traceback goes to the log, not the screen
    ├── NotFoundError                   store: unknown workflow, version, run, source, ...
    ├── ConflictError                   store: a save on a stale base version
    ├── AuthenticationError             HTTP API / workbench sign-in
    ├── PermissionDenied
    ├── MethodNotAllowed
    └── PayloadTooLarge

Errors carry context (node, source, queue, path) as attributes so a UI can highlight the
failing piece without parsing the message. Nothing here may ever hold a secret's value:
messages pass through :func:`agentflow.redact.redact` when rendered.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentFlowError",
    "AuthenticationError",
    "BudgetExceeded",
    "ConflictError",
    "ExecutionError",
    "InternalServerError",
    "MethodNotAllowed",
    "NotFoundError",
    "PayloadTooLarge",
    "PermissionDenied",
    "QueueRateLimitExceeded",
    "SourceConnectionError",
    "ValidationError",
    "error_from_dict",
]


class AgentFlowError(Exception):
    """Root of every error a user can see; renders to the spec's JSON shape."""

    error_type = "AgentFlowError"
    #: Whether a node's retry policy may try the call again after this error.
    retryable = False

    def __init__(self, message: str, details: Any = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.node: str | None = context.pop("node", None)
        self.source: str | None = context.pop("source", None)
        self.queue: str | None = context.pop("queue", None)
        self.context = context

    def to_dict(self) -> dict[str, Any]:
        """The spec section 9 shape, secrets masked."""
        from agentflow.redact import redact, redact_obj

        out: dict[str, Any] = {
            "status": "error",
            "error_type": self.error_type,
            "message": redact(self.message),
        }
        if self.details is not None:
            out["details"] = redact_obj(self.details)
        return out

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Celery, subprocess tests): keep them picklable.
        state = {"node": self.node, "source": self.source, "queue": self.queue}
        return (_rebuild, (type(self), self.message, self.details, state, self.__dict__))


def _rebuild(cls: type[AgentFlowError], message: str, details: Any, ctx: dict, state: dict):
    err = cls.__new__(cls)
    AgentFlowError.__init__(err, message, details, **ctx)
    err.__dict__.update(state)
    return err


class ValidationError(AgentFlowError):
    """A document or request is invalid. ``errors`` lists every problem at once."""

    error_type = "ValidationError"

    def __init__(
        self,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        warnings: list[dict[str, Any]] | None = None,
        details: Any = None,
        **context: Any,
    ) -> None:
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.warnings: list[dict[str, Any]] = list(warnings or [])
        if details is None and self.errors:
            details = {"errors": self.errors}
            if self.warnings:
                details["warnings"] = self.warnings
        super().__init__(message, details, **context)

    @classmethod
    def from_problems(
        cls, errors: list[dict[str, Any]], warnings: list[dict[str, Any]] | None = None
    ) -> ValidationError:
        n = len(errors)
        head = f"{errors[0]['path']}: {errors[0]['message']}" if errors else "invalid"
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        return cls(f"invalid workflow: {head}{more}", errors=errors, warnings=warnings)


class ExecutionError(AgentFlowError):
    """A node could not do its work for a reason a retry will not fix."""

    error_type = "ExecutionError"


class SourceConnectionError(AgentFlowError):
    """A provider failed: unreachable, refused, timed out, or answered with an error."""

    error_type = "SourceConnectionError"

    def __init__(
        self,
        message: str,
        details: Any = None,
        *,
        retryable: bool = True,
        retry_after_s: float | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, details, **context)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class QueueRateLimitExceeded(AgentFlowError):
    """A queue refused a call (``on_limit: reject``) or the wait would pass ``max_wait_s``."""

    error_type = "QueueRateLimitExceeded"

    def __init__(
        self, message: str, details: Any = None, *, retry_after_s: float | None = None, **ctx: Any
    ) -> None:
        super().__init__(message, details, **ctx)
        self.retry_after_s = retry_after_s


class BudgetExceeded(QueueRateLimitExceeded):
    """A priced call would take a run or a queue past its cost budget."""

    error_type = "QueueRateLimitExceeded"


class InternalServerError(AgentFlowError):
    error_type = "InternalServerError"


class NotFoundError(AgentFlowError):
    error_type = "NotFoundError"


class ConflictError(AgentFlowError):
    error_type = "ConflictError"


class AuthenticationError(AgentFlowError):
    error_type = "AuthenticationError"


class PermissionDenied(AgentFlowError):
    error_type = "PermissionDenied"


class MethodNotAllowed(AgentFlowError):
    error_type = "MethodNotAllowed"


class PayloadTooLarge(AgentFlowError):
    error_type = "PayloadTooLarge"


_BY_TYPE: dict[str, type[AgentFlowError]] = {
    c.error_type: c
    for c in (
        ValidationError,
        ExecutionError,
        SourceConnectionError,
        QueueRateLimitExceeded,
        InternalServerError,
        NotFoundError,
        ConflictError,
        AuthenticationError,
        PermissionDenied,
        MethodNotAllowed,
        PayloadTooLarge,
    )
}


def error_from_dict(data: dict[str, Any]) -> AgentFlowError:
    """Rebuild an error from its section 9 shape (e.g. a stored run's error)."""
    cls = _BY_TYPE.get(str(data.get("error_type")), AgentFlowError)
    if cls is ValidationError:
        details = data.get("details")
        errs = details.get("errors") if isinstance(details, dict) else None
        return ValidationError(str(data.get("message", "")), errors=errs, details=details)
    return cls(str(data.get("message", "")), data.get("details"))
