"""The recipes of the pretrained weights, and the command that rebuilds the shipped files.

    python -m cvae_utils.experiments.pretrained build              # retrain every model, rewrite files and manifest
    python -m cvae_utils.experiments.pretrained build label_cvae   # just one
    python -m cvae_utils.experiments.pretrained verify             # check the shipped files against the manifest

Each model has a recipe (architecture, data, epochs); :func:`cvae_utils.load_pretrained`
trains one when its shipped weights are missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..checkpoint import round_to_half
from ..config import quick_mode
from ..data import TensorBatches, load_mnist
from ..files import unverified_files
from ..models import MLPCVAE, ConditionalVAE, DigitClassifier
from ..pretrained import PRETRAINED_DIR, save_pretrained
from ..train import evaluate, fit
from ..utils import get_device, seed_everything


@dataclass
class Recipe:
    """How to build one pretrained model: its constructor, its data and its training settings."""

    build: Callable[[], nn.Module]
    task: str  # "label": y = image, x = label;  "classify": y = label, x = image
    num_epochs: int
    batch_size: int
    lr: float = 1e-3
    seed: int = 0
    description: str = ""
    objective: dict = field(default_factory=dict)  # fit(objective=..., alpha=...) for the CVAEs
    kl_warmup_epochs: float = 0
    quick: dict = field(default_factory=lambda: {"num_epochs": 1, "limit": 2000})


RECIPES: dict[str, Recipe] = {
    "label_cvae": Recipe(
        build=lambda: MLPCVAE(y_shape=(1, 28, 28), z_dim=16, hidden_dims=[1024, 1024], num_classes=10),
        task="label", num_epochs=40, batch_size=256, lr=1e-3, kl_warmup_epochs=5,
        description=(
            "label-conditioned MLP CVAE (784+10 -> 1024 -> 1024 -> z=16, learned prior, KL warm-up 5 epochs), "
            "grey-level MNIST"
        ),
    ),
    "label_cvae_fixed_prior": Recipe(
        build=lambda: MLPCVAE(
            y_shape=(1, 28, 28), z_dim=16, hidden_dims=[1024, 1024], num_classes=10, learned_prior=False
        ),
        task="label", num_epochs=40, batch_size=256, lr=1e-3, kl_warmup_epochs=5,
        description="label_cvae with a fixed N(0, I) prior in place of the learned p(z|x), trained alike",
    ),
    "label_cvae_hybrid": Recipe(
        build=lambda: MLPCVAE(y_shape=(1, 28, 28), z_dim=16, hidden_dims=[1024, 1024], num_classes=10),
        task="label", num_epochs=40, batch_size=256, lr=1e-3, kl_warmup_epochs=5,
        objective={"objective": "hybrid", "alpha": 0.5},
        description=(
            "label_cvae trained alike (same network, epochs and warm-up) with the paper's hybrid objective "
            "0.5 * CVAE + 0.5 * GSNN"
        ),
    ),
    "conv_cvae": Recipe(
        build=lambda: ConditionalVAE(y_shape=(1, 28, 28), num_classes=10, z_dim=20, hidden_dims=[32, 64]),
        task="label", num_epochs=3, batch_size=512, lr=1e-3,
        description="notebook 5's convolutional CVAE (channels 32, 64; z=20, fixed prior), 3 epochs",
    ),
    "digit_classifier": Recipe(
        build=lambda: DigitClassifier(), task="classify", num_epochs=4, batch_size=128, lr=1e-3,
        description="small CNN that labels digits, to score generated samples",
    ),
    "digit_classifier_mlp": Recipe(
        build=lambda: DigitClassifier(channels=(), hidden=512, dropout=0.2), task="classify", num_epochs=10,
        batch_size=128, lr=1e-3, seed=1,
        description="a second judge of samples, trained independently: an MLP (784 -> 512 -> 10, no convolutions)",
    ),
}  # fmt: skip


def _batches(task: str, split, batch_size: int, shuffle: bool, seed: int) -> TensorBatches:
    tensors = (split.images, split.labels) if task == "label" else (split.labels, split.images)
    return TensorBatches(*tensors, batch_size=batch_size, shuffle=shuffle, seed=seed)


def train_recipe(name: str, device=None, *, quick: bool | None = None, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train recipe ``name`` from scratch; return the model (eval mode) and its measured figures."""
    if name not in RECIPES:
        raise KeyError(f"no pretrained recipe {name!r}; known: {sorted(RECIPES)}.")
    recipe = RECIPES[name]
    quick = quick_mode() if quick is None else quick
    device = get_device() if device is None else torch.device(device)
    limit = recipe.quick["limit"] if quick else None
    epochs = recipe.quick["num_epochs"] if quick else recipe.num_epochs
    train, test = load_mnist("train", device, limit=limit), load_mnist("test", device, limit=limit)
    seed_everything(recipe.seed)
    model = recipe.build().to(device)
    start = time.perf_counter()
    history = fit(
        model,
        _batches(recipe.task, train, recipe.batch_size, True, recipe.seed),
        _batches(recipe.task, test, 1000, False, recipe.seed),
        num_epochs=epochs,
        lr=recipe.lr,
        kl_warmup_epochs=recipe.kl_warmup_epochs,
        progress=progress,
        **recipe.objective,
    )
    round_to_half(model)  # the weights as the float16 file ships them, so the figures are the file's
    test_batches = _batches(recipe.task, test, 1000, False, 0)
    figures = {f"test_{k}": v for k, v in evaluate(model, test_batches, **recipe.objective).items()}
    if recipe.objective:  # also the plain CVAE bound, comparable with the other models
        figures.update({f"test_cvae_{k}": v for k, v in evaluate(model, test_batches).items()})
    figures.update(
        epochs=epochs,
        train_seconds=round(time.perf_counter() - start, 1),
        device=str(device),
        torch=torch.__version__,
        last_epoch=history.last(),
    )
    return model.eval(), figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cvae_utils.experiments.pretrained", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="retrain models from scratch (full mode) and rewrite their files")
    b.add_argument("names", nargs="*", help=f"default: all of {sorted(RECIPES)}")
    b.add_argument("--device", default=None)
    sub.add_parser("verify", help="check every shipped file against the manifest")
    args = parser.parse_args(argv)
    if PRETRAINED_DIR is None:
        print(
            "the shipped weights live in a clone of the repository (data/pretrained); run this there", file=sys.stderr
        )
        return 2
    if args.command == "verify":
        bad = unverified_files(PRETRAINED_DIR)
        print("all shipped weights match MANIFEST.json" if not bad else f"altered or missing: {bad}")
        return 1 if bad else 0
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        print(f"no recipe named {unknown}; known: {sorted(RECIPES)}", file=sys.stderr)
        return 2
    if quick_mode():
        print("refusing to build shipped weights in quick mode: unset CVAE_QUICK", file=sys.stderr)
        return 2
    for name in args.names or list(RECIPES):
        model, figures = train_recipe(name, args.device)
        path = save_pretrained(name, model, figures, PRETRAINED_DIR, RECIPES[name].description)
        print(json.dumps({"name": name, "file": str(path), **{k: v for k, v in figures.items() if k != "last_epoch"}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
