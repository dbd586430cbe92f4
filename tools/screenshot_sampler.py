"""A screenshot of notebook 6's sampler widget, for saved copies of the notebook.

    python -m tools.screenshot_sampler capture [--out notebooks/figures/sampler_widget.png]
    python -m tools.screenshot_sampler attach notebooks/06_conditional_sampling.ipynb [--png ...]

The live widget (``cu.sampler_widget``) needs a running kernel: a saved copy of notebook 6
(GitHub, a static site, Colab before its first run) shows only a line of text for it. The
screenshot shows what it looks like, in every one of them:

* ``capture`` starts JupyterLab headless on localhost (a free port, a random token), opens a
  small generated notebook (in a temporary folder) that loads the shipped label CVAE and shows
  ``cu.sampler_widget(model, dims=...)`` with the dimensions notebook 6 uses (its four most used
  latent dimensions on the test set, found with the same code), runs it in Debian's Chromium
  with Playwright (tools/lab_browser.py, shared with tests/test_browser.py), waits for the
  widget's samples and screenshots the widget alone (controls and samples) to a small PNG.
  Every request that leaves localhost is refused: nothing comes from a CDN.
* ``attach`` embeds that PNG as a markdown *attachment* of the notebook's markdown cell that
  holds the marker ``<!-- sampler-screenshot -->``, and shows it there with
  ``![...](attachment:sampler_widget.png)``. An attachment travels inside the notebook, so
  the image shows where a relative link to notebooks/figures/ would not (Colab). Running it
  again replaces the attachment; a notebook without the marker is refused and left as it is.

Needs for ``capture``: ``pip install -e ".[browser,lab]"`` and ``apt-get install chromium``
(``CVAE_CHROMIUM=/path`` picks another binary); never ``playwright install``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import struct
import sys
import tempfile
import time
from pathlib import Path

from tools import lab_browser as lb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PNG = ROOT / "notebooks" / "figures" / "sampler_widget.png"
MARKER = "<!-- sampler-screenshot -->"
ATTACHMENT = "sampler_widget.png"
ALT_TEXT = "The sampler widget: digit buttons, temperature, seed, four latent sliders and eight samples of digit 0"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 150_000  # the PNG travels inside notebook 6 (as base64: 4/3 of this)

# Limits for a shared 2-core machine; each wait returns as soon as its condition holds.
SERVER_START_S = 120
PAGE_LOAD_S = 120
KERNEL_READY_S = 180
RUN_S = 300  # loading the model, the test digits' latent usage, the first drawing
VIEWPORT = {"width": 1100, "height": 900}
PAD = 8  # pixels of page kept around the widget's controls and samples

# The dimensions as notebook 6 picks them (section 8): the four latent dimensions with the
# largest average KL on the test set. DIMS_LINE prints them for the tool to read back.
DIMS_CODE = """\
import cvae_utils as cu

