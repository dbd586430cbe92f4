"""Notebook 5 (05_training.ipynb): two pieces of the training loop, the KL warm-up weight and the gradient norm."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..train import kl_warmup_weight
from .harness import Case, CheckResult, Session, _Stop, fmt, run, seeded


@dataclass(frozen=True)
class Slip:
    """A typical wrong answer: the hint that explains it, and ``value(*args)``, the number it gives."""

    hint: str
    value: Callable[..., float]


def _number(s: Session, case: Case, got, what: str) -> float:
    """``got`` as a float: a Python number, or a tensor of one element; anything else fails the case."""
    if isinstance(got, Tensor) and got.numel() == 1:
        return float(got.detach())
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    hint = "return one number: a Python float, or a tensor holding a single value."
    if got is None:
        hint = (
            f"{s.name} returns None: write its body where it says `# your code here` and end it with `return` "
            "and the result (a common slip is to compute the value and forget the `return`)."
        )
    elif isinstance(got, (tuple, list)) or isinstance(got, Tensor):
        hint = "return one number for all the arguments together, not one per element: " + hint
    s.fail(case, what, "None" if got is None else _brief(got), hint)


def _brief(value) -> str:
    if isinstance(value, Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _compare(s: Session, case: Case, got: float, expected: float, slips: Sequence[Slip], args: tuple, hint: str):
    """Fail the case unless ``got`` is close to ``expected``; on a mismatch the first matching slip gives the hint."""
    if math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-7):
        return
    for slip in slips:
        try:
            wrong = slip.value(*args)
        except (ArithmeticError, ValueError):
            continue
        if math.isfinite(wrong) and math.isclose(got, wrong, rel_tol=1e-4, abs_tol=1e-6):
            hint = slip.hint
            break
    s.fail(case, fmt(expected), fmt(got), hint)


# ----------------------------------------------------------------------------------
# Exercise 2: the KL weight of a step under a linear warm-up
# ----------------------------------------------------------------------------------


def _capped(v: float) -> float:
    return min(1.0, v)


WARMUP_SLIPS = [
    Slip(
        "the weight must stop at 1 once the warm-up is over: min(1.0, ...).",
        lambda e, s, n, w: (e + s / n) / w,
    ),
    Slip(
        "the weight rises batch by batch, not once per epoch: add the fraction of the epoch done, "
        "step / steps_per_epoch, to epoch.",
        lambda e, s, n, w: _capped(e / w),
    ),
    Slip(
        "epoch and step both count from 0 (as in `for epoch in range(num_epochs)`), so the very first step has "
        "weight 0: (epoch + step / steps_per_epoch) / warmup_epochs, without a + 1.",
        lambda e, s, n, w: _capped((e + 1 + s / n) / w),
    ),
    Slip(
        "cu.fit counts the step from 0 and uses step / steps_per_epoch, so the very first step has weight 0; "
        "(step + 1) shifts every weight by one step.",
        lambda e, s, n, w: _capped((e + (s + 1) / n) / w),
    ),
    Slip(
        "the warm-up is measured in epochs: divide the step by steps_per_epoch before adding it to epoch.",
        lambda e, s, n, w: _capped((e + s) / w),
    ),
    Slip(
        "the warm-up is measured in epochs: divide the step by steps_per_epoch before adding it to epoch.",
        lambda e, s, n, w: _capped((e * n + s) / w),
    ),
    Slip(
        "the weight rises from 0 to 1 (the KL is switched on gradually), it does not fall from 1 to 0.",
        lambda e, s, n, w: 1.0 - _capped((e + s / n) / w),
    ),
]


def _call_or_explain(
    s: Session, case: Case, args: tuple, expected, expected_error: bool, marker: str, shown: str, hint: str
):
    """The student's result; an error that an edge case of this input explains fails the case with ``hint``."""
    try:
        return s.call(case, *args)
    except _Stop as stop:
        if expected_error and marker in stop.result.message:
            s.fail(case, fmt(expected), shown, hint)
        raise


