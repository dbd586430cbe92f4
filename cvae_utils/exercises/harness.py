"""The machinery every checker shares: the result, the session that calls the student's function
safely, the shape / dtype / value comparisons, the recognition of typical mistakes, the messages.

A checker is data interpreted here:

* a list of :class:`Case` records: a title, the input in words, the arguments, and the
  check to run on them (by default the checker's :class:`Comparison`);
* a :class:`Comparison`: the reference, the tolerance, the expected shape in words, and a
  list of :class:`Mistake` records, each a hint and a function computing the wrong answer
  that the hint explains. On a mismatch the first mistake whose answer matches what came
  back gives the hint (:func:`diagnose`).
"""

from __future__ import annotations

import math
import os
import textwrap
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

PASS_MARK = "Passed ✓"
FAIL_MARK = "Not yet ✗"
WIDTH = 110
# Frames inside torch or this library are not the student's: the error report points at the deepest other one.
_NOT_THE_STUDENTS = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))


# ----------------------------------------------------------------------------------
# The records a checker is written in
# ----------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class CheckResult:
    """What a checker returns: truthy when the function passed every case.

    ``message`` is the text to show (printed when the result is a cell's last
    expression); ``case`` names the failing case in words (None on a pass).
    """

    checker: str
    passed: bool
    message: str
    case: str | None = None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's display of a cell's last value
        p.text(self.message)


@dataclass(frozen=True)
class Case:
    """One input to try: ``check(session, case, *args, **params)`` (the checker's Comparison when None)."""

    title: str  # a few words, listed in the pass message
    inputs: str  # the input, in words: shapes, dtypes, special values
    args: tuple = ()  # what the check works on (the student's arguments, for a Comparison)
    check: Callable[..., None] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: the hint that explains it, and ``answer(terms)``, what it computes."""

    hint: str
    answer: Callable[[SimpleNamespace], Any]


@dataclass(frozen=True)
class Comparison:
    """The default check: call fn(*args), check the shape and dtype, compare the values with ``reference``.

    ``terms(*args)`` computes (once, on a mismatch) the pieces the mistakes' answers are
    made of; ``tol``/``tol64`` are (rtol, atol) for a float32 / float64 answer.
    """

    reference: Callable[..., Tensor]
    what: str  # the expected answer, in words
    hint: str  # when no mistake matches
    tol: tuple[float, float]
    tol64: tuple[float, float] | None = None
    nonfinite_hint: str = "NaN or infinite values: look for an exp that overflows, a log of 0, or 0 * inf."
    terms: Callable[..., SimpleNamespace] = lambda *args: SimpleNamespace(args=args)
    mistakes: Sequence[Mistake] = ()
    shape_hint: Callable[..., str | None] | None = None  # shape_hint(shape that came back, *args)
    scalar: bool = False  # the answer is one number: a tensor of one element is taken as it

    def __call__(self, s: Session, case: Case, *args) -> None:
        expected = self.reference(*args)
        rtol, atol = self.tol64 if self.tol64 and expected.dtype == torch.float64 else self.tol
        got = s.call(case, *clone(args))
        if self.scalar and isinstance(got, Tensor) and got.numel() == 1 and got.dim() <= 1:
            got = got.reshape(())
        shape_hint = (lambda shape: self.shape_hint(shape, *args)) if self.shape_hint else None
        got = s.tensor(case, got, expected.shape, expected.dtype, what=self.what, shape_hint=shape_hint)
        if torch.allclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol):
            return
        g64 = got.detach().double()
        if not torch.isfinite(g64).all() and torch.isfinite(expected).all():
            s.fail(case, brief(expected), brief(got), self.nonfinite_hint)

        def matches(value: Tensor) -> bool:
            value = value.double()
            return bool(
                value.shape == g64.shape
                and torch.isfinite(value).all()
                and torch.allclose(g64, value, rtol=max(rtol, 1e-4), atol=max(atol, 1e-5))
            )

        s.fail(case, brief(expected), brief(got), diagnose(self.mistakes, self.terms(*args), matches) or self.hint)


def diagnose(mistakes: Sequence[Mistake], terms: SimpleNamespace, matches: Callable[[Any], bool]) -> str | None:
    """The hint of the first mistake whose answer ``matches`` what came back, else None."""
    return next((m.hint for m in mistakes if matches(m.answer(terms))), None)


class Refused(Exception):
    """Raised by a checker's own objects into the student's code (a forbidden call): reported as a failed case."""

    def __init__(self, expected: str, got: str, hint: str) -> None:
        super().__init__(hint)
        self.expected, self.got, self.hint = expected, got, hint


class _Stop(Exception):
    """Ends a check early with a result (a failed case)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


