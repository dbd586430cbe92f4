"""End to end: notebook 6's interactive sampler, in JupyterLab, in a real browser.

The test starts JupyterLab on localhost (a random port and token) over a temporary copy of
``notebooks/06_conditional_sampling.ipynb`` (outputs cleared, so the repository's notebook is
never touched), opens it in Debian's Chromium driven by Playwright, runs all cells from the
Run menu in quick mode (``CVAE_QUICK=1`` in the server's environment, so in the kernel's),
then clicks another digit in the sampler widget and moves one of its latent sliders with the
keyboard, and checks that each change redrew the samples (the widget's PNG, pixel by pixel).

Screenshots (the whole page, the widget before and after each change) and the server's log
go to ``artifacts/browser/`` (``CVAE_ARTIFACTS_DIR`` moves it); the test prints the path.

Needs: ``pip install -e ".[browser]"`` (Playwright; never ``playwright install``: the test
uses the system's Chromium) and ``apt-get install chromium`` (``CVAE_CHROMIUM=/path`` picks
another binary). Without them the test skips and says what to install; with
``CVAE_BROWSER_REQUIRED=1`` (as in CI, ``.ci/run``) a missing piece is a failure instead.

Run it alone: ``CVAE_QUICK=1 .venv/bin/python -m pytest tests/test_browser.py -v``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_conditional_sampling.ipynb"
ARTIFACTS = Path(os.environ.get("CVAE_ARTIFACTS_DIR", ROOT / "artifacts")).resolve() / "browser"

# Generous limits for a shared 2-core machine; every wait below polls for a condition and
# returns as soon as it holds, so these only matter when something is wrong.
SERVER_START_S = 120  # JupyterLab answering on its port
PAGE_LOAD_S = 120  # the notebook's cells on the page
KERNEL_READY_S = 180  # the kernel started and idle
RUN_ALL_S = 600  # every cell executed (quick mode: about 30 s here)
REDRAW_S = 120  # the widget's image redrawn after a change
POLL_S = 0.25

INSTALL_PLAYWRIGHT = (
    'pip install -e ".[browser]"  (or: pip install playwright; do not run '
    "`playwright install`: the test uses the system Chromium)"
)
INSTALL_CHROMIUM = (
    "apt-get install chromium  (Debian's package, as root or with sudo; or set CVAE_CHROMIUM=/path/to/chromium)"
)

# The sampler widget of notebook 6 (cu.sampler_widget): the VBox whose first child is the
# digit's ToggleButtons; the samples are the PNG inside its Output widget.
WIDGET = ".widget-vbox:has(> .widget-toggle-buttons)"
IMAGE = f"{WIDGET} .widget-output img"


# ------------------------------------------------------------------------------------------
# Requirements: skip locally, fail in CI
# ------------------------------------------------------------------------------------------


def _required() -> bool:
    return os.environ.get("CVAE_BROWSER_REQUIRED", "").strip().lower() in {"1", "true", "yes", "on"}


def _missing(what: str, install: str) -> None:
    message = f"{what}; install it with: {install}"
    if _required():
        pytest.fail(f"CVAE_BROWSER_REQUIRED is set and {message}", pytrace=False)
    pytest.skip(message)


def _chromium() -> str | None:
    override = os.environ.get("CVAE_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (skip or fail when either is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed", INSTALL_PLAYWRIGHT)
    executable = _chromium()
    if executable is None:
        where = (
            f"CVAE_CHROMIUM={os.environ['CVAE_CHROMIUM']} is not an executable"
            if os.environ.get("CVAE_CHROMIUM")
            else "no `chromium` or `chromium-browser` on PATH"
        )
        _missing(f"Chromium is missing ({where})", INSTALL_CHROMIUM)
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _missing("JupyterLab is not installed", 'pip install -e ".[lab]"')
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root and needs user namespaces,
        # which containers often lack; the page is our own local server.
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


# ------------------------------------------------------------------------------------------
# JupyterLab on localhost, over a temporary copy of the notebook
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _copy_notebook_for_the_run(target_dir: Path) -> Path:
    """The notebook as committed, minus its outputs and with every input shown.

    Every prompt starts empty, so "every code cell numbered" means this run executed it;
    the exercise solutions' inputs start collapsed (no prompt on the page), so they are
    expanded in the copy. Nothing else changes.
    """
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            cell.get("metadata", {}).get("jupyter", {}).pop("source_hidden", None)
    target = target_dir / NOTEBOOK.name
    target.write_text(json.dumps(nb, indent=1))
    return target


class Lab:
    def __init__(self, port: int, token: str, process: subprocess.Popen, log: Path):
        self.port, self.token, self.process, self.log = port, token, process, log
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"{self.base}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_states(self) -> list[str]:
        return [k["execution_state"] for k in self.api("/api/kernels")]

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a temporary folder with notebook 6; stopped (kernels too) at the end."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root_dir = home / "notebooks"
    root_dir.mkdir()
    _copy_notebook_for_the_run(root_dir)
    settings = home / "user-settings" / "@jupyterlab"
    # No autosave (the copy is thrown away anyway), no news or update checks (their
    # notification would sit over the page), and every cell in the DOM (no windowing).
    _write_json(settings / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    _write_json(
        settings / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})

    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.setdefault("CVAE_QUICK", "1")  # read by the kernel (cvae_utils.config) for the quick run
    env["JUPYTER_CONFIG_DIR"] = str(home / "config")  # ignore the user's own Jupyter config
    env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "jupyter-server.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command, env=env, cwd=root_dir, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = Lab(port, token, process, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited with code {process.returncode} before answering:\n{server.log_tail()}",
                    pytrace=False,
                )
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer on port {port} within {SERVER_START_S} s:\n{server.log_tail()}",
                        pytrace=False,
                    )
                time.sleep(POLL_S)
        yield server
    finally:
        _stop(server)


def _stop(server: Lab) -> None:
    """Shut the kernels down through the API, then the server (SIGTERM, then SIGKILL)."""
    if server.process.poll() is None:
        try:
            for kernel in server.api("/api/kernels"):
                server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except Exception:  # noqa: BLE001 - the server stops its kernels on SIGTERM as well
            pass
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=30)


# ------------------------------------------------------------------------------------------
# Waiting for the page
# ------------------------------------------------------------------------------------------


def _wait(condition, timeout: float, what: str, lab: Lab, page=None):
    """Poll ``condition()`` until it returns something truthy; fail with context after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if lab.process.poll() is not None:
            pytest.fail(f"JupyterLab exited while waiting for {what}:\n{lab.log_tail()}", pytrace=False)
        if time.monotonic() > deadline:
            status = page.locator(".jp-StatusBar-Widget").first.inner_text() if page is not None else ""
            pytest.fail(
                f"timed out after {timeout} s waiting for {what} (status bar: {status!r}); "
                f"server log:\n{lab.log_tail()}",
                pytrace=False,
            )
        time.sleep(POLL_S)


