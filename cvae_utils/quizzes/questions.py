"""The questions of the quizzes: their types, their checks, and their text without the answers.

A question is a :class:`MultipleChoice` (exactly one right :class:`Choice`, each choice with its own
feedback) or a :class:`Numeric` (an answer, a tolerance, feedback for typical wrong values and a
hint for any other). Texts are markdown and may hold ``$math$``; each question names the section of
its notebook that explains it (``see``). ``check`` is a pure function: the widget
(:mod:`cvae_utils.quizzes.widget`) calls it, and so do the tests. :func:`static_bundle` writes the
questions and choices as HTML, markdown and plain text, with no answer and no feedback.
"""

from __future__ import annotations

import html
import random
import re
import zlib
from dataclasses import dataclass

LETTERS = "abcdefgh"
HTML_CLASS = "cvae-quiz mathjax_process tex2jax_process"
_TOKENS = re.compile(r"(\$[^$]+\$|`[^`]+`)")  # inline math and code: passed through, never reformatted


class QuizBankError(ValueError):
    """A question of the bank is malformed (raised when the bank is checked)."""


@dataclass(frozen=True)
class Choice:
    """One answer of a multiple-choice question and the feedback shown when it is checked."""

    text: str
    feedback: str
    correct: bool = False
    see: str | None = None  # another section than the question's, where this choice's error is explained


def right(text: str, feedback: str, see: str | None = None) -> Choice:
    return Choice(text, feedback, True, see)


def wrong(text: str, feedback: str, see: str | None = None) -> Choice:
    return Choice(text, feedback, False, see)


@dataclass(frozen=True)
class Trap:
    """A typical wrong numeric answer (within the question's tolerance) and why it is wrong."""

    value: float
    feedback: str


@dataclass(frozen=True)
class MultipleChoice:
    """A question with lettered choices, exactly one right.

    The bank may list the right choice anywhere (first, say): the choices are shown in an order fixed
    by the question's text (the right one at the letter its hash picks, the others shuffled by a
    generator seeded with it), so the right letter varies from question to question but stays the
    same for a question on every run and in every copy.
    """

    text: str
    choices: tuple[Choice, ...]
    see: str  # the start of the heading (without the #s) of the section that explains the question

    def __post_init__(self) -> None:
        seed = zlib.crc32(self.text.encode("utf-8"))
        right = [c for c in self.choices if c.correct]
        others = [c for c in self.choices if not c.correct]
        random.Random(seed).shuffle(others)
        # the right choice goes to the letter the text's hash picks: the letters a, b, c, ... equally likely
        order = others[:]
        order[seed % len(self.choices) : seed % len(self.choices)] = right
        object.__setattr__(self, "choices", tuple(order))

    def check(self, index: int | None) -> tuple[bool | None, str]:
        """``(right, feedback)`` for the choice at ``index``; ``(None, ...)`` when nothing is chosen."""
        if index is None:
            return None, "Pick an answer first."
        if not 0 <= index < len(self.choices):
            raise IndexError(f"choice {index} of a question with {len(self.choices)} choices")
        choice = self.choices[index]
        return _verdict(choice.correct, choice.feedback, choice.see or self.see)


@dataclass(frozen=True)
class Numeric:
    text: str
    answer: float
    tolerance: float
    feedback: str  # shown with a right answer
    hint: str  # shown with a wrong value that no trap explains
    see: str
    traps: tuple[Trap, ...] = ()

    def check(self, entry: str | float | None) -> tuple[bool | None, str]:
        """``(right, feedback)`` for a typed entry; ``(None, ...)`` when it is empty or not a number."""
        value = parse_number(entry)
        if value is None:
            return None, "Type a number (for example -4.5 or 1e-3), then Check."
        if abs(value - self.answer) <= self.tolerance:
            return _verdict(True, self.feedback, self.see)
        trap = next((t for t in self.traps if abs(value - t.value) <= self.tolerance), None)
        return _verdict(False, trap.feedback if trap else self.hint, self.see)


Question = MultipleChoice | Numeric


def parse_number(entry: str | float | None) -> float | None:
    """A float from a typed entry ("1,084.8", " -4.1 ", "1e-3"), or None if it is not one."""
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return float(entry)
    text = (entry or "").strip().replace(",", "").replace("\u2212", "-")  # thousands commas, a typed minus sign
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _verdict(correct: bool, feedback: str, see: str) -> tuple[bool, str]:
    if correct:
        return True, f"**Right.** {feedback}"
    where = f"section *{see}*" if see[:1].isdigit() else f"*{see}*"
    return False, f"**Not quite.** {feedback} See {where}."


# ----------------------------------------------------------------------------------------------- checks