# ----------------------------------------------------------------------------------
# Small helpers: inputs, and values in words
# ----------------------------------------------------------------------------------


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clone(args: Sequence) -> tuple:
    """Fresh copies of the tensors for the student's function, so that an in-place change cannot touch the reference."""
    return tuple(a.clone() if isinstance(a, Tensor) else a for a in args)


def float64(*tensors: Tensor) -> tuple[Tensor, ...]:
    return tuple(t.double() for t in tensors)


def fmt(v: float) -> str:
    if isinstance(v, (bool, int)) or math.isnan(v) or math.isinf(v):
        return str(v)
    return f"{v:.5g}"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def brief(value, n: int = 4) -> str:
    """A short description of a value: a tensor's shape, dtype and first values."""
    if isinstance(value, Tensor):
        flat = value.detach().flatten()
        shown = ", ".join(fmt(v) for v in flat[:n].cpu().tolist())
        more = ", ..." if flat.numel() > n else ""
        return f"tensor of shape {tuple(value.shape)}, {dtype_name(value.dtype)}: [{shown}{more}]"
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def vec(t: Tensor) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in t.detach().flatten().tolist()) + "]"


def shape_text(shape: Sequence[int]) -> str:
    return str(tuple(shape)) if len(shape) != 1 else f"({shape[0]},)"


def per_example(inner: str) -> Callable[..., str | None]:
    """A shape hint for a per-example answer (batch,) reduced too much, too little, or along the wrong dim."""

    def hint(got: tuple, first, *_) -> str | None:
        batch = len(first)
        if len(got) == 0 or (got == (1,) and batch != 1):
            return (
                f"return one value per example, shape ({batch},): sum over the {inner} only (e.g. "
                ".sum(dim=1)), not over the batch too (no bare .sum() or .mean())."
            )
        if len(got) >= 2 and got[0] == batch:
            return f"sum over the {inner}, so that one value per example is left: shape ({batch},)."
        if len(got) == 1 and got[0] != batch:
            return f"you reduced the batch dimension (dim 0); reduce the {inner} instead: shape ({batch},)."
        return None

    return hint