def _check_warmup(s: Session, case: Case, *args) -> None:
    expected = kl_warmup_weight(*args)
    what = "the KL weight of this step: one number in [0, 1]"
    no_warmup = args[3] == 0
    got = _call_or_explain(
        s, case, args, expected, no_warmup, "ZeroDivisionError", "ZeroDivisionError",
        "warmup_epochs = 0 means no warm-up: return 1.0 before dividing by warmup_epochs.",
    )  # fmt: skip
    got = _number(s, case, got, what)
    hint = (
        "β is the fraction of the warm-up completed before this step, capped at 1: "
        "min(1, (epoch + step / steps_per_epoch) / warmup_epochs); β = 1 when warmup_epochs is 0."
    )
    if no_warmup:
        hint = "warmup_epochs = 0 means no warm-up: the weight is 1 at every step."
    _compare(s, case, got, expected, WARMUP_SLIPS if not no_warmup else [], args, hint)


def _warmup_cases() -> list[Case]:
    def case(title: str, inputs: str, *args) -> Case:
        where = f"epoch={args[0]}, step={args[1]}, steps_per_epoch={args[2]}, warmup_epochs={args[3]}"
        return Case(title, f"{where}: {inputs}", args, _check_warmup)

    return [
        case("the first step", "the very first step of training", 0, 0, 100, 3),
        case("within the first epoch", "a quarter of the way through epoch 1 of 3", 0, 30, 120, 3),
        case("within a later epoch", "half-way through the second epoch of a 2-epoch warm-up", 1, 60, 120, 2),
        case("the last step of the warm-up", "the last step of epoch 3 of 3", 2, 119, 120, 3),
        case("after the warm-up", "epoch 5 of a run with a 3-epoch warm-up", 4, 10, 120, 3),
        case("no warm-up", "warmup_epochs = 0: no warm-up at all", 0, 0, 120, 0),
        case("a warm-up shorter than an epoch", "3/8 of the way through epoch 1, warm-up 0.5 epochs", 0, 45, 120, 0.5),
    ]


def check_kl_warmup_weight(fn) -> CheckResult:
    """Check ``fn(epoch, step, steps_per_epoch, warmup_epochs)``: the KL weight of one step under a linear warm-up.

    Used in notebook 5 (``05_training.ipynb``), section "Exercises", exercise 2 "KL warm-up".

    ``epoch`` and ``step`` count from 0; the answer is the weight β ``cu.fit`` uses (the fraction of the warm-up
    completed before this step, capped at 1),
    :func:`cvae_utils.train.kl_warmup_weight`: min(1, (epoch + step / steps_per_epoch) /
    warmup_epochs), and 1 when ``warmup_epochs`` is 0. A Python number or a tensor of one
    element is accepted.
    """
    return run("check_kl_warmup_weight", fn, _warmup_cases, passes="agrees with the weight cu.fit uses")


# ----------------------------------------------------------------------------------
# Exercise 4: the global gradient norm
# ----------------------------------------------------------------------------------


def _grads(params: Sequence[Tensor]) -> list[Tensor]:
    return [p.grad.double() for p in params if p.grad is not None]


def _global_norm(params: Sequence[Tensor]) -> float:
    """The L2 norm of all gradients together, as torch.nn.utils.clip_grad_norm_(params, inf) returns it."""
    return math.sqrt(sum(float((g**2).sum()) for g in _grads(params)))


NORM_SLIPS = [
    Slip(
        "you added up the norms of the parameters' gradients; the global norm is the norm of all of them "
        "together: the square root of the sum of every squared entry, sqrt(sum over p of (p.grad ** 2).sum()).",
        lambda ps: sum(float(g.norm()) for g in _grads(ps)),
    ),
    Slip(
        "the square root is missing: the norm is sqrt(sum of the squared entries).",
        lambda ps: sum(float((g**2).sum()) for g in _grads(ps)),
    ),
    Slip(
        "you took the largest norm of a single parameter; the global norm takes every parameter's gradient "
        "together: sqrt(sum over p of (p.grad ** 2).sum()).",
        lambda ps: max(float(g.norm()) for g in _grads(ps)),
    ),
    Slip(
        "you averaged the parameters' norms; the global norm is sqrt(sum over p of (p.grad ** 2).sum()).",
        lambda ps: sum(float(g.norm()) for g in _grads(ps)) / len(_grads(ps)),
    ),
    Slip(
        "that is the norm of the parameters themselves: use their gradients, p.grad.",
        lambda ps: math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in ps)),
    ),
    Slip(
        "that is the L1 norm (a sum of absolute values); clipping uses the L2 norm: the square root of the sum "
        "of squares.",
        lambda ps: sum(float(g.abs().sum()) for g in _grads(ps)),
    ),
    Slip(
        "only the last parameter's gradient counts in your sum: accumulate over every parameter (a `total +=` "
        "inside the loop, or sum over a list).",
        lambda ps: float(_grads(ps)[-1].norm()),
    ),
]


