"""The series as a website (``python -m tools.book``, ``make book``): built once, then read and opened.

The site is built once per module into a temporary folder, from the committed notebooks (nothing runs).
Without a browser the tests check the staged sources (every link that left the site was rewritten; the
notebooks' attachments are files), the built pages (no http(s) script, stylesheet, image or font; every
local link and image resolves; the index lists every notebook in order with its Colab link), the link
rewriting on small cases, and the errors for a missing notebooks folder, a missing kit and a broken
cross-reference.

The browser test (marked ``browser``) serves the site from a local http.server thread on 127.0.0.1 and
opens EVERY page in Debian's Chromium (Playwright; never ``playwright install``), every request to any
other host aborted and recorded. Each page must load without a failed request or console error; MathJax
must finish with no raw TeX left (``$$``, ``\\(``, ``\\[`` outside code) and no TeX error; every image must
load; every local link must reach an existing page and anchor; each notebook page must show its figures,
and notebook 6's page its sampler screenshot. A screenshot of notebook 1 (at its first displayed
equation) goes to ``artifacts/book/`` (``CVAE_ARTIFACTS_DIR`` moves it). Without Playwright or Chromium the
browser test skips and says what to install; ``CVAE_BROWSER_REQUIRED=1`` (CI) makes that a failure.

Run: ``.venv/bin/python -m pytest tests/test_book.py -v -p no:cacheprovider -o addopts=""``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from tools import book, book_check, book_links
from tools import lab_browser as lb
from tools.colab import BRANCH, colab_url, notebook_paths, repository_url

# Sphinx 9 deprecations inside myst-parser and sphinx-book-theme, not ours
pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated. Check CHANGES for Sphinx API")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebook_paths(ROOT / "notebooks")
ARTIFACTS = Path(os.environ.get("CVAE_ARTIFACTS_DIR", ROOT / "artifacts")).resolve() / "book"
PAGE_LOAD_S = 60  # one page, loaded and its math typeset (a few seconds here)


# ------------------------------------------------------------------------------------------------------
# The site, built once
# ------------------------------------------------------------------------------------------------------


def _kit_missing() -> list[str]:
    return [name for name in book.KIT_EXTRAS if importlib.util.find_spec(name) is None]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(site folder, staging folder, build seconds): the website of the committed notebooks."""
    missing = _kit_missing()
    if missing:
        pytest.skip(f"the kit extra is missing ({', '.join(missing)}); install it with: {book.INSTALL_KIT}")
    folder = tmp_path_factory.mktemp("book")
    try:
        result = book.build_book(folder / "book", folder / "book-src")
    except book.BookError as error:
        pytest.fail(f"python -m tools.book failed:\n{error}", pytrace=False)
    print(f"\n[book] built in {result.seconds:.1f} s: {result.pages} pages, {result.megabytes:.1f} MB")
    return folder / "book", folder / "book-src", result.seconds


