"""The answer keys to the course guide's discussion questions: read them, check them against the guide.

Used by ``python -m tools.handouts`` (the lecturer's copies). Two sources:

* ``notebooks/COURSE_GUIDE.md``, section 4: each notebook's subsection ``### N. [Title](file)`` has a
  paragraph that starts with ``**Discussion.**`` and asks questions ``(a)``, ``(b)``, ...;
* ``kit/answer_keys/discussion.md``, in this format (a heading per notebook, one per question)::

      # Answer keys: the course guide's discussion questions
      (free intro text)
      ## Notebook 1
      ### (a)
      answer markdown...
      ### (b)
      ...
      ## Notebook 2
      ...

:func:`check_keys` demands one answer per question the guide asks, no more and no fewer, and
names every notebook or letter that is missing or extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

KEYS_FORMAT = (
    "'## Notebook N' (N = 1, 2, ...) per notebook, then '### (a)', '### (b)', ... per question, each followed by "
    "its answer in markdown; free text is allowed only before the first '## Notebook'"
)
NOTEBOOK_HEADING = re.compile(r"^## Notebook (\d+)(?:\s*[:.,—–-].*)?\s*$")
LETTER_HEADING = re.compile(r"^### \(([a-z])\)(?:\s.*)?$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|lorem ipsum", re.IGNORECASE)
GUIDE_SECTION = re.compile(r"^## 4\.")
GUIDE_NOTEBOOK = re.compile(r"^### (\d+)\. ")
DISCUSSION = "**Discussion.**"
QUESTION_LETTER = re.compile(r"(?:^|\s)\(([a-z])\)\s")


class AnswerKeyError(ValueError):
    """The answer keys or the course guide are not in the agreed form (the message says what and where)."""


@dataclass(frozen=True)
class Discussion:
    """One notebook's discussion paragraph in the course guide: its questions by letter, and where it ends."""

    notebook: int
    questions: dict[str, str]
    last_line: int  # index (from 0) of the paragraph's last line in the guide


def _unfenced_lines(text: str) -> list[tuple[int, str, bool]]:
    """(line number from 1, line, True if inside a fenced code block) for every line of ``text``."""
    rows, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        inside = fence is not None or m is not None
        if m and fence is None:
            fence = m.group(1)
        elif m and line.strip().startswith(fence):
            fence = None
        rows.append((number, line, inside))
    return rows


def parse_answer_keys(text: str, source: str = "the answer keys") -> dict[int, dict[str, str]]:
    """The answers in ``text``: {notebook number: {letter: answer markdown}}, in the file's order.

    Raises :class:`AnswerKeyError` naming the line of a heading that is not in the format, a notebook
    or letter given twice, an answer outside a letter, or an empty or placeholder answer.
    """
    keys: dict[int, dict[str, str]] = {}
    notebook: int | None = None
    letter: str | None = None
    body: list[str] = []

    def close() -> None:
        if notebook is not None and letter is not None:
            answer = "\n".join(body).strip("\n")
            where = f"{source}, notebook {notebook} ({letter})"
            if not answer.strip():
                raise AnswerKeyError(f"{where}: the answer is empty")
            if m := PLACEHOLDER.search(answer):
                raise AnswerKeyError(f"{where}: the answer holds a placeholder ({m.group(0)!r}); write the answer")
            keys[notebook][letter] = answer

    for number, line, fenced in _unfenced_lines(text):
        where = f"{source}, line {number}"
        if not fenced and line.startswith("## "):
            close()
            m = NOTEBOOK_HEADING.match(line)
            if not m:
                raise AnswerKeyError(f"{where}: {line!r} is not a notebook heading. The format: {KEYS_FORMAT}")
            notebook, letter = int(m.group(1)), None
            if notebook in keys:
                raise AnswerKeyError(f"{where}: notebook {notebook} has a second '## Notebook {notebook}' heading")
            keys[notebook] = {}
        elif not fenced and line.startswith("### "):
            close()
            m = LETTER_HEADING.match(line)
            if not m or notebook is None:
                raise AnswerKeyError(f"{where}: {line!r} is not a question heading. The format: {KEYS_FORMAT}")
            letter, body = m.group(1), []
            if letter in keys[notebook]:
                raise AnswerKeyError(f"{where}: notebook {notebook} answers ({letter}) twice")
        elif letter is not None:
            body.append(line)
        elif notebook is not None and line.strip():
            raise AnswerKeyError(
                f"{where}: text under '## Notebook {notebook}' before its first '### (a)'. The format: {KEYS_FORMAT}"
            )
    close()
    for n, answers in keys.items():
        if not answers:
            raise AnswerKeyError(f"{source}: '## Notebook {n}' has no '### (a)' answer under it")
    return keys


