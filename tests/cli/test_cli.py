"""``python -m agentflow`` as a real subprocess: exit codes, JSON on stdout, logs elsewhere."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-abcdefghijklmnopqrstuvwxyz123456"


class Ran:
    """One finished command: its exit code, stdout, stderr, and its AGENTFLOW_HOME."""

    def __init__(self, done: subprocess.CompletedProcess[str], home: Path, files: Path) -> None:
        self.returncode, self.stdout, self.stderr = done.returncode, done.stdout, done.stderr
        self.home, self.files = home, files

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)  # fails unless stdout is exactly one JSON document

    @property
    def log(self) -> str:
        return (self.home / "agentflow_core.log").read_text(encoding="utf-8")


#: name -> builder of the command's arguments (given a folder for workflow files).
JOBS: dict[str, Callable[[Path], list[str]]] = {}


def job(name: str) -> Callable[[Callable[[Path], list[str]]], Callable[[Path], list[str]]]:
    def register(build: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
        JOBS[name] = build
        return build

    return register


def run_cli(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "LOG_LEVEL"))}
    env.update(AGENTFLOW_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "agentflow", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Every command of this module, run at once (each start-up is mostly import time)."""
    base = tmp_path_factory.mktemp("cli")
    prepared = {}
    for name, build in JOBS.items():
        files = base / name
        files.mkdir()
        prepared[name] = (build(files), base / f"home-{name}", files)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_cli, args, home) for name, (args, home, _) in prepared.items()}
        return {name: Ran(futures[name].result(), prepared[name][1], prepared[name][2]) for name in prepared}


def write(folder: Path, doc: dict[str, Any], name: str = "flow.json") -> str:
    path = folder / name
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return str(path)


def strict_router(folder: Path) -> str:
    """A workflow whose LLM router fails on any input naming none of its intents."""
    return write(folder, {
        "id": "strict",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": [
            {"id": "input", "type": "input"},
            {"id": "r", "type": "router", "source": "e", "config": {"mode": "llm", "intents": ["yes", "no"]}},
        ],
        "edges": [{"from": "input", "to": "r"}, {"from": "r", "to": "END", "when": "*"}],
    })


TRIAGE = ROOT / "examples" / "triage.json"


@job("triage")
def _triage(files: Path) -> list[str]:
    return ["run", "examples/triage.json", "--input", "img: a red fox"]


def test_run_triage_prints_the_final_state_as_pure_json(ran: dict[str, Ran]) -> None:
    done = ran["triage"]
    assert done.returncode == 0, done.stderr
    state = done.json
    assert base64.b64decode(state["image_result"]).startswith(b"\x89PNG\r\n\x1a\n")
    meta = state["metadata"]
    assert meta["status"] == "succeeded" and meta["workflow_id"] == "triage-demo"
    assert [(e["node"], e["status"]) for e in meta["trace"]] == [
        ("input", "succeeded"), ("router", "succeeded"), ("draw", "succeeded"), ("agg", "succeeded")
    ]
    assert state["final_output"]["image"] == state["image_result"]
    # logs go to stderr and the log file, never stdout
    assert f"run {meta['run_id']} workflow=triage-demo status=succeeded" in done.stderr
    summary = [line for line in done.log.splitlines() if f"run {meta['run_id']}" in line]
    assert len(summary) == 1
    assert " INFO agentflow.runtime: " in summary[0]
    assert "nodes=[input:succeeded:" in summary[0] and "draw:succeeded:" in summary[0] and "@sketch" in summary[0]


@job("state")
def _state(files: Path) -> list[str]:
    path = write(files, {
        "id": "greet",
        "sources": [{"id": "e", "kind": "llm", "provider": "echo"}],
        "nodes": [{"id": "input", "type": "input", "config": {"required": ["name"]}},
                  {"id": "a", "type": "llm", "source": "e", "config": {"prompt": "{user_input}, {name}"}}],
        "edges": [{"from": "input", "to": "a"}],
    })
    return ["run", path, "--input", "Hello", "--state", '{"name": "Ada", "user_input": "overridden by --input"}']


def test_run_with_extra_state(ran: dict[str, Ran]) -> None:
    done = ran["state"]
    assert done.returncode == 0, done.stderr
    assert done.json["text_result"] == "Hello, Ada"


@job("validate-ok")
def _validate_ok(files: Path) -> list[str]:
    return ["validate", "examples/fanout.json"]


def test_validate_ok(ran: dict[str, Ran]) -> None:
    done = ran["validate-ok"]
    assert done.returncode == 0, done.stderr
    assert done.json == {"valid": True, "id": "research-fanout", "warnings": []}


@job("validate-broken")
def _validate_broken(files: Path) -> list[str]:
    doc = json.loads(TRIAGE.read_text(encoding="utf-8"))
    doc["nodes"][2]["source"] = "ecko"
    doc["edges"][5]["to"] = "aggg"
    return ["validate", write(files, doc)]


