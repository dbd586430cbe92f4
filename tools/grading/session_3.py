"""Session 3 (notebook 3, the decoder): the hidden tests of ``kit/assignments/session_3.ipynb``.

1. ``bernoulli_ll_from_probs(probs, y, eps)``: the Bernoulli log-likelihood from probabilities, clamped to
   [eps, 1 - eps], summed over each example's pixels.
2. ``best_log_likelihood(y)``: the best Bernoulli score any decoder can reach on grey-level images, -sum H(y).
3. ``gaussian_ll_pixel_sigma(mean, y, log_sigma)``: a Gaussian log-likelihood with one sigma per pixel.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Mistake, per_example, seeded
from cvae_utils.losses import LOG_2PI, gaussian_log_likelihood

from . import Question


def _per_example(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


# ----------------------------------------------------------------------------------
# Question 1: the Bernoulli log-likelihood from probabilities, clamped
# ----------------------------------------------------------------------------------


def bernoulli_ll_from_probs(probs: Tensor, y: Tensor, eps: float) -> Tensor:
    p = probs.clamp(eps, 1.0 - eps)
    return _per_example(y * p.log() + (1.0 - y) * torch.log1p(-p))


def _bern_terms(probs, y, eps) -> SimpleNamespace:
    probs, y = probs.double(), y.double()
    return SimpleNamespace(p=probs, y=y, eps=eps, ref=bernoulli_ll_from_probs(probs, y, eps), d=probs[0].numel())


def _clamp_low_only(t: SimpleNamespace) -> Tensor:
    p = t.p.clamp(min=t.eps)
    return _per_example(t.y * p.log() + (1 - t.y) * torch.log1p(-p))


BERNOULLI = Comparison(
    reference=bernoulli_ll_from_probs,
    what="one log-likelihood per example",
    terms=_bern_terms,
    mistakes=[
        Mistake("a log-likelihood of probabilities is at most 0: check the sign.", lambda t: -t.ref),
        Mistake("sum over the pixels, not average.", lambda t: t.ref / t.d),
        Mistake(
            "use the eps passed in: clamp to [eps, 1 - eps], not a fixed constant.",
            lambda t: bernoulli_ll_from_probs(t.p, t.y, 1e-7),
        ),
        Mistake("the clamp must also keep p below 1 - eps (log(1 - p) at p = 1 is -inf).", _clamp_low_only),
    ],
    shape_hint=per_example("pixels"),
    tol=(1e-4, 1e-3),
    tol64=(1e-8, 1e-8),
    hint="p = probs.clamp(eps, 1 - eps); sum over pixels of y log p + (1 - y) log(1 - p).",
    nonfinite_hint="-inf or NaN: a probability of exactly 0 or 1 meets a log; clamp probs to [eps, 1 - eps] first.",
)


def _bern_cases() -> list[Case]:
    g = seeded(31)
    f64 = torch.float64

    def binary(*shape, dtype=torch.float32):
        return (torch.rand(*shape, generator=g, dtype=dtype) < 0.3).to(dtype)

    y_edge = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.5, 1.0]], dtype=f64)
    p_edge = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0, 0.9]], dtype=f64)
    return [
        Case(
            "binary images",
            "probs and y of shape (4, 1, 5, 5), y in {0, 1}, eps 1e-6, float32",
            (torch.rand(4, 1, 5, 5, generator=g), binary(4, 1, 5, 5), 1e-6),
        ),
        Case(
            "grey targets",
            "y grey levels in [0, 1], shape (3, 10), eps 1e-6, float64",
            (torch.rand(3, 10, generator=g, dtype=f64), torch.rand(3, 10, generator=g, dtype=f64), 1e-6),
        ),
        Case(
            "probabilities of exactly 0 and 1",
            "probs [0, 1, 1, 0, 0, 0.9] against y [0, 1, 0, 1, 0.5, 1], eps 1e-4, float64",
            (p_edge, y_edge, 1e-4),
        ),
        Case(
            "a large eps",
            "eps 0.1: every probability is clamped to [0.1, 0.9], shape (2, 8), float64",
            (torch.rand(2, 8, generator=g, dtype=f64), binary(2, 8, dtype=f64), 0.1),
        ),
        Case(
            "MNIST-sized",
            "probs and y of shape (2, 784), float32, eps 1e-6",
            (torch.rand(2, 784, generator=g), binary(2, 784), 1e-6),
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 2: the best achievable Bernoulli score of grey-level images
# ----------------------------------------------------------------------------------


def best_log_likelihood(y: Tensor) -> Tensor:
    return _per_example(torch.xlogy(y, y) + torch.xlogy(1.0 - y, 1.0 - y))


BEST = Comparison(
    reference=best_log_likelihood,
    what="one best score per example",
    terms=lambda y: SimpleNamespace(ref=best_log_likelihood(y.double()), d=y[0].numel()),
    mistakes=[
        Mistake("the score is minus the entropy: at most 0. Check the sign.", lambda t: -t.ref),
        Mistake("sum over the pixels, not average.", lambda t: t.ref / t.d),
    ],
    shape_hint=per_example("pixels"),
    tol=(1e-4, 1e-4),
    tol64=(1e-8, 1e-8),
    hint="the best decoder predicts p = y on each pixel: sum of y log y + (1 - y) log(1 - y), with 0 log 0 = 0.",
    nonfinite_hint="NaN: 0 * log 0 must count as 0 (a pixel of exactly 0 or 1): torch.xlogy(y, y) does that.",
)


def _best_cases() -> list[Case]:
    g = seeded(32)
    f64 = torch.float64
    mixed = torch.rand(2, 784, generator=g, dtype=f64)
    mixed[:, ::3] = 0.0
    mixed[:, 1::7] = 1.0
    return [
        Case(
            "grey images",
            "y of shape (4, 1, 6, 6), grey levels in (0, 1), float32",
            (torch.rand(4, 1, 6, 6, generator=g),),
        ),
        Case(
            "binary images",
            "y in {0, 1}, shape (3, 12), float64: the best score is 0",
            ((torch.rand(3, 12, generator=g, dtype=f64) < 0.5).double(),),
        ),
        Case(
            "all pixels 0.5",
            "y = 0.5 everywhere, shape (2, 10), float64: 10 log(1/2) per example",
            (torch.full((2, 10), 0.5, dtype=f64),),
        ),
        Case(
            "MNIST-like",
            "shape (2, 784), float64: a third of the pixels exactly 0, some exactly 1, the rest grey",
            (mixed,),
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 3: a Gaussian log-likelihood with one sigma per pixel
# ----------------------------------------------------------------------------------


def gaussian_ll_pixel_sigma(mean: Tensor, y: Tensor, log_sigma: Tensor) -> Tensor:
    return gaussian_log_likelihood(mean, y, 2.0 * log_sigma)


def _gauss_terms(mean, y, log_sigma) -> SimpleNamespace:
    mean, y, ls = mean.double(), y.double(), log_sigma.double()
    return SimpleNamespace(mean=mean, y=y, ls=ls, ref=gaussian_ll_pixel_sigma(mean, y, ls), d=mean[0].numel())


GAUSS = Comparison(
    reference=gaussian_ll_pixel_sigma,
    what="one log-likelihood per example",
    terms=_gauss_terms,
    mistakes=[
        Mistake(
            "log_sigma is the log of the standard deviation: the log-variance is 2 * log_sigma.",
            lambda t: gaussian_log_likelihood(t.mean, t.y, t.ls),
        ),
        Mistake(
            "the normalising constant -0.5 * log(2 pi) per pixel is missing.", lambda t: t.ref + 0.5 * t.d * LOG_2PI
        ),
        Mistake("the -log(sigma) term is missing.", lambda t: t.ref + t.ls.expand_as(t.mean).flatten(1).sum(1)),
        Mistake("sum over the pixels, not average.", lambda t: t.ref / t.d),
        Mistake("a log-likelihood, not a loss: check the sign.", lambda t: -t.ref),
    ],
    shape_hint=per_example("pixels"),
    tol=(1e-4, 1e-3),
    tol64=(1e-8, 1e-8),
    hint="per pixel: -0.5 log(2 pi) - log_sigma - (y - mean)^2 / (2 e^(2 log_sigma)); sum over each example's pixels.",
)


def _gauss_cases() -> list[Case]:
    g = seeded(33)
    f64 = torch.float64
    img = torch.rand(2, 1, 28, 28, generator=g, dtype=f64)
    return [
        Case(
            "a random batch",
            "mean and y (3, 1, 4, 4), log_sigma (1, 4, 4), float32",
            (
                torch.rand(3, 1, 4, 4, generator=g),
                torch.rand(3, 1, 4, 4, generator=g),
                torch.randn(1, 4, 4, generator=g),
            ),
        ),
        Case(
            "sigma = 1",
            "log_sigma = 0 everywhere, shape (2, 1, 3, 3), float64",
            (
                torch.rand(2, 1, 3, 3, generator=g, dtype=f64),
                torch.rand(2, 1, 3, 3, generator=g, dtype=f64),
                torch.zeros(1, 3, 3, dtype=f64),
            ),
        ),
        Case(
            "a perfect prediction",
            f"y = mean, sigma = 0.1 on 28 x 28 pixels: +{784 * (math.log(10) - 0.5 * LOG_2PI):.1f} nats",
            (img, img.clone(), torch.full((1, 28, 28), math.log(0.1), dtype=f64)),
        ),
        Case(
            "sigmas from e^-3 to e^2",
            "log_sigma uniform in [-3, 2], shape (4, 1, 5, 5), float64",
            (
                torch.rand(4, 1, 5, 5, generator=g, dtype=f64),
                torch.rand(4, 1, 5, 5, generator=g, dtype=f64),
                5 * torch.rand(1, 5, 5, generator=g, dtype=f64) - 3,
            ),
        ),
        Case(
            "two channels",
            "mean and y (2, 2, 3, 3), log_sigma (2, 3, 3), float32",
            (
                torch.rand(2, 2, 3, 3, generator=g),
                torch.rand(2, 2, 3, 3, generator=g),
                torch.randn(2, 3, 3, generator=g),
            ),
        ),
    ]


QUESTIONS = [
    Question(1, "bernoulli_ll_from_probs", 4, _bern_cases, BERNOULLI),
    Question(2, "best_log_likelihood", 3, _best_cases, BEST),
    Question(3, "gaussian_ll_pixel_sigma", 3, _gauss_cases, GAUSS, forbidden=("gaussian_log_likelihood",)),
]
