"""The store commands, through their own parser (as ``python -m agentflow`` wires them)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.cli.output import print_error
from agentflow.cli.store_cmds import add_commands
from agentflow.errors import AgentFlowError
from agentflow.store import close_default_stores, default_store

ROOT = Path(__file__).resolve().parents[2]

WORKFLOW = {
    "id": "hello",
    "name": "Hello",
    "nodes": [{"id": "input", "type": "input"}],
    "edges": [{"from": "input", "to": "END"}],
}


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    close_default_stores()


def cli(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="agentflow")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    old = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        code = int(args.handler(args) or 0)
    except AgentFlowError as exc:
        code = print_error(exc)
    finally:
        sys.stdin = old
    return code, capsys.readouterr().out


def test_workflows_save_list_show_export(capsys, tmp_path: Path) -> None:
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(WORKFLOW, indent=2))
    code, out = cli(capsys, "workflows", "save", str(path), "-m", "first", "--author", "ann")
    assert code == 0 and json.loads(out) == {"id": "hello", "version": 1}
    code, out = cli(capsys, "workflows", "save", str(path), "--base-version", "1")
    assert json.loads(out) == {"id": "hello", "version": 2}

    code, out = cli(capsys, "workflows", "save", str(path), "--base-version", "1")
    err = json.loads(out)
    assert code == 1 and err["error_type"] == "ConflictError"
    assert err["details"]["latest_version"] == 2

    listed = json.loads(cli(capsys, "workflows", "list")[1])
    assert [(w["id"], w["latest_version"]) for w in listed] == [("hello", 2)]
    shown = json.loads(cli(capsys, "workflows", "show", "hello", "--version", "1")[1])
    assert shown["version"] == 1 and shown["message"] == "first" and shown["author"] == "ann"
    assert json.loads(cli(capsys, "workflows", "export", "hello")[1]) == WORKFLOW
    versions = json.loads(cli(capsys, "workflows", "versions", "hello")[1])
    assert [v["version"] for v in versions] == [2, 1]

    code, out = cli(capsys, "workflows", "show", "nope")
    assert code == 1 and json.loads(out)["error_type"] == "NotFoundError"


def test_an_invalid_file_is_not_saved(capsys, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"id": "bad", "nodes": [], "edges": [], "typo": 1}')
    code, out = cli(capsys, "workflows", "save", str(path))
    assert code == 2 and json.loads(out)["error_type"] == "ValidationError"
    code, out = cli(capsys, "workflows", "save", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in json.loads(out)["message"]
    assert default_store().list_workflows() == []


def test_secrets_commands_never_print_values(capsys) -> None:
    code, out = cli(capsys, "secrets", "set", "openai", stdin="sk-test-cli-value-123\n")
    assert code == 0 and json.loads(out) == {"name": "openai", "stored": True}
    assert default_store().get_secret("openai") == "sk-test-cli-value-123"
    code, out = cli(capsys, "secrets", "list")
    assert [s["name"] for s in json.loads(out)] == ["openai"] and "sk-test" not in out
    assert json.loads(cli(capsys, "secrets", "rotate")[1]) == {"rotated": 1}
    assert json.loads(cli(capsys, "secrets", "rotate", "--new-key")[1]) == {"rotated": 1}
    assert default_store().get_secret("openai") == "sk-test-cli-value-123"
    assert json.loads(cli(capsys, "secrets", "delete", "openai")[1])["deleted"] is True
    code, out = cli(capsys, "secrets", "delete", "openai")
    assert code == 1 and json.loads(out)["error_type"] == "NotFoundError"


def test_new_key_needs_the_key_file(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_SECRET_KEY", "a passphrase of enough length")
    code, out = cli(capsys, "secrets", "rotate", "--new-key")
    assert code == 2 and "AGENTFLOW_PREVIOUS_SECRET_KEY" in json.loads(out)["message"]


def test_users_commands(capsys) -> None:
    code, out = cli(capsys, "users", "add", "ann", "--role", "admin", stdin="correct horse\n")
    assert code == 0 and json.loads(out)["role"] == "admin" and "correct horse" not in out
    assert default_store().verify_password("ann", "correct horse") is not None
    code, out = cli(capsys, "users", "add", "bob", "--role", "owner", stdin="correct horse\n")
    assert code == 2 and "unknown role" in json.loads(out)["message"]
    assert json.loads(cli(capsys, "users", "set-role", "ann", "--role", "viewer")[1])["role"] == (
        "viewer"
    )
    assert [u["name"] for u in json.loads(cli(capsys, "users", "list")[1])] == ["ann"]
    cli(capsys, "users", "delete", "ann")
    assert json.loads(cli(capsys, "users", "list")[1]) == []


def test_tokens_create_prints_only_the_key(capsys) -> None:
    code, out = cli(capsys, "tokens", "create", "ci", "--role", "editor", "--expires-days", "7")
    key = out.strip()
    assert code == 0 and out == key + "\n" and key.startswith("af_")
    assert default_store().verify_api_key(key).role == "editor"
    listed = json.loads(cli(capsys, "tokens", "list")[1])
    assert listed[0]["name"] == "ci" and key not in json.dumps(listed)
    assert json.loads(cli(capsys, "tokens", "revoke", "ci")[1])["revoked"] is True
    assert default_store().verify_api_key(key) is None


def test_runs_commands(capsys) -> None:
    store = default_store()
    for i in range(3):
        store.record_run(
            {"metadata": {"run_id": f"r{i}", "workflow_id": "w", "status": "succeeded",
                          "started_at": f"2026-01-01T00:00:0{i}Z"}}
        )
    page = json.loads(cli(capsys, "runs", "list", "--limit", "2")[1])
    assert [r["run_id"] for r in page["runs"]] == ["r2", "r1"] and page["next_cursor"]
    rest = json.loads(cli(capsys, "runs", "list", "--cursor", page["next_cursor"])[1])
    assert [r["run_id"] for r in rest["runs"]] == ["r0"] and rest["next_cursor"] is None
    assert json.loads(cli(capsys, "runs", "list", "--status", "failed")[1])["runs"] == []
    assert json.loads(cli(capsys, "runs", "show", "r1")[1])["run_id"] == "r1"
    code, out = cli(capsys, "runs", "show", "nope")
    assert code == 1 and json.loads(out)["error_type"] == "NotFoundError"


def test_through_the_real_entry_point(agentflow_home: Path) -> None:
    """``main()`` with this module registered: parsing, logging setup, exit codes."""
    script = (
        "import sys, agentflow.cli as c; c.COMMAND_MODULES = ('agentflow.cli.store_cmds',); "
        "sys.exit(c.main(sys.argv[1:]))"
    )

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *argv],
            input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60,
        )

    made = run("tokens", "create", "deploy", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("\n") == 1 and made.stdout.startswith("af_")
    listed = run("tokens", "list")
    assert json.loads(listed.stdout)[0]["name"] == "deploy"
    assert run("users", "list").stdout.strip() == "[]"
