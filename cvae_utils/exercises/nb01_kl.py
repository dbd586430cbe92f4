"""Notebook 1 (01_the_elbo.ipynb): the KL divergence between two diagonal Gaussians."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from ..losses import kl_diag_gaussians
from .harness import Case, CheckResult, Comparison, Mistake, float64, per_example, run, seeded


def _terms(mu_q: Tensor, lv_q: Tensor, mu_p: Tensor, lv_p: Tensor) -> SimpleNamespace:
    mu_q, lv_q, mu_p, lv_p = float64(mu_q, lv_q, mu_p, lv_p)
    return SimpleNamespace(
        mu_q=mu_q,
        lv_q=lv_q,
        mu_p=mu_p,
        lv_p=lv_p,
        kl=kl_diag_gaussians(mu_q, lv_q, mu_p, lv_p),
        d=mu_q.shape[1],
        d2=(mu_q - mu_p) ** 2,
    )


def _bracket_sum(t: Tensor) -> Tensor:
    return 0.5 * t.sum(dim=1)


MISTAKES = [
    Mistake(
        "sign error: a KL divergence is never negative. The bracket is logvar_p - logvar_q "
        "+ (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1, with 0.5 in front.",
        lambda t: -t.kl,
    ),
    Mistake("off by a factor 2: the formula has a 0.5 in front of the sum.", lambda t: 2 * t.kl),
    Mistake("half the expected value: is the 0.5 applied twice?", lambda t: 0.5 * t.kl),
    Mistake(
        "you averaged over the latent dimensions: the KL of a diagonal Gaussian is a sum over them "
        "(.sum(dim=1), not .mean(dim=1)).",
        lambda t: t.kl / t.d,
    ),
    Mistake("the -1 inside the bracket is missing (check: the KL of q = p must be 0).", lambda t: t.kl + 0.5 * t.d),
    Mistake(
        "you computed KL(p || q): the arguments are swapped. The KL is not symmetric; here q is "
        "(mu_q, logvar_q), inside, and p is (mu_p, logvar_p).",
        lambda t: kl_diag_gaussians(t.mu_p, t.lv_p, t.mu_q, t.lv_q),
    ),
    Mistake(
        "the log-variance terms have the wrong sign: the bracket starts with logvar_p - logvar_q "
        "(that is 2 log(sigma_p / sigma_q)).",
        lambda t: _bracket_sum(t.lv_q - t.lv_p + (t.lv_q.exp() + t.d2) / t.lv_p.exp() - 1),
    ),
    Mistake(
        "you forgot the exponent: logvar is the log of the variance, so the variance is e^logvar "
        "(logvar.exp()), not logvar itself.",
        lambda t: _bracket_sum(t.lv_p - t.lv_q + (t.lv_q + t.d2) / t.lv_p - 1),
    ),
    Mistake(
        "you used e^(logvar / 2), the standard deviation, where the variance e^logvar belongs.",
        lambda t: _bracket_sum(t.lv_p - t.lv_q + ((0.5 * t.lv_q).exp() + t.d2) / (0.5 * t.lv_p).exp() - 1),
    ),
    Mistake(
        "(mu_q - mu_p)^2 must be divided by the prior variance e^logvar_p too, not only e^logvar_q.",
        lambda t: _bracket_sum(t.lv_p - t.lv_q + (t.lv_q - t.lv_p).exp() + t.d2 - 1),
    ),
]

COMPARISON = Comparison(
    reference=kl_diag_gaussians,
    what="one KL per example",
    terms=_terms,
    mistakes=MISTAKES,
    shape_hint=per_example("latent dimensions"),
    tol=(1e-4, 1e-4),
    tol64=(1e-6, 1e-7),
    hint="write the boxed formula term by term: 0.5 * sum over dim 1 of [logvar_p - logvar_q "
    "+ (logvar_q.exp() + (mu_q - mu_p)**2) / logvar_p.exp() - 1].",
    nonfinite_hint="NaN or inf: compute the variances as logvar.exp() and divide by the prior "
    "variance (or multiply by (-logvar_p).exp()); no log of a variance is needed.",
)


def _cases() -> list[Case]:
    g = seeded(1)
    f64 = torch.float64

    def randn(*shape, dtype=torch.float32, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=dtype)

    mu, lv = randn(3, 5), randn(3, 5)  # drawn first: the seeds' order fixes every case's numbers
    return [
        Case(
            "a random batch",
            "mu_q, logvar_q, mu_p, logvar_p of shape (4, 3), random values, float32",
            (randn(4, 3), randn(4, 3), randn(4, 3), randn(4, 3)),
        ),
        Case(
            "q equal to p",
            "q = p: mu_q = mu_p and logvar_q = logvar_p, shape (3, 5), float32; the KL must be 0 for every example",
            (mu, lv, mu.clone(), lv.clone()),
        ),
        Case(
            "p = N(0, I)",
            "mu_p = 0 and logvar_p = 0 (a standard normal prior), q random, shape (4, 2), float32",
            (randn(4, 2), randn(4, 2), torch.zeros(4, 2), torch.zeros(4, 2)),
        ),
        Case(
            "a batch of 1",
            "a single example with a single latent dimension, shape (1, 1), float64",
            tuple(randn(1, 1, dtype=f64) for _ in range(4)),
        ),
        Case(
            "sigma = 1 on both sides",
            "logvar_q = logvar_p = 0 (both variances 1), different means, "
            "shape (3, 4), float64: the KL is 0.5 * sum (mu_q - mu_p)^2",
            (
                randn(3, 4, dtype=f64),
                torch.zeros(3, 4, dtype=f64),
                randn(3, 4, dtype=f64),
                torch.zeros(3, 4, dtype=f64),
            ),
        ),
        Case(
            "large log-variances",
            "log-variances between -10 and 10 (variances from 5e-5 to 2e4), shape (5, 3), float64",
            (
                randn(5, 3, dtype=f64, scale=3),
                20 * torch.rand(5, 3, generator=g, dtype=f64) - 10,
                randn(5, 3, dtype=f64, scale=3),
                20 * torch.rand(5, 3, generator=g, dtype=f64) - 10,
            ),
        ),
        Case(
            "20 latent dimensions",
            "a batch of 6 with z_dim = 20 (as the MNIST models), float64",
            tuple(randn(6, 20, dtype=f64) for _ in range(4)),
        ),
    ]


def check_kl_diag_gaussians(fn) -> CheckResult:
    """Check ``fn(mu_q, logvar_q, mu_p, logvar_p)`` = KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)).

    Used in notebook 1 (``01_the_elbo.ipynb``), section "Exercises", exercise 5 "The KL
    term by hand, checked".

    All four arguments have shape (batch, z_dim); the answer is the KL summed over the
    latent dimensions, one value per example, shape (batch,), in the inputs' dtype, as
    :func:`cvae_utils.kl_diag_gaussians` returns it.
    """
    return run("check_kl_diag_gaussians", fn, _cases, comparison=COMPARISON, passes="agrees with cu.kl_diag_gaussians")
