"""The handouts (python -m tools.handouts): student copies without solutions, lecturer copies with keys.

Most tests are fast (a build reads the notebooks, runs nothing). One test runs the seven student
copies top to bottom in quick mode (about 90 s of CPU): no cell may raise, and every checker must
answer `Not yet` (the stubs are unsolved: no leftover solution solved them).
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import nbformat
import pytest

from tools import colab, handouts
from tools.handout_keys import AnswerKeyError, check_keys, discussion_questions, parse_answer_keys

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "notebooks" / "COURSE_GUIDE.md"
REAL_KEYS = ROOT / "kit" / "answer_keys" / "discussion.md"
NOTEBOOKS = colab.notebook_paths()
CHECKER_CALL = re.compile(r"\bcu\.exercises\.check_\w+\(")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _pngs(cells) -> int:
    return sum("image/png" in o.get("data", {}) for c in cells if c.cell_type == "code" for o in c.outputs)


def _keys_text(questions: dict[int, list[str]]) -> str:
    """An answer-key file in the agreed format, for these notebooks and letters."""
    lines = ["# Answer keys: the course guide's discussion questions", "", "Fixture keys for the tests.", ""]
    for n, letters in questions.items():
        lines.append(f"## Notebook {n}")
        for letter in letters:
            lines += [f"### ({letter})", "", f"Key {n}{letter}: the answer a lecturer reads out.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# The answer-key format and the course guide's questions
# ----------------------------------------------------------------------------------


def test_the_course_guide_asks_these_discussion_questions():
    found = discussion_questions(GUIDE.read_text())
    assert {n: list(d.questions) for n, d in found.items()} == {
        n: ["a", "b", "c", "d"] if n == 5 else ["a", "b", "c"] for n in range(1, 8)
    }
    lines = GUIDE.read_text().splitlines()
    for d in found.values():  # the paragraph ends at its last line, and each question text is whole
        assert lines[d.last_line].strip() and not lines[d.last_line + 1].strip()
        assert all(q.endswith("?") or q.endswith(".") for q in d.questions.values()), d.questions
    assert found[1].questions["c"] == "When is a fixed N(0, I) prior enough, and when must the prior see x?"


def test_parse_answer_keys_reads_the_agreed_format():
    text = """# Answer keys: the course guide's discussion questions
Intro text, with a [link](x.md).

## Notebook 1
### (a)
First answer.

```python
# a comment in a fence is no heading
## nor is this
```
### (b)
#### A subheading inside an answer
Second answer.
## Notebook 2
### (a)
Third.
"""
    keys = parse_answer_keys(text)
    assert list(keys) == [1, 2] and list(keys[1]) == ["a", "b"]
    assert keys[1]["a"].startswith("First answer.") and "## nor is this\n```" in keys[1]["a"]
    assert keys[1]["b"] == "#### A subheading inside an answer\nSecond answer."
    assert keys[2] == {"a": "Third."}


@pytest.mark.parametrize(
    "text, message",
    [
        ("## Notebok 1\n### (a)\nx", "line 1: '## Notebok 1' is not a notebook heading"),
        ("## Notebook 1\n### a)\nx", "line 2: '### a)' is not a question heading"),
        ("### (a)\nx", "line 1: '### (a)' is not a question heading"),
        ("## Notebook 1\n### (a)\nx\n## Notebook 1\n### (a)\ny", "second '## Notebook 1'"),
        ("## Notebook 1\n### (a)\nx\n### (a)\ny", "notebook 1 answers (a) twice"),
        ("## Notebook 1\nloose text\n### (a)\nx", "line 2: text under '## Notebook 1' before its first '### (a)'"),
        ("## Notebook 1\n### (a)\n\n### (b)\nx", "notebook 1 (a): the answer is empty"),
        ("## Notebook 1\n### (a)\nTODO: write this", "notebook 1 (a): the answer holds a placeholder"),
        ("## Notebook 1\n## Notebook 2\n### (a)\nx", "'## Notebook 1' has no '### (a)' answer"),
    ],
)
def test_parse_answer_keys_names_what_is_wrong(text, message):
    with pytest.raises(AnswerKeyError, match=re.escape(message)):
        parse_answer_keys(text)


def test_keys_that_miss_or_add_a_notebook_or_letter_are_refused_with_each_named():
    discussions = discussion_questions(GUIDE.read_text())
    asked = {n: list(d.questions) for n, d in discussions.items()}
    check_keys(parse_answer_keys(_keys_text(asked)), discussions, "the keys")  # complete: accepted
    wrong = copy.deepcopy(asked)
    del wrong[3]  # notebook 3 missing
    wrong[5].remove("d")  # a letter missing
    wrong[1].append("d")  # a letter the guide does not ask
    wrong[8] = ["a"]  # a notebook the guide does not have
    with pytest.raises(AnswerKeyError) as err:
        check_keys(parse_answer_keys(_keys_text(wrong)), discussions, "the keys")
    message = str(err.value)
    for expected in (
        "notebook 3 is missing (the course guide asks (a), (b), (c))",
        "notebook 5: (d) missing (the course guide asks (a), (b), (c), (d))",
        "notebook 1: (d) extra",
        "notebook 8 is extra",
    ):
        assert expected in message, message


# ----------------------------------------------------------------------------------
# The real build: the series' notebooks with fixture keys
# ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both parts built from the repository's notebooks and guide, with complete fixture keys."""
    tmp = tmp_path_factory.mktemp("handouts")
    keys = tmp / "discussion.md"
    keys.write_text(_keys_text({n: list(d.questions) for n, d in discussion_questions(GUIDE.read_text()).items()}))
    out = tmp / "out"
    sources = handouts.Sources(keys=keys, assignments=tmp / "no-assignments")
    start = time.perf_counter()
    handouts.build(out, sources=sources)
    print(f"build of both parts: {time.perf_counter() - start:.2f} s")
    return out, keys


