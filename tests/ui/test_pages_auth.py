"""Sign-in on every page: the gate, tampered and expired tokens, slowed failures, locked mode."""

from __future__ import annotations

import time

import jwt
import pytest

from agentflow.security import signin, tokens
from agentflow.security.crypto import session_signing_key
from agentflow.security.signin import SignInThrottle
from tests.ui.conftest import PAGES, no_exception, page_app, texts

PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(store, bind_address):
    store.add_user("ann", PASSWORD, "editor")
    return "ann"


def _sign_in(at, name: str = "ann", password: str = PASSWORD):
    at.text_input(key="auth_user").input(name)
    at.text_input(key="auth_password").input(password)
    at.button(key="auth_submit").click().run()
    return at


def test_with_users_only_the_sign_in_form_shows(app, user):
    at = app.run()
    no_exception(at)
    assert at.text_input(key="auth_password").proto.type == at.text_input(key="auth_password").proto.PASSWORD
    assert "Workflows" not in texts(at) and not at.dataframe


def test_sign_in_then_every_page_opens(app, user, store):
    at = _sign_in(app.run())
    no_exception(at)
    assert "Signed in as **ann** (editor)" in "\n".join(c.value for c in at.sidebar.caption)
    assert at.dataframe  # the workflows table
    for path in PAGES.values():
        at.switch_page(path).run()
        no_exception(at)
        assert at.get("text_input") is not None and not any(w.key == "auth_password" for w in at.text_input)


def test_wrong_passwords_are_refused_and_slowed(app, user, monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(signin, "DEFAULT_THROTTLE", SignInThrottle(sleep=delays.append))
    at = _sign_in(app.run(), password="nope")
    assert "Wrong user name or password" in at.error[0].value
    _sign_in(at, password="still nope")
    assert delays == [0.25, 0.5]
    _sign_in(at)  # the right password is never refused
    assert "auth_token" in at.session_state and at.dataframe


def _signed_in_page(user, name: str, token: str):
    at = page_app(name)
    at.session_state["auth_token"] = token
    return at.run()


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_checks_the_session_token(user, name):
    good = tokens.issue("ann", "editor")
    at = _signed_in_page(user, name, good)
    no_exception(at)
    assert at.title[0].value.endswith(name)
    head, body, sig = good.split(".")
    tampered = ".".join([head, body, ("A" if sig[0] != "A" else "B") + sig[1:]])
    at = _signed_in_page(user, name, tampered)
    assert "not valid; sign in again" in at.warning[0].value
    assert any(w.key == "auth_password" for w in at.text_input)
    assert "auth_token" not in at.session_state


def test_an_expired_token_sends_the_user_back_to_sign_in(app, user):
    now = int(time.time())
    claims = {"sub": "ann", "role": "editor", "kind": "user", "iss": "agentflow", "iat": now - 100, "exp": now - 1}
    expired = jwt.encode(claims, session_signing_key(), algorithm="HS256")
    at = app
    at.session_state["auth_token"] = expired
    at.run()
    assert "expired" in at.warning[0].value
    assert any(w.key == "auth_password" for w in at.text_input)


def test_a_deleted_user_is_signed_out(app, user, store):
    store.add_user("bob", PASSWORD, "admin")  # with no user left the workbench would run open
    at = _sign_in(app.run())
    store.delete_user("ann")
    at.run()
    assert "no longer exists" in at.warning[0].value


def test_a_viewer_can_look_but_not_change(app, store, bind_address):
    store.add_user("vic", PASSWORD, "viewer")
    at = _sign_in(app.run(), "vic")
    assert at.button(key="home_create").disabled and at.button(key="home_quick_run").disabled
    at.switch_page(PAGES["Run"]).run()
    assert at.button(key="run_go").disabled
    at.switch_page(PAGES["Sources"]).run()
    assert at.button(key="src_save").disabled


def test_sign_out(app, user):
    at = _sign_in(app.run())
    at.sidebar.button(key="auth_signout").click().run()
    assert "You have signed out" in at.warning[0].value


def test_without_users_a_public_bind_is_locked(app, bind_address):
    bind_address("0.0.0.0")
    at = app.run()
    no_exception(at)
    assert "needs sign-in, and no user is configured" in at.error[0].value
    assert "users add admin --role admin" in at.code[0].value
    assert not at.dataframe
    alone = page_app("Runs").run()
    assert "no user is configured" in alone.error[0].value


def test_require_signin_locks_even_on_localhost(app, monkeypatch):
    monkeypatch.setenv("AGENTFLOW_REQUIRE_SIGNIN", "1")
    at = app.run()
    assert "no user is configured" in at.error[0].value and not at.dataframe
