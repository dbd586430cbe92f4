"""The paper's MNIST structured-output task (Sohn et al. 2015, Sec. 5.1): quadrant completion (notebook 7).

Observe 1, 2 or 3 quadrants of a digit (x) and predict the missing ones (y). This module
holds the task (:func:`split_quadrants`, :class:`Quadrants`, input omission), the models
of a column (the deterministic baseline, and the CVAE, GSNN and hybrid, which share
:class:`~cvae_utils.models.QuadrantCVAE` and differ in their objective), the two test
measures (:func:`test_figures`) and the shipped weights (:func:`load_quadrant_model`).
Training the whole experiment, its results table and its command line are in
:mod:`cvae_utils.experiments.quadrants`.

Test measures, in nats per example:

* ``nll``:      -log p(y|x) by importance sampling with S = 100 (the paper's estimate),
                q(z|x,y) as proposal; the prior p(z|x) for the GSNN, whose recognition
                network is never trained;
* ``neg_elbo``: -ELBO (the measure pyro's CVAE example prints); for the GSNN its own
                objective, which is the ELBO with q = p(z|x).

For the baseline both are its Bernoulli negative log-likelihood of y. Targets are grey
levels in [0, 1] with a Bernoulli likelihood (not binarised), as in pyro's example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .checkpoint import read_checkpoint
from .data import TensorBatches, load_mnist, train_val_split
from .files import verified_file, writable_dir
from .losses import evaluate_log_likelihood
from .models import BaselineNet, QuadrantCVAE
from .train import evaluate
from .utils import get_device

MODELS = ("baseline", "cvae", "gsnn", "hybrid")
COLUMNS = (1, 2, 3)
OBJECTIVES = {"baseline": "cvae", "cvae": "cvae", "gsnn": "gsnn", "hybrid": "hybrid"}  # fit(objective=...)

# We observe the same quadrants as pyro's CVAE example so that the numbers compare with its table:
# 1 = bottom-left; 2 = left half (top-left + bottom-left); 3 = all but bottom-right.
QUADRANT_FILL = -1.0
_OBSERVED_QUADRANTS = {
    1: ("bottom-left",),
    2: ("top-left", "bottom-left"),
    3: ("top-left", "top-right", "bottom-left"),
}


def quadrant_mask(num_observed: int, height: int = 28, width: int = 28, device=None) -> Tensor:
    """Boolean (height, width) mask, True on the observed quadrants.

    ``num_observed``: 1 = bottom-left; 2 = left half; 3 = all but the bottom-right
    quadrant. Rows ``height // 2`` and below are the bottom half, columns below
    ``width // 2`` the left half.
    """
    if num_observed not in _OBSERVED_QUADRANTS:
        raise ValueError(f"num_observed={num_observed!r}: the task observes 1, 2 or 3 quadrants.")
    h2, w2 = height // 2, width // 2
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    rows = {"top": slice(0, h2), "bottom": slice(h2, height)}
    cols = {"left": slice(0, w2), "right": slice(w2, width)}
    for q in _OBSERVED_QUADRANTS[num_observed]:
        r, c = q.split("-")
        mask[rows[r], cols[c]] = True
    return mask


def split_quadrants(images: Tensor, num_observed: int, fill: float = QUADRANT_FILL) -> tuple[Tensor, Tensor, Tensor]:
    """Split images (N, C, H, W) into the target y, the condition x and the target mask.

    Returns ``(y, x, target_mask)``, the order of every batch in the series, each shaped
    like ``images``: ``y`` holds the missing quadrants and ``fill`` (default -1, a value no
    pixel takes) on the observed ones; ``x`` holds the observed quadrants and ``fill``
    elsewhere; ``target_mask`` is True on the pixels of y that count in the likelihood.

    Taught in notebook 7, "The task: x, y and the mask".
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W); got {tuple(images.shape)} of {images.dtype}.")
    observed = quadrant_mask(num_observed, images.shape[-2], images.shape[-1], images.device).expand_as(images)
    fill_t = torch.tensor(fill, dtype=images.dtype, device=images.device)
    x = torch.where(observed, images, fill_t)
    y = torch.where(observed, fill_t, images)
    return y, x, ~observed


