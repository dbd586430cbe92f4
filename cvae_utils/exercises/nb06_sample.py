"""Notebook 6 (06_conditional_sampling.ipynb): a sampling routine, z ~ p(z|x), then the mean of p(y|x,z).

The samples are random, so most cases check properties: shape and range, that samples
differ, that the generator makes them reproducible, that the label is used. Two cases
use a model whose decoder the checker can invert, to read z back and compare its mean
and spread, per label and dimension, with the prior's.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ..models import MLPCVAE, BaseVAE
from ..validation import check_labels, label_batch
from .harness import Case, CheckResult, Mistake, Refused, Session, brief, diagnose, fmt, run, seeded, vec


class _ProbeCVAE(BaseVAE):
    """A tiny label-conditioned model whose decoder the checker can invert, to read z back from the images.

    decode(z, x) = 0.5 * z + offset[x] (one logit per latent dimension), so
    z = (logit(image) - offset[x]) / 0.5; its prior has a different mean and
    standard deviation in every label and dimension.
    """

    def __init__(self) -> None:
        super().__init__(z_dim=4, likelihood="bernoulli")
        f64 = torch.float64
        self.num_classes = 3
        self.y_shape = (1, 2, 2)
        sigma = torch.tensor([[0.5, 2.0, 0.8, 1.5], [1.3, 0.6, 2.5, 0.7], [0.9, 1.8, 0.4, 1.1]], dtype=f64)
        self.prior_mu = nn.Parameter(
            torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.5, 0.0, 2.0, -0.5], [0.3, 1.2, -2.5, 1.0]], dtype=f64)
        )
        self.prior_logvar = nn.Parameter(2 * sigma.log())
        self.offset = nn.Parameter(
            torch.tensor([[0.2, -0.3, 0.1, 0.0], [-0.2, 0.4, 0.0, 0.3], [0.1, 0.0, -0.4, 0.2]], dtype=f64)
        )

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior(x)  # not needed to sample; q = p keeps the interface complete

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_labels("x (labels)", x, self.num_classes)
        return self.prior_mu[x], self.prior_logvar[x]

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        check_labels("x (labels)", x, self.num_classes)
        return (0.5 * z + self.offset[x]).view(len(z), *self.y_shape)

    def expand_condition(self, x, num_samples: int) -> Tensor:
        return label_batch(x, num_samples, self.num_classes, self.prior_mu.device)

    def latent(self, images: Tensor, x: Tensor) -> Tensor:
        """z back from the images the sampler returned (mean images, sigmoid of the logits)."""
        return (torch.logit(images.double().flatten(1)) - self.offset[x].detach()) / 0.5


def _refuse_sample(*args, **kwargs):
    raise Refused(
        "images drawn with model.prior and model.decode",
        "a call of model.sample",
        "model.sample is what this exercise re-implements: use model.prior(x) for mu_p and logvar_p, "
        "draw eps, form z, and decode it with model.decode(z, x).",
    )


def _without_sample(model: BaseVAE) -> BaseVAE:
    model.sample = _refuse_sample  # an instance attribute: the class's sample stays for the reference
    return model


@torch.no_grad()
def _prior_mean_images(model: BaseVAE, x: Tensor) -> Tensor:
    return torch.sigmoid(model.decode(model.prior(x)[0], x))


def _images(s: Session, case: Case, model: BaseVAE, x: Tensor, temperature: float, seed: int) -> Tensor:
    """fn(model, x, temperature, a generator seeded with seed), checked: len(x) finite images in [0, 1]."""
    got = s.call(case, model, x.clone(), temperature, seeded(seed))
    got = s.tensor(
        case,
        got,
        (len(x), *model.y_shape),
        next(model.parameters()).dtype,
        what=f"{len(x)} images shaped like y",
        shape_hint="one image per label in x: shape (len(x), "
        "*model.y_shape); draw eps of the shape of mu_p (len(x), model.z_dim).",
    )
    if not torch.isfinite(got).all():
        s.fail(case, "finite pixel values", brief(got), "NaN or inf: sigma_p = torch.exp(0.5 * logvar_p).")
    if got.min() < 0 or got.max() > 1:
        s.fail(
            case,
            "mean images: pixel values in [0, 1]",
            brief(got),
            "model.decode returns Bernoulli logits: apply torch.sigmoid (or model.mean_output) to get the mean image.",
        )
    return got


IDENTICAL_MISTAKES = [  # the images each gives (terms: model, x), when all samples came out the same
    Mistake(
        "these are the images of the prior mean: no noise was added. Draw eps ~ N(0, I) with "
        "torch.randn(shape, generator=generator) and set z = mu_p + temperature * sigma_p * eps.",
        lambda t: _prior_mean_images(t.model, t.x),
    ),
]
IDENTICAL_HINT = (
    "every sample needs its own noise: eps of shape (len(x), model.z_dim), drawn with "
    "torch.randn(..., generator=generator)."
)

MEAN_MISTAKES = [  # the mean of z, (label, dim), that each gives (terms: mu, sigma, lv of the prior; temperature; x)
    Mistake(
        "z is centred on 0: you drew z from N(0, I), not from the prior p(z|x). Use "
        "mu_p, logvar_p = model.prior(x) and z = mu_p + temperature * sigma_p * eps.",
        lambda t: 0 * t.mu,
    ),
    Mistake(
        "temperature scales the noise only, not the prior mean: z = mu_p + temperature * sigma_p * eps.",
        lambda t: t.temperature * t.mu,
    ),
    Mistake(
        "every sample got the prior of the first label: use each sample's own label, model.prior(x).",
        lambda t: t.mu[t.x[0]],
    ),
]
MEAN_HINT = "z must be centred on the prior mean mu_p of each sample's label: z = mu_p + temperature * sigma_p * eps."

SPREAD_MISTAKES = [  # the standard deviation of z, (label, dim), that each gives
    Mistake(
        "the spread of z is sigma_p^2, the variance: sigma_p = torch.exp(0.5 * logvar_p).",
        lambda t: t.temperature * t.lv.exp(),
    ),
    Mistake(
        "the spread of z is logvar_p itself: you forgot the exponent, sigma_p = torch.exp(0.5 * logvar_p).",
        lambda t: t.temperature * t.lv.abs(),
    ),
    Mistake(
        "the spread of z ignores the prior's standard deviation: multiply eps by sigma_p = torch.exp(0.5 * logvar_p).",
        lambda t: t.temperature * torch.ones_like(t.lv),
    ),
    Mistake("the temperature is ignored: z = mu_p + temperature * sigma_p * eps.", lambda t: t.sigma),
    Mistake(
        "the temperature is applied twice (or squared): z = mu_p + temperature * sigma_p * eps.",
        lambda t: t.temperature**2 * t.sigma,
    ),
    Mistake(
        "the temperature scales the variance, not the standard deviation: multiply sigma_p * eps by "
        "temperature itself.",
        lambda t: math.sqrt(t.temperature) * t.sigma,
    ),
]
SPREAD_HINT = "z = mu_p + temperature * sigma_p * eps with eps ~ N(0, I) (torch.randn, not torch.rand)."


def check_samples_differ(s: Session, case: Case, model, x, temperature, seed) -> None:
    got = _images(s, case, model, x, temperature, seed)
    if torch.allclose(got, got[:1].expand_as(got)):
        hint = diagnose(
            IDENTICAL_MISTAKES,
            SimpleNamespace(model=model, x=x),
            lambda want: torch.allclose(got, want, rtol=1e-5, atol=1e-6),
        )
        s.fail(case, f"{len(x)} different samples", f"{len(x)} identical images", hint or IDENTICAL_HINT)
    reference = BaseVAE.sample(model, len(x), x, temperature=temperature, generator=seeded(seed))
    if torch.allclose(got, reference, rtol=1e-5, atol=1e-6):
        s.notes.append("It even reproduces model.sample(..., generator=...) exactly.")


def check_reproducible(s: Session, case: Case, model, x, temperature, seed, *, other_seed: int) -> None:
    first, second = (_images(s, case, model, x, temperature, seed) for _ in range(2))
    if not torch.equal(first, second):
        s.fail(
            case,
            "the same images from two generators with the same seed",
            f"images that differ by up to {(first - second).abs().max().item():.3g}",
            "draw eps from the generator you are given: torch.randn(shape, generator=generator) (then "
            ".to(mu_p) for the device and dtype); torch.randn_like ignores it.",
        )
    if torch.equal(first, _images(s, case, model, x, temperature, other_seed)):
        s.fail(
            case,
            "different images for a generator with another seed",
            "the same images",
            "the noise must come from the generator: torch.randn(shape, generator=generator).",
        )


def check_label_used(s: Session, case: Case, model, x, temperature, seed, *, other_x: Tensor) -> None:
    first = _images(s, case, model, x, temperature, seed)
    if torch.allclose(first, _images(s, case, model, other_x, temperature, seed)):
        s.fail(
            case,
            f"different images for label {int(x[0])} and label {int(other_x[0])} (same noise)",
            "the same images",
            "pass the labels x to both networks: model.prior(x) and model.decode(z, x).",
        )


def check_prior_mean(s: Session, case: Case, model, x, temperature, seed) -> None:
    """Temperature 0: the images of the prior means."""
    got, want = _images(s, case, model, x, temperature, seed), _prior_mean_images(model, x)
    if not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
        s.fail(
            case,
            f"the images of the prior means: {brief(want)}",
            brief(got),
            "temperature scales the noise only: z = mu_p + temperature * sigma_p * eps, so temperature 0 "
            "gives z = mu_p.",
        )


def check_prior_statistics(s: Session, case: Case, model: _ProbeCVAE, x, temperature, seed) -> None:
    """On the invertible model: z read back has, per label and dimension, the prior's mean and temperature * sigma."""
    got = _images(s, case, model, x, temperature, seed)
    per_label = len(x) // model.num_classes
    z = model.latent(got.clamp(1e-12, 1 - 1e-12), x).view(per_label, model.num_classes, model.z_dim)
    lv = model.prior_logvar.detach()
    t = SimpleNamespace(mu=model.prior_mu.detach(), lv=lv, sigma=torch.exp(0.5 * lv), temperature=temperature, x=x)
    mean, spread = z.mean(0), z.std(0)
    tol_mean = 6 * spread / math.sqrt(per_label) + 1e-6  # six standard errors of each mean
    expected = (
        f"z = mu_p + temperature * sigma_p * eps with temperature {fmt(temperature)}: for every "
        f"label and dimension, mean mu_p and standard deviation {fmt(temperature)} * sigma_p"
    )
    if not ((mean - t.mu).abs() <= tol_mean).all():
        k = int(((mean - t.mu).abs() / tol_mean).amax(1).argmax())  # the label that is furthest off
        s.fail(
            case,
            expected,
            f"for label {k}, z has means {vec(mean[k])} where mu_p = {vec(t.mu[k])}",
            diagnose(MEAN_MISTAKES, t, lambda want: ((mean - want).abs() <= tol_mean).all()) or MEAN_HINT,
        )
    ratio = spread / (temperature * t.sigma)
    if not ((ratio - 1).abs() <= 0.08).all():
        k = int((ratio - 1).abs().amax(1).argmax())
        s.fail(
            case,
            expected,
            f"for label {k}, z has standard deviations {vec(spread[k])} where "
            f"{fmt(temperature)} * sigma_p = {vec(temperature * t.sigma[k])}",
            diagnose(SPREAD_MISTAKES, t, lambda want: ((spread / want - 1).abs() <= 0.08).all()) or SPREAD_HINT,
        )