model = cu.load_pretrained("label_cvae", "cpu")
test = cu.load_mnist("test", "cpu")  # all 10,000 test images, as notebook 6's full run
usage = cu.latent_usage(model, cu.TensorBatches(test.images, test.labels, batch_size=1000, shuffle=False))
top_dims = usage.argsort(descending=True)[:4].tolist()
print("dims:", top_dims)"""
WIDGET_CODE = """\
widget = cu.sampler_widget(model, dims=top_dims)
widget"""


# ------------------------------------------------------------------------------------------
# attach
# ------------------------------------------------------------------------------------------


class AttachError(ValueError):
    """The notebook or the PNG cannot be used; nothing was written."""


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, read from its header; AttachError if ``data`` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise AttachError("not a PNG image (no PNG signature and IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    if not width or not height:
        raise AttachError(f"a PNG of {width} x {height} pixels is empty")
    return width, height


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def attach(notebook: Path, png: Path = DEFAULT_PNG) -> dict:
    """Embed ``png`` in the marked markdown cell of ``notebook`` (in place); return what was done.

    The cell holding :data:`MARKER` gets ``attachments[ATTACHMENT] = {"image/png": base64}``
    (replacing an earlier one) and, unless its source already shows the attachment, the line
    ``![ALT_TEXT](attachment:sampler_widget.png)`` after the marker. Nothing else in the
    notebook changes. Raises AttachError (and writes nothing) without exactly one marked
    markdown cell, or when ``png`` is not a PNG.
    """
    import nbformat

    notebook, png = Path(notebook), Path(png)
    if not png.is_file():
        raise AttachError(f"{png}: no such file (make it with: python -m tools.screenshot_sampler capture)")
    data = png.read_bytes()
    try:
        width, height = png_size(data)
    except AttachError as error:
        raise AttachError(f"{png}: {error}") from None
    nb = nbformat.read(notebook, as_version=4)
    marked = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and MARKER in _source(c)]
    if not marked:
        in_code = [i for i, c in enumerate(nb.cells) if c.cell_type != "markdown" and MARKER in _source(c)]
        where = f" (cell {in_code[0]} has it, but is not a markdown cell)" if in_code else ""
        raise AttachError(
            f"{notebook}: no markdown cell holds the marker {MARKER}{where}. Add a markdown cell whose "
            f"text includes the line {MARKER} where the screenshot should show (for notebook 6: beside "
            f"the cell that shows cu.sampler_widget), then run attach again. Nothing was written."
        )
    if len(marked) > 1:
        raise AttachError(
            f"{notebook}: the marker {MARKER} is in {len(marked)} markdown cells ({marked}); keep it in one. "
            "Nothing was written."
        )
    index = marked[0]
    cell = nb.cells[index]
    link = f"](attachment:{ATTACHMENT})"
    source = _source(cell)
    added_link = link not in source
    if added_link:
        lines = source.splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if MARKER in line)
        if not lines[at].endswith("\n"):
            lines[at] += "\n"
        lines.insert(at + 1, f"![{ALT_TEXT}{link}\n")
        source = "".join(lines)
        cell.source = source
    attachments = dict(cell.get("attachments") or {})
    replaced = ATTACHMENT in attachments
    attachments[ATTACHMENT] = {"image/png": base64.b64encode(data).decode("ascii")}
    cell["attachments"] = attachments
    nbformat.validate(nb)
    nbformat.write(nb, notebook)
    return {
        "cell": index,
        "width": width,
        "height": height,
        "bytes": len(data),
        "replaced": replaced,
        "added_link": added_link,
    }


# ------------------------------------------------------------------------------------------
# capture
# ------------------------------------------------------------------------------------------


def capture_notebook(dims: list[int] | None = None) -> dict:
    """The generated notebook: the model, the dimensions (notebook 6's code, or ``dims``) and the widget."""
    import nbformat

    setup = DIMS_CODE
    if dims is not None:
        setup = (
            'import cvae_utils as cu\n\nmodel = cu.load_pretrained("label_cvae", "cpu")\n'
            f'top_dims = {list(dims)!r}\nprint("dims:", top_dims)'
        )
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    )
    nb.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(WIDGET_CODE)]
    return nb


# The widget's controls and samples, as drawn: the union of their boxes is the screenshot.
# (The widget's VBox itself spans the whole width of the notebook; its content does not.)
CONTENT_BOX_JS = """(el) => {
  const parts = el.querySelectorAll('.widget-toggle-buttons, .widget-hslider, .widget-text, .widget-button, '
                                    + '.widget-checkbox, .widget-output img');
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const p of parts) {
    const r = p.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    x0 = Math.min(x0, r.left); y0 = Math.min(y0, r.top); x1 = Math.max(x1, r.right); y1 = Math.max(y1, r.bottom);
  }
  return {x: x0 + window.scrollX, y: y0 + window.scrollY, width: x1 - x0, height: y1 - y0, parts: parts.length};
}"""


HIDE_ALL_BUT_THE_WIDGET_CSS = """
.jp-NotebookPanel .jp-Cell:not(:has(.widget-toggle-buttons)) { display: none !important; }
.jp-NotebookPanel .jp-Cell-inputWrapper { display: none !important; }
"""


