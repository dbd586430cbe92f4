"""Checkpoints that rebuild their model, save atomically and load safely.

A checkpoint is a dict saved with ``torch.save``: the model's ``config`` (class name
and constructor arguments), its ``state_dict`` and, for resuming training, the
optimizer state, the epoch, the history and the random-number states. It is
loaded with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled
objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .models import build_model

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or belongs to another model."""


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra) -> Path:
    """Write ``model`` (config + weights) and any ``extra`` entries to ``path`` atomically.

    The file is written to a temporary name in the same folder and renamed over
    ``path``, so an interrupted save never leaves a half-written checkpoint.
    ``extra`` values must be tensors, numbers, strings, lists or dicts of those.
    """
    config = getattr(model, "config", None)
    if not config:
        raise CheckpointError(f"{type(model).__name__} has no .config; only cvae_utils models can be checkpointed.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT_VERSION, "config": config, "state_dict": model.state_dict(), **extra}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train the model first, or check the path.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(ckpt, dict) or "config" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a cvae_utils checkpoint (no config and state_dict).")
    return ckpt


def load_into(model: nn.Module, ckpt: dict, source: str = "the checkpoint") -> None:
    """Load ``ckpt``'s weights into ``model``, refusing a checkpoint of another architecture."""
    config = getattr(model, "config", None)
    if config != ckpt["config"]:
        raise CheckpointError(
            f"{source} holds a {ckpt['config'].get('name')} with {ckpt['config'].get('kwargs')}, "
            f"but the model is a {config.get('name') if config else type(model).__name__} with "
            f"{config.get('kwargs') if config else '?'}. Build the model from the checkpoint with "
            "load_model(path), or point to the checkpoint of this model."
        )
    model.load_state_dict(ckpt["state_dict"])


def load_model(path: str | os.PathLike, device="cpu") -> nn.Module:
    """Rebuild the model stored in ``path`` from its config and load its weights (in eval mode)."""
    ckpt = read_checkpoint(path)
    model = build_model(ckpt["config"])
    load_into(model, ckpt, str(path))
    return model.to(device).eval()
