"""The series as a static website: the committed notebooks with their stored outputs, the course guide and
the appendices, built with Sphinx (myst-nb, sphinx-book-theme). Nothing is executed and nothing is loaded
from the web: MathJax 2.7 comes from the pip package jupyter_server_mathjax and is copied into the site.

    python -m tools.book                      # make book: build/book/index.html
    python -m tools.book --students           # make book STUDENTS=1: build/book-students/, no solutions
    python -m tools.book --out DIR --staging DIR --notebooks DIR

The default site shows what the repository shows, the exercises' solutions folded under "Show code cell
source"; ``--students`` leaves the solution cells out (as the student handouts do), for a course that
posts the site before its students have done the exercises.

How: the sources in ``kit/book/`` (conf.py, index.md, _static/) and copies of the notebooks, the course
guide, README.md (as the page "About this series / set-up") and data/quadrants/results.md are staged in
``build/book-src/``. On the way every relative link is rewritten: a link to a page of the site points at
that page, a link to any other file of the repository points at the file on GitHub
(``tools.colab.repository_url()``, branch ``tools.colab.BRANCH``), and the notebooks' Colab badge image is
a local copy. A link to a file that does not exist stops the build, before Sphinx runs. Sphinx then builds
``build/book/`` with ``-W`` (any warning, a broken cross-reference above all, fails the build), and a last
check reads every page: no script, stylesheet, image or font from an http(s) URL, no local link or image
to a missing file or anchor.

The link rewriting lives in ``tools/book_links.py``, the last check in ``tools/book_check.py``.

Publish it by copying ``build/book/`` to any static host (GitHub Pages included); it needs no server code.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from tools.book_check import check_site
from tools.book_links import LOCAL_BADGE, LinkRewriter, outside_code
from tools.colab import BRANCH, REPOSITORY, colab_url, credit_line, notebook_paths, repository_url

ROOT = Path(__file__).resolve().parents[1]
KIT_DIR = ROOT / "kit" / "book"
NOTEBOOK_DIR = ROOT / "notebooks"
STAGING_DIR = ROOT / "build" / "book-src"
OUT_DIR = ROOT / "build" / "book"
STUDENTS_OUT_DIR = ROOT / "build" / "book-students"
SOLUTION_TAG = "solution"  # the exercises' solution cells (left out by --students, as by the student handouts)

STAGING_MARK = ".tools-book-staging"  # the staging folder is ours to replace only when it carries this
GUIDE = "notebooks/COURSE_GUIDE.md"
# Files of the repository that become pages: repository path -> (page file, title in the sidebar)
APPENDICES = {
    "README.md": ("about.md", "About this series / set-up"),
    "data/quadrants/results.md": ("results.md", "Notebook 7's experiment: results"),
}
ABOUT_TITLE = "About this series / set-up"
ATTACHMENTS = "_attachments"  # the notebooks' markdown attachments (myst-nb does not read them), as files
ATTACHMENT_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/svg+xml": ".svg"}
KIT_EXTRAS = ("sphinx", "myst_nb", "sphinx_book_theme", "jupyter_server_mathjax")
INSTALL_KIT = 'make env  (or: pip install -e ".[kit]")'


class BookError(RuntimeError):
    """The book cannot be built; the message says what was wrong and what to do."""


# ------------------------------------------------------------------------------------------------------
# Staging: kit/book plus rewritten copies of the pages
# ------------------------------------------------------------------------------------------------------


def require_kit() -> None:
    """BookError naming the missing packages of the kit extra, with how to install them."""
    import importlib.util

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):  # a broken installation counts as missing
            return True

    missing = [name for name in KIT_EXTRAS if absent(name)]
    if missing:
        raise BookError(
            f"the website needs Sphinx, myst-nb, sphinx-book-theme and jupyter-server-mathjax; missing: "
            f"{', '.join(missing)}. Install them with: {INSTALL_KIT}"
        )


def mathjax_folder() -> Path:
    """The MathJax 2.7 files of the pip package jupyter_server_mathjax (MathJax.js, config/, jax/, fonts/)."""
    import jupyter_server_mathjax

    folder = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (folder / "MathJax.js").is_file() or not (folder / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file():
        raise BookError(f"no MathJax 2.7 in {folder} (jupyter_server_mathjax damaged?); reinstall it: {INSTALL_KIT}")
    return folder


def fresh_folder(folder: Path, mark: str, what: str) -> None:
    """Empty ``folder`` for a new build; refuse when it holds something this tool did not write."""
    if folder.exists():
        if not folder.is_dir() or (any(folder.iterdir()) and not (folder / mark).exists()):
            raise BookError(
                f"{folder} exists and is not {what} written by tools.book (no {mark} in it): "
                "refusing to replace it; move it away or choose another folder"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / mark).touch()


def numbered_notebooks(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BookError(f"the notebooks folder {folder} does not exist: run from a clone of {repository_url()}")
    paths = notebook_paths(folder)
    if not paths:
        raise BookError(f"no numbered notebooks (NN_*.ipynb) in {folder}")
    return paths


def notebook_title(notebook: dict, path: Path) -> str:
    """The first level-1 heading of the notebook's first markdown cell ("1. The ELBO")."""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            heading = re.search(r"^# (.+)$", "".join(cell["source"]), re.MULTILINE)
            if heading:
                return heading.group(1).strip()
            break
    raise BookError(f"{path} does not open with a title (a markdown cell starting with '# ')")


