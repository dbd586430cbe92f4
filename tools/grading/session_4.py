"""Session 4 (notebook 4, and notebook 5 sections 1-4): the hidden tests of ``kit/assignments/session_4.ipynb``.

1. ``gaussian_neg_elbo(mean, y, mu, logvar, sigma)``: -ELBO in nats per example for a Gaussian decoder with
   a fixed sigma and a N(0, I) prior, one sample already decoded; a batch mean.
2. ``monte_carlo_kl(mu_q, logvar_q, mu_p, logvar_p, eps)``: the KL estimated from given noise eps (S, B, D).
3. ``train_epoch(model, optimizer, batches)``: one epoch of the CVAE loop by hand; the epoch's loss per example.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Mistake, Session, fmt, seeded
from cvae_utils.losses import (
    cvae_terms,
    gaussian_log_density,
    gaussian_log_likelihood,
    kl_diag_gaussians,
    kl_standard_normal,
)
from cvae_utils.models import MLPCVAE

from . import Question, as_number

LR = 1e-2  # question 3's Adam learning rate

# ----------------------------------------------------------------------------------
# Question 1: the negative ELBO of a Gaussian decoder
# ----------------------------------------------------------------------------------


def gaussian_neg_elbo(mean: Tensor, y: Tensor, mu: Tensor, logvar: Tensor, sigma: float) -> Tensor:
    recon = -gaussian_log_likelihood(mean, y, 2.0 * math.log(sigma))
    return (recon + kl_standard_normal(mu, logvar)).mean()


def _elbo_terms(mean, y, mu, logvar, sigma) -> SimpleNamespace:
    mean, y, mu, logvar = mean.double(), y.double(), mu.double(), logvar.double()
    recon = -gaussian_log_likelihood(mean, y, 2.0 * math.log(sigma))
    kl = kl_standard_normal(mu, logvar)
    return SimpleNamespace(recon=recon, kl=kl, n=len(y), d=y[0].numel(), mean=mean, y=y, sigma=sigma)


ELBO = Comparison(
    reference=gaussian_neg_elbo,
    what="-ELBO, one number: the batch mean of the per-example (recon + KL)",
    terms=_elbo_terms,
    mistakes=[
        Mistake("average over the batch, not sum: the loss is in nats per example.", lambda t: (t.recon + t.kl).sum()),
        Mistake(
            "that is the starting model's pixel-mean MSE with the KL: the reconstruction term is a Gaussian "
            "log-likelihood summed over pixels, with its 1 / (2 sigma^2) and log(sigma sqrt(2 pi)).",
            lambda t: F.mse_loss(t.mean, t.y) + t.kl.mean(),
        ),
        Mistake(
            "the normalising constant D * log(sigma sqrt(2 pi)) is missing from the reconstruction term.",
            lambda t: (t.recon - t.d * (math.log(t.sigma) + 0.5 * math.log(2 * math.pi)) + t.kl).mean(),
        ),
        Mistake("the KL is added, not subtracted, in -ELBO = recon + KL.", lambda t: (t.recon - t.kl).mean()),
        Mistake(
            "the reconstruction term is summed over pixels, not averaged.", lambda t: (t.recon / t.d + t.kl).mean()
        ),
    ],
    tol=(1e-4, 1e-3),
    tol64=(1e-6, 1e-6),  # a constant built in float32 (torch.tensor(2 * math.pi)) costs ~1e-7 relative: not a mistake
    scalar=True,
    hint="per example: sum over pixels of [0.5 log(2 pi sigma^2) + (y - mean)^2 / (2 sigma^2)] "
    "- 0.5 sum over dims (1 + logvar - mu^2 - e^logvar); then the mean over the batch.",
)


def _elbo_cases() -> list[Case]:
    g = seeded(41)
    f64 = torch.float64

    def batch(n, d, z, sigma, dtype=torch.float32):
        return (
            torch.rand(n, *d, generator=g, dtype=dtype),
            torch.rand(n, *d, generator=g, dtype=dtype),
            torch.randn(n, z, generator=g, dtype=dtype),
            torch.randn(n, z, generator=g, dtype=dtype),
            sigma,
        )

    y = torch.rand(3, 1, 4, 4, generator=g, dtype=f64)
    return [
        Case(
            "a random batch", "mean, y (4, 1, 5, 5), mu, logvar (4, 3), sigma 0.1, float32", batch(4, (1, 5, 5), 3, 0.1)
        ),
        Case(
            "a perfect fit, q = prior",
            "mean = y, mu = 0, logvar = 0, sigma 0.5, float64: only the constant is left",
            (y, y.clone(), torch.zeros(3, 2, dtype=f64), torch.zeros(3, 2, dtype=f64), 0.5),
        ),
        Case("one example", "a batch of 1, (1, 1, 6, 6), z_dim 4, sigma 1, float64", batch(1, (1, 6, 6), 4, 1.0, f64)),
        Case("MNIST-sized", "(3, 1, 28, 28), z_dim 20, sigma 0.2, float64", batch(3, (1, 28, 28), 20, 0.2, f64)),
        Case("flat images", "mean and y (5, 10), z_dim 2, sigma 2, float32", batch(5, (10,), 2, 2.0)),
    ]


# ----------------------------------------------------------------------------------
# Question 2: the KL by Monte Carlo, from given noise
# ----------------------------------------------------------------------------------


def monte_carlo_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor, eps: Tensor) -> Tensor:
    z = mu_q + torch.exp(0.5 * logvar_q) * eps
    return (gaussian_log_density(z, mu_q, logvar_q) - gaussian_log_density(z, mu_p, logvar_p)).mean(dim=0)


def _mc_terms(mu_q, lv_q, mu_p, lv_p, eps) -> SimpleNamespace:
    args = tuple(t.double() for t in (mu_q, lv_q, mu_p, lv_p, eps))
    return SimpleNamespace(a=args, ref=monte_carlo_kl(*args), exact=kl_diag_gaussians(*args[:4]))


MC_KL = Comparison(
    reference=monte_carlo_kl,
    what="one KL estimate per example",
    terms=_mc_terms,
    mistakes=[
        Mistake(
            "that is the closed-form KL: the question asks for the Monte Carlo estimate from the given eps, "
            "z_s = mu_q + sigma_q * eps_s, averaged over s of log q(z_s) - log p(z_s).",
            lambda t: t.exact,
        ),
        Mistake("KL(q || p) averages log q - log p, not log p - log q.", lambda t: -t.ref),
        Mistake("average over the samples (dim 0), not sum.", lambda t: t.ref * t.a[4].shape[0]),
    ],
    shape_hint=lambda shape, mu_q, *_: f"one estimate per example: shape ({len(mu_q)},).",
    tol=(1e-4, 1e-4),
    tol64=(1e-8, 1e-8),
    hint="z = mu_q + e^(logvar_q / 2) * eps (broadcast over S); then mean over dim 0 of log q(z) - log p(z), "
    "each log-density summed over the latent dimensions.",
)


def _mc_cases() -> list[Case]:
    g = seeded(42)
    f64 = torch.float64

    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=dtype)

    mu, lv = r(3, 4, dtype=f64), r(3, 4, dtype=f64)
    return [
        Case(
            "a random batch",
            "mu, logvar (3, 2), eps (4, 3, 2), float32",
            (r(3, 2), r(3, 2), r(3, 2), r(3, 2), r(4, 3, 2)),
        ),
        Case(
            "q equal to p",
            "q = p, eps (5, 3, 4), float64: every sample gives 0",
            (mu, lv, mu.clone(), lv.clone(), r(5, 3, 4, dtype=f64)),
        ),
        Case(
            "one sample",
            "S = 1, shape (1, 2, 3), float64",
            (r(2, 3, dtype=f64), r(2, 3, dtype=f64), r(2, 3, dtype=f64), r(2, 3, dtype=f64), r(1, 2, 3, dtype=f64)),
        ),
        Case(
            "eps = 0",
            "eps all zero (z = mu_q), (2, 4, 3), float64",
            (
                r(4, 3, dtype=f64),
                r(4, 3, dtype=f64),
                r(4, 3, dtype=f64),
                r(4, 3, dtype=f64),
                torch.zeros(2, 4, 3, dtype=f64),
            ),
        ),
        Case(
            "many samples",
            "S = 2000, batch 2, z_dim 20, float64",
            (
                r(2, 20, dtype=f64),
                r(2, 20, dtype=f64),
                r(2, 20, dtype=f64),
                r(2, 20, dtype=f64),
                r(2000, 2, 20, dtype=f64),
            ),
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 3: one training epoch by hand
# ----------------------------------------------------------------------------------


def _setup(sizes: list[int], seed: int):
    """A small label CVAE and batches of the given sizes (random grey 6 x 6 images, labels 0-2)."""
    torch.manual_seed(seed)
    model = MLPCVAE((1, 6, 6), z_dim=2, hidden_dims=(16,), num_classes=3)
    g = seeded(seed)
    return model, [(torch.rand(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in sizes]


def _epoch(model, batches, seed: int, *, zero_grad: bool = True, weighted: bool = True):
    """The reference epoch on a copy of ``model`` (or a variant that makes a typical mistake): (copy, loss)."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    torch.manual_seed(seed)  # the same draws of z as the student's run
    losses, sizes = [], []
    for y, x in batches:
        if zero_grad:
            optimizer.zero_grad()
        loss = cvae_terms(model, y, x)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(y))
    if weighted:
        return model, sum(v * n for v, n in zip(losses, sizes)) / sum(sizes)
    return model, sum(losses) / len(losses)