def test_student_copies_hold_every_cell_but_the_solutions(built):
    out, _ = built
    for path in NOTEBOOKS:
        original, student = _read(path), _read(out / "student" / path.name)
        solutions = [c for c in original.cells if "solution" in _tags(c)]
        assert solutions, f"{path.name}: no solution cell to remove (the test would prove nothing)"
        assert not any("solution" in _tags(c) for c in student.cells)
        assert len(student.cells) == len(original.cells) - len(solutions)
        kept = [c for c in original.cells if "solution" not in _tags(c)]
        assert student.cells == kept, f"{path.name}: a kept cell differs (source, metadata or stored outputs)"
        assert student.metadata == original.metadata
        assert _pngs(student.cells) == _pngs(original.cells) - _pngs(solutions) > 0
        # no line of a solution's code survives, except lines the rest of the notebook also has (a def line)
        text = json.dumps(student)
        elsewhere = {line.strip() for c in kept for line in c.source.splitlines()}
        secret = {line.strip() for c in solutions for line in c.source.splitlines()} - elsewhere
        leaked = [line for line in secret if len(line) > 12 and json.dumps(line)[1:-1] in text]
        assert not leaked, f"{path.name}: solution lines in the student copy: {leaked[:3]}"
        assert any(c.source == colab.SETUP_SNIPPET for c in student.cells), (
            f"{path.name}: the setup cell (tools/colab.py SETUP_SNIPPET, tested by test_colab_setup.py) is missing"
        )
    readme = (out / "student" / "README.md").read_text()
    assert colab.repository_url() in readme and "cvae-notebooks/" in readme


def test_the_student_folder_holds_what_the_notebooks_need(built):
    out, _ = built
    files = sorted(p.relative_to(out / "student").as_posix() for p in (out / "student").rglob("*") if p.is_file())
    assert files == sorted(
        ["README.md", *(p.name for p in NOTEBOOKS)]
    )  # no figure file is linked: notebook 6 attaches it
    for path in NOTEBOOKS:  # every relative link resolves inside the student folder
        for cell in [c for c in _read(out / "student" / path.name).cells if c.cell_type == "markdown"]:
            for target in re.findall(r"\]\(([^)\s#]+)", cell.source):
                if not re.match(r"^[a-z]+:", target) and (path.parent / target).exists():
                    assert (out / "student" / target).exists(), f"{path.name}: broken link {target}"


def _defined(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _parse(source: str) -> ast.AST:
    return ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))


