"""Session 6 (notebook 7, structured output): the hidden tests of ``kit/assignments/session_6.ipynb``.

1. ``missing_log_likelihood(probs, images, num_observed)``: the Bernoulli log-likelihood of the missing
   quadrants only, from whole images and probabilities (clamped to [1e-6, 1 - 1e-6]).
2. ``uniform_nll``: the NLL of predicting 0.5 on every missing pixel, two quadrants observed, 28 x 28; a number.
3. ``prior_log_likelihood(model, y, x, mask, eps)``: the importance-sampled log p(y|x) with the prior
   network as the proposal (the GSNN's estimator), from given noise eps (S, B, z_dim).
4. ``complete_from_prior(model, x, eps)``: whole images, the observed pixels of x and the model's
   mean prediction for z = mu_p + sigma_p * eps on the missing ones.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Mistake, per_example, seeded
from cvae_utils.losses import log_mean_exp
from cvae_utils.models import QuadrantCVAE
from cvae_utils.quadrants import quadrant_mask, split_quadrants

from . import Question, Slip, number_check

EPS = 1e-6  # the clamp of question 1

# ----------------------------------------------------------------------------------
# Question 1: the log-likelihood of the missing quadrants
# ----------------------------------------------------------------------------------


def _masked_ll(probs: Tensor, images: Tensor, keep: Tensor) -> Tensor:
    p = probs.clamp(EPS, 1 - EPS)
    ll = images * p.log() + (1 - images) * torch.log1p(-p)
    return (ll * keep.to(ll.dtype)).reshape(len(ll), -1).sum(dim=1)


def missing_log_likelihood(probs: Tensor, images: Tensor, num_observed: int) -> Tensor:
    _, _, missing = split_quadrants(images, num_observed)
    return _masked_ll(probs, images, missing)


def _missing_terms(probs, images, k) -> SimpleNamespace:
    probs, images = probs.double(), images.double()
    observed = quadrant_mask(k, images.shape[-2], images.shape[-1]).expand_as(images)
    top_left = torch.zeros_like(observed)  # another convention: quadrant 1 = top-left, 2 = top half, ...
    h2, w2 = images.shape[-2] // 2, images.shape[-1] // 2
    top_left[..., :h2, :w2] = True
    if k >= 2:
        top_left[..., :h2, w2:] = True
    if k == 3:
        top_left[..., h2:, :w2] = True
    return SimpleNamespace(
        observed=_masked_ll(probs, images, observed),
        everything=_masked_ll(probs, images, torch.ones_like(observed)),
        other_order=_masked_ll(probs, images, ~top_left),
    )


MISSING = Comparison(
    reference=missing_log_likelihood,
    what="one log-likelihood per example, over the missing pixels",
    terms=_missing_terms,
    mistakes=[
        Mistake(
            "you scored the observed quadrants: the likelihood counts the missing ones only.", lambda t: t.observed
        ),
        Mistake("you scored every pixel: only the missing quadrants count (the target y).", lambda t: t.everything),
        Mistake(
            "the observed quadrants are, as in notebook 7: 1 = bottom-left, 2 = the left half, 3 = all but the "
            "bottom-right (rows height // 2 and below are the bottom half).",
            lambda t: t.other_order,
        ),
    ],
    shape_hint=per_example("missing pixels"),
    tol=(1e-4, 1e-3),
    tol64=(1e-8, 1e-8),
    hint="keep the pixels outside the observed quadrants (cu.split_quadrants gives that mask); clamp probs to "
    "[1e-6, 1 - 1e-6]; sum y log p + (1 - y) log(1 - p) over them.",
    nonfinite_hint="-inf or NaN: clamp the probabilities to [1e-6, 1 - 1e-6] before the log.",
)


def _missing_cases() -> list[Case]:
    g = seeded(61)
    f64 = torch.float64

    def grey(*shape, dtype=torch.float32):
        return torch.rand(*shape, generator=g, dtype=dtype)

    binary = (grey(2, 1, 8, 8, dtype=f64) < 0.4).double()
    return [
        Case(
            "one quadrant observed",
            "probs and images (3, 1, 28, 28), grey levels, num_observed=1, float32",
            (grey(3, 1, 28, 28), grey(3, 1, 28, 28), 1),
        ),
        Case(
            "two quadrants observed",
            "(3, 1, 28, 28), num_observed=2, float32",
            (grey(3, 1, 28, 28), grey(3, 1, 28, 28), 2),
        ),
        Case(
            "three quadrants observed",
            "(2, 1, 28, 28), num_observed=3, float64",
            (grey(2, 1, 28, 28, dtype=f64), grey(2, 1, 28, 28, dtype=f64), 3),
        ),
        Case(
            "odd sizes",
            "(2, 1, 7, 9), num_observed=1, float64: the bottom half starts at row 3, the right at column 4",
            (grey(2, 1, 7, 9, dtype=f64), grey(2, 1, 7, 9, dtype=f64), 1),
        ),
        Case(
            "certain predictions",
            "probs exactly 0 or 1 on binary images (2, 1, 8, 8), num_observed=2, float64",
            ((grey(2, 1, 8, 8, dtype=f64) < 0.5).double(), binary, 2),
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 2: the NLL of the coin-flip predictor
# ----------------------------------------------------------------------------------


def uniform_nll(height: int = 28, width: int = 28, num_observed: int = 2) -> float:
    missing = int((~quadrant_mask(num_observed, height, width)).sum())
    return missing * math.log(2.0)


def _uniform_cases() -> list[Case]:
    check = number_check(
        uniform_nll,
        what="-log p(y|x) in nats per example, to within 0.01",
        hint="each missing pixel costs -log(1/2) = log 2 nats, whatever its value; count the missing pixels.",
        slips=[
            Slip("a negative log-likelihood is positive here.", lambda: -uniform_nll()),
            Slip("only the missing pixels count, not all 784.", lambda: 784 * math.log(2.0)),
            Slip("that is in bits: the series measures in nats (natural logarithms).", lambda: 392.0),
        ],
        rel=0.0,
        abs_tol=1e-2,
    )
    return [
        Case("the coin-flip predictor", "p = 0.5 on every missing pixel, two quadrants observed, 28 x 28", (), check)
    ]


# ----------------------------------------------------------------------------------
# Questions 3 and 4: a QuadrantCVAE's prior network as the proposal, and completions
# ----------------------------------------------------------------------------------


def _repeat(t: Tensor, s: int) -> Tensor:
    return t.repeat(s, *([1] * (t.dim() - 1)))


def _prior_ll_per_sample(model, y, x, mask, eps, scale: bool = True, use_mask: bool = True) -> Tensor:
    s, b, _ = eps.shape
    mu_p, logvar_p = model.prior(x)
    z = (mu_p + (torch.exp(0.5 * logvar_p) if scale else 1.0) * eps).reshape(s * b, -1)
    rep_mask = _repeat(mask, s) if use_mask else None
    return model.log_likelihood(model.decode(z, _repeat(x, s)), _repeat(y, s), rep_mask).view(s, b)


def prior_log_likelihood(model, y: Tensor, x: Tensor, mask: Tensor, eps: Tensor) -> Tensor:
    return log_mean_exp(_prior_ll_per_sample(model, y, x, mask, eps), dim=0)


def _prior_terms(model, y, x, mask, eps) -> SimpleNamespace:
    with torch.no_grad():
        ll = _prior_ll_per_sample(model, y, x, mask, eps).double()
        return SimpleNamespace(
            ll=ll,
            unscaled=log_mean_exp(_prior_ll_per_sample(model, y, x, mask, eps, scale=False), 0).double(),
        )


PRIOR_LL = Comparison(
    reference=prior_log_likelihood,
    what="one estimate of log p(y|x) per example",
    terms=_prior_terms,
    mistakes=[
        Mistake(
            "that is the mean of log p(y|x,z_s), a lower bound (Jensen): the estimate is the log of the mean of "
            "p(y|x,z_s), log_mean_exp over the samples.",
            lambda t: t.ll.mean(0),
        ),
        Mistake(
            "logsumexp is the log of a sum: subtract log S for the log of the mean.", lambda t: torch.logsumexp(t.ll, 0)
        ),
        Mistake("z_s = mu_p + sigma_p * eps_s: scale eps by sigma_p = e^(logvar_p / 2).", lambda t: t.unscaled),
    ],
    shape_hint=lambda shape, model, y, *_: f"one value per example: shape ({len(y)},).",
    tol=(1e-4, 1e-3),
    hint="z_s = mu_p + sigma_p * eps_s from model.prior(x); log p(y|x,z_s) = model.log_likelihood(model.decode(z, x), "
    "y, mask) with x, y, mask repeated S times; then log_mean_exp over the S samples.",
)


def complete_from_prior(model, x: Tensor, eps: Tensor) -> Tensor:
    mu_p, logvar_p = model.prior(x)
    probs = model.mean_output(model.decode(mu_p + torch.exp(0.5 * logvar_p) * eps, x))
    return torch.where(x == model.fill, probs, x)


def _complete_terms(model, x, eps) -> SimpleNamespace:
    with torch.no_grad():
        mu_p, logvar_p = model.prior(x)
        logits = model.decode(mu_p + torch.exp(0.5 * logvar_p) * eps, x)
        return SimpleNamespace(
            probs=torch.sigmoid(logits).double(), logits=torch.where(x == model.fill, logits, x).double()
        )


COMPLETE = Comparison(
    reference=complete_from_prior,
    what="whole images, shaped like x",
    terms=_complete_terms,
    mistakes=[
        Mistake(
            "keep the observed pixels of x: only the missing ones (x == model.fill) take the prediction.",
            lambda t: t.probs,
        ),
        Mistake("the prediction is the mean image, the sigmoid of the logits (model.mean_output).", lambda t: t.logits),
    ],
    tol=(1e-4, 1e-5),
    hint="z = mu_p + sigma_p * eps; probs = model.mean_output(model.decode(z, x)); "
    "then torch.where(x == model.fill, probs, x).",
)


def _model(seed: int) -> QuadrantCVAE:
    torch.manual_seed(seed)
    return QuadrantCVAE(img_shape=(1, 8, 8), z_dim=3, hidden_dims=(16,), baseline_hidden_dims=(16,)).eval()


def _batch(g: torch.Generator, n: int, k: int):
    return split_quadrants(torch.rand(n, 1, 8, 8, generator=g), k)


def _prior_cases() -> list[Case]:
    g = seeded(63)
    model = _model(3)

    def case(title: str, inputs: str, n: int, k: int, s: int, zero: bool = False) -> Case:
        y, x, mask = _batch(g, n, k)
        eps = torch.zeros(s, n, 3) if zero else torch.randn(s, n, 3, generator=g)
        return Case(title, f"a QuadrantCVAE on 8 x 8 images (z_dim 3); {inputs}", (model, y, x, mask, eps))

    return [
        case("five samples", "batch 3, one quadrant observed, eps (5, 3, 3)", 3, 1, 5),
        case("one sample", "S = 1: the log-likelihood of that one z", 2, 1, 1),
        case("eps = 0", "every z at the prior mean, S = 4", 2, 2, 4, zero=True),
        case("many samples", "S = 200, batch 2, three quadrants observed", 2, 3, 200),
    ]


def _complete_cases() -> list[Case]:
    g = seeded(64)
    model = _model(4)
    cases = []
    for n, k in ((3, 1), (2, 2), (1, 3)):
        _, x, _ = _batch(g, n, k)
        cases.append(
            Case(
                f"{k} observed",
                f"x (n={n}, 1, 8, 8), {k} quadrant(s) observed, eps ({n}, 3)",
                (model, x, torch.randn(n, 3, generator=g)),
            )
        )
    return cases


QUESTIONS = [
    Question(1, "missing_log_likelihood", 3, _missing_cases, MISSING),
    Question(2, "uniform_nll", 1, _uniform_cases, value=True),
    Question(3, "prior_log_likelihood", 4, _prior_cases, PRIOR_LL),
    Question(4, "complete_from_prior", 2, _complete_cases, COMPLETE),
]