class Quadrants:
    """A :class:`TensorBatches` transform: ``(images, labels) -> (y, x, target_mask)``.

    Taught in notebook 7, "Three objectives for the same networks".
    """

    def __init__(self, num_observed: int, fill: float = QUADRANT_FILL) -> None:
        quadrant_mask(num_observed)  # validates num_observed
        self.num_observed = num_observed
        self.fill = fill

    def __call__(self, images: Tensor, *rest: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return split_quadrants(images, self.num_observed, self.fill)


class InputOmission:
    """Input omission noise (Sec. 4.2 of the paper): blank each observed pixel of x with probability p.

    A :class:`TensorBatches` transform applied after :class:`Quadrants`, in training only.
    Blanked pixels become unobserved (the fill value) but do not join the target.
    """

    def __init__(self, quadrants: Quadrants, p: float, seed: int = 0) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"input noise p={p} must lie in [0, 1).")
        self.quadrants, self.p = quadrants, p
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, images: Tensor, *rest: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, x, mask = self.quadrants(images)
        if self.p > 0:
            drop = torch.rand(x.shape, generator=self.generator).to(x.device) < self.p
            x = torch.where(drop, torch.full_like(x, self.quadrants.fill), x)
        return y, x, mask


# ----------------------------------------------------------------------------------
# One column of the experiment: its data, its models, its test figures
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """One run of the experiment. The defaults are the real thing; :func:`quick_settings` shrinks them."""

    hidden_dims: tuple[int, ...] = (256, 256)
    z_dim: int = 32
    batch_size: int = 256
    lr: float = 1e-3
    max_epochs: int = 60
    patience: int = 3  # early stopping on the validation objective, as pyro's example
    num_val: int = 10_000  # held out of the 60,000 training images
    alpha: float = 0.5  # the hybrid's weight on the CVAE objective
    input_noise: float = 0.0  # probability of blanking each observed pixel of x in training
    num_samples: int = 100  # S of the importance-sampled likelihood
    generation_input: str = "z_and_x_hat"  # what the generation network reads: "z_and_x_hat" or "z" (pyro's)
    train_limit: int | None = None  # use only this many training images (quick mode)
    test_limit: int | None = None


def quick_settings() -> Settings:
    """A minute-long run for CI: 2,000 training images, 2 epochs, 500 test images, S = 10."""
    return Settings(max_epochs=2, num_val=500, num_samples=10, train_limit=2500, test_limit=500)


def task_batches(num_observed: int, settings: Settings, device, seed: int = 0):
    """(train, validation, test) batches of (y, x, target mask) for one column.

    Taught in notebook 7, "All twelve models on the test set".
    """
    train = load_mnist("train", device, limit=settings.train_limit)
    test = load_mnist("test", device, limit=settings.test_limit)
    train, val = train_val_split(train, settings.num_val, seed=0)  # the same split for every seed
    q = Quadrants(num_observed)
    train_tf = InputOmission(q, settings.input_noise, seed) if settings.input_noise > 0 else q
    return (
        TensorBatches(train.images, batch_size=settings.batch_size, seed=seed, transform=train_tf),
        TensorBatches(val.images, batch_size=2000, shuffle=False, transform=q),
        TensorBatches(test.images, batch_size=1000, shuffle=False, transform=q),
    )


def build(kind: str, settings: Settings, baseline: BaselineNet | None = None):
    """A fresh model of ``kind`` (one of :data:`MODELS`); the CVAE variants use the trained ``baseline``."""
    if kind == "baseline":
        return BaselineNet(hidden_dims=settings.hidden_dims)
    if kind not in MODELS:
        raise ValueError(f"model {kind!r} is not one of {MODELS}.")
    return QuadrantCVAE(
        baseline,
        z_dim=settings.z_dim,
        hidden_dims=settings.hidden_dims,
        baseline_hidden_dims=settings.hidden_dims,
        generation_input=settings.generation_input,
    )