def _reads_of_solution_only_names(nb: nbformat.NotebookNode) -> list[str]:
    """The code cells (outside solutions) that read a name which only solution cells define."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    own = set().union(*(_defined(_parse(c.source)) for c in cells if "solution" not in _tags(c)))
    only_solutions: set[str] = set()
    problems = []
    for i, cell in enumerate(cells):
        tree = _parse(cell.source)
        if "solution" in _tags(cell):
            only_solutions |= _defined(tree) - own - set(dir(builtins))
            continue
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if used := read & only_solutions:
            problems.append(f"code cell {i} ({cell.source.splitlines()[0][:60]!r}) reads {sorted(used)}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_cell_needs_a_name_that_only_a_solution_defines(path):
    """Static check: a student copy has no solutions, so a later cell must not read a name only they define."""
    problems = _reads_of_solution_only_names(_read(path))
    assert not problems, f"{path.name}: names defined only by solution cells: {problems}"


def test_the_static_check_finds_a_name_only_a_solution_defines():
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("def f(x):\n    return None"),
        v4.new_code_cell(
            "def f(x):\n    return helper(x)\n\ndef helper(y):\n    return y", metadata={"tags": ["solution"]}
        ),
        v4.new_code_cell("print(f(1), [x for x in range(3)])"),
        v4.new_code_cell("%time helper(2)"),
        v4.new_code_cell("print(helper(2))"),
    ]
    assert _reads_of_solution_only_names(nb) == ["code cell 4 ('print(helper(2))') reads ['helper']"]


def test_lecturer_copies_are_the_notebooks_plus_tagged_answer_keys(built):
    out, _ = built
    discussions = discussion_questions(GUIDE.read_text())
    for path in NOTEBOOKS:
        original, lecturer = _read(path), _read(out / "lecturer" / path.name)
        keys = [i for i, c in enumerate(lecturer.cells) if handouts.ANSWER_KEY_TAG in _tags(c)]
        n = int(path.name[:2])
        assert len(keys) == 1 + len(discussions[n].questions)
        assert keys == list(range(keys[0], keys[-1] + 1)), "the answer keys sit together"
        assert lecturer.cells[keys[0]].source.startswith(handouts.KEY_HEADING + "\n")
        # right after the Exercises section: the next section (the quiz, then References) follows them
        assert lecturer.cells[keys[-1] + 1].source.startswith(("## Quiz", "## References"))
        headings = [c.source.splitlines()[0] for c in lecturer.cells[: keys[0]] if c.cell_type == "markdown"]
        assert "## Exercises" in headings and not any(
            h.startswith("## ") for h in headings[headings.index("## Exercises") + 1 :]
        )
        for cell, (letter, question) in zip(
            lecturer.cells[keys[0] + 1 : keys[-1] + 1], discussions[n].questions.items()
        ):
            assert cell.source.startswith(f"> **({letter})** {question}\n") and f"Key {n}{letter}:" in cell.source
        without = copy.deepcopy(lecturer)
        without.cells = [c for c in lecturer.cells if handouts.ANSWER_KEY_TAG not in _tags(c)]
        assert without == original, f"{path.name}: the lecturer copy changed a cell of the notebook"
        assert nbformat.validate(lecturer) is None


def test_the_lecturer_guide_holds_each_key_after_its_discussion_paragraph(built):
    out, keys_path = built
    guide = (out / "lecturer" / "COURSE_GUIDE.md").read_text()
    keys = parse_answer_keys(keys_path.read_text())
    lines, original = guide.splitlines(), GUIDE.read_text().splitlines()
    blocks = [i for i, line in enumerate(lines) if line == handouts.GUIDE_KEY_HEADING]
    assert len(blocks) == 7
    for n, at in zip(range(1, 8), blocks):  # right after the paragraph, in its notebook's subsection
        start = max(i for i in range(at) if lines[i].startswith("**Discussion.**"))
        assert all(line.strip() for line in lines[start : at - 1]) and lines[at - 1] == ""
        assert max(i for i in range(at) if lines[i].startswith("### ")) == max(
            i for i in range(at) if lines[i].startswith(f"### {n}. ")
        )
        block = [line for letter in keys[n] for line in ("", f"**({letter})**", "", keys[n][letter])]
        assert lines[at + 1 : at + 1 + len(block)] == block
    kept = list(lines)  # the keys removed, the guide is the original with its outward links made absolute
    for n, at in reversed(list(zip(range(1, 8), blocks))):
        del kept[at - 1 : at + 1 + 4 * len(keys[n])]
    relinked = [
        re.sub(r"\]\(\.\./([^)]+)\)", rf"]({colab.repository_url()}/blob/{colab.BRANCH}/\1)", s) for s in original
    ]
    relinked = [re.sub(r"/blob/main/([^)]+/)\)", r"/tree/main/\1)", s) for s in relinked]  # a folder: GitHub's tree
    assert kept == relinked
    for target in re.findall(r"\]\(([^)\s#]+)", guide):  # every relative link resolves in the lecturer folder
        if not re.match(r"^[a-z]+:", target):
            assert (out / "lecturer" / target).exists(), target


def test_the_build_record_lists_every_file_with_its_checksum(built):
    out, _ = built
    record = json.loads((out / handouts.MARKER).read_text())["files"]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != handouts.MARKER)
    assert sorted(record) == on_disk and len(on_disk) == 2 * 7 + 2
    assert all(hashlib.sha256((out / p).read_bytes()).hexdigest() == h for p, h in record.items())


@pytest.mark.skipif(not REAL_KEYS.is_file(), reason="kit/answer_keys/discussion.md is not written yet")
def test_the_real_answer_keys_match_the_course_guide_and_build(tmp_path):
    out = tmp_path / "out"
    handouts.build(out, only="lecturer")
    keys = parse_answer_keys(REAL_KEYS.read_text(), str(REAL_KEYS))
    for path in NOTEBOOKS:
        cells = [c for c in _read(out / "lecturer" / path.name).cells if handouts.ANSWER_KEY_TAG in _tags(c)]
        assert len(cells) == 1 + len(keys[int(path.name[:2])])
    guide = (out / "lecturer" / "COURSE_GUIDE.md").read_text()
    assert guide.count(handouts.GUIDE_KEY_HEADING) == len(keys) == 7


# ----------------------------------------------------------------------------------
# A small source tree: assignments, links, figures, and the output folder's protection
# ----------------------------------------------------------------------------------


def _tiny_notebook(title: str, extra_markdown: str = "") -> nbformat.NotebookNode:
    v4 = nbformat.v4
    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    stub = v4.new_code_cell("def f():\n    # your code here\n    return None\n\n\nprint('Not yet')")
    stub.outputs = [v4.new_output("stream", text="Not yet\n")]
    nb.cells = [
        v4.new_markdown_cell(f"# {title}\n\n{extra_markdown}"),
        v4.new_markdown_cell("## Exercises"),
        stub,
        v4.new_code_cell("# @title Solution\nTHE_SECRET_ANSWER = 42", metadata={"tags": ["solution"]}),
        v4.new_markdown_cell("## References"),
    ]
    return nb


@pytest.fixture
def tiny(tmp_path) -> handouts.Sources:
    """Two notebooks, a guide, keys, an assignment, a figure; links inward, outward and between them."""
    root = tmp_path / "repo"
    (root / "notebooks" / "figures").mkdir(parents=True)
    (root / "notebooks" / "figures" / "f.png").write_bytes(b"PNG")
    (root / "README.md").write_text("readme")
    nbformat.write(
        _tiny_notebook("One", "![a figure](figures/f.png) and [two](02_two.ipynb)"), root / "notebooks" / "01_one.ipynb"
    )
    nbformat.write(_tiny_notebook("Two", "[the README](../README.md)"), root / "notebooks" / "02_two.ipynb")
    guide = (
        "# Guide\n\n## 4. Notebook by notebook\n\n### 1. [One](01_one.ipynb)\n\n**Discussion.** (a) Why?\n(b) How?\n\n"
    )
    guide += "### 2. [Two](02_two.ipynb)\n\n**Discussion.** (a) What, see [the README](../README.md)?\n\n## 5. Next\n"
    (root / "notebooks" / "COURSE_GUIDE.md").write_text(guide)
    (root / "kit" / "answer_keys").mkdir(parents=True)
    keys = "# Keys\n\n## Notebook 1\n### (a)\nBecause, see [two](../../notebooks/02_two.ipynb).\n### (b)\nSo.\n"
    (root / "kit" / "answer_keys" / "discussion.md").write_text(keys + "## Notebook 2\n### (a)\nThis.\n")
    (root / "kit" / "assignments").mkdir()
    (root / "kit" / "assignments" / "data.png").write_bytes(b"DATA")
    assignment = _tiny_notebook("Assignment", "[notebook 1](../../notebooks/01_one.ipynb) ![d](data.png)")
    nbformat.write(assignment, root / "kit" / "assignments" / "a1.ipynb")
    nb_dir = root / "notebooks"
    return handouts.Sources(
        nb_dir,
        nb_dir / "COURSE_GUIDE.md",
        root / "kit" / "answer_keys" / "discussion.md",
        root / "kit" / "assignments",
        root,
    )


def test_assignments_links_and_figures_in_both_parts(tiny, tmp_path):
    out = tmp_path / "out"
    handouts.build(out, sources=tiny)
    student, lecturer = out / "student", out / "lecturer"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        handouts.MARKER,
        *(
            f"lecturer/{n}"
            for n in (
                "01_one.ipynb",
                "02_two.ipynb",
                "COURSE_GUIDE.md",
                "assignments/a1.ipynb",
                "assignments/data.png",
                "figures/f.png",
            )
        ),
        *(
            f"student/{n}"
            for n in (
                "01_one.ipynb",
                "02_two.ipynb",
                "README.md",
                "assignments/a1.ipynb",
                "assignments/data.png",
                "figures/f.png",
            )
        ),
    ]
    a1 = _read(student / "assignments" / "a1.ipynb")
    assert len(a1.cells) == 4 and "THE_SECRET_ANSWER" not in json.dumps(a1)
    assert a1.cells[0].source == "# Assignment\n\n[notebook 1](../01_one.ipynb) ![d](data.png)"
    assert _read(lecturer / "assignments" / "a1.ipynb").cells[3].source.endswith("THE_SECRET_ANSWER = 42")
    assert (
        _read(student / "01_one.ipynb").cells[0].source.endswith("![a figure](figures/f.png) and [two](02_two.ipynb)")
    )
    readme_url = f"{colab.repository_url()}/blob/{colab.BRANCH}/README.md"
    assert _read(student / "02_two.ipynb").cells[0].source == f"# Two\n\n[the README]({readme_url})"
    one = _read(lecturer / "01_one.ipynb")
    assert [c.id for c in one.cells if handouts.ANSWER_KEY_TAG in _tags(c)] == [
        "answer-key-1-0",
        "answer-key-1-1",
        "answer-key-1-2",
    ]
    assert one.cells[5].source == "> **(a)** Why?\n\nBecause, see [two](02_two.ipynb)."  # relative to the copy now
    guide = (lecturer / "COURSE_GUIDE.md").read_text()
    key = handouts.GUIDE_KEY_HEADING
    assert f"**Discussion.** (a) What, see [the README]({readme_url})?\n\n{key}\n\n**(a)**\n\nThis.\n\n## 5." in guide
    first = "\n\n**(a)**\n\nBecause, see [two](02_two.ipynb).\n\n**(b)**\n\nSo.\n\n### 2."
    assert f"**Discussion.** (a) Why?\n(b) How?\n\n{key}{first}" in guide
    assert "assignments/a1.ipynb" in (student / "README.md").read_text()


def test_the_command_prints_what_it_wrote_and_rebuilds_over_its_own_build(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(handouts, "Sources", lambda keys: dataclasses.replace(tiny, keys=keys))
    monkeypatch.chdir(tiny.root)  # a relative --keys: its links still resolve from where the file is
    out = tmp_path / "out"
    assert handouts.main(["--out", str(out), "--keys", "kit/answer_keys/discussion.md"]) == 0
    assert "[two](02_two.ipynb)" in (out / "lecturer" / "COURSE_GUIDE.md").read_text()
    printed = capsys.readouterr().out
    assert "student: 6 files" in printed and "2 notebooks (2 solution cells removed)" in printed
    assert "1 assignments (1 solution cells removed)" in printed and "lecturer: 6 files" in printed
    assert "+5 answer-key cells" in printed
    first = json.loads((out / handouts.MARKER).read_text())
    assert (
        handouts.main(["--out", str(out), "--keys", str(tiny.keys)]) == 0
    )  # over its own build: fine, and the same files
    assert json.loads((out / handouts.MARKER).read_text()) == first
    (tiny.notebooks / "02_two.ipynb").unlink()  # a part rebuilt alone drops its stale files, keeps the other part
    assert handouts.main(["--out", str(out), "--only", "student", "--keys", str(tiny.keys)]) == 0
    assert not (out / "student" / "02_two.ipynb").exists() and (out / "lecturer" / "02_two.ipynb").exists()
    record = json.loads((out / handouts.MARKER).read_text())["files"]
    assert "lecturer/02_two.ipynb" in record and "student/02_two.ipynb" not in record


def test_a_folder_with_other_files_is_refused_and_left_untouched(tiny, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(handouts.HandoutError, match=r"not empty and holds no handouts build .*notes\.txt"):
        handouts.build(out, sources=tiny)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "my notes"
    assert not list(tmp_path.glob(".mine-staging-*")), "the staging folder is cleaned up"


def test_files_added_or_changed_after_a_build_stop_the_next_build(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    handouts.build(out, sources=tiny)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "student" / "runs").mkdir()
    (out / "student" / "runs" / "checkpoint.pt").write_bytes(b"a student's run")
    edited = out / "lecturer" / "COURSE_GUIDE.md"
    edited.write_text(edited.read_text() + "my own note\n")
    before[edited] = edited.read_bytes()
    with pytest.raises(handouts.HandoutError) as err:
        handouts.build(out, sources=tiny)
    message = str(err.value)
    assert "files no handouts build wrote: student/runs/checkpoint.pt" in message
    assert "files changed since the last build: lecturer/COURSE_GUIDE.md" in message
    assert all(p.read_bytes() == data for p, data in before.items())  # nothing replaced
    assert handouts.main(["--out", str(out)]) == 1
    assert "handouts: error:" in capsys.readouterr().err


def test_missing_or_wrong_keys_stop_the_build_before_anything_is_written(tiny, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(AnswerKeyError, match=r"do not exist\. .*--only student"):
        handouts.build(out, sources=dataclasses.replace(tiny, keys=tmp_path / "none.md"))
    tiny.keys.write_text(tiny.keys.read_text().replace("### (b)\nSo.\n", ""))
    with pytest.raises(AnswerKeyError, match=re.escape("notebook 1: (b) missing")):
        handouts.build(out, sources=tiny)
    assert not out.exists()
    handouts.build(out, only="student", sources=tiny)  # the student part needs no keys
    assert sorted(p.name for p in out.iterdir()) == [handouts.MARKER, "student"]


# ----------------------------------------------------------------------------------
# The student copies run (slow: about 90 s of CPU)
# ----------------------------------------------------------------------------------


def _output_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        parts.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_the_student_copies_run_top_to_bottom_in_quick_mode(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out = tmp_path / "out"
    handouts.build(out, only="student")
    folder = out / "student"
    monkeypatch.setenv("CVAE_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernels import this checkout's cvae_utils
    failures, times, checked = [], [], 0
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        nb = _read(path)
        start = time.perf_counter()
        try:
            NotebookClient(
                nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
            ).execute()
        except CellExecutionError as err:
            failures.append(f"{path.name}: a cell raised:\n{str(err)[-1500:]}")
            continue
        finally:
            times.append(f"{time.perf_counter() - start:6.1f} s  {path.name}")
        for cell in nb.cells:
            if cell.cell_type == "code" and CHECKER_CALL.search(cell.source):
                checked += 1
                if "Not yet" not in _output_text(cell):
                    failures.append(f"{path.name}: a checker did not say 'Not yet': {_output_text(cell)[:200]!r}")
    print("student copies run in quick mode:\n" + "\n".join(times))
    assert not failures, "\n".join(failures)
    assert checked == 9  # the coding exercises of the course guide's section 5 table, all unsolved
