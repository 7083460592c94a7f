"""Password sign-in with failed attempts slowed down.

Each failure for a (user, client) pair makes the next answer for that pair slower:
``base_delay_s * 2**(failures - 1)``, capped at ``max_delay_s`` (2 s), paid before the
failure is reported. Attempts for one pair are served one at a time, so parallel guessing
pays the delays in sequence instead of all at once. Nothing is ever locked out: a right
password always signs in (it only waits for guesses ahead of it), and a success clears the
pair's count. Only the user name and an opaque client key are kept, never a password.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentflow.errors import AuthenticationError
from agentflow.security import tokens

if TYPE_CHECKING:
    from agentflow.store.base import Store

log = logging.getLogger("agentflow.security")


@dataclass
class _Entry:
    failures: int = 0
    last_failure: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class SignInThrottle:
    """Per (user, client) failure counts and the delays they earn; safe across threads."""

    def __init__(
        self,
        *,
        base_delay_s: float = 0.25,
        max_delay_s: float = 2.0,
        forget_after_s: float = 900.0,
        max_entries: int = 10_000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        #: Delay after the first failure; each further failure doubles it.
        self.base_delay_s = base_delay_s
        #: Upper bound of one delay (the spec's 2 s).
        self.max_delay_s = max_delay_s
        #: A pair with no failure for this long starts again from zero.
        self.forget_after_s = forget_after_s
        #: Bound on remembered pairs, so a flood of names cannot grow memory without limit.
        self.max_entries = max_entries
        self._sleep = sleep
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def delay_for(self, failures: int) -> float:
        """Seconds a failure costs when it is the ``failures``-th in a row."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1))

    def failures(self, user: str, client_key: str) -> int:
        with self._lock:
            entry = self._entries.get((user, client_key))
            return entry.failures if entry else 0

    def _entry(self, key: tuple[str, str]) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return entry

    def attempt(self, user: str, client_key: str, check: Callable[[], bool]) -> bool:
        """Run ``check`` for the pair; on failure, count it and wait the delay it earns."""
        entry = self._entry((user, client_key))
        with entry.lock:
            now = time.monotonic()
            if entry.failures and now - entry.last_failure > self.forget_after_s:
                entry.failures = 0
            if check():
                entry.failures = 0
                return True
            entry.failures += 1
            entry.last_failure = now
            self._sleep(self.delay_for(entry.failures))
            return False


#: The process-wide throttle: every browser session and API worker thread shares it.
DEFAULT_THROTTLE = SignInThrottle()


def sign_in(
    store: Store,
    username: str,
    password: str,
    client_key: str,
    *,
    ttl: int | None = None,
    throttle: SignInThrottle | None = None,
) -> str:
    """A session token for a right user name and password, else AuthenticationError.

    ``client_key`` tells callers apart (the client's address, or a browser session id), so
    one attacker's failures do not slow the real user signing in from elsewhere.
    """
    found: dict = {}

    def check() -> bool:
        user = store.verify_password(username, password)
        if user is not None:
            found.update(user)
        return user is not None

    if not (throttle or DEFAULT_THROTTLE).attempt(username, client_key, check):
        log.info("sign-in refused for user %r from %r", username, client_key)
        raise AuthenticationError("wrong user name or password")
    log.info("user %r signed in", username)
    return tokens.issue(found["name"], found["role"], ttl)
