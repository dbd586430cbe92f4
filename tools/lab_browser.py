"""JupyterLab on localhost, in Debian's Chromium driven by Playwright.

Shared by the browser tests (``tests/test_browser.py``: notebook 6's sampler, end to end; the kit's
``test_book.py``, ``test_slides.py``, ``test_demo.py``) and ``tools/screenshot_sampler.py`` (the
sampler's screenshot for saved copies of notebook 6).

* :func:`require` skips a browser test when a piece is missing (:func:`missing_browser`,
  :func:`missing_requirement`), or fails it under ``CVAE_BROWSER_REQUIRED=1`` (CI);
  :func:`chromium_session` gives a launched Chromium, :func:`serve_folder` a local http server,
  :func:`changed_pixels` compares two PNGs of a widget.

* :func:`chromium_path` finds the system's Chromium (``CVAE_CHROMIUM=/path`` picks another);
  :func:`launch_chromium` starts it headless. Never ``playwright install``: no browser is
  downloaded, and :func:`local_only` aborts every request that leaves localhost (no CDN).
* :func:`start_lab` starts JupyterLab (a free port, a random token, no browser, its own
  settings: no autosave, no news, no windowing) over a folder; :func:`stop_lab` stops it and
  its kernels.
* :func:`wait`, :func:`kernel_idle`, :func:`run_all_cells`, :func:`run_finished` and
  :func:`widget_image` wait for the page; a failure raises :class:`LabError` with the server's
  log tail, which the test turns into a pytest failure.

Needs ``pip install -e ".[browser]"`` (Playwright), ``pip install -e ".[lab]"`` (JupyterLab)
and ``apt-get install chromium``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

POLL_S = 0.25

INSTALL_PLAYWRIGHT = (
    'pip install -e ".[browser]"  (or: pip install playwright; do not run '
    "`playwright install`: the system's Chromium is used)"
)
INSTALL_CHROMIUM = (
    "apt-get install chromium  (Debian's package, as root or with sudo; or set CVAE_CHROMIUM=/path/to/chromium)"
)
INSTALL_JUPYTERLAB = 'pip install -e ".[lab]"'

# The sampler widget of notebook 6 (cu.sampler_widget): the VBox whose first child is the
# digit's ToggleButtons; the samples are the PNG inside its Output widget.
WIDGET = ".widget-vbox:has(> .widget-toggle-buttons)"
IMAGE = f"{WIDGET} .widget-output img"

# Prompts of the code cells: "[*]:" while queued or running, "[12]:" once run (an error
# still numbers its cell, and Run All stops there, leaving the rest empty).
PROMPTS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt'),
                           p => p.textContent.trim())"""
