"""Pretrained weights shipped with the repository (notebooks 2, 6 and the exercises load them).

``data/pretrained/MANIFEST.json`` records each file's SHA-256 and the test figures measured
when it was built. :func:`load_pretrained` loads a shipped file only when its checksum
matches; otherwise it trains the model's recipe (:mod:`cvae_utils.experiments.pretrained`)
and, in full mode, keeps the result in the user cache (``~/.cache/cvae_utils/pretrained``,
or ``$CVAE_CACHE_DIR``) for next time, so a notebook opens in seconds when the weights are
there and still works when they are not. The shipped files themselves are rewritten only
by ``python -m cvae_utils.experiments.pretrained build``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_model, save_checkpoint
from .config import quick_mode
from .files import file_problem, read_manifest, record_files, shipped_dir, user_cache_dir
from .utils import get_device

PRETRAINED_DIR = shipped_dir("pretrained")  # None outside a clone of the repository
NAMES = (
    "label_cvae",
    "label_cvae_fixed_prior",
    "label_cvae_hybrid",
    "conv_cvae",
    "digit_classifier",
    "digit_classifier_mlp",
)


def cache_dir() -> Path:
    """Where weights trained on demand are kept (never the shipped folder)."""
    return user_cache_dir() / "pretrained"


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise KeyError(f"no pretrained model {name!r}; known: {list(NAMES)}.")


def verified_path(name: str) -> Path | None:
    """The file of ``name`` that matches its manifest: the shipped one, else one trained earlier into the cache."""
    _check_name(name)
    for directory in (PRETRAINED_DIR, cache_dir()):
        if directory is not None and file_problem(directory, f"{name}.pt") is None:
            return directory / f"{name}.pt"
    return None


def pretrained_figures(name: str) -> dict:
    """The test figures recorded in the manifest when the shipped weights of ``name`` were built."""
    _check_name(name)
    entry = read_manifest(PRETRAINED_DIR).get("files", {}).get(f"{name}.pt") if PRETRAINED_DIR else None
    if entry is None:
        raise KeyError(
            f"no shipped weights of {name!r} are recorded here (they ship with the repository's data/pretrained)."
        )
    return entry["figures"]


def load_pretrained(name: str, device=None, *, retrain: bool = False, progress: bool = True) -> nn.Module:
    """The pretrained model ``name`` on ``device``, in eval mode.

    Loads the shipped weights when present and verified; otherwise (or with
    ``retrain=True``) trains the recipe: in full mode the result is kept in the user
    cache, so the next call loads it; in quick mode it is only returned.

    Taught in notebook 6, "The pretrained models, loaded in seconds".
    """
    _check_name(name)
    device = get_device() if device is None else torch.device(device)
    path = None if retrain else verified_path(name)
    if path is not None:
        return load_model(path, device)
    if not retrain:
        print(f"{name}: no shipped weights match their checksum; training them instead.", file=sys.stderr)
    from .experiments.pretrained import RECIPES, train_recipe

    model, figures = train_recipe(name, device, progress=progress)
    if not quick_mode():
        save_pretrained(name, model, figures, cache_dir(), RECIPES[name].description)
    return model


def save_pretrained(name: str, model: nn.Module, figures: dict, directory: Path, description: str) -> Path:
    """Save ``model`` as ``<directory>/<name>.pt`` (float16 weights) and record it in the folder's manifest.

    The model is neither moved nor rounded: :func:`~cvae_utils.experiments.pretrained.train_recipe`
    rounds it to float16 before it measures the figures, so they are the shipped file's.
    """
    path = save_checkpoint(Path(directory) / f"{name}.pt", model, weights_dtype=torch.float16)
    record_files(directory, {path.name: {"model": name, "description": description, "figures": figures}})
    return path