def _check_text(where: str, text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise QuizBankError(f"{where}: the text is empty; write it.")
    if text.count("$") % 2 or text.count("`") % 2:
        raise QuizBankError(f"{where}: an unclosed $ or ` in {text!r}; close the math or code span.")


def check_question(where: str, question: Question) -> None:
    """Raise :class:`QuizBankError` if ``question`` is malformed; ``where`` names it in the message."""
    _check_text(f"{where}, question text", question.text)
    _check_text(f"{where}, see", question.see)
    if isinstance(question, MultipleChoice):
        if not 3 <= len(question.choices) <= len(LETTERS):
            raise QuizBankError(f"{where}: {len(question.choices)} choices; give 3 to {len(LETTERS)}.")
        correct = [i for i, c in enumerate(question.choices) if c.correct]
        if len(correct) != 1:
            raise QuizBankError(f"{where}: {len(correct)} right choices {correct}; exactly one must be right.")
        for letter, choice in zip(LETTERS, question.choices):
            _check_text(f"{where}, choice ({letter})", choice.text)
            _check_text(f"{where}, feedback of choice ({letter})", choice.feedback)
        if len({c.text for c in question.choices}) != len(question.choices):
            raise QuizBankError(f"{where}: two choices have the same text.")
    elif isinstance(question, Numeric):
        if not question.tolerance > 0:
            raise QuizBankError(f"{where}: tolerance {question.tolerance}; it must be above 0.")
        for name in ("feedback", "hint"):
            _check_text(f"{where}, {name}", getattr(question, name))
        values = [question.answer] + [t.value for t in question.traps]
        for i, a in enumerate(values):
            for b in values[i + 1 :]:
                if abs(a - b) <= 2 * question.tolerance:
                    raise QuizBankError(
                        f"{where}: {a} and {b} lie within twice the tolerance {question.tolerance}; "
                        "a typed value could match both: move the trap or narrow the tolerance."
                    )
        for trap in question.traps:
            _check_text(f"{where}, feedback of trap {trap.value}", trap.feedback)
    else:
        raise QuizBankError(f"{where}: {type(question).__name__} is not a MultipleChoice or a Numeric question.")


def check_bank(bank: dict[int, tuple[Question, ...]]) -> None:
    """Check every question of ``{notebook number: questions}``: 4 to 6 per notebook, each well formed."""
    for number, questions in bank.items():
        if not 4 <= len(questions) <= 6:
            raise QuizBankError(f"notebook {number}: {len(questions)} questions; a quiz has 4 to 6.")
        for i, question in enumerate(questions, 1):
            check_question(f"notebook {number}, question {i}", question)


# ---------------------------------------------------------------------------------------------- texts


def markdown_to_html(text: str) -> str:
    """Inline markdown to HTML: `code`, **bold**, *italic*; $math$ kept for MathJax; the rest escaped."""
    parts = []
    for token in _TOKENS.split(text):
        if token.startswith("`") and token.endswith("`") and len(token) > 1:
            parts.append(f"<code>{html.escape(token[1:-1])}</code>")
        elif token.startswith("$") and token.endswith("$") and len(token) > 1:
            parts.append(html.escape(token, quote=False))
        else:
            escaped = html.escape(token, quote=False)
            escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
            parts.append(re.sub(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])", r"<em>\1</em>", escaped))
    return "".join(parts)


def _kind(question: Question) -> str:
    return "pick one" if isinstance(question, MultipleChoice) else "answer with a number"


def question_html(number: int, question: Question) -> str:
    lines = [f"<p><strong>{number}.</strong> {markdown_to_html(question.text)} <em>({_kind(question)})</em></p>"]
    if isinstance(question, MultipleChoice):
        items = (f"<li>({letter}) {markdown_to_html(c.text)}</li>" for letter, c in zip(LETTERS, question.choices))
        lines.append(f"<ul>{''.join(items)}</ul>")
    return "\n".join(lines)


def static_bundle(title: str, questions: tuple[Question, ...]) -> dict[str, str]:
    """HTML, markdown and plain text of the questions and choices: no answers, no feedback."""
    intro = f"{len(questions)} questions. Run this cell to answer them: each answer is checked and explained."
    # mathjax_process: a static site whose MathJax reads only marked elements (myst-nb's) typesets the math too
    html_parts = [f'<div class="{HTML_CLASS}">\n<p><strong>{html.escape(title)}</strong>: {intro}</p>']
    md_parts = [f"**{title}**: {intro}"]
    for i, q in enumerate(questions, 1):
        html_parts.append(question_html(i, q))
        md_parts.append(f"**{i}.** {q.text} *({_kind(q)})*")
        if isinstance(q, MultipleChoice):
            md_parts.append("\n".join(f"- ({letter}) {c.text}" for letter, c in zip(LETTERS, q.choices)))
    html_parts.append("</div>")
    markdown = "\n\n".join(md_parts) + "\n"
    return {"text/html": "\n".join(html_parts) + "\n", "text/markdown": markdown, "text/plain": markdown}
