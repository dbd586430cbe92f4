"""The notebooks' quizzes (cvae_utils/quizzes, tools/quiz.py): the bank, the widget, the static text, the cells.

No kernel and no notebook run: the widget is driven in Python (choose, ``check.click()``, read the feedback),
the notebooks are read as JSON.
"""

from __future__ import annotations

import html
import json
import re

import pytest

import cvae_utils as cu
from cvae_utils.quizzes import MultipleChoice, Numeric, QuizBankError, Trap, check_bank, right, wrong
from cvae_utils.quizzes.bank import BANK
from cvae_utils.quizzes.questions import markdown_to_html
from tools import quiz as quiz_tool
from tools import stored_outputs
from tools.colab import notebook_paths

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PATHS = {int(p.name[:2]): p for p in notebook_paths()}
NUMBERS = sorted(PATHS)


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _notebook(number: int) -> dict:
    return json.loads(PATHS[number].read_text(encoding="utf-8"))


def _texts(question) -> list[str]:
    """Every text of a question a student may read (question, choices, feedback, hints), not its ``see``."""
    if isinstance(question, MultipleChoice):
        return [question.text, *(t for c in question.choices for t in (c.text, c.feedback))]
    return [question.text, question.feedback, question.hint, *(t.feedback for t in question.traps)]


def _feedbacks(question) -> list[str]:
    if isinstance(question, MultipleChoice):
        return [c.feedback for c in question.choices]
    return [question.feedback, question.hint, *(t.feedback for t in question.traps)]


# ------------------------------------------------------------------------------------------------ the bank


def test_every_notebook_has_a_quiz_and_every_question_is_well_formed():
    assert NUMBERS == list(range(1, 8)) and sorted(BANK) == NUMBERS
    for number in NUMBERS:
        questions = cu.quiz(number).questions
        assert 4 <= len(questions) <= 6, number
        for question in questions:
            if isinstance(question, MultipleChoice):
                assert sum(c.correct for c in question.choices) == 1
                assert all(c.feedback.strip() for c in question.choices), "feedback for every choice"
            else:
                assert question.tolerance > 0 and question.hint.strip() and question.traps
    check_bank(BANK)


def _mc(**changes):
    choices = (right("yes", "because"), wrong("no", "why not"), wrong("maybe", "why not either"))
    return MultipleChoice(**{"text": "Which?", "choices": choices, "see": "1. Somewhere", **changes})


def _numeric(**changes):
    fields = {"text": "How many?", "answer": 10.0, "tolerance": 0.5, "feedback": "yes", "hint": "count", "see": "2."}
    return Numeric(**{**fields, **changes})


@pytest.mark.parametrize(
    "question, message",
    [
        (_mc(choices=(right("a", "x"), right("b", "y"), wrong("c", "z"))), "2 right choices"),
        (_mc(choices=(wrong("a", "x"), wrong("b", "y"), wrong("c", "z"))), "0 right choices"),
        (_mc(choices=(right("a", "x"), wrong("b", " "), wrong("c", "z"))), "feedback of choice ("),
        (_mc(choices=(right("a", "x"), wrong("b", "y"))), "2 choices"),
        (_mc(text="the $\\log p"), "unclosed $"),
        (_numeric(tolerance=0), "it must be above 0"),
        (_numeric(traps=(Trap(10.8, "off"),)), "within twice the tolerance"),
        (_numeric(hint=""), "hint"),
    ],
)
def test_a_malformed_question_is_refused_with_what_to_fix(question, message):
    with pytest.raises(QuizBankError, match=re.escape(message)):
        check_bank({9: (question,) * 4})


def test_a_quiz_of_the_wrong_length_is_refused():
    with pytest.raises(QuizBankError, match="3 questions; a quiz has 4 to 6"):
        check_bank({9: (_mc(),) * 3})


@pytest.mark.parametrize("number", [0, 8, "1", 1.0, True, None])
def test_an_unknown_notebook_number_is_a_clear_error(number):
    with pytest.raises(ValueError, match=r"no quiz for notebook .*notebooks 1 to 7.*cu\.quiz\(1\)"):
        cu.quiz(number)


# ------------------------------------------------------------------------------------------ the checks


