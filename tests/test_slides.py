"""The course's slide decks (tools/slides.py, kit/slides/decks.toml): built, offline, and shown in a browser.

The decks are built once, into a temporary folder, from the committed notebooks and the
committed spec. Without a browser the tests check the pages: one deck per course session, the
slides each spec entry asks for, in order, no script or stylesheet from the network, every
figure embedded; and that a key of the spec that no longer matches the notebooks, a spec that
cannot be read, or an output folder that holds someone else's files stops the build with a message
that says which and why, before anything is written.

The browser test (``pytest.mark.browser``) serves the decks from localhost and opens every one in
Debian's Chromium driven by Playwright, every request outside localhost aborted and recorded. For
each deck: reveal.js is ready, the slide count is the spec's, every image loaded, MathJax rendered
every formula (no raw ``$$`` or ``\\(`` left on a slide), every slide fits into 1280x720 (the text
at no less than the smallest font scale, each figure at least 40% of the page high), and the End key
reaches the last slide. The speaker view (key S) of session 1 opens and shows the notes. Screenshots of
a slide with an equation and of one with a figure go to ``artifacts/slides/`` (``CVAE_ARTIFACTS_DIR``
moves it). It needs Playwright and Chromium, as tests/test_browser.py does: without them it skips, and
with ``CVAE_BROWSER_REQUIRED=1`` (as in CI) it fails.

Run alone: ``.venv/bin/python -m pytest tests/test_slides.py -v -p no:cacheprovider -o addopts=""``.
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import time
from pathlib import Path

import pytest

from tools import lab_browser as lb
from tools import slides

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CVAE_ARTIFACTS_DIR", ROOT / "artifacts")).resolve() / "slides"
SESSIONS = [1, 2, 3, 4, 5, 6]  # notebooks/COURSE_GUIDE.md, section 3
MIN_FONT_SCALE = 0.6  # kit/slides/slides.js, MIN_SCALE
MIN_FIGURE = 0.4  # of the page's height; slides.js, MIN_FIGURE
PAGE = (1280, 720)  # reveal.js's slide size in slides.js


@pytest.fixture(scope="module")
def spec():
    return slides.read_spec(slides.SPEC)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(output folder, decks, seconds): every deck of the committed spec, built once."""
    out = tmp_path_factory.mktemp("slides") / "slides"
    started = time.monotonic()
    decks = slides.build(slides.SPEC, out)
    seconds = time.monotonic() - started
    print(f"\n[slides] {len(decks)} decks built in {seconds:.1f} s into {out}")
    return out, decks, seconds


class Sections(html.parser.HTMLParser):
    """The slides of a deck page: for each <section>, its attributes, <h2> text and the tags inside."""

    def __init__(self):
        super().__init__()
        self.slides: list[dict] = []
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.slides.append({"attrs": attrs, "title": "", "classes": []})
        elif tag == "h2" and self.slides:
            self._in_h2 = True
        elif tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        elif tag == "link":
            self.links.append(attrs.get("href", ""))
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        if self.slides and "class" in attrs:
            self.slides[-1]["classes"] += (attrs["class"] or "").split()

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.slides[-1]["title"] += data


def parse(path: Path) -> Sections:
    parser = Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# ------------------------------------------------------------------------------------------
# The built pages
# ------------------------------------------------------------------------------------------


def test_one_deck_per_session_and_an_index(built):
    out, decks, _ = built
    assert [d.session for d in decks] == SESSIONS
    index = parse(out / "index.html")
    text = (out / "index.html").read_text()
    for session in SESSIONS:
        page = out / f"session_{session}.html"
        assert page.is_file(), page
        assert f'href="session_{session}.html"' in text
    assert index.scripts == []
    assert json.loads((out / slides.MANIFEST).read_text())["written"] == [
        "assets",
        "index.html",
        *(f"session_{s}.html" for s in SESSIONS),
    ]


