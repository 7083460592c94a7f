"""``batch run|list|status|results|resume|cancel|compare`` and ``worker``: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.cli import main
from agentflow.cli.batch_cmds import ProgressBar
from tests.batch.conftest import six_doc
from tests.conftest import ROOT


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "wf.json").write_text(json.dumps(six_doc()))
    rows = ["question,gold"] + [f"q{i},q{i}" for i in range(6)]
    rows[3] = "q2,q2,extra"  # line 4 is malformed
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def batch_id_of(err: str) -> str:
    found = [line.split()[1] for line in err.splitlines() if line.startswith("batch ")]
    assert found, err
    return found[0]


def test_batch_run_prints_rows_in_order_and_a_progress_bar(capsys, files: Path) -> None:
    code, out, err = run(capsys, "batch", "run", str(files / "wf.json"), "--data", str(files / "rows.csv"),
                         "--column", "question", "--expected", "gold", "--scorer", "json:text", "--concurrency", "3")
    assert code == 0, out
    rows = lines(out)
    assert [r["row"] for r in rows] == list(range(6))
    assert list(rows[0]) == ["row", "status", "run_id", "final_output", "error", "latency_ms", "tokens",
                             "cost_usd", "score"]
    assert rows[2]["status"] == "failed" and rows[2]["error"]["message"].startswith("line 4: expected 2 fields")
    assert rows[0]["score"] == 1.0 and rows[0]["final_output"] == {"text": "q0"}
    bid = batch_id_of(err)
    assert "6/6 done 5  failed 1" in err and "waiting on a queue" in err

    code, out, _ = run(capsys, "batch", "status", bid)
    status = json.loads(out)
    assert code == 0 and status["status"] == "finished" and status["mean_score"] == pytest.approx(5 / 6)
    assert status["done"] + status["failed"] + status["running"] + status["pending"] == status["total"] == 6

    code, out, _ = run(capsys, "batch", "results", bid)
    assert code == 0 and lines(out) == rows
    code, out, _ = run(capsys, "batch", "results", bid, "--format", "csv")
    assert out.splitlines()[0].startswith("row,status,score,final_output,error")
    assert out.splitlines()[1].startswith('0,succeeded,1.0,"{""text"": ""q0""}"')

    code, out, _ = run(capsys, "batch", "list")
    (listed,) = json.loads(out)
    assert listed["batch_id"] == bid and listed["dataset"] == "rows.csv" and listed["backend"] == "local"

    code, out, _ = run(capsys, "batch", "compare", bid, bid)
    cmp = json.loads(out)
    assert cmp["summary"]["same_output"] == 6 and len(cmp["rows"]) == 6

    code, out, _ = run(capsys, "batch", "cancel", bid)
    assert code == 1 and json.loads(out)["error_type"] == "ConflictError"


def test_batch_run_to_a_file_and_from_a_saved_workflow(capsys, files: Path) -> None:
    code, out, _ = run(capsys, "workflows", "save", str(files / "wf.json"))
    assert code == 0
    target = files / "out.jsonl"
    code, out, err = run(capsys, "batch", "run", "six", "--version", "1", "--data", str(files / "rows.csv"),
                         "--column", "question", "--out", str(target))
    assert code == 0 and out == ""
    assert len(lines(target.read_text())) == 6
    bid = batch_id_of(err)
    assert json.loads(run(capsys, "batch", "list", "--workflow", "six")[1])[0]["workflow_version"] == 1
    assert run(capsys, "batch", "status", bid)[0] == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "missing.csv"], 'no such file'),
        (["--data", "rows.csv"], 'no column "user_input"'),
        (["--data", "rows.csv", "--column", "question", "--scorer", "exact"], "needs the expected column"),
        (["--data", "rows.csv", "--column", "question", "--detach"], "--detach needs --backend celery"),
    ],
)
def test_invalid_input_exits_2_with_only_the_error_on_stdout(capsys, monkeypatch, files: Path, extra,
                                                              message) -> None:
    monkeypatch.chdir(files)
    code, out, err = run(capsys, "batch", "run", "wf.json", *extra)
    assert code == 2
    error = json.loads(out)  # exactly one JSON document
    assert error["status"] == "error" and error["error_type"] == "ValidationError" and message in error["message"]
    assert "batch " not in err.split("INFO")[0]


def test_unknown_batch_is_not_found(capsys) -> None:
    code, out, _ = run(capsys, "batch", "status", "nope")
    assert code == 1 and json.loads(out)["error_type"] == "NotFoundError"


def test_resume_after_cancel_from_the_command_line(capsys, files: Path) -> None:
    from agentflow.batch import create_batch
    from agentflow.store import default_store

    batch = create_batch(six_doc(), [{"user_input": f"r{i}"} for i in range(5)])
    code, out, _ = run(capsys, "batch", "cancel", batch["batch_id"])
    assert code == 0 and json.loads(out)["status"] == "cancelled"
    code, out, _err = run(capsys, "batch", "resume", batch["batch_id"])
    assert code == 0 and len(lines(out)) == 5
    assert default_store().get_batch(batch["batch_id"])["status"] == "finished"


def test_progress_bar_on_a_terminal_redraws_in_place() -> None:
    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    tty = Tty()
    bar = ProgressBar(tty, width=10)
    base = {"total": 10, "done": 5, "failed": 0, "running": 2, "pending": 3, "dispatched": 0, "waiting": 1}
    bar(dict(base, status="running"))
    bar(dict(base, done=10, running=0, pending=0, status="finished"))
    assert tty.text.startswith("\r[#####-----] 5/10 done 5") and "waiting on a queue 1" in tty.text
    assert tty.text.endswith("\n") and tty.text.count("\r") == 2


def _cli(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "LOG_LEVEL"))}
    base.update(AGENTFLOW_HOME=str(home), PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "agentflow", *args], cwd=home, env=base, capture_output=True,
                          text=True, timeout=120)


def test_celery_without_redis_is_a_clear_error_not_a_traceback(files: Path) -> None:
    ran = _cli(["batch", "run", "wf.json", "--data", "rows.csv", "--column", "question", "--backend", "celery"],
               files)
    assert ran.returncode == 2, ran.stderr
    error = json.loads(ran.stdout)
    assert error["error_type"] == "ValidationError"
    assert "AGENTFLOW_REDIS_URL" in error["message"] and "Traceback" not in ran.stderr
    assert "batch " not in ran.stderr  # nothing was created
    worker = _cli(["worker"], files)
    assert worker.returncode == 2 and "AGENTFLOW_REDIS_URL" in json.loads(worker.stdout)["message"]
    assert "Traceback" not in worker.stderr
