"""Pretrained weights shipped with the repository, and the command that makes them.

    python -m cvae_utils.pretrained build              # retrain every model, rewrite files and manifest
    python -m cvae_utils.pretrained build label_cvae   # just one
    python -m cvae_utils.pretrained verify             # check the shipped files against the manifest

Each model has a recipe (architecture, data, epochs); ``data/pretrained/MANIFEST.json``
records each file's SHA-256 and the test figures measured when it was built.
:func:`load_pretrained` loads a shipped file only when its checksum matches, and
otherwise trains the recipe (and saves the result for next time), so a notebook opens
in seconds when the weights are there and still works when they are not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .checkpoint import load_model, save_checkpoint
from .config import quick_mode
from .data import TensorBatches, load_mnist
from .models import DigitClassifier, MLPCVAE
from .train import evaluate, fit
from .utils import file_digest, get_device, seed_everything

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "data" / "pretrained"
MANIFEST = PRETRAINED_DIR / "MANIFEST.json"


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
    quick: dict = field(default_factory=lambda: {"num_epochs": 1, "limit": 2000})


RECIPES: dict[str, Recipe] = {
    "label_cvae": Recipe(
        build=lambda: MLPCVAE(y_shape=(1, 28, 28), z_dim=20, hidden_dims=[512], num_classes=10),
        task="label", num_epochs=40, batch_size=512, lr=1e-3,
        description="label-conditioned MLP CVAE (784+10 -> 512 -> z=20, learned prior), grey-level MNIST",
    ),
    "label_cvae_hybrid": Recipe(
        build=lambda: MLPCVAE(y_shape=(1, 28, 28), z_dim=20, hidden_dims=[512], num_classes=10),
        task="label", num_epochs=10, batch_size=512, lr=1e-3, objective={"objective": "hybrid", "alpha": 0.5},
        description="the same CVAE trained with the paper's hybrid objective 0.5 * CVAE + 0.5 * GSNN",
    ),
    "digit_classifier": Recipe(
        build=lambda: DigitClassifier(), task="classify", num_epochs=4, batch_size=128, lr=1e-3,
        description="small CNN that labels digits, to score generated samples",
    ),
}


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
    history = fit(model, _batches(recipe.task, train, recipe.batch_size, True, recipe.seed),
                  _batches(recipe.task, test, 1000, False, recipe.seed), num_epochs=epochs, lr=recipe.lr,
                  progress=progress, **recipe.objective)
    test_batches = _batches(recipe.task, test, 1000, False, 0)
    figures = {f"test_{k}": v for k, v in evaluate(model, test_batches, **recipe.objective).items()}
    if recipe.objective:  # also the plain CVAE bound, comparable with the other models
        figures.update({f"test_cvae_{k}": v for k, v in evaluate(model, test_batches).items()})
    figures.update(epochs=epochs, train_seconds=round(time.perf_counter() - start, 1), device=str(device),
                   torch=torch.__version__, last_epoch=history.last())
    return model.eval(), figures


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}


def verified_path(name: str) -> Path | None:
    """The shipped file of ``name`` if it exists and matches the manifest's SHA-256, else None."""
    entry = _manifest().get(name)
    if entry is None:
        return None
    path = PRETRAINED_DIR / entry["file"]
    if not path.is_file() or file_digest(path) != entry["sha256"]:
        return None
    return path


def load_pretrained(name: str, device=None, *, retrain: bool = False, progress: bool = True) -> nn.Module:
    """The pretrained model ``name`` on ``device``, in eval mode.

    Loads the shipped weights when present and verified; otherwise (or with
    ``retrain=True``) trains the recipe: in full mode the result is saved and the
    manifest updated, so the next call loads it; in quick mode it is only returned.
    """
    if name not in RECIPES:
        raise KeyError(f"no pretrained recipe {name!r}; known: {sorted(RECIPES)}.")
    device = get_device() if device is None else torch.device(device)
    path = None if retrain else verified_path(name)
    if path is not None:
        return load_model(path, device)
    entry = _manifest().get(name)
    if entry is not None and not retrain:
        print(f"{name}: the shipped weights are missing or do not match their checksum; training them instead.",
              file=sys.stderr)
    model, figures = train_recipe(name, device, progress=progress)
    if not quick_mode():
        _save(name, model, figures)
    return model


def _save(name: str, model: nn.Module, figures: dict) -> Path:
    PRETRAINED_DIR.mkdir(parents=True, exist_ok=True)
    path = PRETRAINED_DIR / f"{name}.pt"
    save_checkpoint(path, model.cpu(), figures=json.dumps(figures))
    manifest = _manifest()
    manifest[name] = {"file": path.name, "sha256": file_digest(path), "bytes": path.stat().st_size,
                      "description": RECIPES[name].description, "figures": figures}
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(MANIFEST)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvae_utils.pretrained", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="retrain models from scratch (full mode) and rewrite their files")
    b.add_argument("names", nargs="*", help=f"default: all of {sorted(RECIPES)}")
    b.add_argument("--device", default=None)
    sub.add_parser("verify", help="check every shipped file against the manifest")
    args = parser.parse_args(argv)
    if args.command == "verify":
        bad = [n for n in RECIPES if verified_path(n) is None]
        for n in RECIPES:
            print(f"{n}: {'ok' if n not in bad else 'MISSING OR CHANGED'}")
        return 1 if bad else 0
    if quick_mode():
        print("refusing to build shipped weights in quick mode: unset CVAE_QUICK", file=sys.stderr)
        return 2
    for name in args.names or list(RECIPES):
        model, figures = train_recipe(name, args.device)
        path = _save(name, model, figures)
        print(json.dumps({"name": name, "file": str(path), **{k: v for k, v in figures.items() if k != "last_epoch"}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
