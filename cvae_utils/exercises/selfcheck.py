"""The self-check of the graded assignments (``kit/assignments/session_N.ipynb``): is the answer's FORM right?

``check_form(answer, *args, shape=..., dtype=..., number=...)`` calls the student's function on
example arguments (or takes a value, when no arguments are given and it is not callable) and says
whether what comes back has the form the question asks for: a tensor of the given shape and dtype,
or one number. It never says whether the values are right: the grade comes from hidden tests
(``python -m tools.grade``), which try several inputs against a reference. Like the notebooks'
checkers it never raises because of the student's code, so a notebook with unanswered questions
still runs top to bottom.

    >>> import torch
    >>> from cvae_utils.exercises.selfcheck import check_form
    >>> check_form(lambda t: t.sum(dim=1), torch.ones(4, 3), shape=(4,))
    Form OK ✓  <lambda> returns a tensor of shape (4,), as asked. This checks the form only, ...
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .harness import CheckResult, brief, dtype_name, shape_text

FORM_OK = "Form OK ✓"
FORM_NOT_YET = "Form not yet ✗"
_GRADED_LATER = "This checks the form only, not the values: the hidden tests grade those."


def _describe(shape: Sequence[int] | None, dtype: torch.dtype | None, number: bool) -> str:
    if number:
        return "one number (a Python float, or a tensor holding a single value)"
    parts = ["a tensor"]
    if shape is not None:
        parts.append(f"of shape {shape_text(shape)}")
    if dtype is not None:
        parts.append(dtype_name(dtype))
    return ", ".join([" ".join(parts[:2]), *parts[2:]])


def _problem(got, shape: Sequence[int] | None, dtype: torch.dtype | None, number: bool) -> str | None:
    """What is wrong with the form of ``got`` (None when it is right)."""
    if got is None:
        return "it is None: the question is not answered yet (write the code where it says `# your code here`)."
    if number:
        if isinstance(got, bool) or not isinstance(got, (int, float, Tensor)):
            return f"it is {brief(got)}."
        if isinstance(got, Tensor) and got.numel() != 1:
            return f"it is {brief(got)}: one number is asked for, not one per element."
        return None
    if not isinstance(got, Tensor):
        return f"it is {brief(got)}: return a torch.Tensor."
    if shape is not None and tuple(got.shape) != tuple(shape):
        return f"it has shape {shape_text(got.shape)}, not {shape_text(shape)}."
    if dtype is not None and got.dtype != dtype:
        return f"it is {dtype_name(got.dtype)}, not {dtype_name(dtype)}: keep the inputs' dtype."
    return None


def check_form(
    answer,
    *args,
    shape: Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    number: bool = False,
    name: str | None = None,
) -> CheckResult:
    """Whether ``answer`` (a function called on ``args``, or a value) has the asked form: not the grade.

    ``shape`` and ``dtype`` describe the tensor asked for; ``number=True`` asks for one number.
    """
    calls = bool(args) or callable(answer)
    name = name or getattr(answer, "__name__", None) or "your answer"
    what = _describe(shape, dtype, number)
    if calls and not callable(answer):
        message = f"{FORM_NOT_YET}  {name} should be a function, but it is {brief(answer)}."
        return CheckResult("check_form", False, message, "form")
    got = answer
    if calls:
        try:
            with torch.random.fork_rng(devices=[]):
                got = answer(*args)
        except Exception as err:  # the student's code raised: say so, never propagate it
            message = f"{FORM_NOT_YET}  {name} raised {type(err).__name__}: {err}".rstrip()
            return CheckResult("check_form", False, message, "form")
    problem = _problem(got, shape, dtype, number)
    subject = f"{name} returns" if calls else f"{name} is"
    if problem:
        message = f"{FORM_NOT_YET}  {subject} not {what}: {problem}"
        return CheckResult("check_form", False, message, "form")
    return CheckResult("check_form", True, f"{FORM_OK}  {subject} {what}, as asked. {_GRADED_LATER}")