def _same(a, b) -> bool:
    return all(torch.allclose(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def _check_epoch(s: Session, case: Case, sizes: list[int], seed: int) -> None:
    model, batches = _setup(sizes, seed)
    reference, expected = _epoch(model, batches, seed)
    student = copy.deepcopy(model)
    optimizer = torch.optim.Adam(student.parameters(), lr=LR)
    torch.manual_seed(seed)
    got = s.call(case, student, optimizer, [(y.clone(), x.clone()) for y, x in batches])
    got = as_number(s, case, got, "the epoch's mean loss per example")
    if not _same(reference, student):
        if _same(_epoch(model, batches, seed, zero_grad=False)[0], student):
            hint = "call optimizer.zero_grad() before each backward(): otherwise the gradients of the batches add up."
        elif _same(model, student):
            hint = "the parameters did not change: call loss.backward() and optimizer.step() for every batch."
        else:
            hint = "the parameters differ from one Adam step per batch on cu.cvae_terms(model, y, x)['loss']."
        s.fail(case, "the parameters after one Adam step per batch", "other parameters", hint)
    if math.isclose(got, expected, rel_tol=1e-4):
        return
    hint = "return the epoch's mean loss per example: the sum of (batch loss * batch size) / the number of examples."
    if len(set(sizes)) > 1 and math.isclose(got, _epoch(model, batches, seed, weighted=False)[1], rel_tol=1e-4):
        hint = "the last batch is smaller: weight each batch's loss by its size, not a plain mean of the batch losses."
    elif math.isclose(got, expected * sum(sizes), rel_tol=1e-4):
        hint = "that is the sum over the examples: divide by their number (nats per example)."
    s.fail(case, fmt(expected), fmt(got), hint)


def _epoch_cases() -> list[Case]:
    return [
        Case(
            "one batch",
            "one batch of 8 random 6 x 6 images, labels 0-2; MLPCVAE z_dim 2, Adam lr 0.01",
            (),
            _check_epoch,
            {"sizes": [8], "seed": 1},
        ),
        Case("equal batches", "three batches of 10", (), _check_epoch, {"sizes": [10, 10, 10], "seed": 2}),
        Case(
            "a smaller last batch",
            "batches of 16, 16 and 2: the epoch mean weights each batch by its size",
            (),
            _check_epoch,
            {"sizes": [16, 16, 2], "seed": 3},
        ),
    ]


QUESTIONS = [
    Question(1, "gaussian_neg_elbo", 4, _elbo_cases, ELBO),
    Question(2, "monte_carlo_kl", 3, _mc_cases, MC_KL),
    Question(3, "train_epoch", 3, _epoch_cases),
]
