"""Session 1 (notebook 1, the ELBO): the hidden tests of ``kit/assignments/session_1.ipynb``.

1. ``kl_from_std(mu_q, std_q, mu_p, std_p)``: the KL of two diagonal Gaussians given by standard deviations.
2. ``jensen_gap_estimate(log_w)``: log-mean-exp minus mean of log-weights (S, B), one value per example.
3. ``jensen_gap``: the exact gap log p(y) - ELBO(q) of a 1-D Gaussian model, a number.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Mistake, float64, per_example, seeded
from cvae_utils.losses import kl_diag_gaussians, log_mean_exp

from . import Question, Slip, number_check

# ----------------------------------------------------------------------------------
# Question 1: the KL from standard deviations
# ----------------------------------------------------------------------------------


def kl_from_std(mu_q: Tensor, std_q: Tensor, mu_p: Tensor, std_p: Tensor) -> Tensor:
    return kl_diag_gaussians(mu_q, 2 * std_q.log(), mu_p, 2 * std_p.log())


def _kl_terms(mu_q, std_q, mu_p, std_p) -> SimpleNamespace:
    mu_q, std_q, mu_p, std_p = float64(mu_q, std_q, mu_p, std_p)
    return SimpleNamespace(mu_q=mu_q, std_q=std_q, mu_p=mu_p, std_p=std_p, kl=kl_from_std(mu_q, std_q, mu_p, std_p))


KL_MISTAKES = [
    Mistake(
        "you passed standard deviations where log-variances belong: the log-variance is 2 * log(std).",
        lambda t: kl_diag_gaussians(t.mu_q, t.std_q, t.mu_p, t.std_p),
    ),
    Mistake(
        "log(std) is half the log-variance: the variance is std**2, so logvar = 2 * log(std).",
        lambda t: kl_diag_gaussians(t.mu_q, t.std_q.log(), t.mu_p, t.std_p.log()),
    ),
    Mistake("a KL is never negative: check the sign.", lambda t: -t.kl),
    Mistake("off by a factor 2: mind the 0.5 in front of the sum.", lambda t: 2 * t.kl),
    Mistake(
        "you averaged over the latent dimensions: the KL of a diagonal Gaussian is their sum.",
        lambda t: t.kl / t.mu_q.shape[1],
    ),
    Mistake(
        "you computed KL(p || q): q (mu_q, std_q) comes first, inside the expectation.",
        lambda t: kl_from_std(t.mu_p, t.std_p, t.mu_q, t.std_q),
    ),
]

KL = Comparison(
    reference=kl_from_std,
    what="one KL per example",
    terms=_kl_terms,
    mistakes=KL_MISTAKES,
    shape_hint=per_example("latent dimensions"),
    tol=(1e-4, 1e-4),
    tol64=(1e-6, 1e-7),
    hint="KL = sum over dims of log(std_p / std_q) + (std_q**2 + (mu_q - mu_p)**2) / (2 std_p**2) - 1/2.",
)


def _kl_cases() -> list[Case]:
    g = seeded(11)
    f64 = torch.float64

    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=dtype)

    def std(*shape, dtype=torch.float32, spread=1.0):
        return (spread * torch.randn(*shape, generator=g, dtype=dtype)).exp()

    mu, s = randn(3, 5), std(3, 5)
    return [
        Case("a random batch", "shape (4, 3), float32", (randn(4, 3), std(4, 3), randn(4, 3), std(4, 3))),
        Case("q equal to p", "mu_q = mu_p, std_q = std_p, shape (3, 5): the KL is 0", (mu, s, mu.clone(), s.clone())),
        Case(
            "p = N(0, I)",
            "mu_p = 0, std_p = 1, shape (5, 2), float64",
            (randn(5, 2, dtype=f64), std(5, 2, dtype=f64), torch.zeros(5, 2, dtype=f64), torch.ones(5, 2, dtype=f64)),
        ),
        Case("one example, one dimension", "shape (1, 1), float64", tuple(std(1, 1, dtype=f64) for _ in range(4))),
        Case(
            "standard deviations from 0.001 to 1000",
            "shape (6, 4), float64, std = exp(3 * N(0, 1))",
            (
                randn(6, 4, dtype=f64),
                std(6, 4, dtype=f64, spread=3),
                randn(6, 4, dtype=f64),
                std(6, 4, dtype=f64, spread=3),
            ),
        ),
        Case("20 latent dimensions", "a batch of 3, z_dim 20, float64", tuple(std(3, 20, dtype=f64) for _ in range(4))),
    ]


# ----------------------------------------------------------------------------------
# Question 2: the Jensen gap of a set of log-weights
# ----------------------------------------------------------------------------------


def jensen_gap_estimate(log_w: Tensor) -> Tensor:
    return log_mean_exp(log_w, dim=0) - log_w.mean(dim=0)


def _gap_terms(log_w: Tensor) -> SimpleNamespace:
    lw = log_w.double()
    return SimpleNamespace(lw=lw, lme=log_mean_exp(lw, 0), mean=lw.mean(0), s=lw.shape[0])


GAP = Comparison(
    reference=jensen_gap_estimate,
    what="one gap per example",
    terms=_gap_terms,
    mistakes=[
        Mistake(
            "that is the importance-sampled estimate of log p alone: subtract the ELBO estimate, the mean log-weight.",
            lambda t: t.lme,
        ),
        Mistake("a gap log p - ELBO is never negative: check the sign.", lambda t: t.mean - t.lme),
        Mistake(
            "logsumexp is the log of a sum: subtract log S to get the log of the mean.",
            lambda t: t.lme + math.log(t.s) - t.mean,
        ),
    ],
    shape_hint=lambda shape, log_w: (
        f"reduce over the samples, dim 0, leaving one value per example: shape ({log_w.shape[1]},)."
    ),
    tol=(1e-4, 1e-4),
    tol64=(1e-7, 1e-7),
    hint="gap = log (1/S) sum_s exp(log_w_s) - (1/S) sum_s log_w_s, over dim 0; use torch.logsumexp.",
    nonfinite_hint="exp of a log-weight of -1000 or +800 underflows or overflows: use torch.logsumexp.",
)


def _gap_cases() -> list[Case]:
    g = seeded(12)
    f64 = torch.float64
    return [
        Case("random log-weights", "log_w of shape (10, 4), float32", (torch.randn(10, 4, generator=g),)),
        Case("equal weights", "every log-weight -3.0, shape (5, 3): the gap is 0", (torch.full((5, 3), -3.0),)),
        Case("one sample", "S = 1, shape (1, 4), float64: the gap is 0", (torch.randn(1, 4, generator=g, dtype=f64),)),
        Case(
            "log-weights near -1000",
            "shape (8, 3), float64, values -1000 + 5 * N(0, 1)",
            (-1000 + 5 * torch.randn(8, 3, generator=g, dtype=f64),),
        ),
        Case(
            "log-weights near +800",
            "shape (6, 2), float64, values 800 + 10 * N(0, 1)",
            (800 + 10 * torch.randn(6, 2, generator=g, dtype=f64),),
        ),
        Case(
            "a thousand samples",
            "shape (1000, 2), float64, spread 3",
            (3 * torch.randn(1000, 2, generator=g, dtype=f64),),
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 3: the exact Jensen gap of a one-dimensional model
# ----------------------------------------------------------------------------------

Y, Q_MEAN, Q_STD = 2.0, 0.5, 0.5  # z ~ N(0, 1), y | z ~ N(z, 1); q(z|y) = N(Q_MEAN, Q_STD^2)


def log_p_and_elbo(y: float = Y, m: float = Q_MEAN, s: float = Q_STD) -> tuple[float, float]:
    """log p(y) and ELBO(q), each in closed form (the grader's own computation, not the KL shortcut)."""
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    log_p = -half_log_2pi - 0.5 * math.log(2.0) - y**2 / 4.0  # y ~ N(0, 2)
    expected_log_lik = -half_log_2pi - 0.5 * ((y - m) ** 2 + s**2)
    expected_log_prior = -half_log_2pi - 0.5 * (m**2 + s**2)
    entropy = 0.5 * math.log(2 * math.pi * math.e * s**2)
    return log_p, expected_log_lik + expected_log_prior + entropy


def exact_jensen_gap() -> float:
    log_p, elbo = log_p_and_elbo()
    return log_p - elbo


def _numeric_cases() -> list[Case]:
    check = number_check(
        exact_jensen_gap,
        what="log p(y) - ELBO(q), in nats, to within 0.001",
        hint="the gap is KL(q || p(z|y)); here p(z|y) = N(y/2, 1/2). Monte Carlo is too noisy: use closed forms.",
        slips=[
            Slip("the gap is never negative: log p(y) - ELBO, not ELBO - log p(y).", lambda: -exact_jensen_gap()),
            Slip("that is log p(y) itself: subtract the ELBO of q.", lambda: log_p_and_elbo()[0]),
            Slip("that is the ELBO itself: the gap is log p(y) minus it.", lambda: log_p_and_elbo()[1]),
        ],
        rel=0.0,
        abs_tol=1e-3,
    )
    return [Case("the gap", "y = 2, q = N(0.5, 0.5^2)", (), check)]


QUESTIONS = [
    Question(1, "kl_from_std", 4, _kl_cases, KL, forbidden=("kl_diag_gaussians",)),
    Question(2, "jensen_gap_estimate", 3, _gap_cases, GAP),
    Question(3, "jensen_gap", 3, _numeric_cases, value=True),
]
