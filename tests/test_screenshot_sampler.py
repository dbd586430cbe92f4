"""tools/screenshot_sampler.py: the sampler's screenshot, embedded in a notebook as a markdown attachment.

``attach`` is tested on small synthetic notebooks; ``capture`` drives JupyterLab in Chromium
(marker ``browser``) and skips without Playwright or Chromium, unless CVAE_BROWSER_REQUIRED=1
(CI), where a missing piece fails the test, as in tests/test_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import nbformat
import pytest

from tools import lab_browser
from tools import screenshot_sampler as ss

ROOT = Path(__file__).resolve().parents[1]
LINK = f"](attachment:{ss.ATTACHMENT})"


def _png(path: Path, size=(40, 20), colour=(255, 255, 255)) -> Path:
    from PIL import Image

    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


def _notebook(path: Path, marked: str | None = f"The widget, as drawn:\n\n{ss.MARKER}\n\nMove the sliders.") -> Path:
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 1. A notebook"),
        nbformat.v4.new_code_cell("widget", execution_count=1),
    ]
    if marked is not None:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(marked))
    nbformat.write(nb, path)
    return path


def _marked_cell(path: Path) -> dict:
    cells = json.loads(path.read_text())["cells"]
    (cell,) = [c for c in cells if ss.MARKER in "".join(c["source"])]
    return cell


def test_attach_embeds_the_png_after_the_marker(tmp_path):
    nb_path, png = _notebook(tmp_path / "nb.ipynb"), _png(tmp_path / "shot.png")
    before = json.loads(nb_path.read_text())
    result = ss.attach(nb_path, png)

    size = png.stat().st_size
    assert result == {"cell": 1, "width": 40, "height": 20, "bytes": size, "replaced": False, "added_link": True}
    nbformat.validate(nbformat.read(nb_path, as_version=4))
    cell = _marked_cell(nb_path)
    assert set(cell["attachments"]) == {ss.ATTACHMENT}
    assert base64.b64decode(cell["attachments"][ss.ATTACHMENT]["image/png"]) == png.read_bytes()
    lines = "".join(cell["source"]).splitlines()
    at = lines.index(ss.MARKER)
    assert lines[at + 1] == f"![{ss.ALT_TEXT}{LINK}"
    assert [line for i, line in enumerate(lines) if i != at + 1] == "".join(before["cells"][1]["source"]).splitlines()
    # nothing else changed
    after = json.loads(nb_path.read_text())
    assert after["metadata"] == before["metadata"]
    assert [c for i, c in enumerate(after["cells"]) if i != 1] == [c for i, c in enumerate(before["cells"]) if i != 1]


def test_attach_again_replaces_the_attachment(tmp_path):
    nb_path = _notebook(tmp_path / "nb.ipynb")
    ss.attach(nb_path, _png(tmp_path / "a.png", colour=(255, 0, 0)))
    second = _png(tmp_path / "b.png", size=(30, 30), colour=(0, 0, 255))
    result = ss.attach(nb_path, second)

    assert result["replaced"] and not result["added_link"] and (result["width"], result["height"]) == (30, 30)
    cell = _marked_cell(nb_path)
    assert set(cell["attachments"]) == {ss.ATTACHMENT}
    assert base64.b64decode(cell["attachments"][ss.ATTACHMENT]["image/png"]) == second.read_bytes()
    assert "".join(cell["source"]).count(LINK) == 1


def test_attach_keeps_an_image_line_written_by_hand(tmp_path):
    text = f"{ss.MARKER}\n![My own words]({LINK[2:]}\n\nMore text."
    nb_path = _notebook(tmp_path / "nb.ipynb", marked=text)
    result = ss.attach(nb_path, _png(tmp_path / "shot.png"))
    assert not result["added_link"]
    assert "".join(_marked_cell(nb_path)["source"]) == text


@pytest.mark.parametrize(
    "case",
    ["no marker", "marker in a code cell", "two marked cells"],
)
def test_attach_refuses_a_notebook_without_one_marked_markdown_cell_and_writes_nothing(tmp_path, case, capsys):
    nb_path = _notebook(tmp_path / "nb.ipynb", marked=None)
    nb = nbformat.read(nb_path, as_version=4)
    if case == "marker in a code cell":
        nb.cells.append(nbformat.v4.new_code_cell(f"# {ss.MARKER}"))
    if case == "two marked cells":
        nb.cells += [nbformat.v4.new_markdown_cell(ss.MARKER), nbformat.v4.new_markdown_cell(f"again {ss.MARKER}")]
    nbformat.write(nb, nb_path)
    before = nb_path.read_bytes()
    png = _png(tmp_path / "shot.png")

    with pytest.raises(ss.AttachError) as error:
        ss.attach(nb_path, png)
    message = str(error.value)
    assert ss.MARKER in message and "Nothing was written" in message
    if case == "two marked cells":
        assert "in 2 markdown cells" in message
    else:
        assert "Add a markdown cell" in message
    assert nb_path.read_bytes() == before
    # the command line: exit status 1, the same message, the notebook untouched
    assert ss.main(["attach", str(nb_path), "--png", str(png)]) == 1
    assert ss.MARKER in capsys.readouterr().err
    assert nb_path.read_bytes() == before


@pytest.mark.parametrize("kind", ["jpeg", "text", "missing"])
def test_attach_refuses_what_is_not_a_png(tmp_path, kind):
    from PIL import Image

    nb_path = _notebook(tmp_path / "nb.ipynb")
    before = nb_path.read_bytes()
    not_png = tmp_path / "shot.png"
    if kind == "jpeg":
        Image.new("RGB", (10, 10)).save(not_png, format="JPEG")
    elif kind == "text":
        not_png.write_text("not an image")
    with pytest.raises(ss.AttachError, match="no such file" if kind == "missing" else "not a PNG"):
        ss.attach(nb_path, not_png)
    assert nb_path.read_bytes() == before


def test_attach_from_the_command_line(tmp_path, capsys):
    nb_path, png = _notebook(tmp_path / "nb.ipynb"), _png(tmp_path / "shot.png")
    assert ss.main(["attach", str(nb_path), "--png", str(png)]) == 0
    assert "got the attachment sampler_widget.png (40 x 20 pixels" in capsys.readouterr().out
    assert ss.ATTACHMENT in _marked_cell(nb_path)["attachments"]


def test_the_committed_screenshot_is_a_small_png():
    data = ss.DEFAULT_PNG.read_bytes()
    width, height = ss.png_size(data)
    assert 400 <= width <= 1400 and 250 <= height <= 1000, (width, height)
    assert len(data) <= ss.MAX_BYTES


def test_the_generated_notebook_picks_the_dimensions_as_notebook_6():
    """The sliders' dimensions: notebook 6's code (the four most used on the test set), and its widget call."""
    nb6 = (ROOT / "notebooks" / "06_conditional_sampling.ipynb").read_text()
    code = "\n".join("".join(c["source"]) for c in json.loads(nb6)["cells"] if c["cell_type"] == "code")
    assert "top_dims = usage.argsort(descending=True)[:4].tolist()" in code
    assert "cu.sampler_widget(model, dims=top_dims)" in code
    generated = "\n".join(c.source for c in ss.capture_notebook().cells)
    for line in (
        'model = cu.load_pretrained("label_cvae", "cpu")',
        "top_dims = usage.argsort(descending=True)[:4].tolist()",
        "cu.sampler_widget(model, dims=top_dims)",
    ):
        assert line in generated
    assert "top_dims = [1, 2]" in "\n".join(c.source for c in ss.capture_notebook([1, 2]).cells)


# ------------------------------------------------------------------------------------------
# capture: JupyterLab in Chromium
# ------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_capture_screenshots_the_widget(tmp_path):
    lab_browser.require(lab_browser.missing_requirement())
    from PIL import Image

    out = tmp_path / "figures" / "widget.png"
    try:
        result = ss.capture(out, keep=tmp_path)
    except lab_browser.LabError as error:
        pytest.fail(str(error), pytrace=False)

    data = out.read_bytes()
    assert (result["width"], result["height"], result["bytes"]) == (*ss.png_size(data), len(data))
    image = Image.open(io.BytesIO(data))
    image.verify()
    image = Image.open(io.BytesIO(data)).convert("L")
    # controls above eight 28 x 28 digits drawn larger: wider than tall, a few hundred pixels each way
    assert 400 <= image.width <= 1400 and 250 <= image.height <= 1000 and image.width > image.height, image.size
    assert len(data) <= ss.MAX_BYTES
    histogram = image.histogram()
    dark, light = (
        sum(histogram[:64]) / (image.width * image.height),
        sum(histogram[192:]) / (image.width * image.height),
    )
    assert 0.03 < dark < 0.5 and light > 0.4, (dark, light)  # the black squares of the samples on a white page
    dims = result["dims"]
    assert len(dims) == 4 and len(set(dims)) == 4 and all(0 <= d < 16 for d in dims), dims
