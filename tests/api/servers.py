"""Real ``python -m agentflow serve`` processes for the tests that speak HTTP to a server.

    with Serve(env) as srv:           # a free localhost port; waits for /health
        httpx.get(srv.url + "/health")
        srv.output()                  # everything it wrote (stdout and stderr)

Each server writes its output to a file, so a test can read every log line it produced.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.api import stop as stop_process  # terminate, kill 30 s later, reap

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server (and of the CLI commands a test runs against its store)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTFLOW_", "JWT_", "LOG_LEVEL", "PYTEST", "COV_", "OPENAI_"))}
    env.update(AGENTFLOW_HOME=str(home), AGENTFLOW_SECRET_KEY="tests-passphrase-0123456789abcdef",
               JWT_SECRET="tests-jwt-secret-0123456789abcdef0123456789", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m agentflow ARGS`` with ``env``."""
    return subprocess.run([sys.executable, "-m", "agentflow", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


class Serve:
    """One ``python -m agentflow serve`` process on a free localhost port."""

    def __init__(self, env: dict[str, str], *args: str, log: Path | None = None) -> None:
        self.env = env
        self.port = free_port()
        self.args = ["--port", str(self.port), *args]
        self.log = log or Path(env["AGENTFLOW_HOME"]) / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> Serve:
        """Start the process without waiting for it (see :meth:`wait`)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "agentflow", "serve", *self.args], cwd=ROOT,
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return self

    def start(self, timeout: float = 60.0) -> Serve:
        return self.launch().wait(timeout)

    def wait(self, timeout: float = 60.0) -> Serve:
        """Wait until ``/health`` answers 200."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"serve did not answer /health in {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
