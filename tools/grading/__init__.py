"""The hidden tests of the graded assignments (``kit/assignments/session_N.ipynb``), one module per session.

``python -m tools.grade`` runs a submitted notebook in a fresh kernel, then injects one cell that calls
:func:`grade` with the session's number and the kernel's namespace, and prints the JSON result after a
marker. Each ``session_N`` module lists its :class:`Question` records: the name the student defines (a
function, or a variable for a numeric answer), the points, and the cases to try, written with the
checkers' machinery (:mod:`cvae_utils.exercises.harness`: a :class:`Case` per input, a ``Comparison``
or a check function per case). A question earns its points in proportion to the cases it passes; an
exception in the student's code fails that case only, and a question that runs over its time limit
fails alone, so one question never stops the grading of the others.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Refused, Session, _Stop, brief, clone, fmt

QUESTION_SECONDS = 20  # per question: a student's function that never returns fails that question only
SESSIONS = (1, 2, 3, 4, 5, 6)


@dataclass(frozen=True)
class Question:
    """One auto-graded question: ``name`` (what the student defines), ``points``, and its cases."""

    number: int
    name: str
    points: float
    cases: Callable[[], list[Case]]
    comparison: Comparison | Callable[..., None] | None = None  # the check of cases that name none
    value: bool = False  # a variable holding the answer (``answer = None`` in the stub), not a function
    forbidden: tuple[str, ...] = ()  # names of cvae_utils that compute the answer: refused while grading


@dataclass(frozen=True)
class Slip:
    """A typical wrong number: the hint that explains it, and ``value(*args)``, the number it gives."""

    hint: str
    value: Callable[..., float]


class _QuestionTimeout(BaseException):  # BaseException: the harness's `except Exception` lets it through
    pass


class _Session(Session):
    """A harness session that notes whether the student's code ever returned something other than None."""

    answered = False  # some call returned a value, or raised: the question was attempted

    def call(self, case: Case, *args):
        try:
            got = super().call(case, *args)
        except _Stop:
            self.answered = True
            raise
        self.answered = self.answered or got is not None
        return got


# ----------------------------------------------------------------------------------
# Checks the session modules share
# ----------------------------------------------------------------------------------


def as_number(s: Session, case: Case, got, what: str) -> float:
    """``got`` as a float (a Python number or a one-element tensor), else a failed case."""
    if isinstance(got, Tensor) and got.numel() == 1:
        return float(got.detach())
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    hint = "give one number: a Python float, or a tensor holding a single value."
    if got is None:
        hint = "it is None: write the answer where it says `# your code here` (and `return` it from a function)."
    s.fail(case, what, brief(got), hint)


def number_check(
    reference: Callable[..., float],
    *,
    what: str = "one number",
    hint: str,
    slips: Sequence[Slip] = (),
    rel: float = 1e-5,
    abs_tol: float = 1e-7,
) -> Callable[..., None]:
    """A case check for a one-number answer: ``fn(*args)`` against ``reference(*args)``; a matching slip hints."""

    def check(s: Session, case: Case, *args) -> None:
        got = as_number(s, case, s.call(case, *clone(args)), what)
        expected = float(reference(*args))
        if math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol):
            return
        reason = hint
        for slip in slips:
            with contextlib.suppress(ArithmeticError, ValueError):
                wrong = float(slip.value(*args))
                if math.isfinite(wrong) and math.isclose(got, wrong, rel_tol=max(rel, 1e-4), abs_tol=abs_tol):
                    reason = slip.hint
                    break
        s.fail(case, fmt(expected), fmt(got), reason)

    return check