def _cases() -> list[Case]:
    with torch.random.fork_rng(devices=[]):  # the models' initialisation leaves the global state alone
        torch.manual_seed(7)
        mlp = _without_sample(MLPCVAE(y_shape=(1, 6, 6), z_dim=3, hidden_dims=[16], num_classes=4).eval())
    probe = _without_sample(_ProbeCVAE())
    mlp_text = "an MLPCVAE with 4 labels, images (1, 6, 6) and z_dim = 3"
    label2, balanced = torch.full((6,), 2), torch.arange(3).repeat(3000)  # balanced: 3000 of each label
    return [
        Case(
            "six samples of one label",
            f"{mlp_text}; x = six times label 2, temperature 1, a generator seeded with 0",
            (mlp, label2, 1.0, 0),
            check_samples_differ,
        ),
        Case(
            "reproducible",
            f"{mlp_text}; x = six times label 2; two generators seeded with 11, then one with 12",
            (mlp, label2, 1.0, 11),
            check_reproducible,
            dict(other_seed=12),
        ),
        Case(
            "the label is used",
            f"{mlp_text}; six samples of label 0, then of label 3, generators seeded with 21",
            (mlp, torch.zeros(6, dtype=torch.long), 1.0, 21),
            check_label_used,
            dict(other_x=torch.full((6,), 3)),
        ),
        Case("a batch of 1", f"{mlp_text}; x = [1], temperature 1", (mlp, torch.tensor([1]), 1.0, 41), _images),
        Case(
            "the prior's mean and spread",
            "a model with 3 labels and z_dim = 4 whose decoder the checker inverts "
            "(float64); 3000 samples of each label, temperature 1",
            (probe, balanced, 1.0, 51),
            check_prior_statistics,
        ),
        Case(
            "temperature 0.5",
            "the same invertible model, 3000 samples of each label, temperature 0.5",
            (probe, balanced, 0.5, 51),
            check_prior_statistics,
        ),
        Case(
            "temperature 0",
            f"{mlp_text}; x = [0, 1, 2, 3, 3, 1], temperature 0",
            (mlp, torch.tensor([0, 1, 2, 3, 3, 1]), 0.0, 31),
            check_prior_mean,
        ),
    ]


def check_sample(fn) -> CheckResult:
    """Check a sampling routine ``fn(model, x, temperature, generator)`` -> images.

    Used in notebook 6 (``06_conditional_sampling.ipynb``), section "Exercises", exercise 5
    "`model.sample`, written by hand".

    ``x`` is a tensor of labels, one per sample; the routine draws eps ~ N(0, I) from
    ``generator`` (a ``torch.Generator``), sets z = mu_p + temperature * sigma_p * eps
    with (mu_p, log sigma_p^2) = ``model.prior(x)``, and returns the mean image
    ``torch.sigmoid(model.decode(z, x))``, shape (len(x), *model.y_shape), values in
    [0, 1]: what ``model.sample(len(x), x, temperature=..., generator=...)`` does,
    written with ``model.prior`` and ``model.decode``. The checker tests shape, range,
    that samples differ, that the label is used, reproducibility given the generator,
    temperature 0, and, on a model whose decoder it can invert, that z has the prior's
    mean and spread.
    """
    return run("check_sample", fn, _cases, passes="draws z ~ p(z|x), then the mean of p(y|x,z), as model.sample does")