def split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    import yaml

    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        raise BookError(f"{path} has no front matter (--- ... ---) with its notebooks' one-line summaries")
    return yaml.safe_load(match.group(1)) or {}, text[match.end() :]


def hide_collapsed_input(cell: dict) -> None:
    """A code cell whose input JupyterLab shows collapsed (the exercises' solutions) starts folded on the
    site as well: myst-nb's ``hide-input`` tag puts it behind a "Show code cell source" toggle."""
    metadata = cell.setdefault("metadata", {})
    if cell["cell_type"] == "code" and metadata.get("jupyter", {}).get("source_hidden"):
        tags = metadata.setdefault("tags", [])
        if "hide-input" not in tags:
            tags.append("hide-input")


def extract_attachments(cell: dict, folder: Path, relative: str) -> str:
    """The markdown cell's source with each ``attachment:NAME`` pointing at a file written into ``folder``."""
    import base64

    source = "".join(cell["source"])
    for name, bundle in (cell.get("attachments") or {}).items():
        mime = next((m for m in ATTACHMENT_TYPES if m in bundle), None)
        if mime is None:
            raise BookError(f"the attachment {name!r} is not an image ({', '.join(bundle)}): the site cannot show it")
        data = "".join(bundle[mime]) if isinstance(bundle[mime], list) else bundle[mime]
        file = f"{Path(name).stem}{ATTACHMENT_TYPES[mime]}"
        folder.mkdir(parents=True, exist_ok=True)
        if mime == "image/svg+xml":
            (folder / file).write_text(data)
        else:
            (folder / file).write_bytes(base64.b64decode(data))
        target = urllib.parse.quote(f"{relative}/{file}")
        source = outside_code(source, lambda piece, n=name, t=target: piece.replace(f"attachment:{n}", t))
    cell.pop("attachments", None)
    return source


def render_index(template: Path, titles: dict[str, str]) -> str:
    """kit/book/index.md with its notebook table, its sidebar (toctrees) and the repository filled in."""
    meta, body = split_front_matter(template.read_text(), template)
    lines = meta.get("notebooks") or {}
    if list(lines) != list(titles):
        raise BookError(
            f"{template} must give one line per notebook, in order: it names {list(lines)}, "
            f"the notebooks folder has {list(titles)}"
        )
    rows = ["| notebook | what you learn | run it |", "|---|---|---|"]
    for name, title in titles.items():
        summary = str(lines[name]).replace("|", "\\|")
        rows.append(f"| [{title}]({name}) | {summary} | [![Open In Colab]({LOCAL_BADGE})]({colab_url(name)}) |")
    toctree = [
        toctree_block("The notebooks", [Path(name).stem for name in titles]),
        toctree_block("For lecturers", [Path(GUIDE).stem]),
        toctree_block("Appendices", [f"{title} <{Path(page).stem}>" for page, title in APPENDICES.values()]),
    ]
    filled = {
        "<!-- notebooks -->": "\n".join(rows),
        "<!-- toctree -->": "\n\n".join(toctree),
        "@REPOSITORY_URL@": repository_url(),
        "@REPOSITORY_NAME@": REPOSITORY.split("/")[1],
        "@REPOSITORY@": REPOSITORY,
    }
    for mark, value in filled.items():
        if mark not in body:
            raise BookError(f"{template} lost its mark {mark!r}, where the book puts {value[:40]!r}...")
        body = body.replace(mark, value)
    return body


def toctree_block(caption: str, entries: list[str]) -> str:
    return "\n".join(["```{toctree}", ":hidden:", f":caption: {caption}", "", *entries, "```"])


def stage_notebook(path: Path, staging: Path, rewriter: LinkRewriter, students: bool = False) -> str:
    """Copy one notebook into ``staging``, its links rewritten, its attachments files; return its title.
    ``students``: without its solution cells."""
    notebook = json.loads(path.read_text())
    if students:
        notebook["cells"] = [c for c in notebook["cells"] if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in notebook["cells"]:
        hide_collapsed_input(cell)
        if cell["cell_type"] == "markdown":
            cell["source"] = rewriter.rewrite("".join(cell["source"]), f"notebooks/{path.name}")
            cell["source"] = extract_attachments(cell, staging / ATTACHMENTS / path.stem, f"{ATTACHMENTS}/{path.stem}")
    (staging / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False))
    return notebook_title(notebook, path)