@pytest.fixture(scope="module")
def site(built) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def staging(built) -> Path:
    return built[1]


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def _staged_texts(staging: Path):
    """(file name, markdown text) of every staged page: each markdown file and notebook markdown cell."""
    for path in sorted(staging.glob("*.md")):
        yield path.name, path.read_text()
    for path in sorted(staging.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                yield path.name, "".join(cell["source"])


# ------------------------------------------------------------------------------------------------------
# Without a browser
# ------------------------------------------------------------------------------------------------------


def test_the_originals_have_links_that_leave_the_site():
    """The premise of the next test: the guide and the README link to files the site does not hold."""
    guide = book_links.link_targets((ROOT / book.GUIDE).read_text())
    readme = book_links.link_targets((ROOT / "README.md").read_text())
    assert "../README.md" in guide and "../cvae_utils/config.py" in guide
    assert "notebooks/01_the_elbo.ipynb" in readme and "data/README.md" in readme


def test_staged_sources_rewrote_every_outside_link(staging):
    pages = {p.name for p in staging.iterdir()}
    checked = 0
    for name, text in _staged_texts(staging):
        assert "attachment:" not in text, f"{name}: an attachment was left for myst-nb, which cannot show it"
        for target in book_links.link_targets(text):
            checked += 1
            assert not target.startswith("../"), f"{name}: {target!r} still points outside the site"
            if book_links.is_outside_link(target):  # relative: it must name a file of the staged site
                path = urllib.parse.unquote(target.partition("#")[0])
                assert (staging / path).is_file(), f"{name}: {target!r} names no staged file"
                assert path.split("/")[0] in pages, target
    assert checked > 100, f"only {checked} links found in the staged pages"
    guide = (staging / "COURSE_GUIDE.md").read_text()
    assert "](about.md)" in guide and "](results.md)" in guide
    assert f"]({repository_url()}/blob/{BRANCH}/cvae_utils/config.py)" in guide
    assert f"]({repository_url()}/tree/{BRANCH}/cvae_utils/exercises)" in guide
    about = (staging / "about.md").read_text()
    assert about.startswith(f"# {book.ABOUT_TITLE}\n") and "](01_the_elbo.ipynb)" in about


def test_built_pages_load_nothing_from_the_web_and_links_resolve(site):
    pages = _pages(site)
    assert {p.name for p in pages} >= {
        "index.html",
        "COURSE_GUIDE.html",
        "about.html",
        "results.html",
        *(nb.with_suffix(".html").name for nb in NOTEBOOKS),
    }
    for path in pages:
        parsed = book_check.parse_page(path)
        web = [url for _, url in parsed.resources if book_check.is_web_url(url)]
        assert not web, f"{path.name} loads from the web: {web}"
        assert not re.search(r"<script[^>]+src=[\"'](https?:)?//", path.read_text()), path.name
    assert book_check.check_site(site) == []
    assert (site / "_static" / "mathjax" / "MathJax.js").is_file()
    notebook_1 = (site / "01_the_elbo.html").read_text()
    assert 'src="_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"' in notebook_1
    assert "application/vnd.jupyter.widget" not in (site / "06_conditional_sampling.html").read_text()
    assert not list(site.rglob("require*.js")) and "require.js" not in notebook_1


def test_solutions_start_folded_and_widgets_show_their_text(site):
    """A solution's input, collapsed in JupyterLab, is behind a "Show code cell source" toggle on the site."""
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text())["cells"]
        collapsed = sum(c.get("metadata", {}).get("jupyter", {}).get("source_hidden", False) for c in cells)
        html = (site / notebook.with_suffix(".html").name).read_text()
        assert len(re.findall(r'<details class="[^"]*\bhide above-input"', html)) == collapsed, notebook.name
    page_6 = (site / "06_conditional_sampling.html").read_text()
    assert "VBox(children=(ToggleButtons(description=" in page_6  # the sampler's text fallback, not an empty box


def test_the_students_site_leaves_the_solutions_out(tmp_path):
    """make book STUDENTS=1: the same site without the exercises' solution cells (as the student handouts)."""
    if _kit_missing():
        pytest.skip("the kit extra is missing")
    result = book.build_book(tmp_path / "book", tmp_path / "book-src", students=True)
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text())["cells"]
        solutions = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
        html = (tmp_path / "book" / notebook.with_suffix(".html").name).read_text()
        assert solutions and "Solution to exercise" not in html, notebook.name
        assert not re.search(r'<details class="[^"]*\bhide above-input"', html), notebook.name  # nothing folded
        first_lines = ["".join(c["source"]).splitlines()[1].strip() for c in solutions if len(c["source"]) > 1]
        assert not any(line and line in html for line in first_lines if len(line) > 25), notebook.name
    print(f"\n[book] the students' site built in {result.seconds:.1f} s")


def test_index_lists_the_notebooks_in_order_and_how_to_run_them(site):
    index = (site / "index.html").read_text()
    positions = [index.find(f'href="{nb.stem}.html"') for nb in NOTEBOOKS]
    assert all(p > 0 for p in positions) and positions == sorted(positions), positions
    for notebook in NOTEBOOKS:
        assert f'href="{colab_url(notebook.name)}"' in index, f"no Colab link for {notebook.name}"
        assert f'href="{colab_url(notebook.name)}"' in (site / notebook.with_suffix(".html").name).read_text()
    text = re.sub(r"<[^>]+>", "", index)
    assert 'href="COURSE_GUIDE.html"' in index and 'href="about.html"' in index
    assert "make lab" in text and f"git clone {repository_url()}" in text
    assert "@REPOSITORY" not in index and "<!-- notebooks -->" not in index and "toctree" not in text