def _optimise_png(raw: bytes, max_bytes: int) -> bytes:
    """The screenshot, as small as it stays sharp: a palette of 256 colours, then 128, 64 if still too big."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB")
    best = raw
    for colours in (256, 128, 64):
        buffer = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True
        )
        best = min(best, buffer.getvalue(), key=len)
        if len(best) <= max_bytes:
            break
    return best


def capture(out: Path = DEFAULT_PNG, *, dims: list[int] | None = None, keep: Path | None = None) -> dict:
    """Screenshot the sampler widget in JupyterLab (Chromium) to ``out``; return its size and the dimensions.

    ``keep``: a folder for the server's log and a screenshot of the whole page (for a failure).
    Raises :class:`tools.lab_browser.LabError` when JupyterLab or the page fail, RuntimeError
    when Playwright, Chromium or JupyterLab are missing.
    """
    import nbformat

    missing = lb.missing_requirement()
    if missing:
        raise RuntimeError(f"{missing[0]}; install it with: {missing[1]}")
    from playwright.sync_api import sync_playwright

    out = Path(out)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cvae-screenshot-") as tmp:
        home = Path(tmp)
        root_dir = home / "notebooks"
        root_dir.mkdir()
        nbformat.write(capture_notebook(dims), root_dir / "sampler.ipynb")
        logs = Path(keep) if keep else home
        lab = lb.start_lab(home, root_dir, logs / "jupyter-server.log", timeout=SERVER_START_S)
        try:
            with sync_playwright() as playwright:
                browser = lb.launch_chromium(playwright, lb.chromium_path())
                try:
                    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
                    blocked = lb.local_only(context)
                    page = context.new_page()
                    page.set_default_timeout(60_000)
                    try:
                        result = _shoot(lab, page, blocked)
                    except BaseException:
                        if keep:
                            page.screenshot(path=str(Path(keep) / "screenshot-failure.png"))
                        raise
                    finally:
                        context.close()
                finally:
                    browser.close()
        finally:
            lb.stop_lab(lab)
    png = _optimise_png(result.pop("png"), MAX_BYTES)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    width, height = png_size(png)
    seconds = round(time.monotonic() - started, 1)
    return {**result, "out": str(out), "width": width, "height": height, "bytes": len(png), "seconds": seconds}


def _shoot(lab: lb.Lab, page, blocked: list[str]) -> dict:
    lb.open_notebook(lab, page, "sampler.ipynb", 2, load_s=PAGE_LOAD_S, kernel_s=KERNEL_READY_S)
    lb.run_all_cells(lab, page, RUN_S)
    printed = re.search(r"dims: (\[[\d, ]*\])", page.locator(".jp-NotebookPanel .jp-OutputArea").first.inner_text())
    dims = json.loads(printed.group(1)) if printed else None
    widget = page.locator(lb.WIDGET)
    if widget.count() != 1:
        raise lb.LabError(f"the sampler widget is not on the page ({widget.count()} found)")
    widget.scroll_into_view_if_needed()
    lb.wait(lambda: lb.widget_image(page), RUN_S, "the sampler's samples", lab, page)
    # The image settled: the same src twice in a row, the kernel idle; no focus ring, no hover.
    last = {"src": None}

    def settled():
        src = lb.widget_image(page)
        stable, last["src"] = src is not None and src == last["src"], src
        return stable and lab.kernel_states() == ["idle"]

    lb.wait(settled, RUN_S, "the sampler's samples to settle", lab, page)
    # Only the widget on the page: no other cell, no code editor (its border would sit in the margin).
    page.add_style_tag(content=HIDE_ALL_BUT_THE_WIDGET_CSS)
    widget.scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    box = widget.evaluate(CONTENT_BOX_JS)
    if box["parts"] < 5 or not box["width"] > 0:
        raise lb.LabError(f"the sampler widget's controls are not drawn: {box}")
    if blocked:
        raise lb.LabError(f"the page asked for {len(blocked)} resources outside localhost (refused): {blocked[:5]}")
    clip = {
        "x": max(box["x"] - PAD, 0),
        "y": max(box["y"] - PAD, 0),
        "width": box["width"] + 2 * PAD,
        "height": box["height"] + 2 * PAD,
    }
    png = page.screenshot(clip=clip, full_page=True, animations="disabled", caret="hide")
    return {"png": png, "dims": dims}


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshot_sampler", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="screenshot the sampler widget in JupyterLab (Chromium) to a PNG")
    cap.add_argument("--out", type=Path, default=DEFAULT_PNG, help=f"the PNG to write (default: {DEFAULT_PNG})")
    cap.add_argument(
        "--dims", type=int, nargs="+", help="the latent dimensions of the sliders (default: notebook 6's choice)"
    )
    cap.add_argument("--keep", type=Path, help="a folder for the server's log and, on failure, the page")
    att = sub.add_parser("attach", help=f"embed the PNG in the markdown cell marked {MARKER}")
    att.add_argument("notebook", type=Path)
    att.add_argument("--png", type=Path, default=DEFAULT_PNG, help=f"the PNG to embed (default: {DEFAULT_PNG})")
    args = parser.parse_args(argv)

    if args.command == "capture":
        try:
            r = capture(args.out, dims=args.dims, keep=args.keep)
        except (lb.LabError, RuntimeError) as error:
            print(f"capture failed: {error}", file=sys.stderr)
            return 1
        print(
            f"wrote {r['out']}: {r['width']} x {r['height']} pixels, {r['bytes']:,d} bytes "
            f"(sliders for dims {r['dims']}; {r['seconds']} s)"
        )
        return 0
    try:
        r = attach(args.notebook, args.png)
    except AttachError as error:
        print(f"attach: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.notebook}: cell {r['cell']} {'replaced its' if r['replaced'] else 'got the'} attachment {ATTACHMENT} "
        f"({r['width']} x {r['height']} pixels, {r['bytes']:,d} bytes)"
        + ("; added the image line after the marker" if r["added_link"] else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
