"""The answer keys to the course guide's discussion questions, ``kit/answer_keys/discussion.md``.

The keys go into the lecturer copies only (issue 14); another tool inserts each one after its question, so the
file keeps one agreed format: ``## Notebook N`` (1 to 7, in order), then one ``### (x)`` per question, in order,
and no other heading. These tests check, without running anything:

- each notebook answers exactly the questions (a), (b), ... that its **Discussion.** paragraph in section 4 of
  ``notebooks/COURSE_GUIDE.md`` asks, so a question added to or removed from the guide fails here;
- each key opens with its question in italics and answers it in at least 40 words, with a pointer to a
  section or exercise;
- every decimal figure in a key (98.9, 0.1103, -107.19, 7.11e-15) is found, at the precision the key gives, in
  the guide, the README, ``data/quadrants/results.md``, the notebook's own ``.ipynb`` file, or the ``.ipynb`` of
  a notebook the key names ("notebook 4"); or it is arithmetic the key shows, listed in ``DERIVED`` with the
  expression that gives it, whose operands must themselves be found. An invented figure fails.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import pytest

from tools.handout_keys import discussion_questions, parse_answer_keys

ROOT = Path(__file__).resolve().parents[1]
KEYS = ROOT / "kit" / "answer_keys" / "discussion.md"
GUIDE = ROOT / "notebooks" / "COURSE_GUIDE.md"
COMMON_SOURCES = (GUIDE, ROOT / "README.md", ROOT / "data" / "quadrants" / "results.md")
NOTEBOOKS = range(1, 8)
TITLE = "# Answer keys: the course guide's discussion questions"

# Figures a key computes from sourced ones, shown in its text: notebook -> {figure: expression}.
DERIVED: dict[int, dict[str, str]] = {
    5: {
        "11.77": "20.81 - 9.04",  # the test KL's rise over 20 epochs
        "65.19": "143.75 - 78.56",  # the test reconstruction's fall over the same epochs
        "5.5": "65.19 / 11.77",  # reconstruction nats saved per nat of KL
    },
    7: {
        "0.004": "2.5 / 588",  # the NLL / -ELBO gap per target pixel, 1 quadrant (1.6 / 392 for 2)
        "0.003": "0.6 / 196",  # the same, 3 quadrants
    },
}

# a decimal number, thousands separators allowed ("1,084.8"); not the tail of a version ("3.10.1")
DECIMAL = re.compile(r"(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)\.\d+(?!\.\d)")
NAMED_NOTEBOOK = re.compile(r"\bnotebooks? (\d)\b", re.IGNORECASE)


def guide_questions(guide: str) -> dict[int, list[str]]:
    """The question letters of each notebook's **Discussion.** paragraph (the handouts tool's parser)."""
    return {n: list(d.questions) for n, d in discussion_questions(guide).items()}


def _roundings(token: str) -> set[str]:
    """``token`` (a decimal, no sign) and every shorter rounding of it, as a key could quote it."""
    value = Decimal(token.replace(",", ""))
    decimals = -value.as_tuple().exponent
    out = {format(value, "f")}
    for d in range(1, decimals):
        quantum = Decimal(1).scaleb(-d)
        out |= {format(value.quantize(quantum, rounding=mode), "f") for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN)}
    return out


@cache
def _figures(path: Path) -> frozenset[str]:
    """Every decimal figure of a file, with its roundings."""
    found: set[str] = set()
    for token in DECIMAL.findall(path.read_text(encoding="utf-8")):
        found |= _roundings(token)
    return frozenset(found)


def notebook_path(number: int) -> Path:
    (path,) = (ROOT / "notebooks").glob(f"{number:02d}_*.ipynb")
    return path


def sources_for(number: int, key: str) -> list[Path]:
    """The files a key of notebook ``number`` may quote: the common ones, its notebook, the notebooks it names."""
    named = {int(n) for n in NAMED_NOTEBOOK.findall(key) if int(n) in NOTEBOOKS}
    return [*COMMON_SOURCES, *(notebook_path(n) for n in sorted(named | {number}))]


def unsourced(number: int, key: str) -> list[str]:
    """The decimal figures of a key found neither in its sources nor among its notebook's DERIVED figures."""
    known = frozenset().union(*(_figures(p) for p in sources_for(number, key)))
    derived = DERIVED.get(number, {})
    return [
        token
        for token in DECIMAL.findall(key)
        if token.replace(",", "") not in known and token.replace(",", "") not in derived
    ]


