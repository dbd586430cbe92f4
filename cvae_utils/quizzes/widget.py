"""The ipywidgets view of a quiz (:class:`cvae_utils.quiz.Quiz` builds it): core widgets only.

Per question: the question and its lettered choices as ``HTMLMath`` (so ``$math$`` renders), an answer
control (``ToggleButtons`` a, b, c, ... or a ``Text`` box for a number), a *Check* button and a feedback
area; below them a score line, "k of n right". Each check calls the question's own ``check``, a pure
function the tests drive directly.
"""

from __future__ import annotations

import html

from .questions import LETTERS, MultipleChoice, Question, markdown_to_html, question_html

_MARK = {True: "✓", False: "✗", None: "…"}


class QuestionView:
    """The controls of one question: ``answer``, ``check`` (a Button), ``feedback`` (HTMLMath), ``right``."""

    def __init__(self, number: int, question: Question, on_change):
        import ipywidgets as widgets

        self.question, self.right = question, None
        self.text = widgets.HTMLMath(question_html(number, question))
        if isinstance(question, MultipleChoice):
            self.answer = widgets.ToggleButtons(
                options=[(letter, i) for i, letter in zip(range(len(question.choices)), LETTERS)],
                value=None,
                tooltips=[f"answer ({letter})" for letter in LETTERS[: len(question.choices)]],
                style={"button_width": "40px"},
            )
        else:
            self.answer = widgets.Text(placeholder="your answer: a number", layout=widgets.Layout(width="220px"))
        self.check = widgets.Button(description="Check", button_style="primary", layout=widgets.Layout(width="90px"))
        self.feedback = widgets.HTMLMath("")
        self._on_change = on_change
        self.check.on_click(self._checked)
        controls = widgets.HBox([self.answer, self.check], layout=widgets.Layout(align_items="center"))
        self.box = widgets.VBox([self.text, controls, self.feedback])

    def _checked(self, _button=None) -> None:
        verdict, text = self.question.check(self.answer.value)
        if verdict is not None:
            self.right = verdict
        self.feedback.value = f"<p>{_MARK[verdict]} {markdown_to_html(text)}</p>"
        self._on_change()


def build(title: str, questions: tuple[Question, ...]):
    """``(box, views, score)``: the whole widget, one :class:`QuestionView` per question, the score line."""
    import ipywidgets as widgets

    score = widgets.HTML()
    views: list[QuestionView] = []

    def update_score() -> None:
        checked = [v.right for v in views if v.right is not None]
        score.value = f"<p><strong>Score: {sum(checked)} of {len(views)} right</strong> ({len(checked)} checked)</p>"

    views.extend(QuestionView(i, q, update_score) for i, q in enumerate(questions, 1))
    update_score()
    header = widgets.HTML(
        f"<p><strong>{html.escape(title)}</strong>: pick an answer, then <em>Check</em>. "
        "Every answer, right or wrong, is explained.</p>"
    )
    box = widgets.VBox([header, *(v.box for v in views), score])
    return box, views, score
