"""compose.yaml and the Dockerfile, checked without Docker (no daemon on the test machines).

What can be checked without containers is checked: the file's variables, the commands of
its services run as written (against the local Postgres and Redis in place of its
``postgres`` and ``redis`` services), their health checks, and the proxy's routing against
the API's real routes. What cannot: building the image and Docker's networking.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.servers import ROOT, cli, free_port, server_env, stop_process

COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV = {"AGENTFLOW_SECRET_KEY": "compose-test-passphrase-0123456789", "POSTGRES_PASSWORD": "pw"}


class Missing(Exception):
    """A ``${VAR:?message}`` whose variable is not set (compose refuses to start)."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ``$$``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``
    (defaults may hold further variables)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            body = text[i + 2 : j - 1]
            name, op, rest = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:-|:\?|)(.*)$", body, re.S).groups()
            value = env.get(name, "")
            if op == ":-" and not value:
                value = interpolate(rest, env)
            elif op == ":?" and not value:
                raise Missing(f"{name}: {rest}")
            out.append(value)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def resolved(env: dict[str, str]) -> dict[str, Any]:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return interpolate(node, env) if isinstance(node, str) else node

    return walk(yaml.safe_load(COMPOSE.read_text()))


def dockerfile() -> dict[str, Any]:
    """The Dockerfile's ENV, CMD and HEALTHCHECK command."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    found: dict[str, Any] = {"env": env}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif word == "CMD":
            found["cmd"] = json.loads(rest)
        elif word == "HEALTHCHECK":
            found["health"] = json.loads(rest[rest.index("CMD") + 3 :])
    return found


def caddy_api_paths(compose: dict[str, Any]) -> list[str]:
    caddyfile = compose["configs"]["caddyfile"]["content"]
    line = next(ln for ln in caddyfile.splitlines() if ln.strip().startswith("@api path "))
    return line.split()[2:]


def caddy_matches(patterns: list[str], path: str) -> bool:
    return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in patterns)


# -- the file itself -----------------------------------------------------------------------------


def test_compose_refuses_to_start_without_its_secrets() -> None:
    assert resolved(ENV)["services"]["api"]["environment"]["AGENTFLOW_SECRET_KEY"] == ENV["AGENTFLOW_SECRET_KEY"]
    for name in ENV:
        with pytest.raises(Missing, match=name):
            resolved({k: v for k, v in ENV.items() if k != name})


def test_services_run_the_image_built_here_with_settings_agentflow_reads() -> None:
    from agentflow.settings import _KEYS

    compose = resolved(ENV)
    read = {*_KEYS, "FORWARDED_ALLOW_IPS", "OPENAI_API_KEY", "STREAMLIT_SERVER_COOKIE_SECRET"}
    for name in ("api", "workbench"):
        service = compose["services"][name]
        assert service["build"] == "." and DOCKERFILE.exists()
        unknown = set(service["environment"]) - read
        assert not unknown, f"{name}: variables nothing reads: {unknown}"
    workbench_env = compose["services"]["workbench"]["environment"]
    assert workbench_env["STREAMLIT_SERVER_COOKIE_SECRET"] == ENV["AGENTFLOW_SECRET_KEY"]  # the nested default
    assert set(dockerfile()["env"]) - read - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
                                              "PIP_DISABLE_PIP_VERSION_CHECK", "AGENTFLOW_REQUIRE_SIGNIN",
                                              "STREAMLIT_BROWSER_GATHER_USAGE_STATS"} == set()


def test_the_proxy_sends_every_api_route_to_the_api_and_nothing_else() -> None:
    from agentflow.api.errors import flat_routes
    from agentflow.api.main import create_app

    patterns = caddy_api_paths(resolved(ENV))
    paths = {re.sub(r"\{[^}]+\}", "x", route.path) for route in flat_routes(create_app().routes)}
    assert {"/health", "/openapi.json", "/docs", "/api/v1/workflows/x/runs", "/v1/chat/completions"} <= paths
    assert [p for p in sorted(paths) if not caddy_matches(patterns, p)] == []
    for workbench_path in ("/", "/Runs", "/_stcore/health", "/_stcore/stream", "/static/js/main.js"):
        assert not caddy_matches(patterns, workbench_path), workbench_path


# -- the services' commands, run as written --------------------------------------------------------


def _local(env: dict[str, str], pg_schema_url: str, redis_url: str) -> dict[str, str]:
    """A service's environment with its ``postgres`` and ``redis`` hosts pointed here."""
    return {**env, "AGENTFLOW_DB_URL": pg_schema_url, "AGENTFLOW_REDIS_URL": redis_url}