@torch.no_grad()
def test_figures(kind: str, model, test_batches, num_samples: int) -> dict[str, float]:
    """``nll`` (importance-sampled, S = num_samples) and ``neg_elbo`` on the test batches, nats per example.

    Taught in notebook 7, "All twelve models on the test set".
    """
    if kind == "baseline":
        nll = evaluate(model, test_batches)["loss"]
        return {"nll": nll, "neg_elbo": nll}
    proposal = "prior" if kind == "gsnn" else "recognition"
    nll = -evaluate_log_likelihood(model, test_batches, num_samples=num_samples, proposal=proposal)
    if kind == "gsnn":
        neg_elbo = evaluate(model, test_batches, objective="gsnn")["gsnn_recon"]
    else:
        neg_elbo = -evaluate(model, test_batches, objective="cvae")["elbo"]
    return {"nll": nll, "neg_elbo": neg_elbo}


@torch.no_grad()
def completions(model: QuadrantCVAE, x: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
    """``num_samples`` completed images per condition: (len(x), num_samples, C, H, W), samples of p(y|x).

    Taught in notebook 7, "Figure 3: one input, many completions".
    """
    n = len(x)
    xs = x.repeat_interleave(num_samples, 0)
    eps = torch.randn(n * num_samples, model.z_dim, generator=generator).to(x.device)
    y = model.sample(n * num_samples, xs, eps=eps)
    return model.complete(xs, y).view(n, num_samples, *x.shape[1:])


# ----------------------------------------------------------------------------------
# The shipped weights
# ----------------------------------------------------------------------------------

QUADRANTS_DIR = writable_dir("quadrants")  # the clone's data/quadrants, else the user cache (a plain install)
REBUILD = (
    "Rebuild the shipped weights with `python -m cvae_utils.experiments.quadrants run` (about half an hour "
    "on a 2-core CPU), or restore them with `git checkout -- data/quadrants`."
)


def weights_name(kind: str, num_observed: int) -> str:
    return f"{kind}_q{num_observed}.pt"


def load_quadrant_model(kind: str, num_observed: int, device=None, directory: str | Path | None = None):
    """The shipped model ``kind`` ("baseline", "cvae", "gsnn", "hybrid") for 1, 2 or 3 observed quadrants.

    Each file is checked against the folder's ``MANIFEST.json`` first; a missing or altered
    file is a :class:`~cvae_utils.files.DataIntegrityError` that says how to rebuild it.
    The files hold float16 weights (a CVAE's without its baseline, which has its own file).
    """
    if kind not in MODELS or num_observed not in COLUMNS:
        raise ValueError(
            f"ask for a model in {MODELS} and 1, 2 or 3 observed quadrants; got {kind!r}, {num_observed!r}."
        )
    directory = Path(directory) if directory is not None else QUADRANTS_DIR
    device = torch.device(device) if device is not None else get_device()

    def read(name: str) -> dict:
        ckpt = read_checkpoint(verified_file(directory, weights_name(name, num_observed), REBUILD))
        return {**ckpt, "state_dict": {k: v.float() for k, v in ckpt["state_dict"].items()}}

    base_ckpt = read("baseline")
    baseline = BaselineNet(**base_ckpt["config"]["kwargs"])
    baseline.load_state_dict(base_ckpt["state_dict"])
    if kind == "baseline":
        return baseline.to(device).eval()
    ckpt = read(kind)
    model = QuadrantCVAE(baseline, **ckpt["config"]["kwargs"])
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if unexpected or any(not k.startswith("baseline.") for k in missing):
        raise ValueError(
            f"{kind}_q{num_observed}: the weights do not fit the model (missing {missing}, unexpected {unexpected})."
        )
    return model.to(device).eval()