def test_the_link_rewriter(tmp_path):
    rewriter = book_links.LinkRewriter({"notebooks/02_the_encoder.ipynb": "02_the_encoder.ipynb"}, tmp_path)
    source = "notebooks/COURSE_GUIDE.md"
    text = (
        "See [two](02_the_encoder.ipynb#the-prior) and [the data](../data/README.md), "
        "`[code](../README.md)`, [tests](../tests/) and ![figure](figures/sampler_widget.png).\n"
        "```\n[fenced](../nowhere.md)\n```\n"
        '<a href="../cvae_utils/config.py">config</a> [web](https://example.org/x.md) [here](#top)\n'
    )
    out = rewriter.rewrite(text, source)
    blob, tree = f"{repository_url()}/blob/{BRANCH}", f"{repository_url()}/tree/{BRANCH}"
    assert "[two](02_the_encoder.ipynb#the-prior)" in out
    assert f"[the data]({blob}/data/README.md)" in out and f"[tests]({tree}/tests)" in out
    assert "`[code](../README.md)`" in out and "[fenced](../nowhere.md)" in out  # code is left alone
    assert f'<a href="{blob}/cvae_utils/config.py">' in out
    assert "[web](https://example.org/x.md)" in out and "[here](#top)" in out
    assert "![figure](_repo/notebooks/figures/sampler_widget.png)" in out  # an image is copied into the site
    assert (tmp_path / "_repo" / "notebooks" / "figures" / "sampler_widget.png").is_file()
    assert rewriter.broken == []
    rewriter.rewrite("[gone](no_such_notebook.ipynb) [out](../../etc/passwd)", source)
    assert len(rewriter.broken) == 2 and "does not exist" in rewriter.broken[0]
    assert "outside the repository" in rewriter.broken[1]


def test_clear_errors(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no-notebooks"
    assert book.main(["--notebooks", str(missing), "--out", str(tmp_path / "o"), "--staging", str(tmp_path / "s")]) == 1
    assert f"the notebooks folder {missing} does not exist" in capsys.readouterr().err
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("a user's file")
    with pytest.raises(book.BookError, match="refusing to replace it"):
        book.stage(kept, ROOT / "notebooks")
    assert (kept / "notes.txt").read_text() == "a user's file"

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sphinx" else real_find_spec(name, *a)
    )
    with pytest.raises(book.BookError, match=r"missing: sphinx\. Install them with: make env"):
        book.require_kit()


def test_a_broken_cross_reference_fails_the_build(tmp_path):
    """A link to a heading that does not exist passes the rewriter (the page exists) but not Sphinx's -W."""
    if _kit_missing():
        pytest.skip(f"the kit extra is missing; install it with: {book.INSTALL_KIT}")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for path in NOTEBOOKS:  # without their outputs: the build takes a few seconds
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"] = []
        if path == NOTEBOOKS[0]:
            notebook["cells"][1]["source"] += "\n\nSee [the prior](02_the_encoder.ipynb#no-such-heading)."
        (notebooks / path.name).write_text(json.dumps(notebook))
    shutil.copy(ROOT / book.GUIDE, notebooks)
    with pytest.raises(book.BookError, match="no-such-heading") as error:
        book.build_book(tmp_path / "book", tmp_path / "book-src", notebooks)
    assert "Sphinx reported problems" in str(error.value)
    assert "01_the_elbo.ipynb" in str(error.value)  # the message names the page with the broken link
    assert not (tmp_path / "book").exists(), "a failed build left a site behind"


# ------------------------------------------------------------------------------------------------------
# In Chromium
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(site):
    """The site over http on 127.0.0.1 (a free port), from a thread; its base URL."""
    with lb.serve_folder(site) as url:
        yield url + "/"


# True once MathJax 2.7 has typeset the page: a callback queued on its Hub runs after the initial typeset
# (the Hub's queue starts when MathJax's startup ends); true at once on a page without MathJax.
MATHJAX_DONE_JS = """() => {
  if (!document.querySelector('script[src*="MathJax.js"]')) return true;
  if (!(window.MathJax && MathJax.Hub && MathJax.Hub.Queue)) return false;
  if (window.bookTestTypeset === undefined) {
    window.bookTestTypeset = false;
    MathJax.Hub.Queue(() => { window.bookTestTypeset = true; });
  }
  return window.bookTestTypeset;
}"""

