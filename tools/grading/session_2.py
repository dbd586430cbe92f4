"""Session 2 (notebook 2, the encoder): the hidden tests of ``kit/assignments/session_2.ipynb``.

1. ``reparameterize_full(mu, scale_tril, eps)``: z = mu + L eps for a full covariance L L^T, batched.
2. ``log_q_of_z(z, mu, logvar)``: log N(z; mu, diag e^logvar), summed over the last dimension.
3. ``score_function_gradient(f_values, z, mu, logvar)``: the score-function estimate of d/dmu E_q[f(z)].
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Mistake, Session, brief, seeded
from cvae_utils.losses import LOG_2PI, gaussian_log_density

from . import Question

# ----------------------------------------------------------------------------------
# Question 1: the reparameterisation with a Cholesky factor
# ----------------------------------------------------------------------------------


def reparameterize_full(mu: Tensor, scale_tril: Tensor, eps: Tensor) -> Tensor:
    return mu + (scale_tril @ eps.unsqueeze(-1)).squeeze(-1)


def _full_terms(mu, scale_tril, eps) -> SimpleNamespace:
    mu, scale_tril, eps = mu.double(), scale_tril.double(), eps.double()
    return SimpleNamespace(mu=mu, L=scale_tril, eps=eps)


FULL = Comparison(
    reference=reparameterize_full,
    what="z, shaped like mu",
    terms=_full_terms,
    mistakes=[
        Mistake(
            "eps @ L multiplies by L transposed (its covariance is L^T L, not L L^T): "
            "compute L eps per example, e.g. (scale_tril @ eps.unsqueeze(-1)).squeeze(-1).",
            lambda t: t.mu + (t.eps.unsqueeze(-2) @ t.L).squeeze(-2),
        ),
        Mistake(
            "you used only the diagonal of L: the off-diagonal entries correlate the dimensions.",
            lambda t: t.mu + torch.diagonal(t.L, dim1=-2, dim2=-1) * t.eps,
        ),
        Mistake("the mean is missing: z = mu + L eps.", lambda t: (t.L @ t.eps.unsqueeze(-1)).squeeze(-1)),
    ],
    tol=(1e-5, 1e-5),
    tol64=(1e-9, 1e-9),
    hint="z_b = mu_b + L_b eps_b for each example b: a batched matrix-vector product.",
)


def _lower(n: int, d: int, g: torch.Generator, dtype=torch.float32) -> Tensor:
    """A batch of random lower-triangular factors with a positive diagonal."""
    m = torch.randn(n, d, d, generator=g, dtype=dtype).tril(-1)
    return m + torch.diag_embed(torch.rand(n, d, generator=g, dtype=dtype) + 0.5)


def _check_gradients(s: Session, case: Case, mu: Tensor, scale_tril: Tensor, eps: Tensor) -> None:
    """dz/dmu and dz/dL (lower triangle) must be those of mu + L eps: the sample stays differentiable."""
    w = torch.linspace(-1.0, 1.0, mu.numel(), dtype=mu.dtype).view_as(mu)
    m, lt = mu.clone().requires_grad_(True), scale_tril.clone().requires_grad_(True)
    g_mu, g_l = torch.autograd.grad((reparameterize_full(m, lt, eps) * w).sum(), (m, lt))
    m, lt = mu.clone().requires_grad_(True), scale_tril.clone().requires_grad_(True)
    got = s.call(case, m, lt, eps.clone())
    s.tensor(case, got, mu.shape, mu.dtype, what="z, shaped like mu")
    if not got.requires_grad:
        s.fail(
            case,
            "z with a gradient to mu and scale_tril",
            brief(got) + " without a gradient",
            "compute z from mu and scale_tril with torch operations (no .detach(), no torch.no_grad()).",
        )
    st_mu, st_l = torch.autograd.grad((got * w).sum(), (m, lt), allow_unused=True)
    if st_mu is None or not torch.allclose(st_mu, g_mu, atol=1e-6):
        s.fail(case, "dz/dmu = 1 for each entry", "another gradient", "z = mu + L eps: mu enters with weight 1.")
    if st_l is None or not torch.allclose(st_l.tril(), g_l.tril(), atol=1e-6):
        s.fail(
            case,
            "dz_i/dL_ij = eps_j (lower triangle)",
            "another gradient",
            "z must depend on scale_tril through L eps: row i of L times eps.",
        )


def _full_cases() -> list[Case]:
    g = seeded(21)
    f64 = torch.float64
    eye = torch.eye(3).expand(4, 3, 3).clone()
    diag = torch.diag_embed(torch.rand(4, 3, generator=g) + 0.5)
    return [
        Case(
            "a random batch",
            "mu (4, 3), scale_tril (4, 3, 3) lower-triangular, eps (4, 3), float32",
            (torch.randn(4, 3, generator=g), _lower(4, 3, g), torch.randn(4, 3, generator=g)),
        ),
        Case(
            "L = I",
            "scale_tril the identity: z = mu + eps",
            (torch.randn(4, 3, generator=g), eye, torch.randn(4, 3, generator=g)),
        ),
        Case(
            "a diagonal L",
            "scale_tril diagonal: z = mu + diag(L) * eps",
            (torch.randn(4, 3, generator=g), diag, torch.randn(4, 3, generator=g)),
        ),
        Case(
            "one example, one dimension",
            "shapes (1, 1), (1, 1, 1), (1, 1), float64",
            (
                torch.randn(1, 1, generator=g, dtype=f64),
                _lower(1, 1, g, f64),
                torch.randn(1, 1, generator=g, dtype=f64),
            ),
        ),
        Case(
            "strong correlations",
            "z_dim 6, off-diagonal entries of L up to 3, float64",
            (
                torch.randn(2, 6, generator=g, dtype=f64),
                3 * _lower(2, 6, g, f64),
                torch.randn(2, 6, generator=g, dtype=f64),
            ),
        ),
        Case(
            "the gradients",
            "mu and scale_tril require grad, shape (3, 4), float64: dz/dmu and dz/dL",
            (
                torch.randn(3, 4, generator=g, dtype=f64),
                _lower(3, 4, g, f64),
                torch.randn(3, 4, generator=g, dtype=f64),
            ),
            _check_gradients,
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 2: the log-density of z under q
# ----------------------------------------------------------------------------------


def _density_terms(z, mu, logvar) -> SimpleNamespace:
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    return SimpleNamespace(z=z, mu=mu, lv=logvar, ref=gaussian_log_density(z, mu, logvar), d=z.shape[-1])


LOG_Q = Comparison(
    reference=gaussian_log_density,
    what="log q(z) summed over the last dimension",
    terms=_density_terms,
    mistakes=[
        Mistake(
            "the normalising constant -0.5 * log(2 pi) per dimension is missing.", lambda t: t.ref + 0.5 * t.d * LOG_2PI
        ),
        Mistake("the -0.5 * logvar term (log of 1/sigma) is missing.", lambda t: t.ref + 0.5 * t.lv.sum(-1)),
        Mistake(
            "divide (z - mu)^2 by the variance e^logvar, not by the standard deviation.",
            lambda t: -0.5 * (LOG_2PI + t.lv + (t.z - t.mu) ** 2 * (-0.5 * t.lv).exp()).sum(-1),
        ),
        Mistake("a log-density of z, not minus it: check the sign.", lambda t: -t.ref),
        Mistake("sum over the latent dimensions, not average.", lambda t: t.ref / t.d),
    ],
    shape_hint=lambda shape, z, *_: f"sum over the last dimension only: shape {tuple(z.shape[:-1])}.",
    tol=(1e-4, 1e-4),
    tol64=(1e-8, 1e-8),
    hint="log q(z) = sum over the last dim of -0.5 * (log(2 pi) + logvar + (z - mu)^2 / e^logvar).",
)


def _density_cases() -> list[Case]:
    g = seeded(22)
    f64 = torch.float64

    def r(*shape, dtype=torch.float32, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=dtype)

    mu = r(3, 4, dtype=f64)
    return [
        Case("a random batch", "z, mu, logvar of shape (4, 3), float32", (r(4, 3), r(4, 3), r(4, 3))),
        Case("z at the mean", "z = mu, shape (3, 4), float64", (mu.clone(), mu, r(3, 4, dtype=f64))),
        Case(
            "a standard normal q",
            "mu = 0, logvar = 0, shape (5, 2), float64",
            (r(5, 2, dtype=f64), torch.zeros(5, 2, dtype=f64), torch.zeros(5, 2, dtype=f64)),
        ),
        Case(
            "samples x batch",
            "z of shape (6, 4, 3) (S samples of a batch), mu and logvar (4, 3): broadcast",
            (r(6, 4, 3), r(4, 3), r(4, 3)),
        ),
        Case(
            "log-variances from -8 to 8",
            "shape (4, 5), float64",
            (r(4, 5, dtype=f64, scale=4), r(4, 5, dtype=f64), 16 * torch.rand(4, 5, generator=g, dtype=f64) - 8),
        ),
        Case(
            "20 latent dimensions",
            "shape (2, 20), float64",
            (r(2, 20, dtype=f64), r(2, 20, dtype=f64), r(2, 20, dtype=f64)),
        ),
    ]


# ----------------------------------------------------------------------------------
# Question 3: the score-function gradient
# ----------------------------------------------------------------------------------


def score_function_gradient(f_values: Tensor, z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    return (f_values.unsqueeze(-1) * (z - mu) * torch.exp(-logvar)).mean(dim=0)


def _score_terms(f, z, mu, lv) -> SimpleNamespace:
    f, z, mu, lv = f.double(), z.double(), mu.double(), lv.double()
    return SimpleNamespace(f=f.unsqueeze(-1), z=z, mu=mu, lv=lv, ref=score_function_gradient(f, z, mu, lv))


SCORE = Comparison(
    reference=score_function_gradient,
    what="one gradient entry per latent dimension",
    terms=_score_terms,
    mistakes=[
        Mistake(
            "d/dmu log q(z) = (z - mu) / sigma^2: divide by the variance e^logvar, not by sigma.",
            lambda t: (t.f * (t.z - t.mu) * (-0.5 * t.lv).exp()).mean(0),
        ),
        Mistake(
            "the score (z - mu) / sigma^2 needs the division by the variance.", lambda t: (t.f * (t.z - t.mu)).mean(0)
        ),
        Mistake("average over the samples (dim 0), not sum.", lambda t: t.ref * t.z.shape[0]),
        Mistake("check the sign of the score: d/dmu log q(z) = +(z - mu) / sigma^2.", lambda t: -t.ref),
        Mistake("each sample's score is weighted by its f value.", lambda t: ((t.z - t.mu) * (-t.lv).exp()).mean(0)),
    ],
    shape_hint=lambda shape, f, z, *_: f"average over the samples (dim 0): shape ({z.shape[1]},).",
    tol=(1e-4, 1e-5),
    tol64=(1e-8, 1e-9),
    hint="grad = (1/S) sum_s f(z_s) * (z_s - mu) / e^logvar.",
)


def _score_cases() -> list[Case]:
    g = seeded(23)
    f64 = torch.float64

    def draw(s: int, d: int, dtype=torch.float32, spread=1.0):
        mu = torch.randn(d, generator=g, dtype=dtype)
        logvar = spread * torch.randn(d, generator=g, dtype=dtype)
        z = mu + (0.5 * logvar).exp() * torch.randn(s, d, generator=g, dtype=dtype)
        return ((z**2).sum(-1), z, mu, logvar)

    f, z, mu, lv = draw(5, 2, f64)
    return [
        Case("8 samples, 3 dimensions", "f (8,), z (8, 3), mu and logvar (3,), float32; f(z) = |z|^2", draw(8, 3)),
        Case("one sample", "S = 1, z_dim 1, float64", draw(1, 1, f64)),
        Case("a constant f", "f = 7 for every sample, S = 5, z_dim 2, float64", (torch.full_like(f, 7.0), z, mu, lv)),
        Case("log-variances with spread 3", "S = 10, z_dim 4, float64", draw(10, 4, f64, spread=3.0)),
        Case("many samples", "S = 500, z_dim 20, float64", draw(500, 20, f64)),
    ]


QUESTIONS = [
    Question(1, "reparameterize_full", 4, _full_cases, FULL),
    Question(2, "log_q_of_z", 3, _density_cases, LOG_Q, forbidden=("gaussian_log_density",)),
    Question(3, "score_function_gradient", 3, _score_cases, SCORE),
]