def test_numeric_answers_count_within_the_tolerance_only():
    q = _numeric(traps=(Trap(-10.0, "the sign"), Trap(20.0, "doubled")))
    for entry in (10.0, "10.49", " 9.51 ", "1e1", "1,0.2"):
        assert q.check(entry)[0] is True, entry
    for entry, says in ((10.51, "count"), ("9.49", "count"), ("-10.2", "the sign"), ("19.6", "doubled")):
        verdict, text = q.check(entry)
        assert verdict is False and says in text and "See section *2.*" in text, entry
    for entry in ("", "ten", None, "nan", "inf"):
        assert q.check(entry)[0] is None, entry
    assert q.check("\u22124")[1].startswith("**Not quite.**")  # a typed minus sign reads as one


def test_a_wrong_choice_explains_itself_and_names_the_section_to_reread():
    q = _mc(choices=(right("yes", "because"), wrong("no", "why not", see="3. Elsewhere"), wrong("maybe", "hmm")))
    at = {c.text: i for i, c in enumerate(q.choices)}  # the order shown is fixed by the text, not the listing
    assert q.check(at["yes"]) == (True, "**Right.** because")
    assert q.check(at["no"]) == (False, "**Not quite.** why not See section *3. Elsewhere*.")
    assert q.check(at["maybe"]) == (False, "**Not quite.** hmm See section *1. Somewhere*.")
    assert q.check(None)[0] is None
    with pytest.raises(IndexError):
        q.check(3)


# ------------------------------------------------------------------------------------------- the widget


def test_the_widget_checks_each_answer_and_keeps_the_score():
    quiz = cu.quiz(1)
    first, n = quiz.views[0], len(quiz.questions)
    assert f"0 of {n} right" in quiz.score.value and first.feedback.value == ""
    first.check.click()  # nothing chosen yet
    assert "Pick an answer first" in first.feedback.value and f"0 of {n} right</strong> (0 checked)" in quiz.score.value
    wrong_index = next(i for i, c in enumerate(first.question.choices) if not c.correct)
    right_index = next(i for i, c in enumerate(first.question.choices) if c.correct)
    first.answer.value = wrong_index
    first.check.click()
    assert "✗" in first.feedback.value and "Not quite." in first.feedback.value
    assert "See section" in first.feedback.value
    assert markdown_to_html(first.question.choices[wrong_index].feedback) in first.feedback.value
    assert f"0 of {n} right</strong> (1 checked)" in quiz.score.value
    first.answer.value = right_index
    first.check.click()
    assert "✓" in first.feedback.value and markdown_to_html(first.question.choices[right_index].feedback) in (
        first.feedback.value
    )
    assert f"1 of {n} right</strong> (1 checked)" in quiz.score.value


@pytest.mark.parametrize("number", NUMBERS)
def test_every_answer_of_every_quiz_gets_its_own_feedback(number):
    quiz = cu.quiz(number)
    for view in quiz.views:
        q = view.question
        if isinstance(q, MultipleChoice):
            assert view.answer.options == tuple((letter, i) for i, letter in enumerate("abcdefgh"[: len(q.choices)]))
            for i, choice in enumerate(q.choices):
                view.answer.value = i
                view.check.click()
                assert view.right is choice.correct and markdown_to_html(choice.feedback) in view.feedback.value
        else:
            for entry, verdict, text in [
                (q.answer + 0.9 * q.tolerance, True, q.feedback),
                (q.answer + 3 * q.tolerance + 1, False, q.hint),
                *((t.value, False, t.feedback) for t in q.traps),
            ]:
                view.answer.value = repr(entry)
                view.check.click()
                assert view.right is verdict and markdown_to_html(text) in view.feedback.value, entry
    right_ones = sum(v.right for v in quiz.views)
    assert f"{right_ones} of {len(quiz.views)} right" in quiz.score.value


def test_the_display_bundle_holds_the_widget_and_the_text():
    quiz = cu.quiz(2)
    bundle = quiz._repr_mimebundle_()
    assert set(bundle) == {WIDGET_VIEW, "text/html", "text/markdown", "text/plain"}
    assert bundle[WIDGET_VIEW]["model_id"] == quiz.widget.model_id
    assert {k: v for k, v in bundle.items() if k != WIDGET_VIEW} == quiz.static_bundle()


# --------------------------------------------------------------------------------------- the static text