def test_each_deck_has_the_slides_its_spec_asks_for(built, spec):
    out, decks, _ = built
    for deck_spec, deck in zip(spec["deck"], decks):
        page = parse(out / deck.file_name)
        wanted = deck_spec["slide"]
        assert 12 <= len(wanted) + 1 <= 25, f"session {deck.session}: {len(wanted) + 1} slides"
        assert len(page.slides) == len(wanted) + 1 == deck.slide_count, deck.file_name
        assert "title-slide" in page.slides[0]["classes"]
        default_notebook = deck_spec.get("notebook")
        for n, (entry, slide) in enumerate(zip(wanted, page.slides[1:]), start=2):
            where = f"{deck.file_name}, slide {n}"
            number = str(entry.get("notebook", default_notebook)).lstrip("0")
            assert slide["attrs"]["data-source"].startswith(f"notebook {number}: "), where
            heading = entry["section"].lstrip("#").strip()
            assert slide["attrs"]["data-source"][len(f"notebook {number}: ") :].startswith(heading), where
            if "title" in entry:  # a title of the spec's own, as written (its markup aside)
                assert re.sub(r"[`$]", "", slide["title"]).strip() == re.sub(r"[`$]", "", entry["title"]), where
            shows_figure = any(p == "figure" or (isinstance(p, dict) and "figure" in p) for p in entry["show"])
            if shows_figure:
                assert "figure" in slide["classes"], f"{where}: the figure the spec asks for is missing"
            if "equations" in entry["show"] or any(isinstance(p, dict) and "equations" in p for p in entry["show"]):
                assert "equation" in slide["classes"], f"{where}: no equation"


def test_nothing_comes_from_the_network(built):
    out, decks, _ = built
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import\s+url\(\s*["']?(?:https?:)?//""", re.I)
    for name in ["index.html", *(d.file_name for d in decks)]:
        page = parse(out / name)
        for ref in page.scripts + page.links:
            assert not re.match(r"(?:https?:)?//", ref), f"{name} loads {ref}"
            local = ref.split("?")[0]
            assert (out / local).is_file(), f"{name} refers to {ref}, which the build did not write"
        for src in page.images:
            assert src.startswith("data:image/"), f"{name}: a figure is not embedded ({src[:60]})"
        text = (out / name).read_text(encoding="utf-8")
        # every script and stylesheet of the page is local (embedded figures aside, which are data: URLs)
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", text):
            assert not remote.search(tag), f"{name}: {tag}"
    for css in (out / "assets").rglob("*.css"):
        assert not remote.search(css.read_text(errors="replace")), f"{css} imports from the network"
    assert (out / "assets" / "mathjax" / "MathJax.js").is_file()
    assert (out / "assets" / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (out / "assets" / "reveal.js" / "LICENSE").is_file()


def test_speaker_notes_hold_the_text_a_slide_shows_in_part(built):
    out, decks, _ = built
    text = (out / "session_1.html").read_text(encoding="utf-8")
    # slide 4 of session 1 shows the equations of "2. The bound via Jensen's inequality" and one paragraph:
    # its notes hold the whole text under that heading
    section = re.search(r"<section[^>]*data-source=\"notebook 1: 2\. The bound via Jensen.*?</section>", text, re.S)
    assert section, "no slide from section 2 of notebook 1"
    notes = re.search(r'<aside class="notes">(.*?)</aside>', section.group(0), re.S)
    assert notes and "Multiply and divide by" in notes.group(1) and "The logarithm is concave" in notes.group(1)


# ------------------------------------------------------------------------------------------
# Clear errors, nothing written
# ------------------------------------------------------------------------------------------


def _spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "decks.toml"
    path.write_text('series = "test"\n' + text)
    return path


DECK = """
[[deck]]
session = 9
title = "Test deck"
notebook = "01"
"""


@pytest.mark.parametrize(
    ("slide", "message"),
    [
        ('section = "## 42. No such section"\nshow = ["intro"]', 'section = "## 42. No such section": no heading'),
        ('section = "## 2. The bound via"\nshow = [{paragraph = "no such words"}]', 'paragraph = "no such words": 0'),
        ('section = "## 7. The check"\nshow = [{code = "print("}]', 'code = "print(": '),  # in several cells
        ('section = "## 2. The bound via"\nshow = ["figure"]', "has no code cell with a stored figure"),
        ('section = "### What $x$ and $y$ are"\nshow = ["equations"]', "has no $$ equation"),
        ('notebook = "08"\nsection = "## 1."\nshow = ["intro"]', 'notebook = "08" names 0 notebooks'),
    ],
)
def test_a_key_that_does_not_match_stops_the_build_naming_deck_notebook_and_key(tmp_path, slide, message):
    out = tmp_path / "out"
    spec = _spec_file(tmp_path, DECK + "\n[[deck.slide]]\n" + slide + "\n")
    with pytest.raises(slides.SlidesError) as error:
        slides.build(spec, out)
    text = str(error.value)
    assert "deck session 9, slide 2" in text and message in text, text
    if "names 0 notebooks" not in message:
        assert "notebook 01_the_elbo.ipynb" in text, text
    assert not out.exists(), "a failed build wrote something"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[deck]\n", "is not valid TOML"),
        ("x = 1\n", "defines no [[deck]] tables"),
        (DECK + '\n[[deck.slide]]\nsection = "## 1."\nshow = ["figur"]\n', "cannot read the part 'figur'"),
        (DECK + '\n[[deck.slide]]\nsection = "## 1."\nshow = [{figure = ""}]\n', "needs a quote from the notebook"),
        (DECK + '\n[[deck.slide]]\nshow = ["intro"]\n', "a slide needs `section`"),
        (DECK + DECK, "the same session number"),
        (
            DECK + '\n[[deck.slide]]\nsection = "## 9. Maximising"\nshow = ["figure", {figure = "post = model."}]\n',
            "more than one figure",
        ),
    ],
)
def test_a_spec_that_cannot_be_read_is_a_clear_error(tmp_path, text, message):
    with pytest.raises(slides.SlidesError, match=re.escape(message)):
        slides.build(_spec_file(tmp_path, text), tmp_path / "out")


