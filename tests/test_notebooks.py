"""Hygiene of the committed notebooks: the frame, one top-to-bottom run, no stray metadata."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.colab import SETUP_SNIPPET, badge_markdown, notebook_paths

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebook_paths()
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"jupyter", "cellView", "tags"}
ALLOWED_TAGS = {"solution", "optional"}

pytestmark = pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks in notebooks/ yet")


def _load(path):
    return json.loads(path.read_text())


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_notebooks_are_numbered_consecutively_and_listed_in_the_readme():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1))
    readme = (ROOT / "README.md").read_text()
    for p in NOTEBOOKS:
        assert f"notebooks/{p.name}" in readme, f"README.md does not list {p.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_hygiene(path):
    assert_clean(path)


def assert_clean(path):
    """A committed notebook's hygiene: valid, python3 kernel, no stray metadata, no errors, one top-to-bottom run."""
    import nbformat

    nbformat.validate(nbformat.read(path, as_version=4))
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert set(nb["metadata"]) <= ALLOWED_NOTEBOOK_METADATA, f"stray notebook metadata: {set(nb['metadata'])}"
    counts = []
    for i, cell in enumerate(nb["cells"]):
        assert set(cell.get("metadata", {})) <= ALLOWED_CELL_METADATA, f"cell {i}: stray metadata {cell['metadata']}"
        assert set(cell.get("metadata", {}).get("tags", [])) <= ALLOWED_TAGS
        if cell["cell_type"] != "code":
            continue
        counts.append(cell["execution_count"])
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"cell {i} holds an error output"
            assert "Traceback" not in json.dumps(out), f"cell {i} printed a traceback"
    # outputs from one top-to-bottom run: every code cell executed, counts 1, 2, 3, ...
    assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_frame(path):
    nb = _load(path)
    cells = [_source(c) for c in nb["cells"]]
    markdown = [_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    number = int(path.name[:2])
    assert re.match(rf"# {number}\. \S", cells[0]), "the first cell starts with the numbered title"
    assert badge_markdown(path.name) in cells[0], (
        "the Colab badge must match tools/colab.py (run: python tools/colab.py badges)"
    )
    headings = [line for m in markdown for line in m.splitlines() if line.startswith("## ")]
    for section in (
        "## What you will learn",
        "## Prerequisites",
        "## Setup",
        "## Summary",
        "## Exercises",
        "## References",
    ):
        assert section in headings, f"missing section {section!r}"
    order = [headings.index(s) for s in ("## What you will learn", "## Prerequisites", "## Setup")]
    assert order == sorted(order)
    # the quiz (cu.quiz, tools/quiz.py) sits between the Exercises and the References
    assert headings[-4:] == ["## Summary", "## Exercises", "## Quiz", "## References"]
    assert SETUP_SNIPPET in cells, "the setup cell must be SETUP_SNIPPET of tools/colab.py, verbatim"
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert not re.search(r"^\s*(from|import)\s+tools\b", code, re.M), "tools/ is not installed (Colab): never import it"
    refs = next(m for m in markdown if m.startswith("## References"))
    assert refs.index("Sohn") < refs.index("Kingma")
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions, "exercises need solutions"
    for c in solutions:
        assert c["cell_type"] == "code" and c["metadata"]["jupyter"]["source_hidden"] is True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_checked_cells_are_few_and_marked(path):
    nb = _load(path)
    checked = [c for c in nb["cells"] if c["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in _source(c)]
    assert checked, "mark the cells with deterministic output # NBVAL_CHECK_OUTPUT"
    for c in checked:
        assert c["outputs"], "a checked cell must have a stored output to compare with"
    skips = [c for c in nb["cells"] if "NBVAL_SKIP" in _source(c)]
    for c in skips:
        assert re.search(r"NBVAL_SKIP\W+\w", _source(c)), "an NBVAL_SKIP needs a written reason"


def _execute_options() -> list[str]:
    """The nbconvert options of `make execute` (EXECUTE_OPTIONS in the Makefile)."""
    m = re.search(r"^EXECUTE_OPTIONS\s*:?=(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "the Makefile must define EXECUTE_OPTIONS, the options of `make execute`"
    return m.group(1).split()


def test_make_execute_writes_clean_notebooks(tmp_path):
    """`make execute`'s nbconvert options give a notebook that passes the hygiene checks.

    A small notebook with a widget (whose state nbclient stores in the notebook's metadata
    unless told not to), a figure and printed output, run as `make execute` runs the series.
    """
    import nbformat

    options = _execute_options()
    assert options[:3] == ["--to", "notebook", "--execute"] and "--inplace" in options
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A notebook"),
        nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=3)"),
        # an Output widget that captures a print, as the sampler of notebook 6 draws into one (nbclient's
        # Output-widget hook needs the widget state it stores, so the options must not turn that off)
        nbformat.v4.new_code_cell("out = ipywidgets.Output()\nwith out:\n    print('inside')\nout"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()"),
        nbformat.v4.new_code_cell("print('done')"),
    ]
    path = tmp_path / "01_probe.ipynb"
    nbformat.write(nb, path)
    result = subprocess.run(
        [sys.executable, "-m", "nbconvert", *options, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_clean(path)
    cells = _load(path)["cells"]
    assert "application/vnd.jupyter.widget-view+json" in cells[1]["outputs"][0]["data"]  # the widget ran
    assert "".join(cells[4]["outputs"][0]["text"]) == "done\n"


# What a committed notebook keeps of a run (tools/stored_outputs.py, run by `make execute`).


def _bar(text):
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": text},
    }


def test_stored_outputs_drop_bars_and_answers_and_keep_the_rest():
    from tools import stored_outputs

    summary = {"output_type": "stream", "name": "stdout", "text": "fit: 20 epochs in 61.2 s (3.06 s/epoch)\n"}
    slider = _bar("IntSlider(value=3)")  # a widget that is not a bar stays
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [_bar("epoch 1:   0%|          | 0/118 [00:00<?, ?it/s]"),
                                                               summary, slider]},
            {"cell_type": "code", "metadata": {}, "outputs": [
                {"output_type": "stream", "name": "stderr", "text": "training:  45%|####5     | 9/20 [00:27<00:33]"}]},
            {"cell_type": "code", "metadata": {"tags": ["solution"]}, "execution_count": 7,
             "outputs": [{"output_type": "stream", "name": "stdout", "text": "the answer is 42\n"}]},
            {"cell_type": "markdown", "metadata": {}, "source": "0%| 0/1 ["},
        ]
    }  # fmt: skip
    assert stored_outputs.clean(nb) == 3
    assert nb["cells"][0]["outputs"] == [summary, slider]
    assert nb["cells"][1]["outputs"] == []
    assert nb["cells"][2]["outputs"] == [] and nb["cells"][2]["execution_count"] == 7  # the run's order stays
    assert stored_outputs.clean(nb) == 0  # cleaning twice changes nothing


def test_stored_outputs_command_checks_cleans_and_refuses_a_non_notebook(tmp_path, capsys):
    from tools import stored_outputs

    path, other = tmp_path / "01_a.ipynb", tmp_path / "notes.ipynb"
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["solution"]}, "outputs": [{"output_type": "stream"}]}]}
    path.write_text(json.dumps(nb))
    other.write_text("not json")
    assert stored_outputs.main(["--check", str(path)]) == 1 and json.loads(path.read_text()) == nb  # nothing changed
    assert stored_outputs.main([str(other), str(path)]) == 2  # the bad file is named; the good one is still cleaned
    assert json.loads(path.read_text())["cells"][0]["outputs"] == []
    assert other.read_text() == "not json"
    assert "notes.ipynb: cannot read it as a notebook" in capsys.readouterr().err
    assert stored_outputs.main(["--check", str(path)]) == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_stored_progress_bar_and_no_visible_answer(path):
    """Stored notebooks show each training run's one-line summary, not frozen bars; solutions show no output."""
    from tools import stored_outputs

    nb = _load(path)
    for i, cell in enumerate(nb["cells"]):
        if stored_outputs.is_solution(cell):
            assert not cell.get("outputs"), f"cell {i}: a solution cell stores its output (the answer)"
        bars = [o for o in cell.get("outputs", []) if stored_outputs.is_progress_bar(o)]
        assert not bars, f"cell {i}: {len(bars)} frozen progress bars stored (run python -m tools.stored_outputs)"


