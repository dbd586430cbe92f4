"""Checkpoints that rebuild their model, save atomically and load safely.

A checkpoint is a dict saved with ``torch.save``: its ``format``, the model's
``config`` (class name and constructor arguments), its ``state_dict`` and, for
resuming training, what :func:`cvae_utils.train.fit` adds (the optimizer state, the
epoch, the history, the random-number states and the settings it trained with). It is
loaded with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled
objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .files import atomic_write
from .models import build_model

FORMAT_VERSION = 2
# 1: config, state_dict and fit's resume state; 2: also the settings fit trained with ("fit_settings").
READABLE_FORMATS = (1, 2)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, of an unknown format or belongs to another model."""


def round_to_half(model: nn.Module) -> nn.Module:
    """Round every weight to float16 and back, in place: the model as its float16 file will load."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, *, weights_dtype: torch.dtype | None = None, **extra
) -> Path:
    """Write ``model`` (config + weights) and any ``extra`` entries to ``path`` atomically.

    The weights are copied to the CPU; the model itself is never moved or changed. An
    interrupted save never leaves a half-written checkpoint. ``weights_dtype`` (e.g.
    ``torch.float16``, half the file) stores the floating-point weights in that type; they
    load back into a float32 model as they were rounded. ``extra`` values must be tensors,
    numbers, strings, lists or dicts of those.
    """
    config = getattr(model, "config", None)
    if not config:
        raise CheckpointError(f"{type(model).__name__} has no .config; only cvae_utils models can be checkpointed.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if weights_dtype is not None:
        state = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in state.items()}
    payload = {"format": FORMAT_VERSION, "config": config, "state_dict": state, **extra}
    with atomic_write(path) as f:
        torch.save(payload, f)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; clear errors for a missing, foreign or newer file.

    Taught in notebook 5, "Checkpoints: reload the model, continue the run".
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train the model first, or check the path.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(ckpt, dict) or "config" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a cvae_utils checkpoint (no config and state_dict).")
    if ckpt.get("format") not in READABLE_FORMATS:
        raise CheckpointError(
            f"{path} has checkpoint format {ckpt.get('format')!r}; this version of cvae_utils reads formats "
            f"{list(READABLE_FORMATS)}. Update cvae_utils (git pull), or retrain and save the model again."
        )
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
    """Rebuild the model stored in ``path`` from its config and load its weights (in eval mode).

    Taught in notebook 5, "Checkpoints: reload the model, continue the run".
    """
    ckpt = read_checkpoint(path)
    model = build_model(ckpt["config"])
    load_into(model, ckpt, str(path))
    return model.to(device).eval()
