"""End to end: the sampler demo (``python -m tools.demo``, ``make demo``) in a real browser.

The test starts the demo's Voilà server through :func:`tools.demo.start_demo`, as ``tools.demo``
does (a free port on 127.0.0.1, a random token, quick mode: ``CVAE_QUICK=1`` in the server's
environment, so in its kernel's), and opens the page in Debian's Chromium driven by Playwright,
with every request that leaves 127.0.0.1 aborted and recorded: none may happen (the page must
work offline). It waits for the widget, checks that the page shows no code, then clicks another
digit, moves a latent slider and the temperature with the keyboard and presses *resample*, and
checks that each change redrew the samples (the PNG in the widget's Output, pixel by pixel).
The server is stopped at the end, also when the test fails, and no kernel of the page may
outlive it (checked in ``/proc`` on Linux).

Three quick tests check the command line's errors (a busy port, Voilà missing, a bad port
number) without a browser, and one runs ``python -m tools.demo`` and stops it with Ctrl-C
(SIGINT): it exits 0 and its server no longer answers.

Screenshots (the page, the widget before and after each change) and Voilà's log go to
``artifacts/demo/`` (``CVAE_ARTIFACTS_DIR`` moves it); the test prints the path and its timings.

Needs what tests/test_browser.py needs (Playwright, Debian's Chromium; never ``playwright
install``) and Voilà (``make env``). Without them the test skips and says what to install; with
``CVAE_BROWSER_REQUIRED=1`` (as in CI) a missing piece is a failure instead.

Run it alone: ``CVAE_QUICK=1 .venv/bin/python -m pytest tests/test_demo.py -v -o addopts=""``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tools import demo as demo_tool
from tools import lab_browser as lb

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CVAE_ARTIFACTS_DIR", ROOT / "artifacts")).resolve() / "demo"

# Generous limits for a shared 2-core machine; each wait polls and returns as soon as its
# condition holds, so they only matter when something is wrong.
SERVER_START_S = 60  # Voilà answering on its port (about 2 s here)
WIDGET_S = 120  # the page opened until the widget's first image (about 6 s here)
REDRAW_S = 60  # the widget's image redrawn after a change

WIDGET = lb.WIDGET  # the sampler: the VBox whose first child is the digit's ToggleButtons
TITLE = "Conditional VAE: draw the digit you ask for"  # kit/demo/sampler.ipynb's heading


# ------------------------------------------------------------------------------------------
# Requirements: skip locally, fail in CI (as tests/test_browser.py)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (skip or fail when a piece is missing)."""
    lb.require(lb.missing_requirement())
    lb.require(demo_tool.voila_missing())
    with lb.chromium_session() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def demo(browser, tmp_path_factory):
    """The demo's Voilà server, started by tools.demo's own function; always stopped (kernels too)."""
    env = {
        "CVAE_QUICK": os.environ.get("CVAE_QUICK", "1"),  # read by the kernel (cvae_utils.config)
        "JUPYTER_CONFIG_DIR": str(tmp_path_factory.mktemp("jupyter-config")),  # not the user's own config
    }
    started = time.monotonic()
    try:
        server = demo_tool.start_demo(log=ARTIFACTS / "voila.log", env=env, timeout=SERVER_START_S)
    except demo_tool.DemoError as error:
        pytest.fail(str(error), pytrace=False)
    server.start_s, server.kernel_ids = time.monotonic() - started, []
    try:
        yield server
    finally:
        demo_tool.stop_demo(server)
    left = _wait_for_no_process_with(server.kernel_ids)
    assert not left, f"kernels of the page still run after the server stopped: {left}"


def _processes_with(texts: list[str]) -> list[str]:
    """Command lines of the running processes that contain one of ``texts`` (Linux's /proc; [] elsewhere)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        if any(t in command for t in texts):
            found.append(command.strip())
    return found


def _wait_for_no_process_with(texts: list[str], timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_with(texts)) and time.monotonic() < deadline:
        time.sleep(lb.POLL_S)
    return left


# ------------------------------------------------------------------------------------------
# Waiting for the page
# ------------------------------------------------------------------------------------------


def _wait(condition, timeout: float, what: str, demo: demo_tool.Demo, page):
    """Poll ``condition()`` until it returns something truthy; fail with the page's text and Voilà's log."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if demo.process.poll() is not None or time.monotonic() > deadline:
            why = "Voilà exited" if demo.process.poll() is not None else f"timed out after {timeout} s"
            text = page.evaluate("() => document.body ? document.body.innerText.slice(0, 600) : ''")
            pytest.fail(
                f"{why} waiting for {what}; the page reads: {text!r}; Voilà's log:\n{demo.log_tail()}", pytrace=False
            )
        time.sleep(lb.POLL_S)


