"""Fuzz every route from the OpenAPI document with schemathesis (PyPI), with a valid token.

A fixed seed and a bounded number of examples per route keep it repeatable and quick. No
answer may be a 5xx (except 502 from a fuzzed source that cannot be reached), and every
answer must match what the document declares: status code, content type, headers and body
schema; invalid requests must be refused.
Outbound HTTP from fuzzed sources is sent to a dead local proxy, so nothing leaves the machine.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agentflow.store import Store
from tests.api.conftest import triage_doc

pytestmark = pytest.mark.slow

#: Examples per route (positive and negative together).
EXAMPLES = 40
SEED = int(os.environ.get("AGENTFLOW_FUZZ_SEED", "20261129"))


def no_server_error_but_unreachable_sources(ctx: Any, response: Any, case: Any) -> bool | None:
    """``not_a_server_error``, except a 502 SourceConnectionError: a fuzzed source that
    names a provider nobody can reach is the caller's mistake, reported as such."""
    if response.status_code == 502 and response.json().get("error_type") == "SourceConnectionError":
        return True
    return not_a_server_error(ctx, response, case)


def invalid_data_rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """``negative_data_rejection``, with 413 counted as a refusal: a fuzzed body can be
    larger than the body limit, and "too large" is the right answer to it."""
    if response.status_code == 413 and response.json().get("error_type") == "PayloadTooLarge":
        return True
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    no_server_error_but_unreachable_sources,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    invalid_data_rejected,
]


@pytest.fixture
def api_schema(app: Any, keys: dict[str, str], store: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    # Something to find: a saved workflow, a paused run, a source, a queue, a secret.
    store.save_workflow(triage_doc(), author="fixture")
    store.put_source({"id": "echo", "kind": "llm", "provider": "echo"})
    store.put_queue({"id": "q", "max_messages_per_second": 50})
    store.set_secret("s", "fixture-secret-value")
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_route_answers_as_declared(api_schema: Any, keys: dict[str, str]) -> None:
    """Each operation, positive and negative examples. (Schemathesis's pytest decorator is
    not used: its reporting touches pytest internals that pytest 9 changed.)"""
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 33
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(max_examples=EXAMPLES // 2, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
            except BaseException as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