# ----------------------------------------------------------------------------------
# Grading one question, and one notebook's namespace
# ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _QuestionTimeout after ``seconds`` (SIGALRM; only in the main thread, where a kernel runs cells)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise _QuestionTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _clean_torch_state() -> Iterator[None]:
    """The same torch state for every question, whatever the notebook left: seeded RNG, grad on, float32 default."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(0)
            yield
    finally:
        torch.set_default_dtype(dtype)


@contextlib.contextmanager
def _refusing(names: Sequence[str], namespace: dict) -> Iterator[None]:
    """While grading, the library functions ``names`` raise Refused: as cu.NAME, in their module, in the notebook."""
    import cvae_utils

    undo = []
    try:
        for name in names:
            original = getattr(cvae_utils, name)

            def refuse(*args, _name=name, **kwargs):
                raise Refused(
                    "your own computation",
                    f"a call to cu.{_name}",
                    f"the question asks you to write this yourself, without cu.{_name}.",
                )

            for module in (cvae_utils, sys.modules[original.__module__]):
                undo.append((module.__dict__, name, original))
                setattr(module, name, refuse)
            for key in [k for k, v in namespace.items() if v is original]:
                undo.append((namespace, key, original))
                namespace[key] = refuse
        yield
    finally:
        for where, key, original in reversed(undo):
            where[key] = original


def _compact(message: str) -> str:
    """A check's message on one line, without its first line (the case's title is reported apart)."""
    lines = message.splitlines()[1:] or message.splitlines()
    text = " ".join(" ".join(lines).split())
    return text if len(text) <= 400 else text[:397] + "..."


def _result(q: Question, passed: int, total: int, failure: str | None) -> dict:
    points = round(q.points * passed / total, 2) if total else 0.0
    return {
        "number": q.number,
        "name": q.name,
        "points": points,
        "max": q.points,
        "passed": passed,
        "cases": total,
        "failure": failure,
    }


def _answer(q: Question, namespace: dict):
    """The student's function (a value is wrapped in one), or a reason why there is none."""
    if q.name not in namespace:
        return None, f"not answered: no `{q.name}` is defined (do not rename it)"
    answer = namespace[q.name]
    if q.value:
        if answer is None:
            return None, f"not answered: `{q.name}` is still None"

        def value():
            return answer

        value.__name__ = q.name
        return value, None
    if not callable(answer):
        return None, f"`{q.name}` should be a function; it is {brief(answer)}"
    return answer, None


def grade_question(q: Question, namespace: dict) -> dict:
    """Run every case of ``q`` on the student's answer in ``namespace``; never raises."""
    fn, reason = _answer(q, namespace)
    cases = q.cases()
    if fn is None:
        return _result(q, 0, len(cases), reason)
    session = _Session(f"q{q.number}", fn, len(cases))
    passed, failures = 0, []
    try:
        with _time_limit(QUESTION_SECONDS), _clean_torch_state(), _refusing(q.forbidden, namespace):
            for session.index, case in enumerate(cases, 1):
                try:
                    (case.check or q.comparison)(session, case, *case.args, **case.params)
                    passed += 1
                except _Stop as stop:
                    failures.append(f'case "{case.title}": {_compact(stop.result.message)}')
                except Exception as err:  # what came back was too odd to examine
                    failures.append(
                        f'case "{case.title}": the result could not be examined ({type(err).__name__}: {err})'
                    )
    except _QuestionTimeout:
        return _result(q, 0, len(cases), f"did not finish within {QUESTION_SECONDS} s (case {session.index})")
    if not session.answered and not q.value:
        return _result(q, 0, len(cases), f"not answered: `{q.name}` returns None")
    failure = None
    if failures:
        failure = f"{passed}/{len(cases)} cases passed; first failure: {failures[0]}"
    return _result(q, passed, len(cases), failure)


def grade(session: int, namespace: dict) -> dict:
    """The grade of one assignment: every question of ``tools.grading.session_<session>``, on ``namespace``."""
    if session not in SESSIONS:
        raise ValueError(f"session={session!r}: the assignments are sessions {SESSIONS}.")
    questions = importlib.import_module(f"{__name__}.session_{session}").QUESTIONS
    results = [grade_question(q, namespace) for q in questions]
    return {
        "session": session,
        "questions": results,
        "total": round(sum(r["points"] for r in results), 2),
        "max": sum(q.points for q in questions),
    }
