"""The workbench's sign-in gate: every page calls :func:`require_principal` first.

Modes:

- ``signin``: users exist; a page shows only the sign-in form until the session holds a
  valid signed token (``agentflow.security.tokens``). The token is checked on every page
  run, against the store too, so a tampered or expired token, a deleted user or a lowered
  role takes effect at once: the user is sent back to sign-in, told why.
- ``open``: no user configured and the server bound to localhost: the workbench runs open
  (as the local admin) and the home page says so.
- ``locked``: no user configured but the server reachable from other machines (or
  ``AGENTFLOW_REQUIRE_SIGNIN=1``, as the Docker image sets): nothing is shown except how to
  add a user.

Failed sign-ins are slowed down per (user, client) by ``agentflow.security.signin``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import streamlit as st

from agentflow.errors import AuthenticationError
from agentflow.security.principal import Principal

Mode = Literal["signin", "open", "locked"]

TOKEN_KEY = "auth_token"
NOTICE_KEY = "auth_notice"
LOCAL_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
LOCAL_PRINCIPAL = Principal(name="local", role="admin", kind="user")


def server_address() -> str | None:
    """The address ``streamlit run`` binds (``server.address``; unset means every interface)."""
    try:
        value = st.get_option("server.address")
    except Exception:
        return None
    return str(value) if value else None


def is_local_bind(address: str | None) -> bool:
    return address is not None and (address in LOCAL_ADDRESSES or address.startswith("127."))


def has_users(store: Any) -> bool:
    return bool(store.list_users())


def signin_required() -> bool:
    """Whether the deployment asks for sign-in even on localhost (``AGENTFLOW_REQUIRE_SIGNIN``)."""
    return os.environ.get("AGENTFLOW_REQUIRE_SIGNIN", "").strip().lower() in {"1", "true", "yes", "on"}


def auth_mode(store: Any, address: str | None = None) -> Mode:
    if has_users(store):
        return "signin"
    if signin_required():
        return "locked"
    return "open" if is_local_bind(address if address is not None else server_address()) else "locked"


def client_key() -> str:
    """Tells sign-in callers apart for the throttle: the client's address, else the session."""
    try:
        ip = st.context.ip_address
    except Exception:
        ip = None
    if isinstance(ip, str) and ip:
        return f"ip:{ip}"
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return f"session:{ctx.session_id if ctx else 'unknown'}"


def current_principal(store: Any) -> Principal | None:
    """The signed-in principal, or None. A bad token is dropped and the reason kept for the
    sign-in form."""
    token = st.session_state.get(TOKEN_KEY)
    if not token:
        return None
    from agentflow.security import tokens

    try:
        return tokens.verify(str(token), store=store)
    except AuthenticationError as exc:
        st.session_state.pop(TOKEN_KEY, None)
        st.session_state[NOTICE_KEY] = exc.message
        return None


def sign_out() -> None:
    st.session_state.pop(TOKEN_KEY, None)
    st.session_state[NOTICE_KEY] = "You have signed out."


def _signin_form(store: Any) -> None:
    from agentflow.security.signin import sign_in

    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.title(":material/account_tree: AgentFlow")
        st.caption("An open workbench for LLM workflows. Sign in to continue.")
        notice = st.session_state.pop(NOTICE_KEY, None)
        if notice:
            st.warning(notice, icon=":material/lock:")
        with st.form("auth_form"):
            user = st.text_input("User name", key="auth_user", autocomplete="username")
            password = st.text_input("Password", type="password", key="auth_password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", key="auth_submit", type="primary", width="stretch")
        if submitted:
            if not user or not password:
                st.error("Enter your user name and password.")
                return
            with st.spinner("Signing in…"):
                try:
                    token = sign_in(store, user.strip(), password, client_key())
                except AuthenticationError:
                    st.error("Wrong user name or password. Each wrong try makes the next one wait a little longer.")
                    return
            st.session_state[TOKEN_KEY] = token
            st.rerun()
        st.caption("No account? An admin adds one with `python -m agentflow users add NAME --role editor`.")


def _locked() -> None:
    st.title(":material/account_tree: AgentFlow")
    why = "is set to require sign-in" if signin_required() else "is reachable from other machines"
    st.error(
        f"This workbench {why}, so it needs sign-in, and no user is configured yet. Nothing is shown until one exists.",
        icon=":material/lock:",
    )
    st.markdown("Add an administrator on the server (the password is read from stdin), then reload this page:")
    st.code("python -m agentflow users add admin --role admin", language="bash")
    if not signin_required():
        st.markdown("Or, to use it only on this machine without sign-in, listen on localhost alone:")
        st.code("streamlit run app.py --server.address 127.0.0.1", language="bash")


def require_principal(store: Any) -> Principal:
    """The caller, or the sign-in form (and the page stops) when there is none."""
    mode = auth_mode(store)
    if mode == "open":
        return LOCAL_PRINCIPAL
    if mode == "locked":
        _locked()
        st.stop()
    principal = current_principal(store)
    if principal is None:
        _signin_form(store)
        st.stop()
    return principal  # type: ignore[return-value]
