"""The question bank: ``BANK[n]`` holds the questions of notebook n, ``TITLES[n]`` its title.

Each module ``notebook_NN`` holds one notebook's ``QUESTIONS`` (see :mod:`cvae_utils.quizzes.questions` for the
question types). Every number a question quotes is one its notebook prints in its stored outputs, and
every ``see`` starts a heading of that notebook (tests/test_quiz.py checks both). The bank is checked
when this module is imported: a malformed question raises :class:`~cvae_utils.quizzes.QuizBankError`.
"""

from . import notebook_01, notebook_02, notebook_03, notebook_04, notebook_05, notebook_06, notebook_07
from .questions import check_bank

TITLES = {
    1: "The ELBO",
    2: "The encoder",
    3: "The decoder",
    4: "The loss",
    5: "Training",
    6: "Conditional sampling",
    7: "Structured output",
}
BANK = {
    1: notebook_01.QUESTIONS,
    2: notebook_02.QUESTIONS,
    3: notebook_03.QUESTIONS,
    4: notebook_04.QUESTIONS,
    5: notebook_05.QUESTIONS,
    6: notebook_06.QUESTIONS,
    7: notebook_07.QUESTIONS,
}
check_bank(BANK)
