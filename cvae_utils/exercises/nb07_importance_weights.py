"""Notebook 7 (07_structured_output.ipynb): the log importance weights of the paper's likelihood estimate."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from ..losses import gaussian_log_density
from ..quadrants import split_quadrants
from .harness import Case, CheckResult, Comparison, Mistake, run, seeded


def _parts(
    model, y: Tensor, x: Tensor, mask: Tensor, eps: Tensor, *, std_power: float = 0.5, proposal: str = "recognition"
) -> SimpleNamespace:
    """The pieces of log w = log p(y|x,z) + log p(z|x) - log q(z|x,y), each (S, B), for z = mu_q + sigma_q eps."""
    num, batch = eps.shape[:2]
    with torch.no_grad():
        mu_p, lv_p = model.prior(x)
        mu_q, lv_q = model.encode(y, x) if proposal == "recognition" else (mu_p, lv_p)
        z = mu_q + torch.exp(std_power * lv_q) * eps  # (S, B, z_dim)
        xs, ys, ms = (t.repeat(num, *([1] * (t.dim() - 1))) for t in (x, y, mask))
        decoded = model.decode(z.reshape(num * batch, -1), xs)
        return SimpleNamespace(
            ll=model.log_likelihood(decoded, ys, ms).view(num, batch),
            ll_all=model.log_likelihood(decoded, ys, None).view(num, batch),  # the mask forgotten
            log_prior=gaussian_log_density(z, mu_p, lv_p),
            log_q=gaussian_log_density(z, mu_q, lv_q),
            log_std_normal=gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)),
        )


def _reference(model, y, x, mask, eps) -> Tensor:
    p = _parts(model, y, x, mask, eps)
    return p.ll + p.log_prior - p.log_q


def _terms(model, y, x, mask, eps) -> SimpleNamespace:
    """The parts for the right z (p), for z with the variance as its spread (half), for z drawn from the prior."""
    return SimpleNamespace(
        p=_parts(model, y, x, mask, eps),
        half=_parts(model, y, x, mask, eps, std_power=1.0),
        prior_z=_parts(model, y, x, mask, eps, proposal="prior"),
    )


MISTAKES = [
    Mistake(
        "the prior term log p(z|x) is missing: the weight is p(y|x,z) p(z|x) / q(z|x,y).", lambda t: t.p.ll - t.p.log_q
    ),
    Mistake(
        "the density ratio is upside down: add log p(z|x) and subtract log q(z|x,y).",
        lambda t: t.p.ll - t.p.log_prior + t.p.log_q,
    ),
    Mistake(
        "you used N(0, I) as the prior: this model's prior is the prior network, model.prior(x) gives its "
        "mean and log-variance.",
        lambda t: t.p.ll + t.p.log_std_normal - t.p.log_q,
    ),
    Mistake(
        "the likelihood counts every pixel: pass the mask, model.log_likelihood(logits, y, mask), so that "
        "only the pixels to predict are scored.",
        lambda t: t.p.ll_all + t.p.log_prior - t.p.log_q,
    ),
    Mistake(
        "z has the wrong spread: sigma_q = exp(0.5 * logvar_q), not exp(logvar_q).",
        lambda t: t.half.ll + t.half.log_prior - t.half.log_q,
    ),
    Mistake(
        "z must come from the proposal q(z|x,y) = model.encode(y, x), not from the prior: z = mu_q + sigma_q * eps.",
        lambda t: t.prior_z.ll + t.p.log_prior - t.p.log_q,
    ),
    Mistake("only the likelihood: the weight also has the density ratio p(z|x) / q(z|x,y).", lambda t: t.p.ll),
]


def _shape_hint(got: tuple, model, y, x, mask, eps) -> str | None:
    num, batch = eps.shape[:2]
    if got == (num * batch,):
        return f"reshape the S * B weights to (S, B) = ({num}, {batch}): samples along dim 0."
    if got == (batch,):
        return (
            "these look like one value per example: return the S weights of every example, shape "
            "(S, B), before averaging them (the notebook does the log-mean-exp next)."
        )
    if got == (batch, num) and batch != num:
        return "the samples go along dim 0: shape (S, B), transpose your result."
    return None


COMPARISON = Comparison(
    reference=_reference,
    what="log w for each sample and example",
    terms=_terms,
    mistakes=MISTAKES,
    shape_hint=_shape_hint,
    tol=(1e-4, 1e-4),
    hint="log w = model.log_likelihood(model.decode(z, x_rep), y_rep, mask_rep) + "
    "cu.gaussian_log_density(z, mu_p, logvar_p) - cu.gaussian_log_density(z, mu_q, logvar_q), "
    "with z = mu_q + exp(0.5 * logvar_q) * eps and x, y, mask repeated S times "
    "(t.repeat(S, 1, 1, 1)) to meet the S * B rows of z.",
)


def _cases() -> list[Case]:
    from ..models import BaselineNet, QuadrantCVAE  # the quadrant model, built here only when checked

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        model = QuadrantCVAE(
            BaselineNet(x_shape=(1, 8, 8), hidden_dims=[16]), img_shape=(1, 8, 8), z_dim=3, hidden_dims=[24]
        ).eval()
        with torch.no_grad():  # a learned prior that differs from N(0, I), so that leaving it out shows
            model.prior_net[-1].bias.uniform_(-0.8, 0.8)
    g = seeded(17)
    images = torch.rand(6, 1, 8, 8, generator=g)

    def task(observed: int, batch: int, eps: Tensor) -> tuple:
        y, x, mask = split_quadrants(images[:batch], observed)
        return model, y, x, mask, eps

    return [
        Case(
            "one quadrant observed",
            "6 images 8x8, 1 quadrant observed, S = 4 samples of z (z_dim = 3)",
            task(1, 6, torch.randn(4, 6, 3, generator=g)),
        ),
        Case(
            "S = 1",
            "6 images, 2 quadrants observed, a single sample (S = 1)",
            task(2, 6, torch.randn(1, 6, 3, generator=g)),
        ),
        Case("a batch of 1", "1 image, 3 quadrants observed, S = 5", task(3, 1, torch.randn(5, 1, 3, generator=g))),
        Case(
            "eps = 0",
            "6 images, 1 quadrant observed, S = 2 with eps = 0 (z is the mean of q)",
            task(1, 6, torch.zeros(2, 6, 3)),
        ),
        Case("many samples", "4 images, 2 quadrants observed, S = 50", task(2, 4, torch.randn(50, 4, 3, generator=g))),
    ]


def check_log_importance_weights(fn) -> CheckResult:
    """Check ``fn(model, y, x, mask, eps)`` -> the log importance weights, shape (S, B).

    Used in notebook 7 (``07_structured_output.ipynb``), section "Exercises", exercise 4
    "The log importance weights, for a whole batch at once".

    For the quadrant CVAE of notebook 7 (:class:`cvae_utils.QuadrantCVAE`) and the
    noise ``eps`` of shape (S, B, z_dim): z_s = mu_q + sigma_q * eps[s] with
    (mu_q, logvar_q) = ``model.encode(y, x)``, and
    log w_s = log p(y|x,z_s) + log p(z_s|x) - log q(z_s|x,y), where the likelihood
    ``model.log_likelihood(model.decode(z, x), y, mask)`` counts only the target pixels
    and both densities are diagonal Gaussians (``cu.gaussian_log_density``), the prior's
    from ``model.prior(x)``. Then ``cu.log_mean_exp(log_w, dim=0)`` is the paper's estimate
    of log p(y|x), as ``cu.importance_sampled_log_likelihood`` computes it.
    """
    return run(
        "check_log_importance_weights",
        fn,
        _cases,
        comparison=COMPARISON,
        passes="gives the log importance weights of cu.importance_sampled_log_likelihood",
    )
