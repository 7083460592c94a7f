"""Sign-in: failures slowed per (user, client), never a lockout; roles; password hashes."""

from __future__ import annotations

import threading
import time

import pytest

from agentflow.errors import AuthenticationError, PermissionDenied, ValidationError
from agentflow.security import passwords, tokens
from agentflow.security.principal import ACTIONS, Principal, check_role
from agentflow.security.signin import DEFAULT_THROTTLE, SignInThrottle, sign_in
from agentflow.store import Store


@pytest.fixture
def users(store: Store) -> Store:
    store.add_user("ann", "correct horse", "editor")
    return store


def test_default_delays_double_up_to_two_seconds() -> None:
    assert [DEFAULT_THROTTLE.delay_for(n) for n in range(0, 7)] == [
        0.0, 0.25, 0.5, 1.0, 2.0, 2.0, 2.0,
    ]


def test_right_password_signs_in(users: Store) -> None:
    token = sign_in(users, "ann", "correct horse", "10.0.0.1", throttle=SignInThrottle())
    assert tokens.verify(token) == Principal("ann", "editor", "user")


def test_failures_are_slowed_and_a_right_password_still_succeeds(users: Store) -> None:
    throttle = SignInThrottle(base_delay_s=0.05, max_delay_s=0.3)
    expected = sum(throttle.delay_for(n) for n in range(1, 6))  # 0.05+0.1+0.2+0.3+0.3
    started = time.perf_counter()
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            sign_in(users, "ann", "wrong guess", "attacker", throttle=throttle)
    assert time.perf_counter() - started >= expected
    assert throttle.failures("ann", "attacker") == 5

    # other clients keep their own count: the attacker's failures do not slow them
    with pytest.raises(AuthenticationError):
        sign_in(users, "ann", "typo", "ann-laptop", throttle=throttle)
    assert throttle.failures("ann", "ann-laptop") == 1

    # the right password is never refused, even from the attacking client; it clears the count
    assert sign_in(users, "ann", "correct horse", "attacker", throttle=throttle)
    assert throttle.failures("ann", "attacker") == 0


def test_unknown_users_are_slowed_too(users: Store) -> None:
    throttle = SignInThrottle(base_delay_s=0.05)
    started = time.perf_counter()
    for _ in range(3):
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            sign_in(users, "nobody", "guess", "c", throttle=throttle)
    assert time.perf_counter() - started >= 0.05 + 0.1 + 0.2


def test_parallel_guesses_pay_the_delays_in_sequence(users: Store) -> None:
    throttle = SignInThrottle(base_delay_s=0.05, max_delay_s=0.2)
    barrier = threading.Barrier(4)

    def guess() -> None:
        barrier.wait()
        with pytest.raises(AuthenticationError):
            sign_in(users, "ann", "guess", "botnet", throttle=throttle)

    started = time.perf_counter()
    threads = [threading.Thread(target=guess) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert time.perf_counter() - started >= 0.05 + 0.1 + 0.2 + 0.2
    assert throttle.failures("ann", "botnet") == 4


def test_failures_are_forgotten_after_a_quiet_period() -> None:
    throttle = SignInThrottle(base_delay_s=0.0, forget_after_s=0.05)
    throttle.attempt("u", "c", lambda: False)
    throttle.attempt("u", "c", lambda: False)
    assert throttle.failures("u", "c") == 2
    time.sleep(0.06)
    throttle.attempt("u", "c", lambda: False)
    assert throttle.failures("u", "c") == 1


def test_remembered_pairs_are_bounded() -> None:
    throttle = SignInThrottle(base_delay_s=0.0, max_entries=3)
    for i in range(10):
        throttle.attempt(f"user{i}", "c", lambda: False)
    assert throttle.failures("user0", "c") == 0 and throttle.failures("user9", "c") == 1


def test_roles_grant_cumulative_actions() -> None:
    viewer, editor, admin = (Principal("p", r) for r in ("viewer", "editor", "admin"))
    assert viewer.can("read")
    for action in ("save", "delete", "run", "cancel", "register"):
        assert not viewer.can(action) and editor.can(action) and admin.can(action)
    for action in ("manage_users", "manage_keys"):
        assert not editor.can(action) and admin.can(action)
    assert set(ACTIONS) == {
        "read", "save", "delete", "run", "cancel", "register", "manage_users", "manage_keys",
    }
    with pytest.raises(PermissionDenied, match="may not save; this needs the editor role"):
        viewer.require("save")
    with pytest.raises(PermissionDenied):
        Principal("k", "viewer", "api_key").require("run")
    admin.require("manage_keys")
    assert not Principal("odd", "superuser").can("read")
    with pytest.raises(ValueError, match="unknown action"):
        admin.can("fly")
    with pytest.raises(ValidationError):
        check_role("root")


def test_password_hashes_are_salted_argon2id() -> None:
    first, second = passwords.hash_password("same password"), passwords.hash_password("same password")
    assert first != second and first.startswith("$argon2id$")
    assert passwords.verify_password(first, "same password")
    assert not passwords.verify_password(first, "other password")
    assert not passwords.verify_password("not a hash", "same password")
    assert passwords.needs_rehash("not a hash")
