"""Input widgets and cards the Sources and Queues pages build from plain data: a provider's
form fields (:mod:`agentflow.ui.forms`), a connection check's answer, a queue's live figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from agentflow.ui.forms import FormField, display_value
from agentflow.ui.overview import queue_meters


def provider_inputs(
    fields: list[FormField], existing: Mapping[str, Any] | None, key_prefix: str, secret_names: list[str]
) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """One input per field, in two columns (call inside a form).

    Returns the raw values by field name, and the new secrets typed for ``<name>_secret``
    fields (field -> (secret name, value)); a secret's value is only ever typed, never shown.
    """
    values: dict[str, Any] = {}
    new_secrets: dict[str, tuple[str, str]] = {}
    cols = st.columns(2)
    for i, f in enumerate(fields):
        initial = f.initial(existing)
        col = cols[i % 2]
        key = key_prefix + f.name
        if f.kind == "bool":
            values[f.name] = col.checkbox(f.label, value=bool(initial), key=key, help=f.help)
        elif f.kind in ("int", "float"):
            is_int = f.kind == "int"
            num = (int(initial) if is_int else float(initial)) if initial is not None else None

            def bound(b: float | None, is_int: bool = is_int) -> float | int | None:
                return None if b is None else (int(b) if is_int else b)

            values[f.name] = col.number_input(
                f.label,
                value=num,
                min_value=bound(f.minimum),
                max_value=bound(f.maximum),
                step=1 if is_int else None,
                key=key,
                help=f.help,
                placeholder="(unset)" if f.optional else None,
            )
        elif f.kind == "choice":
            choices = list(f.choices)
            values[f.name] = col.selectbox(
                f.label, choices, index=choices.index(initial) if initial in choices else 0, key=key, help=f.help
            )
        elif f.kind == "secret_ref":
            options = ["", *secret_names]
            values[f.name] = col.selectbox(
                f.label,
                options,
                index=options.index(initial) if initial in options else 0,
                key=key,
                help=(f.help or "") + " A stored secret, by name; its value is never shown.",
                format_func=lambda o: "(none)" if o == "" else o,
            )
            base = f.name.removesuffix("_secret")
            with col.expander(f"…or store a new secret for {base}", icon=":material/key:"):
                name = st.text_input("Name", key=key + "_new_name", placeholder=base.upper())
                value = st.text_input("Value (write-only)", type="password", key=key + "_new_value")
            if value:
                new_secrets[f.name] = (name, value)
        elif f.kind in ("json", "text"):
            values[f.name] = col.text_area(
                f.label,
                value=display_value(initial),
                key=key,
                help=f.help,
                placeholder="JSON" if f.kind == "json" else None,
                height=110,
            )
        else:
            values[f.name] = col.text_input(
                f.label,
                value=display_value(initial),
                key=key,
                help=f.help,
                placeholder="environment variable name" if f.kind == "env_ref" else None,
            )
    return values, new_secrets


def show_check(result: Any) -> None:
    """A connection check's answer (``CheckResult``): latency, and the error in plain words."""
    if result.ok:
        st.success(f"Connected in {result.latency_ms:.0f} ms: {result.message}", icon=":material/check_circle:")
    else:
        st.error(f"Could not connect (after {result.latency_ms:.0f} ms): {result.message}", icon=":material/power_off:")


_LIMITS = ("max_messages_per_second", "max_requests_per_minute", "tokens_per_minute")


def queue_card(queue_id: str, stats: Mapping[str, Any] | None, spec: Any = None) -> None:
    """One queue's live meters: usage of each window, waiters per subqueue, grants,
    rejections and waits (or its limits, when no call has used it in this process yet)."""
    with st.container(border=True):
        head, tail = st.columns([3, 2])
        where = "" if spec is not None else "  · defined inside a workflow"
        head.markdown(f"**:material/traffic: {queue_id}**{where}")
        if stats is None:
            tail.caption("No calls yet in this process.")
            limits = [
                f"{name.replace('_', ' ')} {getattr(spec, name):g}"
                for name in _LIMITS
                if spec is not None and getattr(spec, name) is not None
            ]
            st.caption(" · ".join(limits) or "no limits (unlimited)")
            return
        m = queue_meters(stats)
        tail.caption(f"backend: {m['backend']} · on limit: {stats.get('on_limit')}")
        for lim in m["limits"]:
            label = lim["name"].replace("_", " ")
            st.progress(lim["fraction"], text=f"{label}: {lim['used']:g} of {lim['limit']:g} this {lim['window']}")
        c = st.columns(5)
        c[0].metric("Waiting now", m["waiters"])
        c[1].metric("Granted", m["granted"])
        c[2].metric("Rejected", m["rejected"])
        c[3].metric("Average wait", f"{m['wait_ms_avg']:.0f} ms")
        c[4].metric("Longest wait", f"{m['wait_ms_max']:.0f} ms")
        if m["waiting"]:
            st.caption("Waiting per subqueue: " + ", ".join(f"**{k}** {v}" for k, v in m["waiting"].items()))
