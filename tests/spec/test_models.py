"""The document models' own behaviour: retry delays, queue weights, lookups, lazy exports."""

from __future__ import annotations

from typing import Any

import pytest

import agentflow.spec as spec_pkg
from agentflow import validate_workflow
from agentflow.spec import validate
from agentflow.spec.models import EdgeSpec, NodeSpec, QueueSpec, RetryPolicy, SourceSpec, WorkflowSpec


def doc(**top: Any) -> dict[str, Any]:
    return {
        "id": "m",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "queues": [{"id": "q", "subqueues": {"fast": 3}}],
        "nodes": [{"id": "input", "type": "input"}, {"id": "a", "type": "llm", "source": "e", "queue": "q"}],
        "edges": [{"from": "input", "to": "a"}],
        **top,
    }


def test_retry_delay_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_s=0.5, backoff_multiplier=2, max_backoff_s=3)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay(1, retry_after_s=2.5) == 2.5  # the provider asks for longer: it wins
    assert policy.delay(3, retry_after_s=0.1) == 2.0  # shorter: the backoff stays
    assert policy.delay(1, retry_after_s=60) == 3.0  # but never past max_backoff_s
    assert RetryPolicy().delay(1) == 0.5


def test_queue_weight_defaults_to_one() -> None:
    queue = QueueSpec(id="q", subqueues={"interactive": 3, "batch": 0.5})
    assert queue.weight("interactive") == 3
    assert queue.weight("batch") == 0.5
    assert queue.weight("default") == 1.0


def test_node_output_key_only_when_a_string() -> None:
    assert NodeSpec(id="a", type="llm", config={"output_key": "draft"}).output_key == "draft"
    assert NodeSpec(id="a", type="llm", config={"output_key": 5}).output_key is None
    assert NodeSpec(id="a", type="llm").output_key is None


def test_edge_dump_uses_from_and_drops_nones() -> None:
    edge = EdgeSpec.model_validate({"from": "a", "to": "b"})
    assert edge.from_ == "a"
    assert edge.model_dump_json_compatible() == {"from": "a", "to": "b"}
    routed = EdgeSpec(from_="r", to="x", when="*", label="fallback")
    assert routed.model_dump_json_compatible() == {"from": "r", "to": "x", "when": "*", "label": "fallback"}


def test_workflow_lookups() -> None:
    spec = validate_workflow(doc(name="Model test"))
    assert spec.display_name == "Model test"
    assert validate_workflow(doc()).display_name == "m"
    assert spec.node("a").source == "e"
    with pytest.raises(KeyError, match="nope"):
        spec.node("nope")
    assert spec.source("e").provider == "echo"
    assert spec.source("nope") is None
    assert spec.queue("q").weight("fast") == 3
    assert spec.queue("nope") is None


def test_entry_node_explicit_or_the_input_node() -> None:
    assert validate_workflow(doc()).entry_node == "input"
    assert validate_workflow(doc(entry="input")).entry_node == "input"
    assert WorkflowSpec(id="x", nodes=[NodeSpec(id="a", type="llm")], edges=[]).entry_node == "a"


def test_sources_and_queues_resolved_from_the_workspace() -> None:
    class Workspace:
        workspace_key = "t"

        def get_source(self, source_id: str) -> SourceSpec | None:
            return SourceSpec(id=source_id, kind="llm", provider="echo") if source_id == "shared" else None

        def get_queue(self, queue_id: str) -> QueueSpec | None:
            return QueueSpec(id=queue_id) if queue_id == "team" else None

        def get_secret(self, name: str) -> str | None:
            return None

    document = doc()
    document["nodes"][1].update(source="shared", queue="team")
    spec = validate_workflow(document, workspace=Workspace())
    assert spec.source("shared").id == "shared"
    assert spec.queue("team").id == "team"
    assert spec.source("e").id == "e"  # the document's own still come first


def test_fingerprint_changes_with_content_only() -> None:
    a, b = validate_workflow(doc()), validate_workflow(doc())
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 32
    assert validate_workflow(doc(name="other")).fingerprint != a.fingerprint


def test_lazy_names_of_the_spec_package() -> None:
    assert spec_pkg.check_workflow is validate.check_workflow
    assert spec_pkg.Report is validate.Report
    assert spec_pkg.load_workflow is validate.load_workflow
    with pytest.raises(AttributeError, match=r"module 'agentflow\.spec' has no attribute 'nope'"):
        spec_pkg.nope  # noqa: B018
    assert set(spec_pkg.__all__) >= {"WorkflowSpec", "check_workflow", "validate_workflow"}


def test_a_copied_source_with_changes_gets_its_own_client_key() -> None:
    """The client key is cached on the source; a copy with new config must not share it."""
    source = SourceSpec(id="m", kind="llm", provider="echo", config={"latency_ms": 50})
    first = source.client_key
    assert source.client_key is first  # cached
    same = source.model_copy()
    changed = source.model_copy(update={"config": {"latency_ms": 5}})
    assert same.client_key == first
    assert changed.client_key != first and '"latency_ms": 5' in changed.client_key
    assert source.client_key == first


def test_a_copied_workflow_with_changes_gets_its_own_fingerprint() -> None:
    spec = validate_workflow(doc())
    first = spec.fingerprint
    assert spec.model_copy().fingerprint == first
    assert spec.model_copy(update={"name": "other"}).fingerprint != first