def _kernel_state(demo: demo_tool.Demo, kernel_id: str) -> str:
    """The execution state of the page's kernel, from Voilà's kernel API ("idle", "busy", ...)."""
    request = urllib.request.Request(
        f"{demo.base}/api/kernels/{kernel_id}", headers={"Authorization": f"token {demo.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["execution_state"]


def _wait_for_redraw(demo, page, kernel_id: str, old_src: str, what: str) -> str:
    """The widget's image differs from ``old_src`` and has settled (kernel idle, same image twice)."""
    last = {"src": None}

    def settled():
        src = lb.widget_image(page)
        if not src or src == old_src or _kernel_state(demo, kernel_id) != "idle":
            last["src"] = None
            return None
        stable, last["src"] = src == last["src"], src
        return src if stable else None

    return _wait(settled, REDRAW_S, f"the sampler to redraw after {what}", demo, page)


def _slider(widget, page, label: str):
    """The FloatSlider whose label starts with ``label``, and its readout."""
    slider = widget.locator(".widget-hslider").filter(has=page.locator(".widget-label", has_text=label)).first
    return slider, slider.locator(".widget-readout")


# ------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_demo_page_shows_the_sampler_without_code_and_offline(browser, demo, capsys):
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked = lb.local_only(context)  # aborts and records every request that leaves the machine
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.set_default_timeout(30_000)
    changed, timings = {}, {"server up": demo.start_s}
    shot = lb.Screenshots(page, ARTIFACTS, "demo-")
    try:
        # 1. Open the page; Voilà runs the notebook in a new kernel, then shows the widget.
        opened = time.monotonic()
        page.goto(demo.url, timeout=WIDGET_S * 1000)
        widget = page.locator(WIDGET)
        before = _wait(lambda: lb.widget_image(page), WIDGET_S, "the sampler's first image", demo, page)
        timings["page to widget"] = time.monotonic() - opened
        kernel_id = page.evaluate(
            "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
        )
        demo.kernel_ids.append(kernel_id)
        _wait(lambda: _kernel_state(demo, kernel_id) == "idle", REDRAW_S, "the kernel to be idle", demo, page)
        shot("demo-page-before.png")
        shot("demo-widget-0-before.png", widget)

        # 2. The page: the notebook's title and the widget, no code, no error.
        assert widget.count() == 1, "the sampler widget is not on the page"
        assert page.title() == "CVAE sampler"
        assert page.locator("h1").first.inner_text().strip() == TITLE
        html, text = page.content(), page.evaluate("() => document.body.innerText")
        code_cells = page.locator(".jp-CodeCell")
        assert code_cells.count() == 1, f"{code_cells.count()} code cells on the page, expected the widget's one"
        assert "jp-mod-noInput" in code_cells.first.get_attribute("class"), "the code cell shows its input"
        assert page.locator(".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .cm-editor").count() == 0, "code is shown"
        assert "import cvae_utils" not in html and "sampler_widget" not in html, "the notebook's code is in the page"
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr']")
        assert errors.count() == 0 and "error when executing" not in text, f"the page shows an error: {text[:600]!r}"
        assert "mod-active" in widget.locator(".widget-toggle-button[data-value='0']").get_attribute("class")

        # 3. Another digit: click the toggle button 3.
        button = widget.locator(".widget-toggle-button[data-value='3']")
        button.click()
        after_digit = _wait_for_redraw(demo, page, kernel_id, before, "clicking digit 3")
        assert "mod-active" in button.get_attribute("class")
        changed["digit 0 -> 3"] = lb.changed_pixels(before, after_digit)
        shot("demo-widget-1-digit-3.png", widget)

        # 4. The first latent slider (the most used dimension): End moves it to its maximum,
        #    0.00 -> 3.00, in one key press (one redraw: continuous_update=False).
        slider, readout = _slider(widget, page, "ε[")
        label = slider.locator(".widget-label").inner_text()
        assert readout.inner_text().strip() == "0.00"
        slider.locator(".noUi-handle").focus()
        page.keyboard.press("End")
        _wait(lambda: readout.inner_text().strip() == "3.00", REDRAW_S, f"{label} to read 3.00", demo, page)
        after_slider = _wait_for_redraw(demo, page, kernel_id, after_digit, f"moving {label} to 3.00")
        changed[f"{label} 0 -> 3"] = lb.changed_pixels(after_digit, after_slider)
        shot("demo-widget-2-slider.png", widget)

        # 5. Resample: the next seed, new noise for the other dimensions.
        seed = widget.locator(".widget-text:has(.widget-label:text-is('seed')) input")
        assert seed.input_value() == "0"
        widget.locator("button.widget-button", has_text="resample").click()
        _wait(lambda: seed.input_value() == "1", REDRAW_S, "the seed to read 1", demo, page)
        after_seed = _wait_for_redraw(demo, page, kernel_id, after_slider, "resample (seed 0 -> 1)")
        changed["seed 0 -> 1"] = lb.changed_pixels(after_slider, after_seed)
        shot("demo-widget-3-resample.png", widget)

        # 6. Temperature: Home moves it to 0 (every sample is the prior mean, plus the sliders).
        temperature, t_readout = _slider(widget, page, "temperature")
        assert t_readout.inner_text().strip() == "1.00"
        temperature.locator(".noUi-handle").focus()
        page.keyboard.press("Home")
        _wait(lambda: t_readout.inner_text().strip() == "0.00", REDRAW_S, "the temperature to read 0.00", demo, page)
        after_temperature = _wait_for_redraw(demo, page, kernel_id, after_seed, "temperature 1 -> 0")
        changed["T 1 -> 0"] = lb.changed_pixels(after_seed, after_temperature)
        shot("demo-widget-4-temperature.png", widget)
        shot("demo-page-after.png")

        # 7. Each change changed the drawing visibly, and nothing was asked of the network.
        area = lb.png_image(before).size[0] * lb.png_image(before).size[1]
        for what, n in changed.items():
            assert n > 0.001 * area, f"{what} changed only {n} of {area} pixels"
        assert changed["digit 0 -> 3"] > 0.005 * area, f"digit 0 -> 3 changed only {changed['digit 0 -> 3']} pixels"
        assert not blocked, f"the page requested {len(blocked)} URLs outside 127.0.0.1: {blocked}"
    except BaseException:
        try:
            shot("demo-failure.png")
        except Exception:  # noqa: BLE001 - keep the original failure
            pass
        raise
    finally:
        context.close()
        timings["in the browser"] = time.monotonic() - started
        with capsys.disabled():
            print(
                "\n[demo test] " + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()) + f"; {len(requests)} "
                f"requests, {len(blocked)} outside 127.0.0.1; screenshots and Voilà's log in {ARTIFACTS}: "
                f"{shot.names()}"
            )
    with capsys.disabled():
        print(f"[demo test] pixels changed (of {area}): " + ", ".join(f"{k}: {v}" for k, v in changed.items()))


# ------------------------------------------------------------------------------------------
# The command line: its errors, and Ctrl-C
# ------------------------------------------------------------------------------------------


def test_a_busy_port_is_a_clear_error(capsys):
    with socket.socket() as busy:
        busy.bind((demo_tool.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert demo_tool.main(["--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in error and "--port" in error, error


def test_voila_missing_is_a_clear_error(monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "voila" else find_spec(name, *a))
    assert demo_tool.main([]) == 1
    error = capsys.readouterr().err
    assert "Voilà is not installed" in error and "make env" in error, error


@pytest.mark.parametrize("port", ["0", "70000", "eighty"])
def test_a_bad_port_number_is_refused(port, capsys):
    with pytest.raises(SystemExit) as exit_:
        demo_tool.parse_args(["--port", port])
    assert exit_.value.code == 2
    assert "--port" in capsys.readouterr().err


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def test_ctrl_c_stops_the_demo_and_its_server(tmp_path):
    lb.require(demo_tool.voila_missing())
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.demo", "--log", str(tmp_path / "voila.log")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    output = []
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not any("Press Ctrl-C" in line for line in output):
            assert process.poll() is None and time.monotonic() < deadline, "".join(output)
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        url = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=[0-9a-f]{32}", "".join(output))
        assert url, "".join(output)
        port = int(url.group(1))
        assert demo_tool.answers(port)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(output)
        assert not demo_tool.answers(port), f"Voilà still answers on port {port} after Ctrl-C"
    finally:
        if process.poll() is None:
            process.terminate()  # tools.demo stops Voilà on SIGTERM too
            process.wait(timeout=30)