def _wrap(label: str, text: str) -> str:
    return textwrap.fill(
        text,
        width=WIDTH,
        initial_indent=f"  {label:<9} ",
        subsequent_indent=" " * 12,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _student_line(err: BaseException) -> str | None:
    """'line N: source' of the deepest frame of the traceback that is not inside torch or this library."""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if not frame.filename.startswith(_NOT_THE_STUDENTS):
            code = (frame.line or "").strip()
            return f"line {frame.lineno} of {frame.name}: {code}" if code else f"line {frame.lineno} of {frame.name}"
    return None


def _require_callable(checker: str, fn) -> None:
    if callable(fn):
        return
    hint = ""
    if fn is None or isinstance(fn, (Tensor, int, float)):
        hint = " It looks like the result of calling your function: pass the function itself, without parentheses."
    raise TypeError(
        f"{checker} takes your function, e.g. {checker}(my_function); got {type(fn).__name__} instead.{hint}"
    )


# ----------------------------------------------------------------------------------
# The session, and the loop over the cases
# ----------------------------------------------------------------------------------


class Session:
    """One run of a checker: calls the student's function and builds the messages."""

    def __init__(self, checker: str, fn, total: int) -> None:
        self.checker = checker
        self.fn = fn
        self.name = getattr(fn, "__name__", None) or "your function"
        self.total = total
        self.index = 0
        self.notes: list[str] = []  # added to the pass message

    def _result(self, case: Case, lines: list[str], verb: str = "failed") -> CheckResult:
        head = f"{FAIL_MARK}  {self.name}: case {self.index} of {self.total} {verb}: {case.title}."
        return CheckResult(self.checker, False, "\n".join([head, *lines]), case.title)

    def fail(self, case: Case, expected: str, got: str, hint: str) -> None:
        raise _Stop(
            self._result(
                case,
                [_wrap("input:", case.inputs), _wrap("expected:", expected), _wrap("got:", got), _wrap("hint:", hint)],
            )
        )

    def call(self, case: Case, *args):
        """fn(*args), or a failed case that reports the exception."""
        try:
            return self.fn(*args)
        except _Stop:
            raise
        except Refused as refused:
            self.fail(case, refused.expected, refused.got, refused.hint)
        except Exception as err:  # the student's code raised: report it, never propagate it
            where = _student_line(err)
            error = f"{type(err).__name__}: {err}".strip()
            if isinstance(err, NotImplementedError):
                hint = "write the function's body where it says `# your code here`, then run the cell again."
            else:
                hint = (
                    "the error comes from your function, not from the checker: read the line above, check the "
                    "shapes and dtypes of the tensors it combines, then run the cell again."
                )
            lines = [_wrap("input:", case.inputs), _wrap("error:", error)]
            if where:
                lines.append(_wrap("at:", where))
            lines.append(_wrap("hint:", hint))
            raise _Stop(self._result(case, lines, "raised an error")) from None

    def tensor(
        self,
        case: Case,
        got,
        shape: Sequence[int],
        dtype: torch.dtype,
        *,
        what: str,
        shape_hint: str | Callable[[tuple], str | None] | None = None,
    ) -> Tensor:
        """Check that ``got`` is a tensor of the given shape and dtype; return it detached."""
        expected = f"{what}: a tensor of shape {shape_text(shape)}, {dtype_name(dtype)}"
        if got is None:
            self.fail(
                case,
                expected,
                "None",
                f"{self.name} returns None: write its body where it says `# your code here` and end it with "
                "`return` and the result (a common slip is to compute the value and forget the `return`).",
            )
        if not isinstance(got, Tensor):
            hint = "return a torch.Tensor, computed with torch operations on the input tensors"
            if isinstance(got, (float, int)):
                hint += " (no .item(): keep the tensor)"
            elif type(got).__module__.startswith("numpy"):
                hint += " (no .numpy(): stay in torch)"
            elif isinstance(got, (tuple, list)):
                hint += ", one tensor, not a tuple or list"
            self.fail(case, expected, brief(got), hint + ".")
        if tuple(got.shape) != tuple(shape):
            hint = shape_hint(tuple(got.shape)) if callable(shape_hint) else shape_hint
            self.fail(case, expected, brief(got), hint or f"the result must have shape {shape_text(shape)}.")
        if got.dtype != dtype:
            self.fail(
                case,
                expected,
                brief(got),
                f"the inputs are {dtype_name(dtype)}, so the result should be too: do not "
                "convert with .float() / .double(), and create any new tensor with the inputs' dtype "
                "(torch.zeros_like, torch.randn_like, or dtype=...).",
            )
        return got.detach()


def run(
    checker: str, fn, cases: Callable[[], list[Case]], *, passes: str, comparison: Comparison | None = None
) -> CheckResult:
    """Try ``fn`` on every case in turn (the cases built by ``cases()``); the first failure ends the check."""
    _require_callable(checker, fn)
    cases = cases()
    session = Session(checker, fn, len(cases))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        for session.index, case in enumerate(cases, 1):
            try:
                (case.check or comparison)(session, case, *case.args, **case.params)
            except _Stop as stop:
                return stop.result
            except Exception as err:  # what came back was too odd for the checker to examine
                return session._result(
                    case,
                    [
                        _wrap("input:", case.inputs),
                        _wrap("problem:", f"the checker could not examine the result ({type(err).__name__}: {err})."),
                        _wrap("hint:", "return a tensor of the shape the exercise asks for, computed from the inputs."),
                    ],
                )
    titles = "; ".join(c.title for c in cases)
    text = f"{PASS_MARK}  {session.name} {passes} on all {len(cases)} cases ({titles})."
    if session.notes:
        text += " " + " ".join(session.notes)
    return CheckResult(checker, True, textwrap.fill(text, width=WIDTH, break_long_words=False))