def test_the_command_line_reports_an_error_and_exits_1(tmp_path, capsys):
    spec = _spec_file(tmp_path, DECK + '\n[[deck.slide]]\nsection = "## 42."\nshow = ["intro"]\n')
    assert slides.main(["--spec", str(spec), "--check"]) == 1
    assert "tools.slides: deck session 9, slide 2" in capsys.readouterr().err


def test_the_build_never_writes_over_files_it_did_not_write(tmp_path):
    spec = _spec_file(tmp_path, DECK + '\n[[deck.slide]]\nsection = "## Summary"\nshow = ["intro"]\n')
    mine = tmp_path / "lecture"
    mine.mkdir()
    (mine / "my_notes.html").write_text("mine")
    with pytest.raises(slides.SlidesError, match="was not written by tools.slides"):
        slides.build(spec, mine)
    assert [p.name for p in mine.iterdir()] == ["my_notes.html"]
    # a folder of its own: a rebuild replaces what the last build wrote, and only that
    out = tmp_path / "out"
    slides.build(spec, out)
    (out / "session_9.html").write_text("stale")
    (out / "kept.txt").write_text("a file of the user's, next to the decks")
    slides.build(spec, out)
    assert (out / "session_9.html").read_text() != "stale"
    assert (out / "kept.txt").read_text().startswith("a file")


def test_markdown_is_cut_at_headings_outside_code_fences():
    text = "## A\ntext\n```python\n# a comment, not a heading\n```\n### B\nmore\n\n$$\nx\n\ny\n$$"
    assert [(level, t.split("\n")[0]) for level, t in slides.split_markdown(text)] == [(2, "## A"), (3, "### B")]
    assert slides.paragraphs("one\ntwo\n\n$$\nx\n\ny\n$$\n\nthree") == ["one\ntwo", "$$\nx\n\ny\n$$", "three"]


def test_a_bar_inside_a_table_cell_stays_in_its_cell():
    table = "| a | b |\n|---|---|\n| 1 | q(z|x,y) and $|x|$ |\n"
    rendered = slides.markdown_html(table)
    assert "<table>" in rendered and "<td>q(z|x,y) and $\\vert x\\vert $</td>" in rendered


# ------------------------------------------------------------------------------------------
# In the browser
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(built):
    """The built decks, served on localhost (a free port) for the module's duration."""
    with lb.serve_folder(built[0]) as url:
        yield url


# What a deck looks like once slides.js has fitted it: per slide its font scale, whether it overflows
# the page, its figure's height; the images that did not load; the math MathJax rendered, or failed on;
# and the raw TeX left on the slides (innerText skips the speaker notes, which keep their TeX).
STATE_JS = """() => {
  const H = Reveal.getConfig().height;
  const slides = Reveal.getSlides().map((s, i) => {
    const figure = s.querySelector(':scope > .r-stretch');
    return {i, scale: parseFloat(s.dataset.fontScale), height: s.scrollHeight,
            wide: Array.from(s.querySelectorAll('.part')).filter(p => p.scrollWidth > s.clientWidth + 2).length,
            figure: figure ? figure.offsetHeight : null, equation: !!s.querySelector('.part.equation'),
            title: (s.querySelector('h2, h1') || {}).innerText};
  });
  const text = document.querySelector('.reveal .slides').innerText;
  return {ready: Reveal.isReady(), total: Reveal.getTotalSlides(), H, slides,
          broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length,
          images: document.images.length,
          math: document.querySelectorAll('.reveal .slides .MathJax').length,
          mathErrors: document.querySelectorAll('.MathJax_Error, .merror, .MathJax .noError').length,
          rawTex: ['$$', '\\\\(', '\\\\[', '$'].filter(t => text.includes(t))};
}"""


