"""Drive JupyterLab in a real browser, as a learner would: ``make browser-test`` (CI runs it).

Starts JupyterLab on 127.0.0.1 (a free port, a token, the project's environment) over a scratch
copy of the lesson folders, opens each interactive notebook in headless Chromium (Debian's, via
Playwright for Python), runs all cells, moves one control of the notebook's widgets and checks:
every code cell ran with no error output, every widget rendered (no "Error displaying widget"),
the control changed what the widget shows, the saved notebook reopened with a fresh kernel says
"run this cell again" where each widget was, the browser console logged no error, and no request
went to any host but the lab. Screenshots go to the folder it prints.

``--install`` first installs what it needs: ``playwright`` into this Python environment (not a
project dependency: a learner's ``make test`` needs no browser) and, as root, Debian's
``chromium`` with apt-get. Playwright cannot download its own browser here: it is pointed at
/usr/bin/chromium.

Leaves out: visual comparison of screenshots, and timing budgets (``make test`` reports those).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The interactive notebooks, one place: later phases add theirs here.
NOTEBOOKS = [
    "phase-2-generation/token-probability-explorer.ipynb",
    "phase-3-transformer/attention-visualizer.ipynb",
    "phase-4-rag/chat-with-your-docs.ipynb",  # the chat box: a question typed, Ask pressed
]
QUESTION = "How do I copy an object in Python?"  # typed into a text box next to a button
CHROMIUM = os.environ.get("LLMLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
RUN_TIMEOUT_S = 900  # all cells of one notebook, on a busy 2-core machine
WIDGET_TIMEOUT_S = 120
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Failure(AssertionError):
    """A check failed; the message says which notebook and what was seen."""


def log(msg: str) -> None:
    print(f"[browser-test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- setup --------------------------------------------------------------------------------


def install() -> None:
    if importlib.util.find_spec("playwright") is None:
        log("installing playwright (pip) into this environment")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "playwright"], check=True
        )
    if not Path(CHROMIUM).exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise Failure(
                f"{CHROMIUM} is missing: install Debian's chromium "
                "(sudo apt-get install -y chromium) or set LLMLAB_CHROMIUM"
            )
        log("installing chromium (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scratch_copy(dest: Path) -> None:
    """The phase folders of the notebooks, so autosave never writes into the working tree."""
    for folder in sorted({Path(nb).parts[0] for nb in NOTEBOOKS}):
        shutil.copytree(
            ROOT / folder, dest / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
        )


def start_lab(root: Path, port: int, token: str, logfile: Path) -> subprocess.Popen:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={root / '.workspaces'}",
        "--ServerApp.port_retries=0",
        "--LabApp.expose_app_in_browser=True",
    ]  # window.jupyterapp: run its commands
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    out = open(logfile, "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Failure(f"JupyterLab exited with {proc.returncode}; log: {logfile}")
        try:
            url = f"http://127.0.0.1:{port}/api/status?token={token}"
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(1)
    raise Failure(f"JupyterLab did not answer on port {port} within 180 s; log: {logfile}")


def stop_lab(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def api(port: int, token: str, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?token={token}", timeout=30) as r:
        return json.loads(r.read())


# --- the browser --------------------------------------------------------------------------

TERMINAL_PROBE = """async ([name, token]) => await new Promise((resolve) => {
  const ws = new WebSocket(`ws://${location.host}/terminals/websocket/${name}?token=${token}`);
  let out = "";
  const done = () => { try { ws.close(); } catch (e) {} resolve(out); };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m[0] === "stdout") out += m[1];
    if (out.includes("LLMLAB-2END")) done();
  };
  ws.onopen = () => setTimeout(() => ws.send(JSON.stringify(["stdin",
    "echo PY=$(command -v python) CLI=$(command -v llmlab) LLMLAB-$((1+1))END\\r"])), 1500);
  setTimeout(done, 60000);
})"""


def check_terminal(page, port: int, token: str, venv_bin: str) -> str:
    """A JupyterLab terminal has the project's python and llmlab on PATH."""
    name = page.evaluate(
        """async (t) => (await (await fetch(`/api/terminals?token=${t}`,
             {method: "POST"})).json()).name""",
        token,
    )
    out = page.evaluate(TERMINAL_PROBE, [name, token])
    found = re.search(r"PY=(\S*) CLI=(\S*) LLMLAB-2END", out)
    if not found:
        raise Failure(f"terminal: no answer to the PATH probe; it printed: {out[-500:]!r}")
    py, cli = found.groups()
    if not (py.startswith(venv_bin) and cli.startswith(venv_bin)):
        raise Failure(f"terminal: python={py!r} llmlab={cli!r}, expected both in {venv_bin}")
    return f"python={py}, llmlab={cli}"