def _parameters(shapes: Sequence[tuple], seed: int, *, scale: float = 1.0, without_grad=()) -> list[nn.Parameter]:
    g = seeded(seed)
    params = []
    for i, shape in enumerate(shapes):
        p = nn.Parameter(torch.randn(shape, generator=g))
        if i not in without_grad:
            p.grad = scale * torch.randn(shape, generator=g)
        params.append(p)
    return params


def _check_norm(s: Session, case: Case, params: list[nn.Parameter], as_generator: bool = False) -> None:
    expected = _global_norm(params)
    before = [None if p.grad is None else p.grad.clone() for p in params]
    has_none = any(b is None for b in before)
    got = _call_or_explain(
        s, case, (iter(params) if as_generator else list(params),), expected, has_none, "NoneType",
        "an error about None",
        "a parameter that took no part in the loss has p.grad None: skip it (`if p.grad is not None`), as "
        "clip_grad_norm_ does.",
    )  # fmt: skip
    got = _number(s, case, got, "the global gradient norm: one number")
    changed = any(
        (b is None) != (p.grad is None) or (b is not None and not torch.equal(b, p.grad))
        for b, p in zip(before, params)
    )
    if changed:
        s.fail(
            case,
            "the gradients left as they were",
            "the gradients were changed",
            "measure the norm without changing p.grad: no clip_grad_norm_ with a finite max_norm, no in-place "
            "operations (mul_, div_, ...) on the gradients.",
        )
    if as_generator and not math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-7):
        on_a_list = s.call(case, list(params))
        if isinstance(on_a_list, (Tensor, int, float)) and math.isclose(float(on_a_list), expected, rel_tol=1e-5):
            s.fail(
                case,
                fmt(expected),
                fmt(got),
                "right on a list, wrong on a generator: model.parameters() can be looped over only once, and a "
                "second loop (or an any()/all() before the sum) sees fewer parameters or none. Make a list first: "
                "params = list(parameters).",
            )
    hint = "the global norm is sqrt(sum over p of (p.grad ** 2).sum()), over the parameters whose grad is not None."
    _compare(s, case, got, expected, NORM_SLIPS, (params,), hint)


def _norm_cases() -> list[Case]:
    one = nn.Parameter(torch.zeros(3))
    one.grad = torch.tensor([3.0, 4.0, 0.0])
    several = _parameters([(4, 3), (2, 2, 2), (3,)], seed=5)
    return [
        Case("one parameter", "a single parameter whose gradient is [3, 4, 0] (its norm is 5)", ([one],), _check_norm),
        Case("several parameters", "three parameters of shapes (4, 3), (2, 2, 2) and (3,)", (several,), _check_norm),
        Case(
            "a parameter without gradient",
            "three parameters, the second with p.grad None (it took no part in the loss)",
            (_parameters([(5,), (2, 3), (4,)], seed=6, without_grad=(1,)),),
            _check_norm,
        ),
        Case(
            "large gradients",
            "two parameters of shapes (50, 20) and (20,), gradients around 1,000",
            (_parameters([(50, 20), (20,)], seed=7, scale=1000.0),),
            _check_norm,
        ),
        Case(
            "a generator",
            "the parameters as model.parameters() gives them: a generator, which can be looped over only once",
            (_parameters([(3, 2), (2,), (6,)], seed=8),),
            _check_norm,
            {"as_generator": True},
        ),
    ]


def check_global_grad_norm(fn) -> CheckResult:
    """Check ``fn(parameters)``: the L2 norm of all the parameters' gradients taken together.

    Used in notebook 5 (``05_training.ipynb``), section "Exercises", exercise 4 "Gradient norms and clipping".

    ``parameters`` is an iterable of tensors with ``.grad`` (a generator such as
    ``model.parameters()`` included); parameters whose ``.grad`` is None are skipped. The
    answer is what ``torch.nn.utils.clip_grad_norm_(parameters, max_norm=float("inf"))``
    returns, sqrt(sum over p of (p.grad ** 2).sum()), as a Python number or a tensor of one
    element; the gradients must be left unchanged.
    """
    return run("check_global_grad_norm", fn, _norm_cases, passes="agrees with clip_grad_norm_'s global norm")
