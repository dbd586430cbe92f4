"""One reveal.js slide deck per course session, built from the notebooks' own cells.

    python -m tools.slides                 # every deck: build/slides/session_N.html and index.html
    python -m tools.slides --session 4     # only session 4 (repeat --session for more)
    python -m tools.slides --check         # resolve every selection, write nothing
    python -m tools.slides --spec my.toml --out /tmp/decks

``make slides`` runs the first. The spec ``kit/slides/decks.toml`` lists, per course session
(COURSE_GUIDE.md, section 3), a title and the slides: each slide names a notebook, a section by
the start of its heading (``"## 2. The bound via Jensen"``) and what to show from that section:
its opening text, its display equations, a paragraph, a code cell, a figure, by keys that quote the
notebook (see the spec's header). The cells are taken as committed, stored outputs included:
nothing is executed. What a slide shows only in part (a paragraph around an equation, the
comment under a figure) goes into its speaker notes.

A key that no longer matches the notebooks (a heading renamed, a quoted snippet gone or found
twice) stops the build before anything is written, with a message naming the deck, the notebook
and the key.

The decks work offline, opened straight from the disk: reveal.js is vendored under
``kit/slides/vendor/`` and MathJax 2.7 is copied from the pip package jupyter-server-mathjax, both
into ``build/slides/assets/``; figures are embedded in the pages. The layout (1280x720) lives in
``kit/slides/deck.html.j2``, ``slides.css`` and ``slides.js``; slides.js shrinks the text of a
slide that would overflow, and gives a figure the height that the text leaves.

Needs nbconvert (its Markdown renderer, with math), Jinja2, Pygments (the test extra) and
jupyter-server-mathjax (the kit extra): ``pip install -e ".[test,kit]"``.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools import colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KIT = ROOT / "kit" / "slides"
SPEC = KIT / "decks.toml"
OUT = ROOT / "build" / "slides"
MANIFEST = ".tools-slides.json"  # in the output folder: what the last build wrote there (and may replace)
SKIPPED_TAGS = ("solution", "quiz")  # answers and quiz cells (any tag naming them) never go on a slide
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
NBVAL_MARKER = re.compile(r"^\s*# NBVAL_\w+\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INSTALL = 'pip install -e ".[test,kit]"'


class SlidesError(Exception):
    """A spec that cannot be read or a selection that does not match (the message says which and why)."""


# ------------------------------------------------------------------------------------------
# The notebooks, cut into chunks: a code cell, or a markdown cell's text under one heading
# ------------------------------------------------------------------------------------------


@dataclass
class Chunk:
    kind: str  # "markdown" or "code"
    source: str  # a markdown chunk's text starts with its heading line, if it has one
    cell: dict
    cell_index: int
    level: int = 0  # the heading's level (1 for "#"), 0 without a heading

    @property
    def tags(self) -> set[str]:
        return set(self.cell.get("metadata", {}).get("tags", []))

    @property
    def body(self) -> str:
        """The text without its heading line."""
        return self.source.split("\n", 1)[1].strip() if self.level else self.source.strip()

    @property
    def heading(self) -> str:
        return self.source.split("\n", 1)[0].strip() if self.level else ""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _outside_blocks(lines: list[str]):
    """Yield (line, outside) for each line; outside is False within a code fence or a $$ block."""
    fence = math = False
    for line in lines:
        inside = fence or math
        if FENCE.match(line):
            fence = not fence
            inside = True
        elif not fence and line.count("$$") % 2:
            math = not math
            inside = True
        yield line, not inside


def split_markdown(source: str) -> list[tuple[int, str]]:
    """(level, text) pieces of a markdown cell, cut before each heading line (not in code fences)."""
    pieces: list[tuple[int, list[str]]] = [(0, [])]
    for line, outside in _outside_blocks(source.splitlines()):
        match = HEADING.match(line) if outside else None
        if match:
            pieces.append((len(match.group(1)), [line]))
        else:
            pieces[-1][1].append(line)
    return [(level, "\n".join(lines).strip()) for level, lines in pieces if "\n".join(lines).strip()]


def paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines (a code fence or a $$ block with blank lines stays whole)."""
    blocks, current = [], []
    for line, outside in _outside_blocks(text.splitlines()):
        if outside and not line.strip():
            if current:
                blocks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