ERRORS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output'),
                           o => o.textContent).filter(t => t.includes('Traceback'))"""


class LabError(RuntimeError):
    """JupyterLab or the page did not do what was expected (the message says what, with the server's log)."""


# ------------------------------------------------------------------------------------------
# Chromium
# ------------------------------------------------------------------------------------------


def chromium_path() -> str | None:
    """The Chromium binary: ``CVAE_CHROMIUM`` if set (and executable), else ``chromium`` on PATH."""
    override = os.environ.get("CVAE_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_missing_reason() -> str:
    """Why :func:`chromium_path` found nothing, in words."""
    if os.environ.get("CVAE_CHROMIUM"):
        return f"CVAE_CHROMIUM={os.environ['CVAE_CHROMIUM']} is not an executable"
    return "no `chromium` or `chromium-browser` on PATH"


def missing_browser() -> tuple[str, str] | None:
    """(what is missing, how to install it) for Playwright or Chromium; None when both are there."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed", INSTALL_PLAYWRIGHT
    if chromium_path() is None:
        return f"Chromium is missing ({chromium_missing_reason()})", INSTALL_CHROMIUM
    return None


def missing_requirement() -> tuple[str, str] | None:
    """(what is missing, how to install it) for Playwright, Chromium or JupyterLab; None when all are there."""
    missing = missing_browser()
    if missing:
        return missing
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "JupyterLab is not installed", INSTALL_JUPYTERLAB
    return None


def browser_required() -> bool:
    """True when ``CVAE_BROWSER_REQUIRED`` is set (as CI sets it): a missing piece fails a browser test."""
    return os.environ.get("CVAE_BROWSER_REQUIRED", "").strip().lower() in {"1", "true", "yes", "on"}


def require(missing: tuple[str, str] | str | None) -> None:
    """In a browser test: skip when something is ``missing`` (what, and how to install it), or fail under
    ``CVAE_BROWSER_REQUIRED``; nothing when ``missing`` is None."""
    if not missing:
        return
    import pytest

    message = missing if isinstance(missing, str) else f"{missing[0]}; install it with: {missing[1]}"
    if browser_required():
        pytest.fail(f"CVAE_BROWSER_REQUIRED is set and {message}", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def chromium_session():
    """Playwright with the system's Chromium launched headless (a Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, chromium_path())
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def serve_folder(folder: Path | str):
    """``folder`` over http on 127.0.0.1 (a free port), from a thread; yields the base URL (no trailing /)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no line per request on the test's output
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Screenshots:
    """A browser test's screenshots: ``shots("name.png", element=None)`` saves the page (or one element) into
    ``folder``; the files of an earlier run named ``prefix*.png`` are removed first; ``paths`` lists this run's."""

    def __init__(self, page, folder: Path, prefix: str):
        self.page, self.folder, self.paths = page, Path(folder), []
        for stale in self.folder.glob(f"{prefix}*.png"):
            stale.unlink()

    def __call__(self, name: str, target=None) -> Path:
        path = self.folder / name
        (target or self.page).screenshot(path=str(path))
        self.paths.append(path)
        return path

    def names(self) -> str:
        return ", ".join(p.name for p in self.paths)


def png_image(src: str):
    """The greyscale PIL image of a ``data:image/png;base64,...`` URL (an <img>'s src)."""
    from PIL import Image

    if not src.startswith("data:image/png;base64,"):
        raise ValueError(f"not a PNG data URL: {src[:60]!r}")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L")


def changed_pixels(a: str, b: str) -> int:
    """How many pixels differ visibly (by more than 1/8 of the grey range) between two PNG data URLs."""
    from PIL import ImageChops

    first, second = png_image(a), png_image(b)
    if first.size != second.size:
        raise ValueError(f"the two images differ in size: {first.size} and {second.size}")
    return sum(ImageChops.difference(first, second).point(lambda v: 255 if v > 32 else 0).histogram()[255:])


def launch_chromium(playwright, executable: str):
    """Chromium, headless, from ``executable`` (a Playwright Browser)."""
    # --no-sandbox: Chromium's sandbox refuses to run as root and needs user namespaces,
    # which containers often lack; the page is our own local server.
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    )


def local_only(context) -> list[str]:
    """Abort every request of ``context`` that is not for localhost; return the list of the aborted URLs.

    JupyterLab and the widgets' JavaScript are served by the local server: nothing comes
    from a CDN, and a page that tried would show it here.
    """
    blocked: list[str] = []

    def route(r):
        url = urllib.parse.urlsplit(r.request.url)
        if url.scheme in ("data", "blob") or url.hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return blocked


# ------------------------------------------------------------------------------------------
# JupyterLab on localhost
# ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


class Lab:
    def __init__(self, port: int, token: str, process: subprocess.Popen, log: Path):
        self.port, self.token, self.process, self.log = port, token, process, log
        self.base = f"http://127.0.0.1:{port}"

    def url(self, notebook: str) -> str:
        """The page of ``notebook`` (a path under the server's root folder), token included."""
        return f"{self.base}/lab/tree/{notebook}?token={self.token}"

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


def start_lab(home: Path, root_dir: Path, log: Path, *, env: dict | None = None, timeout: float = 120) -> Lab:
    """JupyterLab serving ``root_dir``, its settings and runtime files under ``home``, its output in ``log``.

    Returns once the server answers (``timeout`` seconds at most; :class:`LabError` otherwise,
    the server stopped). ``env`` adds to the server's environment, so to its kernels'.
    """
    settings = home / "user-settings" / "@jupyterlab"
    # No autosave (the folder is thrown away anyway), no news or update checks (their
    # notification would sit over the page), and every cell in the DOM (no windowing).
    write_json(settings / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    write_json(
        settings / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})

    port, token = free_port(), secrets.token_hex(16)
    server_env = {**os.environ, **(env or {})}
    server_env["JUPYTER_CONFIG_DIR"] = str(home / "config")  # ignore the user's own Jupyter config
    server_env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
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
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command, env=server_env, cwd=root_dir, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    lab = Lab(port, token, process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise LabError(f"JupyterLab exited with code {process.returncode} before answering:\n{lab.log_tail()}")
            try:
                lab.api("/api/status")
                return lab
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise LabError(
                        f"JupyterLab did not answer on port {port} within {timeout} s:\n{lab.log_tail()}"
                    ) from None
                time.sleep(POLL_S)
    except BaseException:
        stop_lab(lab)
        raise


def stop_lab(lab: Lab) -> None:
    """Shut the kernels down through the API, then the server (SIGTERM, then SIGKILL)."""
    if lab.process.poll() is None:
        try:
            for kernel in lab.api("/api/kernels"):
                lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except Exception:  # noqa: BLE001 - the server stops its kernels on SIGTERM as well
            pass
        lab.process.terminate()
        try:
            lab.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.process.kill()
            lab.process.wait(timeout=30)


# ------------------------------------------------------------------------------------------
# Waiting for the page
# ------------------------------------------------------------------------------------------


def wait(condition, timeout: float, what: str, lab: Lab, page=None):
    """Poll ``condition()`` until it returns something truthy, and return that; LabError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if lab.process.poll() is not None:
            raise LabError(f"JupyterLab exited while waiting for {what}:\n{lab.log_tail()}")
        if time.monotonic() > deadline:
            status = page.locator(".jp-StatusBar-Widget").first.inner_text() if page is not None else ""
            raise LabError(
                f"timed out after {timeout} s waiting for {what} (status bar: {status!r}); "
                f"server log:\n{lab.log_tail()}"
            )
        time.sleep(POLL_S)


def kernel_idle(lab: Lab, page) -> bool:
    """One kernel, idle according to the server, and the page connected to it."""
    # A kernel chooser appears only when the notebook's kernel is unknown: take its default.
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
    states = lab.kernel_states()
    status = page.locator(".jp-StatusBar-Widget").first.inner_text()
    return states == ["idle"] and "| Idle" in status


def open_notebook(lab: Lab, page, notebook: str, code_cells: int, *, load_s: float, kernel_s: float) -> None:
    """Open ``notebook``, wait for the prompts of its ``code_cells`` code cells and for its kernel, idle."""
    page.goto(lab.url(notebook), timeout=load_s * 1000)
    page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=load_s * 1000)
    wait(
        lambda: len(page.evaluate(PROMPTS_JS)) == code_cells,
        load_s,
        f"the prompts of all {code_cells} code cells",
        lab,
        page,
    )
    wait(lambda: kernel_idle(lab, page), kernel_s, "the kernel to start", lab, page)


def run_all_cells(lab: Lab, page, timeout: float) -> dict:
    """Run > Run All Cells; wait until every cell has run and return {"cells": n, "done": n}.

    LabError if a cell did not run or printed a traceback.
    """
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:has(> .lm-Menu-itemLabel:text-is('Run All Cells'))").click()
    run = wait(lambda: run_finished(lab, page), timeout, "Run All Cells to finish", lab, page)
    errors = page.evaluate(ERRORS_JS)
    if run["done"] != run["cells"] or errors:
        raise LabError(f"{run['cells'] - run['done']} of {run['cells']} cells did not run; errors: {errors}")
    return run


def run_finished(lab: Lab, page) -> dict | None:
    """{"cells": n, "done": k} once no cell is queued or running and the kernel is idle; else None."""
    prompts = page.evaluate(PROMPTS_JS)
    pending = sum("*" in p for p in prompts)
    done = sum(bool(re.search(r"\[\d+\]", p)) for p in prompts)
    if pending or not done or lab.kernel_states() != ["idle"]:
        return None
    return {"cells": len(prompts), "done": done}


def widget_image(page) -> str | None:
    """The src (a PNG data URL) of the sampler's samples once the image has loaded; None before."""
    return page.evaluate(
        f"() => {{ const i = document.querySelector({IMAGE!r}); "
        f"return i && i.complete && i.naturalWidth > 0 ? i.src : null; }}"
    )
