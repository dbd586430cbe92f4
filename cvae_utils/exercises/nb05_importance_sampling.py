"""Notebook 5 (05_training.ipynb): the importance-sampled estimate of log p(y|x) from the log-weights."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import torch
from torch import Tensor

from ..losses import log_mean_exp
from .harness import Case, CheckResult, Comparison, Mistake, run, seeded


def _terms(log_w: Tensor) -> SimpleNamespace:
    w64 = log_w.double()
    return SimpleNamespace(w64=w64, lse=torch.logsumexp(w64, dim=0), num=len(log_w))


MISTAKES = [
    Mistake(
        "you averaged the log-weights: that is E[log w], the ELBO-like estimate that Jensen's inequality "
        "puts below log E[w]. Average the weights, then take the log: torch.logsumexp(log_w, dim=0) - "
        "math.log(S).",
        lambda t: t.w64.mean(0),
    ),
    Mistake("the 1/S is missing: subtract math.log(S) from the logsumexp (S = log_w.shape[0]).", lambda t: t.lse),
    Mistake("sign error on log S: the mean divides by S, so subtract math.log(S).", lambda t: t.lse + math.log(t.num)),
    Mistake(
        "you divided the logsumexp by S; dividing the sum of the weights by S subtracts log S from its log.",
        lambda t: t.lse / t.num,
    ),
    Mistake(
        "you took the largest log-weight; the estimate is log of the mean of all the weights: "
        "torch.logsumexp(log_w, dim=0) - math.log(S).",
        lambda t: t.w64.max(0).values,
    ),
]


def _shape_hint(got: tuple, log_w: Tensor) -> str | None:
    num, batch = log_w.shape
    if got == (num,) and num != batch:
        return "you reduced over the examples (dim 1): the samples are along dim 0, reduce over dim=0."
    if len(got) == 0 or got == (1,) and batch != 1:
        return f"return one estimate per example, shape ({batch},): reduce over the samples (dim 0) only."
    if got == tuple(log_w.shape):
        return "reduce over the samples (dim 0): one estimate per example is left."
    return None


COMPARISON = Comparison(
    reference=partial(log_mean_exp, dim=0),
    what="one estimate per example",
    terms=_terms,
    mistakes=MISTAKES,
    shape_hint=_shape_hint,
    tol=(1e-5, 1e-4),
    tol64=(1e-9, 1e-7),
    hint="log (1/S) sum_s exp(log_w[s]) = torch.logsumexp(log_w, dim=0) - math.log(S).",
    nonfinite_hint="inf or -inf: exp(log_w) underflows to 0 (or overflows) at these magnitudes. "
    "torch.logsumexp subtracts the largest value before exponentiating: use "
    "torch.logsumexp(log_w, dim=0) - math.log(S).",
)


def _cases() -> list[Case]:
    g, f64 = seeded(6), torch.float64
    # drawn first: the order of the draws fixes every case's numbers
    dominated = -500 + 50 * torch.randn(1000, 1, generator=g, dtype=f64)
    return [
        Case(
            "a small batch",
            "S = 5 log-weights for each of 3 examples, values around 0 (spread 1), float32",
            (torch.randn(5, 3, generator=g),),
        ),
        Case(
            "S = 1",
            "a single sample (S = 1) for 4 examples, float32: the estimate is the log-weight itself",
            (torch.randn(1, 4, generator=g),),
        ),
        Case(
            "very negative log-weights",
            "S = 10, 4 examples, log-weights around -1000 (as for an image; exp underflows to 0), float64",
            (-1000 + 3 * torch.randn(10, 4, generator=g, dtype=f64),),
        ),
        Case(
            "very large log-weights",
            "S = 6, 2 examples, log-weights around +800 (exp overflows to inf), float64",
            (800 + 3 * torch.randn(6, 2, generator=g, dtype=f64),),
        ),
        Case(
            "equal log-weights",
            "S = 8 equal log-weights (-3.5) for each of 3 examples, float64: the estimate is -3.5 (no Jensen gap)",
            (torch.full((8, 3), -3.5, dtype=f64),),
        ),
        Case(
            "one sample dominates",
            "a batch of 1 with S = 1000 log-weights around -500, spread 50, float64",
            (dominated,),
        ),
        Case(
            "MNIST scale, float32",
            "S = 100, 2 examples, log-weights around -90 with spread 5, float32",
            (-90 + 5 * torch.randn(100, 2, generator=g),),
        ),
    ]


def check_importance_sampled_log_likelihood(fn) -> CheckResult:
    """Check ``fn(log_w)`` = log (1/S) sum_s exp(log_w[s]), per example: logsumexp over dim 0 minus log S.

    Used in notebook 5 (``05_training.ipynb``), section "Exercises", exercise 5 "From
    importance weights to a log-likelihood".

    ``log_w`` has shape (S, batch): S log importance weights
    log p(y|x,z_s) + log p(z_s|x) - log q(z_s|x,y) per example, samples along dim 0 as in
    ``cu.importance_sampled_log_likelihood``. The answer has shape (batch,), as
    ``cu.log_mean_exp(log_w, dim=0)`` returns it, and must stay finite where exp(log_w)
    underflows to 0 or overflows.
    """
    return run(
        "check_importance_sampled_log_likelihood",
        fn,
        _cases,
        comparison=COMPARISON,
        passes="agrees with cu.log_mean_exp(log_w, dim=0)",
    )