class Notebook:
    """A committed notebook, read once: its chunks and its title."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        nb = json.loads(path.read_text(encoding="utf-8"))
        self.chunks: list[Chunk] = []
        for i, cell in enumerate(nb["cells"]):
            source = _text(cell.get("source"))
            if cell["cell_type"] == "markdown":
                self.chunks += [Chunk("markdown", text, cell, i, level) for level, text in split_markdown(source)]
            elif cell["cell_type"] == "code":
                self.chunks.append(Chunk("code", source, cell, i))
        titles = [c.heading.lstrip("# ") for c in self.chunks if c.level == 1]
        self.title = titles[0] if titles else path.stem

    def section(self, key: str) -> Section:
        """The section whose heading starts with ``key`` (exactly one), up to the next heading of its level or above."""
        starts = [i for i, c in enumerate(self.chunks) if c.level and c.heading.startswith(key.strip())]
        if len(starts) != 1:
            headings = [c.heading for c in self.chunks if c.level]
            found = "no heading" if not starts else f"{len(starts)} headings"
            raise SelectionError(
                f'section = "{key}": {found} of {self.name} start(s) with it. Its headings: ' + "; ".join(headings)
            )
        start = starts[0]
        head = self.chunks[start]
        end = next(
            (j for j in range(start + 1, len(self.chunks)) if 0 < self.chunks[j].level <= head.level),
            len(self.chunks),
        )
        # the main path only, unless the section asked for is itself optional
        optional_ok = "optional" in head.tags
        body = [
            c
            for c in self.chunks[start + 1 : end]
            if not any(skip in tag for tag in c.tags for skip in SKIPPED_TAGS)
            and (optional_ok or "optional" not in c.tags)
        ]
        return Section(self, head, body)


class SelectionError(SlidesError):
    """A key of the spec that matches nothing, or more than one thing, in its notebook."""


@dataclass
class Section:
    notebook: Notebook
    head: Chunk
    body: list[Chunk]

    @property
    def chunks(self) -> list[Chunk]:
        return [self.head, *self.body]

    @property
    def title(self) -> str:
        return self.head.heading.lstrip("#").strip()

    def one(self, kind: str, snippet: str, what: str) -> Chunk:
        """The one chunk of ``kind`` in this section whose source contains ``snippet``."""
        found = [c for c in self.chunks if c.kind == kind and snippet in c.source]
        if len(found) != 1:
            where = f"cells {', '.join(str(c.cell_index) for c in found)}" if found else "none"
            raise SelectionError(
                f'{what} = "{snippet}": {len(found)} {kind} cells of section "{self.title}" contain it ({where}); '
                + ("quote text that is in exactly one" if found else "quote text that is in one of them")
            )
        return found[0]

    def first_figure(self) -> Chunk:
        for c in self.body:
            if c.kind == "code" and _images(c.cell):
                return c
        raise SelectionError(f'figure: section "{self.title}" has no code cell with a stored figure')

    def after(self, chunk: Chunk) -> Chunk | None:
        """The markdown chunk right after ``chunk`` in this section (the notebook's comment on a figure)."""
        chunks = self.chunks
        i = chunks.index(chunk)
        nxt = chunks[i + 1] if i + 1 < len(chunks) else None
        return nxt if nxt is not None and nxt.kind == "markdown" and not nxt.level else None


# ------------------------------------------------------------------------------------------
# HTML for markdown, code and stored outputs
# ------------------------------------------------------------------------------------------


def _require():
    try:
        import jinja2  # noqa: F401
        import pygments  # noqa: F401
        from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath  # noqa: F401
    except ImportError as error:
        raise SlidesError(f"{error.name or error} is not installed; install it with: {INSTALL}") from None


def protect_table_pipes(source: str) -> str:
    """Protect the | inside brackets or $math$ of table rows, which would otherwise split a cell.

    "| IS, proposal q(z|x,y) |" is one cell to a reader; to GitHub's table syntax it is two (JupyterLab
    drops the extra one, mistune renders no table at all). So a bar in brackets is escaped (\\|), and
    one in math becomes TeX's \\vert.
    """
    lines = []
    for line in source.split("\n"):
        if line.lstrip().startswith("|"):
            chars, depth, math = [], 0, False
            for i, ch in enumerate(line):
                if ch == "$":
                    math = not math
                elif ch in "([{":
                    depth += 1
                elif ch in ")]}":
                    depth = max(depth - 1, 0)
                elif ch == "|" and math and line[i - 1] != "\\":
                    ch = "\\vert "  # the same bar to TeX
                elif ch == "|" and depth and line[i - 1] != "\\":
                    ch = "\\|"
                chars.append(ch)
            line = "".join(chars)
        lines.append(line)
    return "\n".join(lines)


def markdown_html(source: str, attachments: dict | None = None) -> str:
    """Markdown to HTML with nbconvert's renderer: math kept as $...$ for MathJax, attachments inlined."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, exclude_anchor_links=True, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(protect_table_pipes(source))


def inline_html(text: str) -> str:
    """One line of markdown (a heading's text) as inline HTML: `code`, *emphasis* and $math$ kept."""
    rendered = markdown_html(re.sub(r"^(\d+)\.", r"\1\\.", text)).strip()  # "1. Title" is no list
    return rendered[3:-4] if rendered.startswith("<p>") and rendered.endswith("</p>") else rendered


def code_html(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    lines = [line for line in source.rstrip().splitlines() if not NBVAL_MARKER.match(line)]
    return highlight("\n".join(lines).strip("\n"), PythonLexer(), HtmlFormatter(cssclass="highlight"))


def _images(cell: dict) -> list[tuple[str, str]]:
    """(mime type, data) of each stored image output of a code cell."""
    images = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        for mime in IMAGE_TYPES:
            if mime in data:
                images.append((mime, _text(data[mime])))
                break
    return images


def figure_html(cell: dict, alt: str) -> str:
    imgs = []
    for mime, data in _images(cell):
        if mime == "image/svg+xml":
            data = base64.b64encode(data.encode()).decode()
        src = f"data:{mime};base64,{data.replace(chr(10), '')}"
        imgs.append(f'<img src="{src}" alt="{html.escape(alt)}">')
    return f'<div class="part figure" data-images="{len(imgs)}">{"".join(imgs)}</div>'


def text_outputs_html(cell: dict) -> list[str]:
    """The stored outputs of a code cell that are not images: printed text, Markdown, HTML, errors."""
    from nbconvert.filters.ansi import ansi2html

    parts = []
    for output in cell.get("outputs", []):
        kind, data = output.get("output_type"), output.get("data", {})
        if kind == "stream":
            parts.append(f'<pre class="part output">{ansi2html(_text(output.get("text")))}</pre>')
        elif kind == "error":
            parts.append(f'<pre class="part output error">{ansi2html(chr(10).join(output.get("traceback", [])))}</pre>')
        elif any(mime in data for mime in IMAGE_TYPES):
            continue
        elif "text/markdown" in data:
            parts.append(f'<div class="part output markdown">{markdown_html(_text(data["text/markdown"]))}</div>')
        elif "text/html" in data:
            parts.append(f'<div class="part output html">{_text(data["text/html"])}</div>')
        elif "text/plain" in data:
            parts.append(f'<pre class="part output">{html.escape(_text(data["text/plain"]))}</pre>')
    return parts


# ------------------------------------------------------------------------------------------
# The spec: decks, slides, and what each slide shows
# ------------------------------------------------------------------------------------------

PART_KEYS = {
    "intro": "the section's opening text, in full (the text under its heading)",
    "equations": "the display equations ($$...$$) of the opening text; {equations = 'quote'}: of the text quoting it",
    "paragraph": "{paragraph = 'quote'}: the one paragraph of the section that quotes it",
    "markdown": "{markdown = 'quote'}: the whole markdown cell (text under one heading) that quotes it",
    "figure": "the section's first stored figure; {figure = 'quote'}: the figures of the code cell quoting it",
    "code": "{code = 'quote'}: the code cell quoting it, without its outputs",
    "output": "{output = 'quote'}: the stored outputs of the code cell quoting it, without its code",
    "cell": "{cell = 'quote'}: the code cell quoting it, with its stored outputs",
}
BARE_PARTS = {"intro", "equations", "figure"}  # the parts that may be written as a plain string


@dataclass
class Slide:
    title: str
    parts: list[str]  # HTML elements, each a direct child of the slide
    notes: list[str]  # markdown of the text the slide shows only in part
    source: str  # "notebook 1: 2. The bound ..."

    @property
    def figure(self) -> bool:
        return any('class="part figure' in part for part in self.parts)

    @property
    def title_html(self) -> str:
        return inline_html(self.title)

    @property
    def source_html(self) -> str:
        return inline_html(self.source)


@dataclass
class Deck:
    session: int
    title: str
    subtitle: str
    slides: list[Slide] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return f"session_{self.session}.html"

    @property
    def slide_count(self) -> int:
        return len(self.slides) + 1  # the title slide


def read_spec(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SlidesError(f"reading {path} on Python 3.10 needs tomli: pip install tomli (or {INSTALL})") from None
    if not path.is_file():
        raise SlidesError(f"no deck spec at {path} (expected the TOML file that lists the decks, like {SPEC})")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SlidesError(f"{path} is not valid TOML: {error}") from None
    decks = spec.get("deck")
    if not isinstance(decks, list) or not decks:
        raise SlidesError(f"{path} defines no [[deck]] tables")
    sessions = [d.get("session") for d in decks]
    if len(set(map(str, sessions))) != len(sessions):
        raise SlidesError(f"{path}: two [[deck]] tables have the same session number ({sessions})")
    return spec


def _parts(where: str, slide: dict) -> list[tuple[str, object]]:
    show = slide.get("show")
    if not isinstance(show, list) or not show:
        raise SlidesError(f"{where}: `show` must be a non-empty list of parts ({', '.join(PART_KEYS)})")
    parts = []
    for item in show:
        if isinstance(item, str) and item in BARE_PARTS:
            parts.append((item, None))
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) in PART_KEYS:
            key, value = next(iter(item.items()))
            if not isinstance(value, str) or not value.strip():
                raise SlidesError(f"{where}: {{{key} = ...}} needs a quote from the notebook (a non-empty string)")
            parts.append((key, value))
        else:
            choices = "; ".join(f"{k}: {v}" for k, v in PART_KEYS.items())
            raise SlidesError(f"{where}: cannot read the part {item!r}. A part is one of: {choices}")
    return parts


def find_notebook(ref: str, notebooks: Path) -> Path:
    found = sorted(notebooks.glob(f"{ref}*.ipynb")) if ref else []
    if len(found) != 1:
        raise SlidesError(f'notebook = "{ref}" names {len(found)} notebooks in {notebooks} (give the number, "01")')
    return found[0]


class Builder:
    """Resolves the spec's decks against the notebooks (each notebook read once)."""

    def __init__(self, spec: dict, notebooks: Path = NOTEBOOKS):
        self.spec, self.notebooks_dir, self._notebooks = spec, notebooks, {}

    def notebook(self, ref: str) -> Notebook:
        path = find_notebook(str(ref), self.notebooks_dir)
        if path not in self._notebooks:
            self._notebooks[path] = Notebook(path)
        return self._notebooks[path]

    def decks(self, sessions: list[int] | None = None) -> list[Deck]:
        wanted = [d for d in self.spec["deck"] if sessions is None or d.get("session") in sessions]
        if sessions and len(wanted) != len(set(sessions)):
            known = [d.get("session") for d in self.spec["deck"]]
            raise SlidesError(f"--session {sessions}: the spec has decks for sessions {known}")
        return [self.deck(d) for d in wanted]

    def deck(self, spec: dict) -> Deck:
        session = spec.get("session")
        label = f"deck session {session}"
        if not isinstance(session, int) or not isinstance(spec.get("title"), str):
            raise SlidesError(f"{label}: a [[deck]] needs `session` (a number) and `title` (a string)")
        slides = spec.get("slide")
        if not isinstance(slides, list) or not slides:
            raise SlidesError(f"{label}: no [[deck.slide]] tables")
        deck = Deck(session, spec["title"], spec.get("subtitle", ""))
        for n, slide in enumerate(slides, start=2):  # slide 1 is the title slide
            ref = slide.get("notebook", spec.get("notebook"))
            where = f'{label}, slide {n} (section "{slide.get("section")}")'
            if ref is None or not isinstance(slide.get("section"), str):
                raise SlidesError(f"{where}: a slide needs `section` and a `notebook` (its own or the deck's)")
            try:
                nb = self.notebook(ref)
            except SlidesError as error:
                raise SlidesError(f"{where}: {error}") from None
            try:
                deck.slides.append(self.slide(nb, slide, _parts(where, slide)))
            except SelectionError as error:
                raise SelectionError(f"{where}, notebook {nb.name}: {error}") from None
            if nb.name not in deck.notebooks:
                deck.notebooks.append(nb.name)
        if not deck.subtitle:
            titles = [re.sub(r"^(\d+)\. ", r"\1: ", self.notebook(n[:2]).title) for n in deck.notebooks]
            deck.subtitle = " · ".join(f"Notebook {t}" for t in titles)  # "Notebook 1: The ELBO"
        return deck

    def slide(self, nb: Notebook, spec: dict, parts: list[tuple[str, object]]) -> Slide:
        section = nb.section(spec["section"])
        number = nb.name[:2].lstrip("0")
        slide = Slide(spec.get("title", section.title), [], [], f"notebook {number}: {section.title}")
        shown: set[int] = set()  # chunks shown whole
        partly: list[Chunk] = []  # chunks shown in part: their text goes to the notes
        for key, value in parts:
            chunk = self.add_part(slide, section, key, value)
            if key in ("intro", "markdown"):
                shown.add(id(chunk))
            elif key in ("equations", "paragraph"):
                partly.append(chunk)
            else:
                partly.append(section.after(chunk) or section.head)
        if sum('class="part figure' in p for p in slide.parts) > 1:
            raise SelectionError("this slide would hold more than one figure: put each on its own slide")
        seen = set()
        for chunk in [section.head, *partly]:
            if id(chunk) not in shown and id(chunk) not in seen and chunk.body:
                seen.add(id(chunk))
                slide.notes.append(markdown_html(chunk.body, chunk.cell.get("attachments")))
        return slide

    def add_part(self, slide: Slide, section: Section, key: str, value) -> Chunk:
        """Append the HTML of one part to ``slide``; return the chunk it came from."""
        if key in ("intro", "markdown"):
            return self.text_part(slide, section, key, value)
        if key == "equations":
            chunk = section.head if value is None else section.one("markdown", value, key)
            equations = DISPLAY_MATH.findall(chunk.body)
            if not equations:
                raise SelectionError(f'equations: the text of "{chunk.heading or chunk.body[:60]}" has no $$ equation')
            slide.parts += [f'<div class="part equation">$${html.escape(e, quote=False)}$$</div>' for e in equations]
            return chunk
        if key == "paragraph":
            found = [(c, p) for c in section.chunks if c.kind == "markdown" for p in paragraphs(c.body) if value in p]
            if len(found) != 1:
                raise SelectionError(
                    f'paragraph = "{value}": {len(found)} paragraphs of section "{section.title}" contain it'
                )
            chunk, text = found[0]
            slide.parts.append(f'<div class="part markdown">{markdown_html(text, chunk.cell.get("attachments"))}</div>')
            return chunk
        return self.code_part(slide, section, key, value)

    @staticmethod
    def text_part(slide: Slide, section: Section, key: str, value) -> Chunk:
        """A whole markdown text; one with an attached image (a screenshot) counts as the slide's figure."""
        chunk = section.head if key == "intro" else section.one("markdown", value, key)
        if not chunk.body:
            raise SelectionError(f'{key}: "{chunk.heading}" has no text under it')
        rendered = markdown_html(chunk.body, chunk.cell.get("attachments"))
        kind = "part figure markdown" if "<img" in rendered else "part markdown"
        slide.parts.append(f'<div class="{kind}">{rendered}</div>')
        return chunk

    @staticmethod
    def code_part(slide: Slide, section: Section, key: str, value) -> Chunk:
        """A code cell's source (code, cell), its stored figures (figure, output, cell), its other outputs."""
        chunk = section.first_figure() if value is None else section.one("code", value, key)
        images = _images(chunk.cell)
        if key in ("code", "cell"):
            slide.parts.append(f'<div class="part code">{code_html(chunk.source)}</div>')
        if key == "figure" and not images:
            raise SelectionError(f'figure = "{value}": that code cell (cell {chunk.cell_index}) stores no figure')
        if key in ("figure", "output", "cell") and images:
            slide.parts.append(figure_html(chunk.cell, f"figure of {slide.source}"))
        if key in ("output", "cell"):
            texts = text_outputs_html(chunk.cell)
            if key == "output" and not texts and not images:
                raise SelectionError(f'output = "{value}": that code cell (cell {chunk.cell_index}) stores no output')
            slide.parts += texts
        return chunk


# ------------------------------------------------------------------------------------------
# Writing the decks
# ------------------------------------------------------------------------------------------


def mathjax_dir() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise SlidesError(
            f"jupyter-server-mathjax (MathJax 2.7, offline) is not installed; install it with: {INSTALL}"
        ) from None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise SlidesError(f"{static} has no MathJax.js: reinstall jupyter-server-mathjax")
    return static


def prepare_out(out: Path) -> None:
    """Make ``out`` ready: empty, or holding a previous build only (which is removed); never anything else."""
    manifest = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise SlidesError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not manifest.is_file():
            raise SlidesError(
                f"{out} is not empty and was not written by tools.slides (no {MANIFEST} in it): "
                "choose another --out, or empty that folder yourself"
            )
        for name in json.loads(manifest.read_text())["written"]:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        manifest.unlink()
    out.mkdir(parents=True, exist_ok=True)


def render(decks: list[Deck], spec: dict, out: Path) -> list[str]:
    """Write the decks, the index and the assets into ``out``; return the names written at its top."""
    import jinja2
    from pygments.formatters import HtmlFormatter

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(KIT), autoescape=True, undefined=jinja2.StrictUndefined)
    series = spec.get("series", "")
    shutil.copytree(KIT / "vendor" / "reveal.js", out / "assets" / "reveal.js")
    shutil.copytree(mathjax_dir(), out / "assets" / "mathjax")
    for name in ("slides.css", "slides.js"):
        shutil.copy2(KIT / name, out / "assets" / name)
    (out / "assets" / "pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"))
    written = ["assets", "index.html"]
    for deck in decks:
        page = env.get_template("deck.html.j2").render(
            deck=deck, series=series, total=len(spec["deck"]), credit=colab.credit_line()
        )
        (out / deck.file_name).write_text(page, encoding="utf-8")
        written.append(deck.file_name)
    index = env.get_template("index.html.j2").render(decks=decks, series=series, credit=colab.credit_line())
    (out / "index.html").write_text(index, "utf-8")
    return written


def build(
    spec_path: Path = SPEC, out: Path = OUT, sessions: list[int] | None = None, *, write: bool = True
) -> list[Deck]:
    """Resolve every selection of the spec (all of them before writing anything), then write the decks."""
    _require()
    spec = read_spec(spec_path)
    decks = Builder(spec).decks(sessions)
    if write:
        prepare_out(out)
        written = render(decks, spec, out)
        (out / MANIFEST).write_text(json.dumps({"written": written}, indent=1))
    return decks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=SPEC, help=f"the deck spec (default: {SPEC.relative_to(ROOT)})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the output folder (default: {OUT.relative_to(ROOT)})")
    parser.add_argument(
        "--session",
        type=int,
        action="append",
        help="build only this session's deck (repeatable); the output folder then holds only these",
    )
    parser.add_argument("--check", action="store_true", help="resolve every selection, write nothing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        decks = build(args.spec, args.out, args.session, write=not args.check)
    except SlidesError as error:
        print(f"tools.slides: {error}", file=sys.stderr)
        return 1
    for deck in decks:
        target = "checked" if args.check else args.out / deck.file_name
        print(f"session {deck.session}: {deck.slide_count:2d} slides, {deck.title} -> {target}")
    where = "" if args.check else f"; open {args.out / 'index.html'}"
    print(f"{len(decks)} decks in {time.monotonic() - started:.1f} s{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