# The main path (issue 13): at most 2,500 words of prose outside the optional cells (tools/wordcount.py).
# Notebooks not yet rewritten to that length are listed here; the test of each fails as soon as one
# meets the limit while still listed (strict xfail), so the list only shrinks.
NOT_YET_SHORT: set[str] = set()


def _main_path_params():
    return [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="issue 13: main path not shortened yet"))
        if p.name[:2] in NOT_YET_SHORT
        else p
        for p in NOTEBOOKS
    ]


@pytest.mark.parametrize("path", _main_path_params(), ids=[p.name for p in NOTEBOOKS])
def test_main_path_prose_is_short(path):
    from tools import wordcount

    words = wordcount.count(_load(path))
    assert words["main"] <= wordcount.MAIN_PATH_LIMIT, f"{words['main']:,d} words on the main path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_optional_cells_are_announced(path):
    from tools import wordcount

    nb = _load(path)
    assert wordcount.optional_runs_without_heading(nb) == [], "an optional run must open with '### Optional: ...'"
    assert not any(
        wordcount.is_optional(c) and "solution" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]
    )


def test_wordcount_counts_main_and_optional_prose_and_formulas_as_one_word():
    from tools import wordcount

    def cell(text, *tags, kind="markdown"):
        return {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": text}

    nb = {
        "cells": [
            cell("# 1. Title with four"),
            cell("### Optional: a derivation", "optional"),
            cell("five words of optional prose", "optional"),
            cell("x = 1  # code is not prose", kind="code"),
            cell("## Summary\nthree more words: $\\mathrm{KL}(q \\Vert p) \\geq 0$ and p(z|x)"),
            cell("## References\n1. A. Author. *A paper.* 2015."),
        ]
    }
    # words are runs of letters or digits; a formula is one word; the References count too
    assert wordcount.count(nb) == {"main": 4 + (1 + 3 + 1 + 1 + 3) + 7, "optional": 3 + 5}
    assert wordcount.optional_runs_without_heading(nb) == []
    nb["cells"][1]["metadata"] = {}  # the run now opens with an unannounced optional cell
    assert wordcount.optional_runs_without_heading(nb) == [2]


def test_a_markdown_attachment_is_clean(tmp_path):
    """A markdown cell with an attachment (notebook 6's sampler screenshot, tools/screenshot_sampler.py) passes.

    nbformat allows "attachments" on markdown cells; the hygiene checks look at cells' metadata, not at them.
    """
    import nbformat
    from PIL import Image

    from tools.screenshot_sampler import ATTACHMENT, MARKER, attach

    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"The widget:\n\n{MARKER}"),
        nbformat.v4.new_code_cell("1", execution_count=1),
    ]
    path, png = tmp_path / "01_probe.ipynb", tmp_path / "shot.png"
    nbformat.write(nb, path)
    Image.new("RGB", (8, 8), "white").save(png, format="PNG")
    attach(path, png)
    assert ATTACHMENT in _load(path)["cells"][0]["attachments"]
    assert_clean(path)


