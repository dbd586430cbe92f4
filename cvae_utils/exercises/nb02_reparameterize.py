"""Notebook 2 (02_the_encoder.ipynb): the reparameterisation z = mu + sigma * eps.

The noise is random, so the cases check properties (the mean and spread of many draws,
one eps per entry, the gradients) rather than values one by one.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from .harness import Case, CheckResult, Mistake, Session, brief, clone, diagnose, fmt, run, seeded

N = 20_000  # draws per entry for the statistics
NONFINITE = "NaN or inf: compute sigma as torch.exp(0.5 * logvar)."

# The mean of the draws that each mistake gives (terms: mean = the mu of the case).
MEAN_MISTAKES = [
    Mistake("the draws are centred on 0: add mu (z = mu + sigma * eps).", lambda t: 0.0),
    Mistake("the draws are centred on -mu: sign error, z = mu + sigma * eps.", lambda t: -t.mean),
]
MEAN_HINT = "z must be centred on mu: z = mu + sigma * eps with eps ~ N(0, I) (torch.randn_like, not torch.rand)."

# The standard deviation of the draws divided by sigma that each mistake gives (terms: sigma, lv = log sigma^2).
SPREAD_MISTAKES = [
    Mistake("z has no spread: no noise was added. Draw eps = torch.randn_like(mu).", lambda t: 0.0),
    Mistake(
        "the spread is e^logvar, the variance: the standard deviation is its square root, "
        "sigma = torch.exp(0.5 * logvar).",
        lambda t: math.exp(t.lv) / t.sigma,
    ),
    Mistake(
        "the spread is logvar itself: you forgot the exponent, sigma = torch.exp(0.5 * logvar).",
        lambda t: abs(t.lv) / t.sigma,
    ),
    Mistake(
        "the spread is 1 whatever logvar says: multiply eps by sigma = torch.exp(0.5 * logvar).",
        lambda t: 1.0 / t.sigma,
    ),
    Mistake(
        "the spread is 1 / sigma: sign error in the exponent, sigma = torch.exp(+0.5 * logvar).",
        lambda t: math.exp(-0.5 * t.lv) / t.sigma,
    ),
    Mistake(
        "the spread is exp(logvar / 4): take the square root of the variance once, sigma = torch.exp(0.5 * logvar).",
        lambda t: math.exp(0.25 * t.lv) / t.sigma,
    ),
]
SPREAD_HINT = (
    "the standard deviation of z must be sigma = exp(0.5 * logvar); eps must be standard normal "
    "(torch.randn_like, not torch.rand)."
)


def _draw(s: Session, case: Case, mu: Tensor, logvar: Tensor) -> Tensor:
    z = s.tensor(case, s.call(case, *clone((mu, logvar))), mu.shape, mu.dtype, what="z shaped like mu")
    if not torch.isfinite(z).all():
        s.fail(case, "finite values", brief(z), NONFINITE)
    return z


def check_noise(s: Session, case: Case, mu: Tensor, logvar: Tensor) -> None:
    """A tensor shaped like mu, finite, with noise added."""
    if torch.equal(_draw(s, case, mu, logvar), mu):
        s.fail(
            case,
            "z = mu + sigma * eps, different from mu",
            "z equal to mu",
            "no noise was added: draw eps = torch.randn_like(mu) and return mu + sigma * eps.",
        )


def check_statistics(s: Session, case: Case, mu: Tensor, logvar: Tensor, *, mean: float, sigma: float) -> None:
    """mu and logvar constant: one eps per example and per dimension, then the mean and spread of the draws."""
    z = _draw(s, case, mu, logvar).double()
    eps = (z - mean) / sigma
    if eps.abs().max() > 0 and torch.allclose(eps, eps[:1].expand_as(eps)):
        s.fail(
            case,
            "a different eps for every example",
            "the same z in every row",
            "every example got the same noise: draw eps with the shape of mu, torch.randn_like(mu), "
            "not one vector for the whole batch.",
        )
    if mu.shape[1] > 1 and eps.abs().max() > 0 and torch.allclose(eps[:, :1].expand_as(eps), eps):
        s.fail(
            case,
            "a different eps for every latent dimension",
            "the same eps in every column",
            "every latent dimension got the same noise: eps must have the shape of mu (torch.randn_like(mu)).",
        )
    got_mean, std = z.mean().item(), z.std().item()
    expected = f"draws with mean {fmt(mean)} and standard deviation sigma = exp(0.5 * logvar) = {fmt(sigma)}"
    got = f"draws with mean {got_mean:.4g} and standard deviation {std:.4g}"
    terms = SimpleNamespace(mean=mean, sigma=sigma, lv=2 * math.log(sigma))
    if abs(got_mean - mean) > 0.05 * sigma:
        s.fail(
            case,
            expected,
            got,
            diagnose(MEAN_MISTAKES, terms, lambda want: abs(got_mean - want) < 0.05 * sigma) or MEAN_HINT,
        )
    ratio = std / sigma
    if abs(ratio - 1) > 0.03:
        s.fail(
            case,
            expected,
            got,
            diagnose(SPREAD_MISTAKES, terms, lambda want: abs(ratio - want) <= 0.06 * max(abs(want), 0.1))
            or SPREAD_HINT,
        )


def check_gradients(s: Session, case: Case, mu0: Tensor, lv0: Tensor) -> None:
    """dz/dmu = 1 and dz/dlogvar = sigma * eps / 2, eps read back from z."""
    mu, logvar = mu0.clone().requires_grad_(), lv0.clone().requires_grad_()
    got = s.call(case, mu, logvar)
    s.tensor(case, got, mu.shape, mu.dtype, what="z shaped like mu")
    expected = "gradients dz/dmu = 1 and dz/dlogvar = sigma * eps / 2"
    if not got.requires_grad:
        s.fail(
            case,
            expected,
            "z without a grad_fn (cut off from mu and logvar)",
            "z must stay in the computation graph: .sample(), .detach(), .item() or torch.no_grad() cut it "
            "off. Write z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) (or use .rsample()).",
        )
    d_mu, d_lv = torch.autograd.grad(got.sum(), (mu, logvar), allow_unused=True)
    if d_mu is None or not d_mu.abs().sum() > 0:
        s.fail(
            case,
            expected,
            f"dz/dmu = {'None' if d_mu is None else 'all zeros'}",
            "no gradient reaches mu: torch.normal(mu, std) has a grad_fn but gives zero gradients "
            "(notebook 2). Move the randomness into eps: z = mu + sigma * eps.",
        )
    if not torch.allclose(d_mu, torch.ones_like(d_mu)):
        s.fail(case, expected, f"dz/dmu: {brief(d_mu)}", "z = mu + sigma * eps has dz/dmu = 1 for every entry.")
    sigma = torch.exp(0.5 * lv0)
    eps = (got.detach() - mu0) / sigma
    want = 0.5 * sigma * eps
    if d_lv is None or not d_lv.abs().sum() > 0:
        s.fail(
            case,
            expected,
            f"dz/dlogvar = {'None' if d_lv is None else 'all zeros'}",
            "no gradient reaches logvar: compute sigma from logvar inside the graph (no .detach(), "
            "no math.exp on a number).",
        )
    if not torch.allclose(d_lv, want, rtol=1e-5, atol=1e-8):
        s.fail(
            case,
            f"dz/dlogvar: {brief(want)}",
            f"dz/dlogvar: {brief(d_lv)}",
            "with sigma = exp(0.5 * logvar), dz/dlogvar = 0.5 * sigma * eps: compute sigma exactly so.",
        )


def _constant(mean: float, sigma: float, dims: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return torch.full((N, dims), float(mean), dtype=dtype), torch.full((N, dims), 2 * math.log(sigma), dtype=dtype)


def _cases() -> list[Case]:
    g, f64 = seeded(3), torch.float64
    grad_g = seeded(2)
    return [
        Case(
            "a random batch",
            "mu and logvar of shape (4, 3), random values, float32",
            (torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)),
            check_noise,
        ),
        Case(
            "mean and spread, sigma = 0.5",
            f"mu = 2 and logvar = log(0.25) (sigma = 0.5) in every entry, shape ({N}, 2), float32",
            _constant(2.0, 0.5, 2, torch.float32),
            check_statistics,
            dict(mean=2.0, sigma=0.5),
        ),
        Case(
            "mean and spread, sigma = 3, float64",
            f"mu = -1 and logvar = log(9) (sigma = 3) in every entry, shape ({N}, 1), float64",
            _constant(-1.0, 3.0, 1, f64),
            check_statistics,
            dict(mean=-1.0, sigma=3.0),
        ),
        Case(
            "a batch of 1",
            "mu = 0.5 and logvar = 0 (sigma = 1), shape (1, 1), float64",
            (torch.full((1, 1), 0.5, dtype=f64), torch.zeros(1, 1, dtype=f64)),
            check_noise,
        ),
        Case(
            "gradients",
            "mu and logvar of shape (6, 3), float64, requiring gradients; the checker differentiates z.sum()",
            (torch.randn(6, 3, generator=grad_g, dtype=f64), torch.randn(6, 3, generator=grad_g, dtype=f64)),
            check_gradients,
        ),
    ]


def check_reparameterize(fn) -> CheckResult:
    """Check ``fn(mu, logvar)`` = mu + exp(0.5 * logvar) * eps with eps ~ N(0, I), differentiable in mu and logvar.

    Used in notebook 2 (``02_the_encoder.ipynb``), section "Exercises", exercise 1
    "Write `reparameterize` yourself".

    The noise is random, so the checker does not compare values one by one: it checks
    the shape and dtype, the mean and standard deviation of many draws, that every
    example and every latent dimension gets its own eps, and the gradients
    dz/dmu = 1 and dz/dlogvar = sigma * eps / 2. (The library's version is
    ``model.reparameterize``.)
    """
    return run(
        "check_reparameterize", fn, _cases, passes="draws z ~ N(mu, e^logvar) with gradients flowing to mu and logvar"
    )