@pytest.fixture(scope="module")
def keys() -> dict[int, dict[str, str]]:
    """The keys, read by the parser that inserts them into the lecturer copies (tools/handout_keys.py,
    whose tests in tests/test_handouts.py cover malformed files)."""
    return parse_answer_keys(KEYS.read_text(encoding="utf-8"), str(KEYS))


def test_the_file_opens_with_its_title():
    assert KEYS.read_text(encoding="utf-8").splitlines()[0] == TITLE


def test_the_keys_cover_notebooks_1_to_7_in_order(keys):
    assert list(keys) == list(NOTEBOOKS)


def test_the_guide_parses_into_a_discussion_per_notebook():
    questions = guide_questions(GUIDE.read_text(encoding="utf-8"))
    assert list(questions) == list(NOTEBOOKS)
    for number, letters in questions.items():  # consecutive from (a): the parse found labels, not stray "(x)"
        assert letters == [chr(ord("a") + i) for i in range(len(letters))] and len(letters) >= 2, (number, letters)


@pytest.mark.parametrize("number", NOTEBOOKS)
def test_each_notebook_answers_exactly_the_guides_questions_in_order(keys, number):
    asked = guide_questions(GUIDE.read_text(encoding="utf-8"))[number]
    assert list(keys[number]) == asked, (
        f"notebook {number}: the guide asks {asked}, the keys answer {list(keys[number])}"
    )


@pytest.mark.parametrize("number", NOTEBOOKS)
def test_each_key_restates_its_question_and_answers_it(keys, number):
    for letter, key in keys[number].items():
        question, _, answer = key.partition("\n")
        where = f"notebook {number} ({letter})"
        assert question.startswith("*") and not question.startswith("**") and question.endswith("*"), (
            f"{where}: the first line must restate the question in italics, got {question!r}"
        )
        words = len(answer.split())
        assert words >= 40, f"{where}: the answer has {words} words, fewer than 40"
        assert re.search(r"\b(section|exercise|cell)s?\b", answer, re.IGNORECASE), (
            f"{where}: no pointer to a section, exercise or cell of the notebook"
        )


@pytest.mark.parametrize("number", NOTEBOOKS)
def test_every_figure_in_a_key_has_a_source(keys, number):
    missing = {letter: unsourced(number, key) for letter, key in keys[number].items()}
    missing = {letter: figures for letter, figures in missing.items() if figures}
    assert not missing, (
        f"notebook {number}: figures found in no source (guide, README, results.md, the notebook or one the key "
        f"names) and not in DERIVED: {missing}"
    )


@pytest.mark.parametrize("number", sorted(DERIVED))
def test_derived_figures_are_shown_arithmetic_on_sourced_figures(keys, number):
    text = "\n".join(keys[number].values())
    in_keys = {t.replace(",", "") for t in DECIMAL.findall(text)}
    sourced = frozenset().union(*(_figures(p) for p in sources_for(number, text)))
    for figure, expression in DERIVED[number].items():
        assert figure in in_keys, f"notebook {number}: DERIVED lists {figure}, which no key quotes: remove it"
        assert re.fullmatch(r"[\d.\s+\-*/()]+", expression), expression
        operands = DECIMAL.findall(expression)
        assert all(o in sourced or o in DERIVED[number] for o in operands), (figure, expression)
        value = Decimal(repr(eval(expression, {"__builtins__": {}})))  # only numbers and operators, checked above
        assert figure in _roundings(format(value.quantize(Decimal("1e-9")), "f")), (
            f"notebook {number}: {expression} = {value}, which does not round to {figure}"
        )


def test_the_figure_check_catches_an_invented_figure_and_accepts_roundings():
    assert unsourced(1, "the best diagonal q misses by 0.1103 nats, random ones by 68.5") == []
    assert unsourced(1, "the gap is 0.1104 nats") == ["0.1104"]  # one digit off: not in any source
    # a figure of notebook 4 is found only where the key names notebook 4
    assert unsourced(1, "KL(q || p) = 2.8069 nats for these two Gaussians") == ["2.8069"]
    assert unsourced(1, "KL(q || p) = 2.8069 nats for these two Gaussians (notebook 4)") == []
