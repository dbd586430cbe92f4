"""Notebook 4 (04_the_loss.ipynb): the one-sample CVAE loss -ELBO = recon + KL, in nats per example."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import torch
from torch import Tensor

from ..losses import bernoulli_log_likelihood, kl_diag_gaussians, kl_standard_normal
from .harness import Case, CheckResult, Comparison, Mistake, float64, run, seeded


def _reference(sign: float, logits, y, mu, logvar, prior_mu, prior_logvar) -> Tensor:
    """The loss (sign 1) or the ELBO (sign -1)."""
    recon = -bernoulli_log_likelihood(logits, y).mean()
    return sign * (recon + kl_diag_gaussians(mu, logvar, prior_mu, prior_logvar).mean())


def _terms(sign: float, logits, y, mu, logvar, prior_mu, prior_logvar) -> SimpleNamespace:
    """The batch means r (recon) and k (KL), and the KL to N(0, I), each times ``sign`` (-1 for the ELBO).

    Every mistake's answer is linear in them, so the same formulas serve the loss and the ELBO.
    """
    mu, logvar, prior_mu, prior_logvar = float64(mu, logvar, prior_mu, prior_logvar)
    r = -bernoulli_log_likelihood(logits.double(), y.double()).mean()
    k = kl_diag_gaussians(mu, logvar, prior_mu, prior_logvar).mean()
    return SimpleNamespace(
        r=sign * r,
        k=sign * k,
        kl_std=sign * kl_standard_normal(mu, logvar).mean(),
        batch=len(y),
        pixels=y[0].numel(),
        dz=mu.shape[1],
    )


MISTAKES = [  # after the mistake of returning the opposite sign (see _comparison)
    Mistake(
        "the reconstruction term is averaged over the pixels (F.binary_cross_entropy_with_logits "
        "defaults to reduction='mean'): log p(y|x,z) is a sum over the pixels. Use reduction='none' "
        "and .flatten(1).sum(dim=1), then the batch mean.",
        lambda t: t.r / t.pixels + t.k,
    ),
    Mistake(
        "both terms are averaged over pixels / latent dimensions: each is a sum per example, then a "
        "mean over the batch.",
        lambda t: t.r / t.pixels + t.k / t.dz,
    ),
    Mistake(
        "the KL is averaged over the latent dimensions: sum it over them (dim 1), then average over the batch.",
        lambda t: t.r + t.k / t.dz,
    ),
    Mistake(
        "you summed over the batch: nats per example means a mean over the batch.", lambda t: t.batch * (t.r + t.k)
    ),
    Mistake(
        "the reconstruction term is summed over the batch, the KL averaged: average both.",
        lambda t: t.batch * t.r + t.k,
    ),
    Mistake(
        "the KL is summed over the batch, the reconstruction averaged: average both.", lambda t: t.r + t.batch * t.k
    ),
    Mistake("the KL is off by a factor 2: its formula has a 0.5 in front of the sum.", lambda t: t.r + 2 * t.k),
    Mistake("the KL has the wrong sign: the loss adds it (ELBO = log-likelihood - KL).", lambda t: t.r - t.k),
    Mistake(
        "the reconstruction term has the wrong sign: recon = -log p(y|x,z), a positive number of nats.",
        lambda t: -t.r + t.k,
    ),
    Mistake("the KL term is missing.", lambda t: t.r),
    Mistake("the reconstruction term is missing.", lambda t: t.k),
    Mistake(
        "the KL goes to N(0, I) instead of the prior network's p(z|x): use prior_mu and prior_logvar "
        "(cu.kl_diag_gaussians, not cu.kl_standard_normal).",
        lambda t: t.r + t.kl_std,
    ),
]


def _shape_hint(got: tuple, logits, y, *_) -> str:
    batch = len(y)
    if got == (batch,) or (len(got) >= 1 and got[0] == batch and batch > 1):
        return (
            "return one number, the batch mean (nats per example), not one value per example: "
            "average the per-example terms with .mean()."
        )
    return "return a single number (a 0-dimensional tensor), e.g. recon + kl with each a batch mean."


def _name(negative: bool) -> str:
    return "the loss -ELBO = recon + KL" if negative else "the ELBO = -(recon + KL)"


def _comparison(negative: bool) -> Comparison:
    sign = 1.0 if negative else -1.0
    opposite = (
        "you returned the ELBO; the loss is its negative, -ELBO = recon + KL, which the optimiser minimises."
        if negative
        else "you returned the loss -ELBO = recon + KL; the ELBO is its negative."
    )

    return Comparison(
        reference=partial(_reference, sign),
        what=_name(negative),
        terms=partial(_terms, sign),
        mistakes=[Mistake(opposite, lambda t: -(t.r + t.k)), *MISTAKES],
        shape_hint=_shape_hint,
        scalar=True,
        tol=(1e-5, 1e-3),
        tol64=(1e-7, 1e-6),
        hint=f"build {_name(negative)} from the two batch means: recon = -(y * logits - F.softplus(logits)) summed "
        "over the pixels per example, then .mean(); kl = cu.kl_diag_gaussians(mu, logvar, prior_mu, "
        "prior_logvar).mean().",
        nonfinite_hint="NaN or inf: log(sigmoid(logits)) underflows for confident logits. Use "
        "y * logits - F.softplus(logits), or F.binary_cross_entropy_with_logits.",
    )


def _cases() -> list[Case]:
    g = seeded(5)

    def make(batch, y_shape, z_dim, dtype=torch.float32, *, binary=False, confident=False, q_is_prior=False):
        y = torch.rand(batch, *y_shape, generator=g, dtype=dtype)
        if binary:
            y = (y > 0.5).to(dtype)
        logits = torch.randn(batch, *y_shape, generator=g, dtype=dtype)
        if confident:
            flip = torch.where(torch.rand(y.shape, generator=g) < 0.1, -1.0, 1.0).to(dtype)
            logits = (2 * y - 1) * (30 + 30 * torch.rand(y.shape, generator=g, dtype=dtype)) * flip
        mu, logvar = (0.7 * torch.randn(batch, z_dim, generator=g, dtype=dtype) for _ in range(2))
        prior = (
            (mu.clone(), logvar.clone())
            if q_is_prior
            else tuple(0.7 * torch.randn(batch, z_dim, generator=g, dtype=dtype) for _ in range(2))
        )
        return logits, y, mu, logvar, *prior

    return [
        Case(
            "a random batch",
            "4 grey-level images of shape (1, 6, 5), random logits, z_dim = 3, float32",
            make(4, (1, 6, 5), 3),
        ),
        Case("a batch of 1", "one image (1, 28, 28), z_dim = 20, float32", make(1, (1, 28, 28), 20)),
        Case(
            "q equal to the prior",
            "mu = prior_mu and logvar = prior_logvar (the KL term is 0), 3 images (1, 5, 5), z_dim = 4, float32",
            make(3, (1, 5, 5), 4, q_is_prior=True),
        ),
        Case(
            "confident logits",
            "binary images (1, 7, 7), logits of size 30 to 60 (a tenth confidently wrong), "
            "batch of 3, z_dim = 2, float32",
            make(3, (1, 7, 7), 2, binary=True, confident=True),
        ),
        Case(
            "MNIST-sized, float64", "8 images (1, 28, 28), z_dim = 20, float64", make(8, (1, 28, 28), 20, torch.float64)
        ),
    ]


def check_elbo(fn, *, negative: bool = True) -> CheckResult:
    """Check ``fn(logits, y, mu, logvar, prior_mu, prior_logvar)``: the one-sample CVAE loss, a scalar.

    Used in notebook 4 (``04_the_loss.ipynb``), section "Exercises", exercise 5 "The loss,
    assembled by hand".

    With ``negative=True`` (the default) the answer is the loss the optimiser minimises,
    -ELBO = recon + KL; with ``negative=False`` the ELBO itself. In nats per example, as
    ``cu.cvae_terms`` and ``model.loss_function`` compute them: recon =
    -log p(y|x,z) summed over pixels (Bernoulli with ``logits``), KL =
    KL(q(z|x,y) || p(z|x)) summed over latent dimensions, both averaged over the batch.
    The arguments are the fields of ``model(y, x)`` in order (``decoded`` = logits).
    """
    return run(
        "check_elbo",
        fn,
        _cases,
        comparison=_comparison(negative),
        passes=f"computes {_name(negative)} in nats per example, as cu.cvae_terms does,",
    )
