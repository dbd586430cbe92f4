"""Session 5 (notebook 5 sections 5-9, notebook 6): the hidden tests of ``kit/assignments/session_5.ipynb``.

1. ``cyclical_kl_weight(step, steps_per_cycle, ramp_fraction)``: a cyclical KL schedule, one number.
2. ``effective_sample_size(log_w)``: (sum w)^2 / sum w^2 per example, from log-weights (S, B), stably.
3. ``transfer_by_hand(model, y, x, targets)``: each image's style (standardised latent) drawn with a new label.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from cvae_utils.exercises.harness import Case, Comparison, Mistake, seeded
from cvae_utils.models import MLPCVAE
from cvae_utils.sampling import standardised_latent

from . import Question, Slip, number_check

# ----------------------------------------------------------------------------------
# Question 1: a cyclical KL schedule
# ----------------------------------------------------------------------------------


def cyclical_kl_weight(step: int, steps_per_cycle: int, ramp_fraction: float) -> float:
    if ramp_fraction <= 0:
        return 1.0
    return min(1.0, (step % steps_per_cycle) / (ramp_fraction * steps_per_cycle))


CYCLICAL = number_check(
    cyclical_kl_weight,
    what="the KL weight of this step",
    hint="beta = min(1, (step mod steps_per_cycle) / (ramp_fraction * steps_per_cycle)); 1 when ramp_fraction is 0.",
    slips=[
        Slip(
            "the schedule restarts every cycle: use step % steps_per_cycle, the step within the cycle.",
            lambda s, n, f: min(1.0, s / (f * n)),
        ),
        Slip("the weight stops at 1 once the ramp is over: min(1.0, ...).", lambda s, n, f: (s % n) / (f * n)),
        Slip(
            "the ramp lasts ramp_fraction of a cycle, not the whole cycle: divide by ramp_fraction * steps_per_cycle.",
            lambda s, n, f: (s % n) / n,
        ),
    ],
)


def _cyclical_cases() -> list[Case]:
    def case(title: str, step: int, n: int, f: float) -> Case:
        return Case(title, f"step={step}, steps_per_cycle={n}, ramp_fraction={f}", (step, n, f), CYCLICAL)

    return [
        case("the first step", 0, 100, 0.5),
        case("half-way up the ramp", 25, 100, 0.5),
        case("the end of the ramp", 50, 100, 0.5),
        case("after the ramp", 80, 100, 0.5),
        case("the start of the second cycle", 100, 100, 0.5),
        case("inside the third cycle", 230, 100, 0.5),
        case("a ramp over the whole cycle", 30, 40, 1.0),
        case("a ramp of 2.5 steps", 2, 10, 0.25),
        case("no ramp", 3, 10, 0.0),
    ]


# ----------------------------------------------------------------------------------
# Question 2: the effective sample size of importance weights
# ----------------------------------------------------------------------------------


def effective_sample_size(log_w: Tensor) -> Tensor:
    return torch.exp(2 * torch.logsumexp(log_w, dim=0) - torch.logsumexp(2 * log_w, dim=0))


def _ess_terms(log_w: Tensor) -> SimpleNamespace:
    lw = log_w.double()
    return SimpleNamespace(ess=effective_sample_size(lw), s=lw.shape[0], lw=lw)


ESS = Comparison(
    reference=effective_sample_size,
    what="one effective sample size per example",
    terms=_ess_terms,
    mistakes=[
        Mistake(
            "that is the ESS divided by S: the question asks for the ESS itself, between 1 and S.",
            lambda t: t.ess / t.s,
        ),
        Mistake("that is 1 / ESS: ESS = (sum w)^2 / sum w^2.", lambda t: 1 / t.ess),
    ],
    shape_hint=lambda shape, log_w: f"reduce over the samples, dim 0: shape ({log_w.shape[1]},).",
    tol=(1e-4, 1e-4),
    tol64=(1e-8, 1e-8),
    hint="ESS = (sum_s w_s)^2 / sum_s w_s^2 = exp(2 logsumexp(log_w) - logsumexp(2 log_w)) over dim 0.",
    nonfinite_hint="exp of a log-weight of -1000 or +800 underflows or overflows: work with torch.logsumexp.",
)


def _ess_cases() -> list[Case]:
    g = seeded(52)
    f64 = torch.float64
    dominant = torch.zeros(6, 2, dtype=f64)
    dominant[0] = 50.0
    return [
        Case("random log-weights", "log_w (10, 4), float32", (torch.randn(10, 4, generator=g),)),
        Case("equal weights", "all log-weights equal, S = 7, float64: ESS = 7", (torch.full((7, 3), -2.0, dtype=f64),)),
        Case("one dominant weight", "one log-weight 50 above the others, S = 6, float64: ESS close to 1", (dominant,)),
        Case("one sample", "S = 1, float64: ESS = 1", (torch.randn(1, 3, generator=g, dtype=f64),)),
        Case("log-weights near -1000", "(8, 3), float64", (-1000 + 2 * torch.randn(8, 3, generator=g, dtype=f64),)),
        Case("log-weights near +800", "(8, 2), float64", (800 + 2 * torch.randn(8, 2, generator=g, dtype=f64),)),
    ]


# ----------------------------------------------------------------------------------
# Question 3: style transfer by hand
# ----------------------------------------------------------------------------------


def transfer_by_hand(model, y: Tensor, x: Tensor, targets: Tensor) -> Tensor:
    eps = standardised_latent(model, y, x)
    return model.sample(len(y), targets, eps=eps)


def _transfer_terms(model, y, x, targets) -> SimpleNamespace:
    with torch.no_grad():
        mu_q, _ = model.encode(y, x)
        mu_t, lv_t = model.prior(targets)
        eps = standardised_latent(model, y, x)
        return SimpleNamespace(
            mu_q_decoded=torch.sigmoid(model.decode(mu_q, targets)).double(),
            no_scale=torch.sigmoid(model.decode(mu_t + eps, targets)).double(),
            logits=model.decode(mu_t + torch.exp(0.5 * lv_t) * eps, targets).double(),
        )


TRANSFER = Comparison(
    reference=transfer_by_hand,
    what="the mean images, shaped like y",
    terms=_transfer_terms,
    mistakes=[
        Mistake(
            "you decoded mu_q with the new label: with a learned prior, mu_q also carries the label. Standardise "
            "first, eps = (mu_q - mu_p(x)) / sigma_p(x), then z = mu_p(target) + sigma_p(target) * eps.",
            lambda t: t.mu_q_decoded,
        ),
        Mistake(
            "scale eps by the target's prior sigma: z = mu_p(target) + sigma_p(target) * eps.", lambda t: t.no_scale
        ),
        Mistake("return the mean image, the sigmoid of the logits (model.mean_output).", lambda t: t.logits),
    ],
    tol=(1e-4, 1e-5),
    hint="eps = (mu_q - mu_p(x)) / sigma_p(x) from model.encode(y, x) and model.prior(x); "
    "z = mu_p(t) + sigma_p(t) * eps; return model.mean_output(model.decode(z, t)).",
)


def _model(seed: int, learned_prior: bool = True) -> MLPCVAE:
    torch.manual_seed(seed)
    model = MLPCVAE((1, 6, 6), z_dim=3, hidden_dims=(16,), num_classes=4, learned_prior=learned_prior)
    return model.eval()


def _transfer_cases() -> list[Case]:
    g = seeded(53)
    model, fixed = _model(1), _model(2, learned_prior=False)

    def images(n: int) -> Tensor:
        return torch.rand(n, 1, 6, 6, generator=g)

    x = torch.tensor([0, 1, 2, 3])
    return [
        Case(
            "four images, new labels",
            "y (4, 1, 6, 6), x = [0, 1, 2, 3], targets = [3, 2, 1, 0]; an MLPCVAE with a learned prior, z_dim 3",
            (model, images(4), x, torch.tensor([3, 2, 1, 0])),
        ),
        Case("the same labels", "targets = x: the reconstruction from mu_q", (model, images(4), x, x.clone())),
        Case(
            "one image",
            "a batch of 1, x = [2], targets = [0]",
            (model, images(1), torch.tensor([2]), torch.tensor([0])),
        ),
        Case(
            "a fixed prior",
            "an MLPCVAE with p(z|x) = N(0, I): eps = mu_q",
            (fixed, images(3), x[:3], torch.tensor([1, 1, 1])),
        ),
    ]


QUESTIONS = [
    Question(1, "cyclical_kl_weight", 3, _cyclical_cases),
    Question(2, "effective_sample_size", 3, _ess_cases, ESS),
    Question(3, "transfer_by_hand", 4, _transfer_cases, TRANSFER, forbidden=("standardised_latent", "transfer_style")),
]
