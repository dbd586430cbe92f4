"""The quiz at the end of each notebook: ``cu.quiz(1)``, as a cell's last line, shows notebook 1's.

In a running notebook the quiz is a widget of core ipywidgets (JupyterLab, Colab): per question an
answer control, a *Check* button and a feedback area that explains the answer, right or wrong, and
names the section to reread; a score line counts the right answers. Its display bundle also holds
the questions and choices as HTML, markdown and plain text, with no answers: what a copy that never
ran shows (a notebook opened without a kernel, GitHub, the static website).

Modules: :mod:`~cvae_utils.quizzes.questions` (the question types and their checks),
:mod:`~cvae_utils.quizzes.widget` (the view), :mod:`~cvae_utils.quizzes.bank` (the questions of
each notebook, checked when loaded).
"""

from __future__ import annotations

from functools import cached_property

from .questions import (
    Choice,
    MultipleChoice,
    Numeric,
    Question,
    QuizBankError,
    Trap,
    check_bank,
    right,
    static_bundle,
    wrong,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

__all__ = [
    "Choice", "MultipleChoice", "Numeric", "Trap", "Question", "QuizBankError", "Quiz", "quiz", "right", "wrong",
    "check_bank",
]  # fmt: skip


class Quiz:
    """A notebook's quiz: a widget where a kernel runs, the questions as text everywhere else.

    ``widget`` is the ipywidgets view (built once, on first use); ``views`` holds one
    :class:`~cvae_utils.quizzes.widget.QuestionView` per question (its ``answer`` control, ``check``
    button and ``feedback``), ``score`` the score line.
    """

    def __init__(self, number: int, title: str, questions: tuple[Question, ...]):
        self.number, self.title, self.questions = number, title, questions

    def static_bundle(self) -> dict[str, str]:
        """The questions and choices as text/html, text/markdown and text/plain: no answers."""
        return static_bundle(self.title, self.questions)

    @cached_property
    def _built(self):
        from .widget import build

        return build(self.title, self.questions)

    @property
    def widget(self):
        return self._built[0]

    @property
    def views(self):
        return self._built[1]

    @property
    def score(self):
        return self._built[2]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self.static_bundle()
        view = (self.widget._repr_mimebundle_() or {}).get(WIDGET_VIEW)
        if view is not None:
            bundle[WIDGET_VIEW] = view
        return bundle

    def __repr__(self) -> str:
        return f"<Quiz of notebook {self.number}: {len(self.questions)} questions>"


def quiz(number: int) -> Quiz:
    """The quiz of notebook ``number`` (1 to 7): ``cu.quiz(1)`` as a cell's last line shows it."""
    from .bank import BANK, TITLES

    if isinstance(number, bool) or not isinstance(number, int) or number not in BANK:
        raise ValueError(
            f"no quiz for notebook {number!r}: there is one for each of the notebooks {min(BANK)} to {max(BANK)}; "
            f"call cu.quiz with the notebook's number, e.g. cu.quiz({min(BANK)})."
        )
    return Quiz(number, f"Quiz: notebook {number}, {TITLES[number]}", BANK[number])
