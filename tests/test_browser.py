"""End to end: notebook 6's interactive sampler, in JupyterLab, in a real browser.

The test starts JupyterLab on localhost (a random port and token) over a temporary copy of
``notebooks/06_conditional_sampling.ipynb`` (outputs cleared, so the repository's notebook is
never touched), opens it in Debian's Chromium driven by Playwright, runs all cells from the
Run menu in quick mode (``CVAE_QUICK=1`` in the server's environment, so in the kernel's),
then clicks another digit in the sampler widget and moves one of its latent sliders with the
keyboard, and checks that each change redrew the samples (the widget's PNG, pixel by pixel); last it
answers the first question of the notebook's quiz wrong, then right, and reads each feedback and the score.

Screenshots (the whole page, the widget before and after each change) and the server's log
go to ``artifacts/browser/`` (``CVAE_ARTIFACTS_DIR`` moves it); the test prints the path.

Needs: ``pip install -e ".[browser]"`` (Playwright; never ``playwright install``: the test
uses the system's Chromium) and ``apt-get install chromium`` (``CVAE_CHROMIUM=/path`` picks
another binary). Without them the test skips and says what to install; with
``CVAE_BROWSER_REQUIRED=1`` (as in CI, ``.ci/run``) a missing piece is a failure instead.

Run it alone: ``CVAE_QUICK=1 .venv/bin/python -m pytest tests/test_browser.py -v``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tools import lab_browser as lb

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

# JupyterLab, Chromium and the page are driven by tools/lab_browser.py (shared with
# tools/screenshot_sampler.py); its LabError becomes a test failure here.
WIDGET = lb.WIDGET


# ------------------------------------------------------------------------------------------
# Requirements: skip locally, fail in CI
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (skip or fail when a piece is missing)."""
    lb.require(lb.missing_requirement())
    with lb.chromium_session() as chromium:
        yield chromium


# ------------------------------------------------------------------------------------------
# JupyterLab on localhost, over a temporary copy of the notebook
# ------------------------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a temporary folder with notebook 6; stopped (kernels too) at the end."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root_dir = home / "notebooks"
    root_dir.mkdir()
    _copy_notebook_for_the_run(root_dir)
    # CVAE_QUICK is read by the kernel (cvae_utils.config) for the quick run
    env = {"CVAE_QUICK": os.environ.get("CVAE_QUICK", "1")}
    try:
        server = lb.start_lab(home, root_dir, ARTIFACTS / "jupyter-server.log", env=env, timeout=SERVER_START_S)
    except lb.LabError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        lb.stop_lab(server)


# ------------------------------------------------------------------------------------------
# Waiting for the page
# ------------------------------------------------------------------------------------------


def _wait(condition, timeout: float, what: str, lab: lb.Lab, page=None):
    """Poll ``condition()`` until it returns something truthy; fail with context after ``timeout``."""
    try:
        return lb.wait(condition, timeout, what, lab, page)
    except lb.LabError as error:
        pytest.fail(str(error), pytrace=False)


def _image(page) -> str | None:
    return lb.widget_image(page)


def _wait_for_redraw(lab: lb.Lab, page, old_src: str, what: str) -> str:
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


def _answer_quiz(lab: lb.Lab, page) -> list[str]:
    """Answer the first question of notebook 6's quiz widget wrong, then right; return the two feedbacks."""
    import cvae_utils as cu

    question = cu.quiz(6).questions[0]
    right = next(i for i, c in enumerate(question.choices) if c.correct)
    letters = "abcdefgh"
    check = page.get_by_role("button", name="Check").first
    check.scroll_into_view_if_needed()
    controls = check.locator("xpath=..")  # the HBox: the letters, then Check
    feedback = controls.locator("xpath=following-sibling::*[1]")  # the question's feedback area
    seen = []
    for index, mark in (((right + 1) % len(question.choices), "✗"), (right, "✓")):
        controls.get_by_role("button", name=letters[index], exact=True).click()
        check.click()
        text = _wait(
            lambda mark=mark: (t := feedback.inner_text().strip()).startswith(mark) and t,
            REDRAW_S,
            f"the quiz's feedback {mark} after answering ({letters[index]})",
            lab,
            page,
        )
        seen.append(text)
    score = page.locator(".widget-html", has_text="Score:").last.inner_text()
    assert "1 of 5 right" in score and "(1 checked)" in score, score  # one question, checked twice
    return seen


# ------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------


def test_sampler_widget_redraws_in_jupyterlab(browser, lab, capsys):
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    shot = lb.Screenshots(page, ARTIFACTS, "06-")
    try:
        # 1. Open the notebook and wait for its kernel.
        code_cells = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
        try:
            lb.open_notebook(lab, page, NOTEBOOK.name, code_cells, load_s=PAGE_LOAD_S, kernel_s=KERNEL_READY_S)
            # 2. Run > Run All Cells, and wait until every cell has run.
            run = lb.run_all_cells(lab, page, RUN_ALL_S)
        except lb.LabError as error:
            pytest.fail(str(error), pytrace=False)

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
        digit_changed = lb.changed_pixels(before, after_digit)
        slider_changed = lb.changed_pixels(after_digit, after_slider)
        area = lb.png_image(before).size[0] * lb.png_image(before).size[1]
        assert digit_changed > 0.005 * area, f"digit 0 -> 3 changed only {digit_changed} of {area} pixels"
        assert slider_changed > 0.001 * area, f"{label} 0 -> 1 changed only {slider_changed} of {area} pixels"

        # 7. The quiz at the end of the notebook (cu.quiz(6)): a wrong answer, then the right one, checked.
        quiz_feedback = _answer_quiz(lab, page)
        shot("06-quiz.png")  # the page, scrolled to the quiz's first question
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
                f"server log in {ARTIFACTS}: {shot.names()}"
            )
    with capsys.disabled():
        print(
            f"[browser test] {run['cells']} cells run; pixels changed: digit 0 -> 3: {digit_changed}, "
            f"{label} 0 -> 1: {slider_changed} (of {area}); quiz feedback: {[t[:40] for t in quiz_feedback]}"
        )