def stage(staging: Path, notebooks: Path, repo_root: Path = ROOT, students: bool = False) -> list[str]:
    """Write the Sphinx sources of the site into ``staging``; return its pages (file names)."""
    paths = numbered_notebooks(notebooks)
    guide = notebooks / Path(GUIDE).name
    for needed in (guide, *(repo_root / p for p in APPENDICES)):
        if not needed.is_file():
            raise BookError(f"{needed} is missing: the website needs it (restore it from the repository)")
    fresh_folder(staging, STAGING_MARK, "a staging folder")
    shutil.copytree(KIT_DIR, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "index.md"))
    shutil.copytree(mathjax_folder(), staging / "_static" / "mathjax")
    settings = {"repository_url": repository_url(), "branch": BRANCH, "credit": credit_line()}
    (staging / "_book.json").write_text(json.dumps(settings, indent=1))

    site = {f"notebooks/{p.name}": p.name for p in paths}
    site[GUIDE] = Path(GUIDE).name
    site.update({path: page for path, (page, _) in APPENDICES.items()})
    rewriter = LinkRewriter(site, staging, repo_root)
    titles = {path.name: stage_notebook(path, staging, rewriter, students) for path in paths}
    (staging / Path(GUIDE).name).write_text(rewriter.rewrite(guide.read_text(), GUIDE))
    for source, (page, _) in APPENDICES.items():
        text = rewriter.rewrite((repo_root / source).read_text(), source)
        if source == "README.md":  # the README's title is the index's; here it is the set-up page
            text = re.sub(r"\A# .*\n", f"# {ABOUT_TITLE}\n\n*The repository's README.*\n", text, count=1)
        (staging / page).write_text(text)
    (staging / "index.md").write_text(render_index(KIT_DIR / "index.md", titles))
    if rewriter.broken:
        raise BookError(
            f"{len(rewriter.broken)} link(s) point at nothing; fix them in the source files:\n  "
            + "\n  ".join(rewriter.broken)
        )
    return ["index.md", *site.values()]


# ------------------------------------------------------------------------------------------------------
# Sphinx
# ------------------------------------------------------------------------------------------------------


def sphinx_build(staging: Path, out: Path) -> None:
    """Build the HTML of ``staging`` into ``out``; any Sphinx warning fails it (BookError listing them)."""
    from sphinx.cmd.build import build_main

    if out.exists() and out.is_dir() and any(out.iterdir()) and not (out / ".buildinfo").exists():
        raise BookError(f"{out} exists and is not a Sphinx build: refusing to replace it; choose another --out")
    if out.exists():
        shutil.rmtree(out)
    warnings = staging / "_warnings.log"
    doctrees = staging / "_doctrees"
    args = ["-b", "html", "-E", "-q", "-W", "--keep-going", "-d", str(doctrees), "-w", str(warnings)]
    status = build_main([*args, str(staging), str(out)])
    logged = warnings.read_text().strip() if warnings.exists() else ""
    if status != 0 or logged:
        shutil.rmtree(out, ignore_errors=True)  # no half-built site that someone might publish
        raise BookError(
            "Sphinx reported problems, and the website is not built (a broken link or cross-reference, "
            "a missing image, or a page left out of the navigation). The sources are the staged copies in "
            f"{staging}; fix the original file each warning names:\n{logged or f'(exit status {status})'}"
        )


# ------------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------------


@dataclass
class Book:
    index: Path
    pages: int
    megabytes: float
    seconds: float


def build_book(
    out: Path = OUT_DIR, staging: Path = STAGING_DIR, notebooks: Path = NOTEBOOK_DIR, students: bool = False
) -> Book:
    """Stage, build and check the website; return where it is and what it took (BookError on any problem).
    ``students``: the notebooks without their solution cells."""
    started = time.monotonic()
    require_kit()
    stage(staging, notebooks, students=students)
    sphinx_build(staging, out)
    problems = check_site(out)
    if problems:
        raise BookError(
            f"the built site in {out} is not offline and whole ({len(problems)} problem(s)):\n  "
            + "\n  ".join(problems)
        )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    pages = sum(1 for f in out.glob("*.html"))
    return Book(out / "index.html", pages, size / 2**20, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.book", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help=f"the website (default: {OUT_DIR}, with --students {STUDENTS_OUT_DIR})"
    )
    parser.add_argument(
        "--students", action="store_true", help="leave the exercises' solution cells out (as the student handouts)"
    )
    parser.add_argument("--staging", type=Path, default=STAGING_DIR, help=f"the staged sources ({STAGING_DIR})")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR, help=f"the notebooks ({NOTEBOOK_DIR})")
    options = parser.parse_args(argv)
    try:
        out = options.out or (STUDENTS_OUT_DIR if options.students else OUT_DIR)
        book = build_book(out.resolve(), options.staging.resolve(), options.notebooks.resolve(), options.students)
    except BookError as error:
        print(f"tools.book: {error}", file=sys.stderr)
        return 1
    print(f"the website: {book.index}  ({book.pages} pages, {book.megabytes:.1f} MB, built in {book.seconds:.1f} s)")
    print(f"open it in a browser (file://{book.index}); publish it by copying {book.index.parent} to a static host")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
