"""Handouts: student copies of the notebooks without solutions, lecturer copies with answer keys.

    python -m tools.handouts                    # both, into build/handouts/ (make handouts)
    python -m tools.handouts --only student     # one of the two (the other part of a previous build stays)
    python -m tools.handouts --out DIR --keys FILE

Writes, from the committed notebooks (their stored outputs included, so figures show before a
student runs anything):

* ``student/``: each numbered notebook ``notebooks/NN_*.ipynb`` without its solution cells (tag
  ``solution``: source and outputs gone); the exercise stubs and their checker calls stay, and so
  does every other cell. The graded assignments ``kit/assignments/*.ipynb`` (if any) go to
  ``student/assignments/`` the same way. A README.md says how the notebooks find ``cvae_utils``.
* ``lecturer/``: each notebook unchanged plus its answer keys (markdown cells tagged ``answer-key``
  right after the Exercises section, before the next one: the quiz, then ``## References``);
  ``COURSE_GUIDE.md`` with each notebook's answer keys after its "**Discussion.**" paragraph
  (section 4); the assignments unchanged.

The answer keys come from ``kit/answer_keys/discussion.md`` (format in tools/handout_keys.py); a key
missing or extra for a question of the course guide is an error, before anything is written.
Relative links that would break in the copies are rewritten: to the copied file, or to the file on
GitHub (tools/colab.py REPOSITORY). A file in the document's folder that a link names (a figure) is
copied beside it.

The output folder must be empty, absent, or a previous build of this command (it records what it
wrote, with checksums, in ``.handouts-build.json``): a file it did not write, or one changed since,
stops the build with the list, and nothing is deleted or overwritten.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import nbformat

from tools import colab, stored_outputs
from tools.handout_keys import AnswerKeyError, Discussion, load_checked_keys

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "handouts"
DEFAULT_KEYS = ROOT / "kit" / "answer_keys" / "discussion.md"
MARKER = ".handouts-build.json"
PARTS = ("student", "lecturer")
ANSWER_KEY_TAG = "answer-key"
KEY_HEADING = "## Lecturer's answer keys: discussion questions"
GUIDE_KEY_HEADING = "#### Lecturer's answer keys: discussion questions"
MARKDOWN_LINK = re.compile(r"(\]\(\s*)([^)\s]+)")
HTML_LINK = re.compile(r"(\b(?:src|href)=[\"'])([^\"']+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class HandoutError(RuntimeError):
    """Something the build cannot do safely; the message says what and what to do."""


@dataclass(frozen=True)
class Sources:
    """Where the handouts come from (the repository's files by default; tests pass their own)."""

    notebooks: Path = colab.NOTEBOOK_DIR
    guide: Path = colab.NOTEBOOK_DIR / "COURSE_GUIDE.md"
    keys: Path = DEFAULT_KEYS
    assignments: Path = ROOT / "kit" / "assignments"
    root: Path = ROOT  # links to files under it, outside a copy, point to GitHub

    def __post_init__(self) -> None:  # absolute paths: links resolve against them
        for name in ("notebooks", "guide", "keys", "assignments", "root"):
            object.__setattr__(self, name, Path(os.path.normpath(Path(getattr(self, name)).absolute())))

    def notebook_paths(self) -> list[Path]:
        paths = colab.notebook_paths(self.notebooks)
        if not paths:
            raise HandoutError(f"no numbered notebooks (NN_*.ipynb) in {self.notebooks}")
        return paths

    def assignment_paths(self) -> list[Path]:
        return sorted(self.assignments.glob("*.ipynb")) if self.assignments.is_dir() else []


@dataclass
class Part:
    """The files of one part (student or lecturer), relative to the output folder, and what they hold."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------
# Links: relative links that still resolve in the copy
# ----------------------------------------------------------------------------------


@dataclass
class Linker:
    """Rewrites a document's relative links for its new place; collects the files to copy beside it."""

    sources: Sources
    placed: dict[Path, str]  # source file -> its path in the output folder
    assets: dict[str, Path] = field(default_factory=dict)  # path in the output folder -> source file

    def retarget(self, target: str, src: Path, dst: str) -> str:
        if SCHEME.match(target) or target.startswith(("#", "/")):
            return target  # a URL, an anchor, attachment:..., an absolute path
        path, hash_, fragment = target.partition("#")
        src = src.absolute()
        file = Path(os.path.normpath(src.parent / unquote(path)))
        if file in self.placed:
            new = self.placed[file]
        elif file.is_file() and file.suffix != ".ipynb" and file.is_relative_to(src.parent):
            new = str(Path(dst).parent / file.relative_to(src.parent))  # a figure beside the document: copied
            self.assets[new] = file
        elif not file.exists() or not file.is_relative_to(self.sources.root):
            return target  # broken already, or outside the repository: left as written
        else:
            kind = "tree" if file.is_dir() else "blob"
            rel = file.relative_to(self.sources.root).as_posix()
            slash = "/" if path.endswith("/") else ""
            return f"{colab.repository_url()}/{kind}/{colab.BRANCH}/{rel}{slash}{hash_}{fragment}"
        return os.path.relpath(new, Path(dst).parent).replace(os.sep, "/") + hash_ + fragment

    def markdown(self, text: str, src: Path, dst: str) -> str:
        def sub(m: re.Match) -> str:
            return m.group(1) + self.retarget(m.group(2), src, dst)

        return HTML_LINK.sub(sub, MARKDOWN_LINK.sub(sub, text))

    def notebook(self, nb: nbformat.NotebookNode, src: Path, dst: str) -> None:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = self.markdown(cell.source, src, dst)


# ----------------------------------------------------------------------------------
# Student and lecturer copies of a notebook
# ----------------------------------------------------------------------------------


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without its solution cells (source and outputs); every other cell as stored."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not stored_outputs.is_solution(c)]
    return out


def _first_line(cell: dict) -> str:
    return cell.source.lstrip().splitlines()[0].strip() if cell.source.strip() else ""


def answer_key_position(nb: nbformat.NotebookNode, name: str) -> int:
    """The index right after the Exercises section: the next ``#``/``##`` heading after ``## Exercises``."""
    headings = [(i, _first_line(c)) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    start = next((i for i, line in headings if line == "## Exercises"), None)
    if start is None:
        raise HandoutError(f"{name} has no '## Exercises' markdown cell to put the answer keys after")
    return next((i for i, line in headings if i > start and re.match(r"^##? ", line)), len(nb.cells))


def answer_key_cells(discussion: Discussion, answers: dict[str, str], minor: int) -> list[nbformat.NotebookNode]:
    """Markdown cells tagged ``answer-key``: a heading, then each question (quoted) with its answer."""
    n = discussion.notebook
    sources = [
        f"{KEY_HEADING}\n\nThe course guide's discussion questions for this notebook "
        "([COURSE_GUIDE.md](COURSE_GUIDE.md), section 4), each with its answer key. "
        "These cells are in the lecturer's copy only (tag `answer-key`)."
    ]
    sources += [f"> **({letter})** {discussion.questions[letter]}\n\n{answers[letter]}" for letter in answers]
    cells = []
    for i, source in enumerate(sources):
        cell = nbformat.v4.new_markdown_cell(source, metadata={"tags": [ANSWER_KEY_TAG]})
        if minor >= 5:
            cell.id = f"answer-key-{n}-{i}"  # stable ids: the same keys give the same file
        else:
            cell.pop("id", None)
        cells.append(cell)
    return cells


def lecturer_copy(nb: nbformat.NotebookNode, cells: list[nbformat.NotebookNode], name: str) -> nbformat.NotebookNode:
    """``nb`` unchanged, with the answer-key ``cells`` inserted after its Exercises section."""
    out = copy.deepcopy(nb)
    at = answer_key_position(out, name)
    out.cells[at:at] = cells
    return out


def guide_with_keys(guide: str, discussions: dict[int, Discussion], keys: dict[int, dict[str, str]]) -> str:
    """The course guide with each notebook's answer keys after its discussion paragraph (section 4)."""
    lines = guide.splitlines()
    for n in sorted(discussions, key=lambda k: discussions[k].last_line, reverse=True):
        block = ["", GUIDE_KEY_HEADING]
        for letter, answer in keys[n].items():
            block += ["", f"**({letter})**", "", answer]
        at = discussions[n].last_line + 1
        lines[at:at] = block
    return "\n".join(lines) + ("\n" if guide.endswith("\n") else "")


def _notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def _read(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several kinds for a broken file
        raise HandoutError(f"{path} is not a readable notebook: {err}") from err


# ----------------------------------------------------------------------------------
# The two parts
# ----------------------------------------------------------------------------------

STUDENT_README = """\
# CVAE notebooks: student copies

The notebooks of the series without their solutions (the text still mentions collapsed solution
cells: they are not in these copies). Figures and printed results are stored, so every notebook
reads well before it runs. Fill in each coding exercise at `# your code here` and run the cell: the
checker after it prints `Passed ✓`, or `Not yet ✗` with the failing case and a hint.

Each notebook's first code cell (the setup cell) makes the series' library `cvae_utils` importable:

- if it is installed (e.g. `pip install -e .` in a clone of the repository), the cell does nothing;
- if this folder lies inside a clone of the repository, the cell installs that clone (`pip install -e`);
- otherwise (Colab, or this folder copied elsewhere) it clones {url}
  into `cvae-notebooks/` next to the notebook and installs it: this needs `git` and the network, once.

The "Open in Colab" badge at the top of a notebook opens the repository's version (with solutions);
to work on a student copy in Colab, upload it (File > Upload notebook).
{assignments}
Credit: {credit} (the repository's LICENSE-TEXT.md).
"""


def _placed(sources: Sources, part: str, with_guide: bool) -> dict[Path, str]:
    placed = {p: f"{part}/{p.name}" for p in sources.notebook_paths()}
    placed |= {p: f"{part}/assignments/{p.name}" for p in sources.assignment_paths()}
    if with_guide:
        placed[sources.guide] = f"{part}/{sources.guide.name}"
    return placed


def _add_assets(part: Part, linker: Linker) -> None:
    for dst, src in sorted(linker.assets.items()):
        part.files[dst] = src.read_bytes()
    if linker.assets:
        part.summary.append(f"{len(linker.assets)} file(s) the notebooks link to: {', '.join(sorted(linker.assets))}")


def build_student(sources: Sources) -> Part:
    part = Part("student")
    linker = Linker(sources, _placed(sources, "student", with_guide=False))
    removed = {"notebooks": 0, "assignments": 0}
    for src, dst in linker.placed.items():
        nb = _read(src)
        copy_ = student_copy(nb)
        linker.notebook(copy_, src, dst)
        part.files[dst] = _notebook_bytes(copy_)
        removed["assignments" if "/assignments/" in dst else "notebooks"] += len(nb.cells) - len(copy_.cells)
    n_nb, n_as = len(sources.notebook_paths()), len(sources.assignment_paths())
    part.summary.append(f"{n_nb} notebooks ({removed['notebooks']} solution cells removed)")
    part.summary.append(f"{n_as} assignments ({removed['assignments']} solution cells removed)")
    listing = "".join(f"\n- assignments/{p.name}" for p in sources.assignment_paths())
    note = f"\nThe graded assignments are in `assignments/`:{listing}\n" if n_as else ""
    readme = STUDENT_README.format(url=colab.repository_url(), assignments=note, credit=colab.credit_line())
    part.files["student/README.md"] = readme.encode()
    _add_assets(part, linker)
    return part


def build_lecturer(sources: Sources) -> Part:
    keys, discussions = load_checked_keys(sources.keys, sources.guide)
    part = Part("lecturer")
    linker = Linker(sources, _placed(sources, "lecturer", with_guide=True))
    guide_dst = linker.placed[sources.guide]
    added = 0
    for src in sources.notebook_paths():
        dst, nb = linker.placed[src], _read(src)
        n = int(src.name[:2])
        if n not in discussions:
            raise HandoutError(f"{sources.guide}: section 4 asks no discussion questions for notebook {n} ({src.name})")
        linker.notebook(nb, src, dst)  # first: the keys' links are relative to the keys file
        answers = {letter: linker.markdown(a, sources.keys, dst) for letter, a in keys[n].items()}
        cells = answer_key_cells(discussions[n], answers, nb.nbformat_minor)
        out = lecturer_copy(nb, cells, src.name)
        part.files[dst] = _notebook_bytes(out)
        added += len(cells)
    for src in sources.assignment_paths():
        nb = _read(src)
        linker.notebook(nb, src, linker.placed[src])
        part.files[linker.placed[src]] = _notebook_bytes(nb)
    guide_keys = {n: {k: linker.markdown(a, sources.keys, guide_dst) for k, a in keys[n].items()} for n in keys}
    guide = linker.markdown(sources.guide.read_text(encoding="utf-8"), sources.guide, guide_dst)  # line by line
    part.files[guide_dst] = guide_with_keys(guide, discussions, guide_keys).encode("utf-8")
    n_nb = len(sources.notebook_paths())
    part.summary.append(f"{n_nb} notebooks (+{added} answer-key cells), {guide_dst} (+{len(keys)} keys)")
    part.summary.append(f"{len(sources.assignment_paths())} assignments (with solutions)")
    _add_assets(part, linker)
    return part


# ----------------------------------------------------------------------------------
# The output folder: only ever over a previous build of this command
# ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entries(out: Path) -> list[str]:
    """Every file, link and empty folder under ``out``, relative (links are never followed)."""
    found = []
    for folder, dirs, files in os.walk(out):
        base = Path(folder)
        for name in dirs + files:
            path = base / name
            if path.is_symlink() or name in files or not any(path.iterdir()):
                found.append(path.relative_to(out).as_posix())
    return found


def previous_build(out: Path) -> dict[str, str]:
    """The files of the previous build in ``out`` ({path: sha256}); refuse a folder with anything else."""
    if not out.exists():
        return {}
    if not out.is_dir() or out.is_symlink():
        raise HandoutError(f"{out} exists and is not a folder (or is a link to one); choose another --out")
    entries = [e for e in _entries(out) if e != MARKER]
    marker = out / MARKER
    if not marker.is_file():
        if entries:
            raise HandoutError(
                f"{out} is not empty and holds no handouts build (no {MARKER}), so nothing in it is replaced: "
                f"it holds {_listing(entries)}. Choose another --out, or move those files away."
            )
        return {}
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise HandoutError(
            f"{marker} is not a handouts build record ({err}); move it away or choose another --out"
        ) from err
    foreign = [e for e in entries if e not in files]
    changed = [e for e in entries if e in files and _sha256((out / e).read_bytes()) != files[e]]
    problems = []
    if foreign:
        problems.append(f"files no handouts build wrote: {_listing(foreign)}")
    if changed:
        problems.append(f"files changed since the last build: {_listing(changed)}")
    if problems:
        raise HandoutError(
            f"{out} holds {' and '.join(problems)}. Nothing was replaced. Move them away (they may be your work: "
            "a run notebook, an edit), or choose another --out."
        )
    return files


def _listing(paths: list[str], limit: int = 8) -> str:
    shown = ", ".join(sorted(paths)[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _remove_empty_folders(folder: Path) -> None:
    for base, _dirs, _files in sorted(os.walk(folder), key=lambda row: len(row[0]), reverse=True):
        if not os.listdir(base):
            os.rmdir(base)


def install(out: Path, parts: list[Part]) -> dict[str, str]:
    """Write ``parts`` into ``out``, replacing those parts of a previous build; return the new record."""
    previous = previous_build(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {p: h for p, h in previous.items() if p.split("/")[0] not in {part.name for part in parts}}
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-staging-", dir=out.parent))
    try:
        for part in parts:
            for rel, data in part.files.items():
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                record[rel] = _sha256(data)
        for part in parts:  # everything written: now swap each part in
            for rel in previous:
                if rel.split("/")[0] == part.name and (out / rel).is_file():
                    (out / rel).unlink()
            if (out / part.name).exists():
                _remove_empty_folders(out / part.name)
            os.replace(staging / part.name, out / part.name)
        tmp = out / (MARKER + ".tmp")
        tmp.write_text(json.dumps({"built_by": "python -m tools.handouts", "files": record}, indent=1) + "\n")
        os.replace(tmp, out / MARKER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def build(out: Path, only: str | None = None, sources: Sources | None = None) -> list[Part]:
    """Check the sources, then write the student and/or lecturer copies into ``out``; return the parts."""
    sources = sources or Sources()
    names = [only] if only else list(PARTS)
    parts = [build_student(sources) if name == "student" else build_lecturer(sources) for name in names]
    install(out, parts)
    return parts


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.handouts", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: build/handouts)")
    parser.add_argument("--only", choices=PARTS, help="build one part only (the other part of a previous build stays)")
    parser.add_argument("--keys", type=Path, default=DEFAULT_KEYS, help="the answer keys (default: %(default)s)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        parts = build(args.out, args.only, Sources(keys=args.keys))
    except (HandoutError, AnswerKeyError) as err:
        print(f"handouts: error: {err}", file=sys.stderr)
        return 1
    for part in parts:
        size = sum(len(d) for d in part.files.values())
        print(f"{part.name}: {len(part.files)} files, {size / 1e6:.1f} MB in {_shown(args.out / part.name)}")
        for line in part.summary:
            print(f"  {line}")
    print(f"built in {time.perf_counter() - start:.1f} s ({MARKER} records the files, for the next build)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