def test_validate_a_broken_file(ran: dict[str, Ran]) -> None:
    done = ran["validate-broken"]
    assert done.returncode == 2
    out = done.json
    assert out["status"] == "error" and out["error_type"] == "ValidationError"
    assert out["message"].startswith("invalid workflow: ")
    errors = {e["path"]: e for e in out["details"]["errors"]}
    assert set(errors) == {"nodes[2].source", "edges[5].to"}
    assert errors["nodes[2].source"]["message"].startswith('node "answer": source "ecko" is not defined (did you mean "echo"?)')
    assert errors["edges[5].to"]["message"] == 'edge "answer" -> "aggg": node "aggg" is not defined (did you mean "agg"?)'
    line = (done.files / "flow.json").read_text(encoding="utf-8").splitlines()[errors["nodes[2].source"]["line"] - 1]
    assert '"source": "ecko"' in line


@job("syntax")
def _syntax(files: Path) -> list[str]:
    path = files / "bad.json"
    path.write_text('{\n  "id": "x",\n  "nodes": [}\n}', encoding="utf-8")
    return ["validate", str(path)]


def test_validate_a_json_syntax_error(ran: dict[str, Ran]) -> None:
    done = ran["syntax"]
    assert done.returncode == 2
    (err,) = done.json["details"]["errors"]
    assert (err["line"], err["column"]) == (3, 13)
    assert err["message"] == f"{done.files / 'bad.json'}: invalid JSON at line 3, column 13: Expecting value"


@job("failed")
def _failed(files: Path) -> list[str]:
    return ["run", strict_router(files), "--input", f"please use {SECRET}"]


def test_failed_run_exits_1_with_run_id_and_trace_and_masks_secrets(ran: dict[str, Ran]) -> None:
    done = ran["failed"]
    assert done.returncode == 1
    out = done.json
    assert out["status"] == "error" and out["error_type"] == "ExecutionError"
    assert out["message"].startswith('node "r": the model answered \'please use ***\', which names none of the intents')
    details = out["details"]
    assert len(details["run_id"]) == 32 and details["status"] == "failed" and details["node"] == "r"
    assert [(e["node"], e["status"]) for e in details["trace"]] == [("input", "succeeded"), ("r", "failed")]
    assert SECRET not in done.stdout and SECRET not in done.stderr
    log = done.log
    assert f"run {details['run_id']} workflow=strict status=failed" in log
    assert "please use ***" in log and SECRET not in log


@job("bad-state")
def _bad_state(files: Path) -> list[str]:
    return ["run", "examples/triage.json", "--state", "{not json"]


@job("list-state")
def _list_state(files: Path) -> list[str]:
    return ["run", "examples/triage.json", "--state", "[1]"]


def test_bad_state_json_exits_2(ran: dict[str, Ran]) -> None:
    done = ran["bad-state"]
    assert done.returncode == 2
    out = done.json
    assert out["error_type"] == "ValidationError"
    assert out["message"].startswith("--state is not valid JSON (line 1, column 2: ")
    assert out["details"]["errors"][0]["path"] == "--state"
    not_object = ran["list-state"]
    assert not_object.returncode == 2
    assert not_object.json["message"] == "--state must be a JSON object"


@job("events")
def _events(files: Path) -> list[str]:
    return ["run", "examples/triage.json", "--input", "tell me about owls", "--events"]


def test_events_are_json_lines_from_run_start_to_run_end(ran: dict[str, Ran]) -> None:
    done = ran["events"]
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("run_start") == 1 and kinds.count("run_end") == 1
    run_id = events[0]["data"]["run_id"]
    assert all(e["run_id"] == run_id for e in events)
    tokens = [e["data"] for e in events if e["type"] == "token"]
    final = events[-1]["data"]
    assert "".join(tokens) == final["text_result"] == "You asked: tell me about owls"
    assert [e["node"] for e in events if e["type"] == "node_end"] == ["input", "router", "answer", "agg"]


@job("events-failed")
def _events_failed(files: Path) -> list[str]:
    return ["run", strict_router(files), "--input", "maybe", "--events"]


def test_events_of_a_failed_run_exit_1(ran: dict[str, Ran]) -> None:
    done = ran["events-failed"]
    assert done.returncode == 1
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["type"] == "run_end" and last["data"]["metadata"]["status"] == "failed"


@job("schema")
def _schema(files: Path) -> list[str]:
    return ["schema"]


def test_schema(ran: dict[str, Ran]) -> None:
    done = ran["schema"]
    assert done.returncode == 0, done.stderr
    schema = done.json
    assert schema["title"] == "AgentFlow workflow"
    assert "NodeSpec" in schema["$defs"]


@job("plugins")
def _plugins(files: Path) -> list[str]:
    return ["plugins"]


def test_plugins_lists_node_types_and_providers(ran: dict[str, Ran]) -> None:
    done = ran["plugins"]
    assert done.returncode == 0, done.stderr
    out = done.json
    assert set(out["node_types"]) >= {"input", "router", "llm", "image", "db", "api", "aggregator"}
    assert out["node_types"]["llm"] == "Calls a language model with a rendered prompt."
    assert {"llm/echo", "image/placeholder", "db/sqlite"} <= set(out["providers"])
    assert out["providers"] == sorted(out["providers"])
    assert out["failed"] == {}
