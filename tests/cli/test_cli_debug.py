"""``run --break`` / ``--step``, ``resume``, ``checkpoints`` and ``fork`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str) -> tuple[int, Any]:
    env = {**os.environ, "AGENTFLOW_HOME": str(home)}
    env.pop("AGENTFLOW_DB_URL", None)
    done = subprocess.run([sys.executable, "-m", "agentflow", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def test_break_resume_with_state_then_fork(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, paused = cli(home, "run", "examples/fanout.json", "--input", "foxes", "--break", "draft")
    assert code == 0 and paused["metadata"]["status"] == "interrupted"
    run_id = paused["metadata"]["run_id"]
    assert paused["metadata"]["paused_before"] == "draft"

    code, cps = cli(home, "checkpoints", run_id)
    assert code == 0 and cps[-1]["next"] == ["draft"] and cps[-1]["node"] == "outline, keywords, facts"

    code, final = cli(home, "resume", run_id, "--state", '{"outline": "from the CLI"}')
    assert code == 0 and final["draft"] == "Draft from: from the CLI"
    assert final["metadata"]["status"] == "succeeded"

    code, shown = cli(home, "runs", "show", run_id)
    assert code == 0 and shown["status"] == "succeeded"

    before_draft = next(c for c in cps if c["next"] == ["draft"])
    code, forked = cli(home, "fork", run_id, before_draft["checkpoint_id"], "--state", '{"outline": "forked"}')
    assert code == 0 and forked["draft"] == "Draft from: forked"
    assert forked["metadata"]["forked_from"]["run_id"] == run_id


def test_step_mode_and_bad_patch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, paused = cli(home, "run", "examples/triage.json", "--input", "hi", "--step")
    assert code == 0 and paused["metadata"]["paused_before"] == "input"
    code, err = cli(home, "resume", paused["metadata"]["run_id"], "--state", "{not json")
    assert code == 2 and err["error_type"] == "ValidationError"
    code, err = cli(home, "resume", "no-such-run")
    assert code == 1 and err["error_type"] == "NotFoundError"