CURRENT = "window.jupyterapp && window.jupyterapp.shell.currentWidget"


def run_all(page, nb: str, port: int, token: str) -> dict:
    """Open ``nb``, run all cells through JupyterLab's own command, save; return the saved
    notebook as the server has it."""
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{nb}?token={token}")
    page.wait_for_function(
        f"() => {CURRENT} && {CURRENT}.context && {CURRENT}.context.path === {json.dumps(nb)}"
        f" && {CURRENT}.sessionContext.session?.kernel?.status === 'idle'",
        timeout=180_000,
    )
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
    deadline = time.time() + RUN_TIMEOUT_S
    quiet = 0
    while time.time() < deadline:  # queued/running cells show [*]; over when none does, twice
        page.wait_for_timeout(2000)
        texts = prompts.all_inner_texts()
        started = any(re.search(r"\[\d+\]", s) for s in texts)
        running = any("*" in s for s in texts)
        idle = page.evaluate(f"() => {CURRENT}.sessionContext.session?.kernel?.status") == "idle"
        quiet = quiet + 1 if (started and idle and not running) else 0
        if quiet >= 2:
            break
    else:
        raise Failure(f"{nb}: cells still running (or never started) after {RUN_TIMEOUT_S} s")
    page.evaluate("async () => await window.jupyterapp.commands.execute('docmanager:save')")
    return api(port, token, f"/api/contents/{nb}")["content"]


def close_all(page, token: str) -> None:
    """Close every tab and shut down every kernel."""
    page.evaluate("async () => await window.jupyterapp.commands.execute('application:close-all')")
    page.evaluate(
        """async (t) => { for (const s of await (await fetch(
        `/api/sessions?token=${t}`)).json()) await fetch(
        `/api/sessions/${s.id}?token=${t}`, {method: "DELETE"}); }""",
        token,
    )


