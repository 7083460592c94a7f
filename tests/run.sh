#!/usr/bin/env bash
# Sets up everything the test suite needs (virtualenv, packages, Debian's Chromium for the
# browser tests) and runs it with the coverage gates: runtime >= 85%, validation and node
# factories 100%. Extra arguments go to pytest (e.g. `bash tests/run.sh -k executor`).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -r tests/requirements.txt

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is not installed; browser tests will fail under CI and skip otherwise" >&2
  fi
fi

.venv/bin/ruff check .
rm -f .coverage .coverage.*
.venv/bin/python -m pytest --cov=agentflow --cov-report= "$@"
echo "== coverage gates =="
.venv/bin/coverage report --include='agentflow/spec/*,agentflow/nodes/*' --fail-under=100 --skip-covered --show-missing
.venv/bin/coverage report --include='agentflow/runtime/*' --fail-under=85 --show-missing
.venv/bin/coverage report --include='agentflow/api/*' --fail-under=90 --skip-covered
.venv/bin/coverage report --include='agentflow/api/requests.py' --fail-under=100
.venv/bin/coverage report --fail-under=80 | tail -1