# What a reader sees: the page's text outside code, scripts and MathJax's own bookkeeping.
PAGE_STATE_JS = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, textarea, .MathJax_Preview').forEach(e => e.remove());
  return {
    text: body.textContent,
    ids: Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.getAttribute('name')),
    links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
    images: Array.from(document.querySelectorAll('img'),
                       i => ({src: i.currentSrc || i.src, loaded: i.complete && i.naturalWidth > 0})),
    figures: document.querySelectorAll('.cell_output img').length,
    typeset: document.querySelectorAll('.MathJax, .MathJax_Display').length,
    math: document.querySelectorAll('.math').length,
    texErrors: Array.from(document.querySelectorAll('.noError, .merror, .MathJax_Error'), e => e.textContent),
  };
}"""

RAW_MATH = re.compile(r"\$\$|\\\(|\\\[")


def _visit(context, url: str) -> tuple[dict, list[str]]:
    """The page's state after load and MathJax, and its problems (failed requests, console errors)."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    try:
        page.goto(url, wait_until="load", timeout=PAGE_LOAD_S * 1000)
        page.wait_for_function(MATHJAX_DONE_JS, timeout=PAGE_LOAD_S * 1000, polling=100)
        return page.evaluate(PAGE_STATE_JS), problems
    finally:
        if url.endswith("01_the_elbo.html"):
            _screenshot(page)
        page.close()


def _screenshot(page) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    equation = page.locator("div.math").first
    if equation.count():
        equation.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.evaluate("() => window.scrollBy(0, -240)")
    page.screenshot(path=str(ARTIFACTS / "01_the_elbo.png"))


def _local_file(site: Path, base: str, url: str) -> tuple[Path, str] | None:
    """(file, fragment) for a link into the site; None for a link elsewhere."""
    if not url.startswith(base):
        return None
    parts = urllib.parse.urlsplit(url)
    path = site / urllib.parse.unquote(parts.path).lstrip("/")
    return (path / "index.html" if path.is_dir() else path), urllib.parse.unquote(parts.fragment)


@pytest.mark.browser
def test_every_page_in_chromium(browser, site, server, capsys):
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked = lb.local_only(context)  # every request that is not for 127.0.0.1 is aborted and recorded
    states, problems = {}, []
    try:
        for path in _pages(site):
            name = path.relative_to(site).as_posix()
            state, page_problems = _visit(context, server + name)
            states[path] = state
            problems += [f"{name}: {p}" for p in page_problems]
            raw = sorted(set(RAW_MATH.findall(state["text"])))
            if raw:
                at = RAW_MATH.search(state["text"]).start()
                problems.append(f"{name}: raw math {raw} left after MathJax: ...{state['text'][at - 60 : at + 60]!r}")
            if state["math"] and not state["typeset"]:
                problems.append(f"{name}: {state['math']} math elements, none typeset by MathJax")
            problems += [f"{name}: TeX error {e!r}" for e in state["texErrors"]]
            problems += [f"{name}: image not loaded {i['src']}" for i in state["images"] if not i["loaded"]]
    finally:
        context.close()
    assert not blocked, f"requests that left the machine: {blocked}"

    links = 0
    for path, state in states.items():
        for url in state["links"]:
            local = _local_file(site, server, url)
            if local is None:
                continue
            links += 1
            target, fragment = local
            if not target.is_file():
                problems.append(f"{path.name}: the link {url} points at a missing file")
            elif fragment and target.suffix == ".html":
                ids = states[target]["ids"] if target in states else book_check.parse_page(target).ids
                if fragment not in ids:
                    problems.append(f"{path.name}: the link {url} points at a missing anchor")
    for notebook in NOTEBOOKS:
        state = states[site / notebook.with_suffix(".html").name]
        if not state["figures"]:
            problems.append(f"{notebook.name}: no figure on its page")
    sampler = [i for i in states[site / "06_conditional_sampling.html"]["images"] if "sampler_widget" in i["src"]]
    if not (sampler and all(i["loaded"] for i in sampler)):
        problems.append(f"notebook 6's page does not show the sampler screenshot: {sampler}")
    assert not problems, "\n".join(problems)

    figures = {p.name: s["figures"] for p, s in states.items() if s["figures"]}
    math = sum(s["typeset"] for s in states.values())
    with capsys.disabled():
        print(
            f"\n[book] {len(states)} pages in Chromium in {time.monotonic() - started:.1f} s: {links} local links, "
            f"{math} formulas typeset, figures {figures}; screenshot {ARTIFACTS / '01_the_elbo.png'}"
        )