def _health(cmd: list[str], port: int, container_port: int, env: dict[str, str], timeout: float = 60.0) -> None:
    """Run a health-check command (as Docker would) until it passes."""
    assert cmd[0] == "python"
    argv = [sys.executable, *(c.replace(f":{container_port}/", f":{port}/") for c in cmd[1:])]
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"health check failed: {done.stderr[-2000:]}")
        time.sleep(0.5)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_the_api_service_serves_as_compose_starts_it(tmp_path: Path, pg_schema_url: str, redis_url: str) -> None:
    compose = resolved(ENV)
    service = compose["services"]["api"]
    env = _local(server_env(tmp_path, **{k: str(v) for k, v in service["environment"].items()}),
                 pg_schema_url, redis_url)
    # The setup lines of the file's header: serve refuses to start before a key or user exists.
    created = cli(env, "tokens", "create", "my-service", "--role", "editor")
    assert created.returncode == 0, created.stderr
    key = re.search(r"af_[A-Za-z0-9_-]+", created.stdout).group(0)
    doc = json.loads((ROOT / "examples" / "triage.json").read_text())
    port = free_port()
    command = [str(c) for c in service["command"]]
    assert command[:4] == ["python", "-m", "agentflow", "serve"] and "0.0.0.0" in command
    argv = [sys.executable, *command[1:]]
    argv[argv.index("--port") + 1] = str(port)
    proc = _start(argv, env, tmp_path / "api.log")
    try:
        _health(service["healthcheck"]["test"][1:], port, 8000, env)
        headers = {"Authorization": f"Bearer {key}"}
        saved = httpx.put(f"http://127.0.0.1:{port}/api/v1/workflows/{doc['id']}", json={"document": doc},
                          headers=headers, timeout=30)
        assert saved.status_code == 201, saved.text
        ran = httpx.post(f"http://127.0.0.1:{port}/api/v1/workflows/{doc['id']}/runs", json={"input": "hi"},
                         headers=headers, timeout=30)
        assert ran.status_code == 200 and ran.json()["metadata"]["status"] == "succeeded", ran.text
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
        assert health["store"] == "ok" and health["queues"].startswith("redis"), health
    finally:
        stop_process(proc)
    log = (tmp_path / "api.log").read_text()
    assert key not in log and ENV["AGENTFLOW_SECRET_KEY"] not in log


def test_the_workbench_image_command_starts_and_passes_its_health_check(
    tmp_path: Path, pg_schema_url: str, redis_url: str
) -> None:
    image = dockerfile()
    service = resolved(ENV)["services"]["workbench"]
    env = _local(server_env(tmp_path, **image["env"], **{k: str(v) for k, v in service["environment"].items()}),
                 pg_schema_url, redis_url)
    env["AGENTFLOW_HOME"] = str(tmp_path)  # the image's /data
    port = free_port()
    cmd = image["cmd"]
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "--server.address=0.0.0.0" in cmd
    argv = [sys.executable, "-m", *[c.replace("--server.port=8501", f"--server.port={port}") for c in cmd]]
    proc = _start(argv, env, tmp_path / "workbench.log")
    try:
        _health(image["health"], port, 8501, env)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        stop_process(proc)