def _kernel_idle(lab: Lab, page) -> bool:
    """One kernel, idle according to the server, and the page connected to it."""
    # A kernel chooser appears only when the notebook's kernel is unknown: take its default.
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
    states = lab.kernel_states()
    status = page.locator(".jp-StatusBar-Widget").first.inner_text()
    return states == ["idle"] and "| Idle" in status


# Prompts of the code cells: "[*]:" while queued or running, "[12]:" once run (an error
# still numbers its cell, and Run All stops there, leaving the rest empty).
PROMPTS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt'),
                           p => p.textContent.trim())"""
ERRORS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output'),
                           o => o.textContent).filter(t => t.includes('Traceback'))"""


def _run_finished(lab: Lab, page):
    prompts = page.evaluate(PROMPTS_JS)
    pending = sum("*" in p for p in prompts)
    done = sum(bool(re.search(r"\[\d+\]", p)) for p in prompts)
    if pending or not done or lab.kernel_states() != ["idle"]:
        return None
    return {"cells": len(prompts), "done": done}


def _image(page) -> str | None:
    return page.evaluate(
        f"() => {{ const i = document.querySelector({IMAGE!r}); "
        f"return i && i.complete && i.naturalWidth > 0 ? i.src : null; }}"
    )


def _wait_for_redraw(lab: Lab, page, old_src: str, what: str) -> str:
    """The widget's image differs from ``old_src`` and has settled (kernel idle, same twice)."""
    last = {"src": None}

    def settled():
        src = _image(page)
        if not src or src == old_src or lab.kernel_states() != ["idle"]:
            last["src"] = None
            return None
        stable, last["src"] = src == last["src"], src
        return src if stable else None

    return _wait(settled, REDRAW_S, f"the sampler to redraw after {what}", lab, page)


def _pixels(src: str):
    from PIL import Image

    assert src.startswith("data:image/png;base64,"), src[:60]
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L")