@pytest.mark.parametrize("number", NUMBERS)
def test_the_static_text_lists_questions_and_choices_and_gives_nothing_away(number):
    quiz = cu.quiz(number)
    bundle = quiz.static_bundle()
    assert set(bundle) == {"text/html", "text/markdown", "text/plain"}
    for question in quiz.questions:
        assert markdown_to_html(question.text) in bundle["text/html"] and question.text in bundle["text/markdown"]
        choices = question.choices if isinstance(question, MultipleChoice) else ()
        for choice in choices:
            assert markdown_to_html(choice.text) in bundle["text/html"] and choice.text in bundle["text/markdown"]
        for text in bundle.values():
            for feedback in _feedbacks(question):
                assert feedback not in text and markdown_to_html(feedback) not in text
            assert "Right." not in text and "Not quite" not in text
            if isinstance(question, Numeric):
                assert not re.search(rf"(?<![\d.]){re.escape(f'{abs(question.answer):g}')}(?!\d)", text)
    assert bundle["text/html"].count("<p><strong>") == len(quiz.questions) + 1  # the title, then one per question


def test_the_inline_markdown_becomes_safe_html_and_math_is_kept():
    assert markdown_to_html("**a** *b* `c<d` $x < y$ & e") == (
        "<strong>a</strong> <em>b</em> <code>c&lt;d</code> $x &lt; y$ &amp; e"
    )
    assert markdown_to_html("$a * b$ and $c*d$") == "$a * b$ and $c*d$"  # no italics inside math


# ------------------------------------------------------------------------------------------ the notebooks


@pytest.mark.parametrize("number", NUMBERS)
def test_the_quiz_cell_stands_before_the_references_and_stores_the_current_text(number):
    nb = _notebook(number)
    assert quiz_tool.problems(nb, number) == []
    cells = nb["cells"]
    refs = next(i for i, c in enumerate(cells) if _source(c).startswith("## References"))
    assert _source(cells[refs - 2]).startswith("## Quiz") and _source(cells[refs - 1]) == f"cu.quiz({number})"
    exercises = next(i for i, c in enumerate(cells) if _source(c).startswith("## Exercises"))
    assert exercises < refs - 2
    (output,) = cells[refs - 1]["outputs"]
    assert WIDGET_VIEW not in output["data"], "a stored widget view without state renders nowhere"
    assert "".join(output["data"]["text/html"]) == cu.quiz(number).static_bundle()["text/html"]


def _headings(nb: dict) -> list[str]:
    return [
        line.lstrip("#").strip()
        for c in nb["cells"]
        if c["cell_type"] == "markdown" and "optional" not in c["metadata"].get("tags", [])
        for line in _source(c).splitlines()
        if re.match(r"#{2,3} ", line)
    ]


@pytest.mark.parametrize("number", NUMBERS)
def test_every_pointer_names_a_section_of_its_notebook(number):
    headings = _headings(_notebook(number))
    for i, question in enumerate(cu.quiz(number).questions, 1):
        extra = [c.see for c in getattr(question, "choices", ()) if c.see]
        for see in (question.see, *extra):
            assert any(h.startswith(see) for h in headings), f"question {i}: no section starts with {see!r}"


# A number "in prose": a decimal, or an integer of 10 or more, outside $math$ and `code`, not a section,
# notebook, exercise or row number. It must occur in the notebook's stored outputs (the quiz's own left out).
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w,]\d)")
_NOT_A_QUANTITY = re.compile(r"(sections?|notebooks?|exercises?|rows?|Eq\.)\s+$", re.I)


def _quoted_numbers(text: str) -> list[str]:
    prose = re.sub(r"\$[^$]+\$|`[^`]+`", " ", text)
    found = []
    for m in _NUMBER.finditer(prose):
        number = m.group(0).replace(",", "")
        if _NOT_A_QUANTITY.search(prose[: m.start()]) or ("." not in number and int(number) < 10):
            continue
        found.append(number)
    return found


def _printed(nb: dict) -> str:
    """The text of every stored output except the quiz's, thousands separators removed."""
    parts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "cu.quiz(" in _source(cell):
            continue
        for out in cell.get("outputs", []):
            parts.append(_source({"source": out.get("text", "")}))
            for mime in ("text/plain", "text/markdown"):
                parts.append(_source({"source": out.get("data", {}).get(mime, "")}))
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", html.unescape("\n".join(parts)))


def _unprinted(numbers: list[str], printed: str) -> list[str]:
    return [n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?!\d|\.\d)", printed)]


def test_the_number_check_finds_numbers_and_tells_printed_from_invented():
    text = "gap 0.1103 (section 9), from 86.7 to 0.116 in 400 steps; 2,000 codes, $784 \\log 2$, `x[12]`, 3 times"
    assert _quoted_numbers(text) == ["0.1103", "86.7", "0.116", "400", "2000"]
    printed = "gap 0.1103 nats; it started at 86.7; 0.1160 later; 400 steps; 2000 codes"
    assert _unprinted(["0.1103", "86.7", "0.116", "400", "2000", "40", "0.11"], printed) == ["0.116", "40", "0.11"]