def check_reopened(page, nb: str, port: int, token: str) -> str:
    """Reopen the saved notebook with a fresh kernel, as a learner does the next day: where a
    widget was, the saved file says to run the cell again (llmlab.views.saved_widgets), and no
    "Error displaying widget" shows."""
    saved = api(port, token, f"/api/contents/{nb}")["content"]
    outputs = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    live = [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    hints = [
        o for o in outputs if "run this cell again" in str(o.get("data", {}).get("text/plain"))
    ]
    if live or not hints:
        raise Failure(f"{nb}: saved with {len(live)} widget outputs and {len(hints)} hints")
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{nb}?token={token}")
    page.wait_for_function(
        f"() => {CURRENT} && {CURRENT}.context && {CURRENT}.context.isReady"
        f" && {CURRENT}.context.path === {json.dumps(nb)}"
        f" && {CURRENT}.sessionContext.session?.kernel?.status === 'idle'",
        timeout=180_000,
    )  # a fresh kernel, started and idle: closing it sooner cancels the lab's own requests
    page.wait_for_timeout(2000)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.get_by_text("run this cell again").first.wait_for(timeout=60_000)
    broken = panel.get_by_text("Error displaying widget").count()
    if broken:
        raise Failure(f"{nb}: reopened, {broken} widget(s) show 'Error displaying widget'")
    return f"reopened: {len(hints)} widget outputs say to run the cell again, no widget errors"


def check_cells(nb: str, model: dict) -> int:
    code = [c for c in model["cells"] if c["cell_type"] == "code"]
    not_run = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    errors = [
        (i, o.get("ename"), o.get("evalue"))
        for i, c in enumerate(code)
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    if errors:
        raise Failure(f"{nb}: code cell(s) raised: {errors[:3]}")
    if not_run:
        raise Failure(f"{nb}: code cells {not_run[:10]} did not run")
    return len(code)


def move_a_control(page, nb: str) -> str:
    """Nudge the first widget slider (else dropdown, else button: after typing a question into
    the text box beside it, if there is one) and wait for its view to change what it shows."""
    candidates = [
        (".jp-OutputArea .jupyter-widgets .noUi-handle", "slider"),
        (".jp-OutputArea .jupyter-widgets select", "dropdown"),
        (".jp-OutputArea .jupyter-widgets button", "button"),
    ]
    for selector, kind in candidates:
        control = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").locator(selector).first
        if control.count() == 0:
            continue
        area = control.locator("xpath=ancestor::div[contains(@class,'jp-OutputArea ')][1]")
        if area.count() == 0:
            area = control.locator("xpath=ancestor::div[contains(@class,'jp-Cell ')][1]")
        control.scroll_into_view_if_needed()
        before = area.inner_html()
        if kind == "slider":
            control.focus()
            page.keyboard.press("ArrowRight")
        elif kind == "dropdown":
            options = control.locator("option")
            control.select_option(index=1 if options.count() > 1 else 0)
        else:
            box = control.locator("xpath=ancestor::div[contains(@class,'widget-box')][1]")
            text = box.locator("input[type=text]").first if box.count() else box
            if box.count() and text.count():
                text.fill(QUESTION)
            control.click()
        deadline = time.time() + WIDGET_TIMEOUT_S
        while time.time() < deadline:
            page.wait_for_timeout(1000)
            if area.inner_html() != before:
                return kind
        raise Failure(f"{nb}: moving the first {kind} changed nothing in {WIDGET_TIMEOUT_S} s")
    raise Failure(f"{nb}: no widget control (slider, dropdown or button) was rendered")


def drive(port: int, token: str, shots: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    foreign: list[str] = []
    report = []
    lab = f"127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})

        def route(r):
            url = r.request.url
            if url.startswith(("data:", "blob:", "about:")) or re.match(
                rf"^(https?|wss?)://{re.escape(lab)}/", url
            ):
                return r.continue_()
            foreign.append(url)
            return r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and console_errors.append(f"{m.text} @ {m.location.get('url', '')}")
            ),
        )
        page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
        page.on("websocket", lambda ws: None if lab in ws.url else foreign.append(ws.url))
        page.set_default_timeout(60_000)

        page.goto(f"http://{lab}/lab?token={token}")
        page.locator(".jp-LabShell").wait_for(timeout=180_000)
        venv_bin = str(Path(sys.executable).parent)
        report.append("terminal: " + check_terminal(page, port, token, venv_bin))

        for nb in NOTEBOOKS:
            t0 = time.perf_counter()
            log(f"running {nb}")
            stem = Path(nb).stem
            try:
                model = run_all(page, nb, port, token)
                n = check_cells(nb, model)
            finally:
                page.screenshot(path=str(shots / f"{stem}-ran.png"), full_page=True)
            panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            broken = panel.get_by_text("Error displaying widget").count()
            if broken:
                raise Failure(f"{nb}: {broken} widget(s) show 'Error displaying widget'")
            widgets = panel.locator(".jp-OutputArea .jupyter-widgets").count()
            if widgets == 0:
                raise Failure(f"{nb}: no widget rendered")
            kind = move_a_control(page, nb)
            page.screenshot(path=str(shots / f"{stem}-moved-{kind}.png"), full_page=True)
            report.append(
                f"{nb}: {n} code cells ran, {widgets} widget views, moved a {kind}, "
                f"{time.perf_counter() - t0:.0f} s"
            )
            close_all(page, token)  # its widgets go with its tab and its kernel
            report.append(f"{nb}: " + check_reopened(page, nb, port, token))
            page.screenshot(path=str(shots / f"{stem}-reopened.png"), full_page=True)
            close_all(page, token)
        browser.close()
    if foreign:
        raise Failure(f"requests left the lab: {sorted(set(foreign))[:5]}")
    if console_errors:
        raise Failure(f"browser console errors: {console_errors[:5]}")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install", action="store_true", help="install playwright and chromium first")
    ap.add_argument(
        "--shots",
        type=Path,
        default=ROOT / ".llmlab-reports" / "browser",
        help="folder for screenshots and the lab's log",
    )
    ap.add_argument(
        "--notebook",
        action="append",
        default=[],
        metavar="PATH",
        help="drive this notebook (relative to the repo) instead of the list",
    )
    args = ap.parse_args(argv)
    if args.notebook:
        NOTEBOOKS[:] = args.notebook
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the lab on the way out
    t0 = time.perf_counter()
    shots = args.shots.resolve()
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    log(f"screenshots and the lab's log: {shots}")
    proc = None
    try:
        if args.install:
            install()
        with tempfile.TemporaryDirectory(prefix="llmlab-lab-") as tmp:
            root = Path(tmp)
            scratch_copy(root)
            settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
            settings.mkdir(parents=True)  # every cell in the DOM, so every output is checked
            (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
            port, token = free_port(), secrets.token_hex(16)
            os.environ["JUPYTERLAB_SETTINGS_DIR"] = str(root / ".settings")
            proc = start_lab(root, port, token, shots / "jupyterlab.log")
            log(f"JupyterLab on 127.0.0.1:{port}")
            report = drive(port, token, shots)
            for line in report:
                log("ok  " + line)
    except Failure as exc:
        log(f"FAILED: {exc}")
        log(f"took {time.perf_counter() - t0:.0f} s; see {shots}")
        print("browser-test: 0 passed, 1 failed")
        return 1
    finally:
        if proc is not None:
            stop_lab(proc)
    log(f"passed in {time.perf_counter() - t0:.0f} s; screenshots in {shots}")
    print(f"browser-test: {len(report)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