@pytest.mark.browser
def test_every_deck_in_chromium(browser, server, built, capsys):
    out, decks, build_s = built
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*.png"):
        stale.unlink()
    started = time.monotonic()
    context = browser.new_context(viewport={"width": PAGE[0], "height": PAGE[1]})
    blocked = lb.local_only(context)
    failed: list[str] = []
    page = context.new_page()
    page.set_default_timeout(60_000)
    # MathJax probes web-font support with a font whose source is about:blank, which the browser refuses
    page.on("requestfailed", lambda r: failed.append(r.url) if r.url != "about:blank" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    report, shots = [], []
    try:
        for deck in decks:
            where = deck.file_name
            page.goto(f"{server}/{where}")
            page.wait_for_function("document.body.dataset.slidesFitted === 'true'")
            state = page.evaluate(STATE_JS)
            assert state["ready"], f"{where}: reveal.js is not ready"
            assert state["total"] == deck.slide_count, (
                f"{where}: {state['total']} slides, the spec asks for {deck.slide_count}"
            )
            assert state["broken"] == 0, f"{where}: {state['broken']} of {state['images']} images did not load"
            assert state["math"] > 0 and state["mathErrors"] == 0, (
                f"{where}: math {state['math']}, errors {state['mathErrors']}"
            )
            assert state["rawTex"] == [], f"{where}: raw TeX left on the slides: {state['rawTex']}"
            for s in state["slides"]:
                what = f"{where}, slide {s['i'] + 1} ({s['title']!r})"
                assert s["height"] <= state["H"] + 1, f"{what} overflows the page: {s['height']} px of {state['H']}"
                assert s["wide"] == 0, f"{what}: a block is wider than the slide"
                assert s["scale"] >= MIN_FONT_SCALE, f"{what}: font scale {s['scale']}"
                if s["figure"] is not None:
                    assert s["figure"] >= MIN_FIGURE * state["H"], f"{what}: the figure is {s['figure']} px high"
            # the keyboard reaches the last slide
            page.evaluate("Reveal.configure({transition: 'none'})")
            page.locator(".reveal").focus()
            page.keyboard.press("End")
            page.wait_for_function("Reveal.isLastSlide()")
            if deck.session == 1:
                shots += _screenshots(page, state)
                _speaker_view(context, page)
            scales = [s["scale"] for s in state["slides"]]
            report.append(
                f"{where}: {state['total']} slides, {state['images']} figures, smallest font scale {min(scales)}"
            )
        assert blocked == [], f"requests outside localhost: {blocked}"
        assert failed == [], f"failed requests: {failed}"
    except BaseException:
        try:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
        except Exception:  # noqa: BLE001 - keep the original failure
            pass
        raise
    finally:
        context.close()
        with capsys.disabled():
            print(f"\n[slides] built in {build_s:.1f} s; {time.monotonic() - started:.1f} s in the browser")
            for line in report:
                print(f"[slides] {line}")
            print(f"[slides] screenshots in {ARTIFACTS}: {', '.join(p.name for p in shots)}")


def _screenshots(page, state) -> list[Path]:
    """The first slide with equations (and no figure) and the first with a figure (and no equation), as PNGs."""
    shots = []
    for kind, pick in (
        ("equation", lambda s: s["equation"] and s["figure"] is None),
        ("figure", lambda s: s["figure"] is not None and not s["equation"]),
    ):
        index = next(s["i"] for s in state["slides"] if pick(s))
        page.evaluate(f"Reveal.slide({index})")
        page.wait_for_function(f"Reveal.getIndices().h === {index}")
        path = ARTIFACTS / f"session_1-slide_{index + 1}-{kind}.png"
        page.screenshot(path=str(path))
        shots.append(path)
    return shots


def _speaker_view(context, page) -> None:
    """Key S opens the speaker view, which shows the current slide's notes."""
    page.evaluate("Reveal.slide(3)")  # "2. The bound via Jensen's inequality": its notes hold the section's text
    with context.expect_page() as opened:
        page.keyboard.press("s")
    speaker = opened.value
    speaker.wait_for_function(
        "(document.querySelector('.speaker-controls-notes .value') || {innerText: ''}).innerText"
        ".includes('Multiply and divide by')",
        timeout=30_000,
    )
    speaker.close()
