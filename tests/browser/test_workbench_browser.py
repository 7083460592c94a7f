"""The workbench in a real browser: Playwright drives Debian's Chromium against a
``streamlit run app.py`` started here on a free localhost port.

The path a new user takes: sign in, create a workflow from an example, see its graph drawn,
run it and watch each step and the final output. Every page is photographed on the way
(``test-artifacts/screenshots/``, copied to ``docs/screenshots/`` for the README), and the
time until a 200-node workflow's graph is drawn is measured (``test-artifacts/graph-200.json``).
A second test debugs a run: a breakpoint, the pause, a state edit, resume, then step mode.

Needs Playwright and ``/usr/bin/chromium`` (``.ci/run`` installs it); never downloads a
browser. Under ``CI`` a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"
USER, PASSWORD = "tester", "browser-test-password-1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The 200-node graph must be drawn within this (the page stays usable).
GRAPH_200_BUDGET_S = 20.0

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser() -> None:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        msg = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{msg} (CI is set: the browser test must run, not skip)")
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _add_user(env: dict[str, str]) -> None:
    """Through the command line when the store commands are wired in, else the store API."""
    from agentflow.cli import COMMAND_MODULES

    if "agentflow.cli.store_cmds" in COMMAND_MODULES:
        subprocess.run(
            [sys.executable, "-m", "agentflow", "users", "add", USER, "--role", "admin"],
            input=PASSWORD + "\n",
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=60,
        )
    else:
        from agentflow.store import default_store

        default_store().add_user(USER, PASSWORD, "admin")


def _big_workflow(n: int = 200) -> dict[str, Any]:
    """``n`` nodes: an input, a router, 22 parallel chains of llm/db/api-shaped work, and an
    aggregator, all offline."""
    nodes: list[dict[str, Any]] = [{"id": "input", "type": "input"}]
    edges: list[dict[str, Any]] = []
    chains, per = 22, (n - 2) // 22
    for c in range(chains):
        prev = "input"
        for i in range(per):
            nid = f"c{c:02d}-n{i}"
            nodes.append(
                {
                    "id": nid,
                    "type": "llm",
                    "source": "echo",
                    "config": {"prompt": "{user_input}", "output_key": f"o_{c}_{i}"},
                }
            )
            edges.append({"from": prev, "to": nid})
            prev = nid
        edges.append({"from": prev, "to": "agg"})
    while len(nodes) < n - 1:
        nid = f"extra{len(nodes)}"
        nodes.append({"id": nid, "type": "llm", "source": "echo", "config": {"output_key": nid}})
        edges.append({"from": "input", "to": nid})
        edges.append({"from": nid, "to": "agg"})
    nodes.append({"id": "agg", "type": "aggregator", "config": {"fields": {"first": "o_0_0"}}})
    edges.append({"from": "agg", "to": "END"})
    return {
        "id": "big-200",
        "name": "Big 200",
        "sources": [{"id": "echo", "kind": "llm", "provider": "echo"}],
        "nodes": nodes,
        "edges": edges,
    }


@pytest.fixture
def server(tmp_path: Path, agentflow_home: Path) -> Iterator[str]:
    """``streamlit run app.py`` on a free port, a user in its store; yields the base URL."""
    _require_browser()
    port = _free_port()
    env = dict(os.environ, AGENTFLOW_HOME=str(agentflow_home), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    _add_user(env)  # users do not count as "in use": the demo is still seeded on first start
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text()[-3000:])
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# -- helpers -----------------------------------------------------------------------------------


def _idle(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)


def _status_is(page, status: str) -> None:
    """The run's status metric reads ``status`` (waiting for it: the answer's streamed text
    can show before the run's last rerun draws the status)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stMetricValue").first).to_have_text(status, timeout=30_000)