def _questions(paragraph: str, where: str) -> dict[str, str]:
    """Split a discussion paragraph into its questions (a), (b), ... and check they run a, b, c, ..."""
    text = " ".join(paragraph.removeprefix(DISCUSSION).split())
    marks = list(QUESTION_LETTER.finditer(" " + text))
    letters = [m.group(1) for m in marks]
    expected = [chr(ord("a") + i) for i in range(len(letters))]
    if not letters or letters != expected:
        raise AnswerKeyError(f"{where}: the questions are lettered {letters or 'not at all'}, expected (a), (b), ...")
    ends = [m.start() for m in marks[1:]] + [len(text) + 1]
    return {m.group(1): (" " + text)[m.end() : end].strip() for m, end in zip(marks, ends)}


def discussion_questions(guide: str, source: str = "the course guide") -> dict[int, Discussion]:
    """Each notebook's discussion questions, from section 4 of the course guide's text ``guide``."""
    lines = guide.splitlines()
    start = next((i for i, line in enumerate(lines) if GUIDE_SECTION.match(line)), None)
    if start is None:
        raise AnswerKeyError(f"{source}: no section '## 4. ...' (notebook by notebook)")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    found: dict[int, Discussion] = {}
    notebook = None
    i = start + 1
    while i < end:
        if m := GUIDE_NOTEBOOK.match(lines[i]):
            notebook = int(m.group(1))
        elif lines[i].startswith(DISCUSSION) and notebook is not None:
            j = i
            while j + 1 < end and lines[j + 1].strip() and not lines[j + 1].startswith("#"):
                j += 1
            where = f"{source}, line {i + 1} (notebook {notebook})"
            found[notebook] = Discussion(notebook, _questions("\n".join(lines[i : j + 1]), where), j)
            i = j
        i += 1
    if not found:
        raise AnswerKeyError(f"{source}: section 4 has no '{DISCUSSION}' paragraph")
    return found


def check_keys(keys: dict[int, dict[str, str]], discussions: dict[int, Discussion], source: str) -> None:
    """Raise :class:`AnswerKeyError` listing every question without an answer and every answer without a question."""
    problems = []
    for n in sorted(set(discussions) | set(keys)):
        asked = set(discussions[n].questions) if n in discussions else set()
        answered = set(keys.get(n, {}))
        if n not in keys:
            problems.append(f"notebook {n} is missing (the course guide asks {_letters(asked)})")
        elif n not in discussions:
            problems.append(f"notebook {n} is extra: the course guide asks no discussion questions for it")
        else:
            if missing := asked - answered:
                problems.append(f"notebook {n}: {_letters(missing)} missing (the course guide asks {_letters(asked)})")
            if extra := answered - asked:
                problems.append(f"notebook {n}: {_letters(extra)} extra (the course guide asks {_letters(asked)})")
    if problems:
        raise AnswerKeyError(
            f"{source} do not match the course guide's discussion questions:\n  - " + "\n  - ".join(problems)
        )


def _letters(letters: set[str]) -> str:
    return ", ".join(f"({c})" for c in sorted(letters))


def load_checked_keys(keys_path: Path, guide_path: Path) -> tuple[dict[int, dict[str, str]], dict[int, Discussion]]:
    """Read the answer keys and the guide's questions, and check that they match (see :func:`check_keys`)."""
    if not keys_path.is_file():
        raise AnswerKeyError(
            f"the answer keys {keys_path} do not exist. Write them ({KEYS_FORMAT}), pass another file with --keys, "
            "or build the student copies alone with --only student"
        )
    keys = parse_answer_keys(keys_path.read_text(encoding="utf-8"), str(keys_path))
    discussions = discussion_questions(guide_path.read_text(encoding="utf-8"), str(guide_path))
    check_keys(keys, discussions, f"the answer keys {keys_path}")
    return keys, discussions
