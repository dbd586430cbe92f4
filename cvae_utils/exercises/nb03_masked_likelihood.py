"""Notebook 3 (03_the_decoder.ipynb): the Bernoulli log-likelihood of the target pixels only."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ..losses import bernoulli_log_likelihood
from ..quadrants import split_quadrants
from .harness import Case, CheckResult, Comparison, Mistake, per_example, run, seeded


def _terms(logits: Tensor, y: Tensor, mask: Tensor) -> SimpleNamespace:
    l64, y64 = logits.double(), y.double()
    keep = mask.to(torch.float64).expand_as(logits)
    per_pixel = y64 * l64 - nn.functional.softplus(l64)
    return SimpleNamespace(
        l64=l64, y64=y64, keep=keep, per_pixel=per_pixel, targets=keep.flatten(1).sum(1).clamp(min=1)
    )


def _sum(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


MISTAKES = [
    Mistake(
        "the mask is ignored: the observed pixels, where y holds the fill value -1, were counted too. "
        "Multiply the per-pixel terms by the mask (or torch.where(mask, per_pixel, 0)) before summing.",
        lambda t: _sum(t.per_pixel),
    ),
    Mistake(
        "you counted the observed pixels instead of the targets: mask is True on the pixels to predict.",
        lambda t: _sum(t.per_pixel * (1 - t.keep)),
    ),
    Mistake(
        "sign error: this is the binary cross-entropy, the negative log-likelihood. A log-likelihood of "
        "a probability is at most 0.",
        lambda t: -_sum(t.per_pixel * t.keep),
    ),
    Mistake(
        "you averaged over the target pixels: the log-likelihood is a sum over them.",
        lambda t: _sum(t.per_pixel * t.keep) / t.targets,
    ),
    Mistake(
        "you averaged over all pixels: the log-likelihood is a sum over the target pixels.",
        lambda t: (t.per_pixel * t.keep).flatten(1).mean(1),
    ),
    Mistake(
        "you masked y but not the per-pixel terms: -softplus(logits) of the observed pixels still counts. "
        "Mask the per-pixel log-likelihood, y * logits - softplus(logits).",
        lambda t: _sum((t.y64 * t.keep) * t.l64 - nn.functional.softplus(t.l64)),
    ),
]

COMPARISON = Comparison(
    reference=bernoulli_log_likelihood,
    what="one log-likelihood per example",
    terms=_terms,
    mistakes=MISTAKES,
    shape_hint=per_example("pixels (dims 1, 2, 3)"),
    tol=(1e-5, 1e-3),
    tol64=(1e-7, 1e-6),
    hint="per pixel, log p = y * logits - F.softplus(logits); keep the pixels where mask is True "
    "and sum them per example: .flatten(1).sum(dim=1).",
    nonfinite_hint="NaN or inf: torch.log(torch.sigmoid(logits)) underflows to -inf for confident "
    "logits, and -inf * 0 (a masked pixel) is NaN. Use y * logits - F.softplus(logits) "
    "and select pixels with torch.where(mask, per_pixel, 0).",
)


def _cases() -> list[Case]:
    g = seeded(4)

    def quadrants(batch, size, num_observed, dtype=torch.float32):
        images = torch.rand(batch, 1, size, size, generator=g, dtype=dtype)
        y, _, mask = split_quadrants(images, num_observed)
        logits = 2 * torch.randn(batch, 1, size, size, generator=g, dtype=dtype)
        return logits, y, mask

    # drawn in this order: the seeds' order fixes every case's numbers
    logits_all = torch.randn(3, 1, 6, 6, generator=g)
    y_all = torch.rand(3, 1, 6, 6, generator=g)
    l_float, y_float, m_float = quadrants(2, 10, 2)
    binary = (torch.rand(3, 1, 8, 8, generator=g) > 0.5).float()
    wrong = torch.rand(3, 1, 8, 8, generator=g) < 0.2  # confidently wrong on a fifth of the pixels
    confident = (2 * binary - 1) * (30 + 20 * torch.rand(3, 1, 8, 8, generator=g)) * torch.where(wrong, -1.0, 1.0)
    y_conf, _, m_conf = split_quadrants(binary, 1)
    return [
        Case(
            "one quadrant observed",
            "3 images (1, 8, 8), the bottom-left quadrant observed: y holds -1 there, "
            "mask (bool) is True on the other three quadrants, as cu.split_quadrants returns them; float32",
            quadrants(3, 8, 1),
        ),
        Case(
            "two quadrants observed, 28x28",
            "2 images (1, 28, 28), the left half observed; float32",
            quadrants(2, 28, 2),
        ),
        Case(
            "every pixel a target",
            "mask all True, grey-level y in [0, 1], shape (3, 1, 6, 6), float32: the plain Bernoulli log-likelihood",
            (logits_all, y_all, torch.ones(3, 1, 6, 6, dtype=torch.bool)),
        ),
        Case(
            "no target pixel",
            "mask all False, y = -1 everywhere (every pixel observed), shape (3, 1, 6, 6), "
            "float32: the log-likelihood is 0",
            (logits_all, torch.full((3, 1, 6, 6), -1.0), torch.zeros(3, 1, 6, 6, dtype=torch.bool)),
        ),
        Case(
            "a float mask",
            "mask of 0.0 and 1.0 (float32) instead of False and True, 2 images (1, 10, 10), the left half observed",
            (l_float, y_float, m_float.float()),
        ),
        Case(
            "a batch of 1, float64",
            "one image (1, 8, 8), three quadrants observed, float64",
            quadrants(1, 8, 3, torch.float64),
        ),
        Case(
            "confident logits",
            "binary targets, logits of size 30 to 50 (a fifth of them confidently wrong), "
            "3 images (1, 8, 8), one quadrant observed, float32",
            (confident, y_conf, m_conf),
        ),
    ]


def check_masked_log_likelihood(fn) -> CheckResult:
    """Check ``fn(logits, y, mask)`` = sum over the pixels where ``mask`` is True of y * logits - softplus(logits).

    Used in notebook 3 (``03_the_decoder.ipynb``), section "Exercises", exercise 5 "Only
    the missing pixels count".

    The quadrant task of notebook 7: ``cu.split_quadrants`` gives y with the fill value
    -1 on the observed pixels and a boolean ``mask``, shaped like y, that is True on the
    target pixels. One value per example, shape (batch,), as
    ``cu.bernoulli_log_likelihood(logits, y, mask)`` returns it.
    """
    return run(
        "check_masked_log_likelihood",
        fn,
        _cases,
        comparison=COMPARISON,
        passes="agrees with cu.bernoulli_log_likelihood(logits, y, mask)",
    )