def _go(page, title: str, expect: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_text(expect).first.wait_for(timeout=30_000)
    _idle(page)


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def _select(page, key: str, text: str) -> None:
    """Choose an option of a select box by typing part of it (long lists are virtual)."""
    box = page.locator(f".st-key-{key}")
    for _ in range(3):
        box.locator("input").first.click()
        page.keyboard.type(text)
        option = page.get_by_role("option").filter(has_text=text).first
        try:
            option.wait_for(timeout=5_000)
        except Exception:  # the list did not open (a rerun replaced the box): try again
            page.keyboard.press("Escape")
            _idle(page)
            continue
        option.click()
        _idle(page)
        return
    pytest.fail(f"could not choose {text!r} in select box {key}")


_PIXELS_JS = """c => {
  const ctx = c.getContext('2d');
  if (!ctx || !c.width || !c.height) return {drawn: 0, hash: 0};
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, hash = 0;
  for (let i = 3; i < d.length; i += 4) {
    if (d[i] > 0) { drawn++; hash = (hash * 31 + d[i - 3] + d[i - 2] * 7 + d[i - 1] * 13 + i) % 1000000007; }
  }
  return {drawn, hash};
}"""


def _graph_pixels(page) -> dict[str, int]:
    frame = page.frame_locator('iframe[title="streamlit_agraph.agraph"]').first
    canvas = frame.locator("canvas").first
    canvas.wait_for(state="attached", timeout=30_000)
    return canvas.evaluate(_PIXELS_JS)


def _wait_graph_drawn(page, timeout_s: float = 30.0) -> tuple[float, float, int]:
    """Seconds until the canvas has pixels, and until they stop changing; pixel count."""
    start = time.perf_counter()
    first = None
    last_hash, stable_since = None, None
    while time.perf_counter() - start < timeout_s:
        try:
            px = _graph_pixels(page)
        except Exception:  # the iframe is being replaced
            px = {"drawn": 0, "hash": 0}
        now = time.perf_counter() - start
        if px["drawn"] > 500:
            first = first if first is not None else now
            if px["hash"] == last_hash:
                if stable_since is not None and now - stable_since >= 0.3:
                    return first, stable_since, px["drawn"]
            else:
                last_hash, stable_since = px["hash"], now
        time.sleep(0.05)
    pytest.fail(f"the graph was not drawn within {timeout_s} s")


def _multiselect(page, key: str, option: str) -> None:
    """Add ``option`` to a multiselect (its list opens on a click; the menu is closed after)."""
    box = page.locator(f".st-key-{key}")
    for _ in range(3):
        box.locator("input").first.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.click(timeout=5_000)
        except Exception:  # the list did not open or closed (a rerun replaced the box): try again
            page.keyboard.press("Escape")
            _idle(page)
            continue
        page.keyboard.press("Escape")
        _idle(page)
        if box.get_by_text(option, exact=True).count():
            return
    pytest.fail(f"could not add {option!r} to multiselect {key}")


def _button(page, key: str):
    """The button with widget key ``key`` (a button with a tooltip is drawn twice, once hidden)."""
    return page.locator(f".st-key-{key} button:visible").first


def _sign_in(page, server: str) -> None:
    page.goto(server)
    page.get_by_text("Sign in to continue").wait_for(timeout=30_000)
    _idle(page)
    page.locator(".st-key-auth_user input").fill(USER)
    page.locator(".st-key-auth_password input").fill(PASSWORD)
    page.locator(".st-key-auth_submit button").click()
    page.get_by_text("Start here").wait_for(timeout=30_000)
    _idle(page)


def _paused_before(page, node: str) -> None:
    """Wait for the paused-run panel to say where the run stopped."""
    page.locator(".st-key-run_dbg_panel h4", has_text=f"Paused before {node}").wait_for(timeout=60_000)
    _idle(page)


# -- the tests ---------------------------------------------------------------------------------


def test_sign_in_create_graph_run_and_every_page(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            # Sign in.
            page.goto(server)
            page.get_by_text("Sign in to continue").wait_for(timeout=30_000)
            _idle(page)
            _shot(page, "00-sign-in")
            page.locator(".st-key-auth_user input").fill(USER)
            page.locator(".st-key-auth_password input").fill(PASSWORD)
            page.locator(".st-key-auth_submit button").click()
            page.get_by_text("Start here").wait_for(timeout=30_000)
            _idle(page)
            assert page.get_by_text(f"Signed in as {USER}").count() == 1
            assert page.get_by_text("Demo workspace ready").count() == 1
            _shot(page, "01-home")

            # Create a workflow from an example: it opens in the editor.
            _select(page, "home_example", "Triage demo")
            new_id = "my-triage-demo"  # the id the page suggests for a copy of triage-demo
            expect(page.locator(".st-key-home_new_id_triage-demo input")).to_have_value(new_id)
            page.locator(".st-key-home_create button").click()
            page.get_by_text(f"{new_id} · version 1").wait_for(timeout=30_000)
            _idle(page)
            page.get_by_text("Valid: 6 nodes, 9 edges").wait_for()
            editor = page.frame_locator('iframe[title="code_editor.code_editor"]').first
            editor.locator(".ace_line", has_text="triage").first.wait_for(timeout=30_000)
            _shot(page, "02-editor")

            # Its graph is drawn.
            started = time.perf_counter()
            _go(page, "Graph", "Colour by run")
            first, stable, drawn = _wait_graph_drawn(page)
            small_graph_s = time.perf_counter() - started
            assert drawn > 2000
            _shot(page, "03-graph")

            # Run it and watch each step, then the output and trace.
            _go(page, "Run", "Input (user_input)")
            page.locator(f".st-key-run_input_{new_id} input").fill("img: a red fox")
            page.locator(f".st-key-run_input_{new_id} input").press("Enter")
            _idle(page)
            page.locator(".st-key-run_go button").click()
            page.get_by_text("Running my-triage-demo").first.wait_for(timeout=30_000)
            page.get_by_text("Timeline").first.wait_for(timeout=60_000)
            _idle(page)
            main = page.get_by_test_id("stMain")
            for node in ("input", "router", "draw", "agg"):
                assert main.locator("p", has_text=node).count() >= 1, node
            assert page.get_by_text("intent image").count() >= 1
            assert page.locator('[data-testid="stImage"] img').count() >= 1  # the drawn fox
            _status_is(page, "succeeded")
            _shot(page, "04-run")

            # A text run too: the llm step streams its answer.
            page.locator(f".st-key-run_input_{new_id} input").fill("what is a fox?")
            page.locator(f".st-key-run_input_{new_id} input").press("Enter")
            _idle(page)
            page.locator(".st-key-run_go button").click()
            page.get_by_text("You asked: what is a fox?").first.wait_for(timeout=60_000)
            page.get_by_text("Timeline").first.wait_for(timeout=60_000)
            _idle(page)

            _go(page, "Runs", "Started between")
            page.get_by_text("Compare two runs").wait_for()
            _shot(page, "05-runs")
            _go(page, "Sources", "Add a source")
            _shot(page, "06-sources")
            _go(page, "Queues", "Define a queue")
            page.locator(".st-key-q_traffic button").click()
            page.get_by_text("Waiting now").first.wait_for(timeout=30_000)
            time.sleep(2.5)  # two refreshes of the live meters
            _shot(page, "07-queues")

            # The 200-node graph: from the home page's shortcut to a drawn, settled canvas.
            from agentflow.store import default_store  # the server's store (same AGENTFLOW_HOME)

            default_store().save_workflow(_big_workflow(), author="bench", message="200 nodes")
            _go(page, "Home", "Start here")
            _select(page, "home_open", "big-200")
            started = time.perf_counter()
            page.locator(".st-key-home_open_graph button").click()
            page.get_by_text("200 nodes").first.wait_for(timeout=60_000)
            shown = time.perf_counter() - started
            first, stable, drawn = _wait_graph_drawn(page, timeout_s=GRAPH_200_BUDGET_S * 2)
            total_first, total_stable = shown + first, shown + stable
            _shot(page, "08-graph-200")
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "graph-200.json").write_text(
                json.dumps(
                    {
                        "nodes": 200,
                        "page_shown_s": round(shown, 2),
                        "first_pixels_s": round(total_first, 2),
                        "settled_s": round(total_stable, 2),
                        "drawn_pixels": drawn,
                        "six_node_graph_s": round(small_graph_s, 2),
                    },
                    indent=2,
                )
            )
            assert total_stable < GRAPH_200_BUDGET_S, f"200-node graph took {total_stable:.1f} s to draw"
            # Still usable: a node can be chosen and its details shown.
            _select(page, "gr_node", "c05-n3")
            page.get_by_text("Calls a language model").first.wait_for(timeout=30_000)

            assert not errors, errors
        finally:
            browser.close()

    _update_doc_screenshots()


def _update_doc_screenshots() -> None:
    if os.environ.get("AGENTFLOW_UPDATE_SCREENSHOTS"):  # refresh the README's pictures on request only
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        for png in sorted(SHOTS.glob("*.png")):
            shutil.copyfile(png, DOC_SHOTS / png.name)


def test_debug_a_run_breakpoint_edit_resume_and_step(server: str) -> None:
    """Set a breakpoint on the Run page, run the triage demo, see the pause and the state,
    edit a value, resume and see the changed result; then step through a run node by node."""
    from playwright.sync_api import expect, sync_playwright

    wf = "triage-demo"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1600})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            _sign_in(page, server)

            # A breakpoint before the llm node, chosen on the Run page.
            _go(page, "Run", "Input (user_input)")
            _select(page, "run_wf", "Triage demo")
            page.get_by_text("Routes a request to text, image or SQL").wait_for(timeout=30_000)
            _idle(page)
            page.get_by_text("Breakpoints and step mode").click()
            _idle(page)
            _multiselect(page, f"run_break_before_{wf}", "answer")
            page.get_by_text("This run pauses before answer").wait_for(timeout=30_000)
            box = page.locator(f".st-key-run_input_{wf} input")
            box.fill("what is a fox")
            box.press("Enter")
            _idle(page)
            page.locator(".st-key-run_go button").click()

            # The pause: where, the state with the router's change highlighted.
            _paused_before(page, "answer")
            panel = page.locator(".st-key-run_dbg_panel")
            assert panel.locator('mark[data-key="intent"]').inner_text().strip().startswith('"intent": "text"')
            assert panel.get_by_text("changed by router").count() == 1
            _status_is(page, "interrupted")
            _shot(page, "09-debug-paused")

            # Edit a value, resume, and the result follows the edit.
            editor = panel.locator('[class*="st-key-run_dbg_state_"] textarea')
            state = json.loads(editor.input_value())
            assert state == {"intent": "text", "user_input": "what is a fox"}
            editor.fill(json.dumps({**state, "user_input": "what is an owl"}, indent=2))
            editor.press("Control+Enter")  # commits the text: a rerun that shows nothing new
            time.sleep(0.5)
            _idle(page)
            _button(page, "run_dbg_resume").click()
            page.get_by_text("You asked: what is an owl").first.wait_for(timeout=60_000)
            page.get_by_text("Timeline").first.wait_for(timeout=60_000)
            _idle(page)
            _status_is(page, "succeeded")
            assert page.get_by_text("state edited: user_input").count() >= 1
            assert page.locator(".st-key-run_dbg_panel").count() == 0
            _shot(page, "10-debug-resumed")

            # Step mode: pause before every node, one Step at a time.
            page.locator(f".st-key-run_step_{wf} label").first.click()
            page.get_by_text("This run pauses before every node").wait_for(timeout=30_000)
            _idle(page)
            box.fill("tell me")
            box.press("Enter")
            _idle(page)
            page.locator(".st-key-run_go button").click()
            for node in ("input", "router", "answer", "agg"):
                _paused_before(page, node)
                if node == "answer":
                    _shot(page, "11-debug-step")
                _button(page, "run_dbg_step").click()
            page.get_by_text("You asked: tell me").first.wait_for(timeout=60_000)
            page.get_by_text("Timeline").first.wait_for(timeout=60_000)
            _idle(page)
            _status_is(page, "succeeded")
            # Drawn after the final output, in the same rerun: wait for it (a loaded machine).
            # Exactly once when the rerun is done; while it draws, the paused view's stale
            # panel can still be on the page beside the new one.
            expect(page.get_by_text("Time travel: checkpoints of this run")).to_have_count(1, timeout=30_000)
            _shot(page, "12-debug-stepped")

            assert not errors, errors
        finally:
            browser.close()

    _update_doc_screenshots()