@pytest.mark.parametrize("number", NUMBERS)
def test_every_number_a_question_quotes_is_printed_by_its_notebook(number):
    printed = _printed(_notebook(number))
    for i, question in enumerate(cu.quiz(number).questions, 1):
        numbers = [n for text in _texts(question) for n in _quoted_numbers(text)]
        assert not _unprinted(numbers, printed), f"question {i} quotes numbers the notebook does not print"


# ------------------------------------------------------------------------------ tools/quiz.py, stored outputs


def test_stored_outputs_cut_a_widget_view_only_where_html_stands_in_for_it():
    quiz = {"output_type": "execute_result", "data": {WIDGET_VIEW: {"model_id": "q"}, "text/html": "<p>Q</p>"}}
    slider = {"output_type": "display_data", "data": {WIDGET_VIEW: {"model_id": "s"}, "text/plain": "IntSlider()"}}
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [quiz, slider]}]}
    assert stored_outputs.clean(nb) == 1
    assert quiz["data"] == {"text/html": "<p>Q</p>"} and WIDGET_VIEW in slider["data"]
    assert stored_outputs.clean(nb) == 0


def _toy_notebook():
    md = lambda text: {"cell_type": "markdown", "metadata": {}, "source": [text]}
    code = lambda text, n: {"cell_type": "code", "execution_count": n, "metadata": {}, "outputs": [], "source": [text]}
    return {"cells": [md("## Exercises"), code("1 + 1", 1), code("2 + 2", 2), md("## References\n1. Sohn")]}


def test_the_tool_inserts_the_quiz_before_the_references_and_numbers_its_run():
    nb = _toy_notebook()
    assert quiz_tool.problems(nb, 3) == ["no quiz cells: run python -m tools.quiz"]
    assert quiz_tool.insert_cells(nb, 3) and not quiz_tool.insert_cells(nb, 3)  # a second call adds nothing
    assert [_source(c) for c in nb["cells"][-3:]] == ["## Quiz", "cu.quiz(3)", "## References\n1. Sohn"]
    bundle = cu.quiz(3)._repr_mimebundle_()
    quiz_tool.store(nb, 3, [{"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": bundle}])
    cell = nb["cells"][-2]
    assert cell["execution_count"] == 3 and cell["outputs"][0]["execution_count"] == 3
    assert WIDGET_VIEW not in cell["outputs"][0]["data"]
    assert quiz_tool.problems(nb, 3) == []
    cell["outputs"][0]["data"]["text/html"][1] = "<p>an old question</p>\n"
    assert quiz_tool.problems(nb, 3) == [
        "its stored output is not the quiz's text as the bank now has it: run python -m tools.quiz"
    ]
    nb["cells"].insert(-1, {"cell_type": "markdown", "metadata": {}, "source": ["stray"]})
    assert "right before '## References'" in quiz_tool.problems(nb, 3)[0]


def test_the_tool_refuses_a_half_present_quiz_and_a_code_cell_after_it():
    nb = _toy_notebook()
    nb["cells"].insert(3, {"cell_type": "markdown", "metadata": {}, "source": ["## Quiz"]})
    with pytest.raises(quiz_tool.QuizCellError, match="only one of the two quiz cells"):
        quiz_tool.insert_cells(nb, 3)
    nb = _toy_notebook()
    quiz_tool.insert_cells(nb, 3)
    nb["cells"].append({"cell_type": "code", "execution_count": 9, "metadata": {}, "outputs": [], "source": ["x"]})
    with pytest.raises(quiz_tool.QuizCellError, match="last code cell"):
        quiz_tool.store(nb, 3, [])


def test_the_right_letter_varies_and_is_stable():
    """The bank lists the right choice first; the quiz shows it at a letter picked by the question's text,
    so no letter is a safe guess, and every copy of a quiz shows the same order."""
    from collections import Counter

    letters = Counter()
    for questions in BANK.values():
        for q in getattr(questions, "questions", questions):
            if isinstance(q, MultipleChoice):
                where = next(i for i, c in enumerate(q.choices) if c.correct)
                letters[where] += 1
                again = MultipleChoice(q.text, tuple(reversed(q.choices)), q.see)  # listed in another order
                assert next(i for i, c in enumerate(again.choices) if c.correct) == where
                assert MultipleChoice(q.text, q.choices, q.see) == MultipleChoice(q.text, q.choices, q.see)
    total = sum(letters.values())
    assert len(letters) >= 3 and max(letters.values()) <= 0.4 * total, letters