def _changed_pixels(a: str, b: str) -> int:
    """How many pixels differ visibly (by more than 1/8 of the grey range) between two PNGs."""
    from PIL import ImageChops

    first, second = _pixels(a), _pixels(b)
    assert first.size == second.size, (first.size, second.size)
    return sum(ImageChops.difference(first, second).point(lambda v: 255 if v > 32 else 0).histogram()[255:])


# ------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------


def test_sampler_widget_redraws_in_jupyterlab(browser, lab, capsys):
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    shots = []

    def shot(name, target=None):
        path = ARTIFACTS / name
        (target or page).screenshot(path=str(path))
        shots.append(path)

    for stale in ARTIFACTS.glob("06-*.png"):
        stale.unlink()
    try:
        # 1. Open the notebook and wait for its kernel.
        page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}", timeout=PAGE_LOAD_S * 1000)
        page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=PAGE_LOAD_S * 1000)
        code_cells = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
        _wait(
            lambda: len(page.evaluate(PROMPTS_JS)) == code_cells,
            PAGE_LOAD_S,
            f"the prompts of all {code_cells} code cells",
            lab,
            page,
        )
        _wait(lambda: _kernel_idle(lab, page), KERNEL_READY_S, "the kernel to start", lab, page)

        # 2. Run > Run All Cells, and wait until every cell has run.
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item:has(> .lm-Menu-itemLabel:text-is('Run All Cells'))").click()
        run = _wait(lambda: _run_finished(lab, page), RUN_ALL_S, "Run All Cells to finish", lab, page)
        errors = page.evaluate(ERRORS_JS)
        assert run["done"] == run["cells"] and not errors, (
            f"{run['cells'] - run['done']} of {run['cells']} cells did not run; errors: {errors}"
        )

        # 3. The widget, drawn for digit 0 with every slider at 0.
        widget = page.locator(WIDGET)
        assert widget.count() == 1, "the sampler widget is not on the page"
        widget.scroll_into_view_if_needed()
        before = _wait(lambda: _image(page), REDRAW_S, "the sampler's first image", lab, page)
        assert "mod-active" in widget.locator(".widget-toggle-button[data-value='0']").get_attribute("class")
        shot("06-page-before.png")
        shot("06-widget-0-before.png", widget)

        # 4. Another digit: click the toggle button 3.
        button = widget.locator(".widget-toggle-button[data-value='3']")
        button.click()
        after_digit = _wait_for_redraw(lab, page, before, "clicking digit 3")
        assert "mod-active" in button.get_attribute("class")
        shot("06-widget-1-digit-3.png", widget)

        # 5. A latent slider (the first one, the most used dimension): ten steps right with
        #    the keyboard, 0.00 -> 1.00 (each step redraws: continuous_update=False fires on
        #    every key press).
        slider = widget.locator(".widget-hslider").filter(has=page.locator(".widget-label", has_text="ε[")).first
        label = slider.locator(".widget-label").inner_text()
        readout = slider.locator(".widget-readout")
        assert readout.inner_text().strip() == "0.00"
        slider.locator(".noUi-handle").focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        _wait(lambda: readout.inner_text().strip() == "1.00", REDRAW_S, f"{label} to read 1.00", lab, page)
        after_slider = _wait_for_redraw(lab, page, after_digit, f"moving {label} to 1.00")
        shot("06-widget-2-slider.png", widget)
        shot("06-page-after.png")

        # 6. Each change changed the drawing, visibly.
        digit_changed = _changed_pixels(before, after_digit)
        slider_changed = _changed_pixels(after_digit, after_slider)
        area = _pixels(before).size[0] * _pixels(before).size[1]
        assert digit_changed > 0.005 * area, f"digit 0 -> 3 changed only {digit_changed} of {area} pixels"
        assert slider_changed > 0.001 * area, f"{label} 0 -> 1 changed only {slider_changed} of {area} pixels"
    except BaseException:
        try:
            shot("06-failure.png")
        except Exception:  # noqa: BLE001 - keep the original failure
            pass
        raise
    finally:
        context.close()
        with capsys.disabled():
            print(
                f"\n[browser test] {time.monotonic() - started:.1f} s in the browser; screenshots and the "
                f"server log in {ARTIFACTS}: {', '.join(p.name for p in shots)}"
            )
    with capsys.disabled():
        print(
            f"[browser test] {run['cells']} cells run; pixels changed: digit 0 -> 3: {digit_changed}, "
            f"{label} 0 -> 1: {slider_changed} (of {area})"
        )