# The pictures of issue 13: each is drawn by a code cell whose stored output holds the image (so it shows in
# JupyterLab, on Colab, on GitHub and in a static site), or is a markdown attachment. Each entry: the
# notebook, what the picture is, and code that identifies the cell that draws it.
PICTURES = [
    ("01", "graphical models of the VAE and the CVAE", ['graphical_model("vae"', 'graphical_model("cvae"']),
    ("01", "the exact posterior's contours against the best diagonal q", ["model.posterior("]),
    ("02", "the three networks with their tensor shapes", ["network_diagram("]),
    ("02", "the reparameterisation trick as a computation graph", ["reparameterisation_graph("]),
    ("03", "the three networks with their tensor shapes", ["network_diagram("]),
    ("04", "two 1-D Gaussians with their KL in both directions", ["ax_integrand"]),
    ("04", "training curves of the two runs on one axis", ["ax_elbo", "trained with the MSE loss"]),
    ("05", "inputs beside reconstructions", ["reconstruct"]),
    ("05", "training curves of the MLP and the convolutional CVAE on one axis", ["convolutional CVAE (N(0, I) prior)"]),
    ("07", "graphical models of the baseline, the GSNN and the CVAE", ['"baseline"', '"gsnn"', '"cvae"']),
    ("07", "the importance-sampled estimate against S", ["SAMPLES = ("]),
    ("07", "completions by every model with 1, 2 and 3 quadrants", ["completion_figure(3"]),
]


@pytest.mark.parametrize("number, what, markers", PICTURES, ids=[f"{n}: {w}" for n, w, _ in PICTURES])
def test_the_pictures_are_drawn_and_stored(number, what, markers):
    import base64

    path = next(p for p in NOTEBOOKS if p.name.startswith(number))
    cells = [c for c in _load(path)["cells"] if c["cell_type"] == "code" and all(m in _source(c) for m in markers)]
    assert cells, f"{path.name}: no code cell draws {what}"
    images = [o["data"]["image/png"] for c in cells for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: the cell that draws {what} stores no image"
    png = base64.b64decode("".join(images[0]) if isinstance(images[0], list) else images[0])
    assert png.startswith(b"\x89PNG") and len(png) > 5_000, f"{what}: not a rendered figure"


def test_the_sampler_screenshot_sits_beside_the_live_widget():
    import base64

    cells = _load(next(p for p in NOTEBOOKS if p.name.startswith("06")))["cells"]
    widget = next(i for i, c in enumerate(cells) if c["cell_type"] == "code" and "cu.sampler_widget(" in _source(c))
    shot = cells[widget + 1]
    assert shot["cell_type"] == "markdown" and "attachment:sampler_widget.png" in _source(shot)
    png = base64.b64decode(shot["attachments"]["sampler_widget.png"]["image/png"])
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
