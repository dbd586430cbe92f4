"""Figures: image grids on ``torchvision.utils.make_grid``, training curves on matplotlib."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def image_grid(images: Tensor, nrow: int = 10, padding: int = 2, fill_value: float | None = None) -> Tensor:
    """A (H, W, 3) grid of images (N, C, H, W) in [0, 1], ready for ``imshow``.

    ``fill_value`` (e.g. the -1 of unobserved quadrants) is drawn in mid grey so that
    "not observed" differs from "black".
    """
    from torchvision.utils import make_grid

    images = images.detach().float().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W); got {tuple(images.shape)}.")
    if fill_value is not None:
        images = torch.where(images == fill_value, torch.full_like(images, 0.5), images)
    grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)
    return grid.permute(1, 2, 0)


def show_images(
    images: Tensor, nrow: int = 10, title: str | None = None, ax=None, figsize=None, fill_value: float | None = None
):
    """Draw a grid of images on ``ax`` (a new figure if None) and return the axes."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, nrow=nrow, fill_value=fill_value)
    if ax is None:
        rows = -(-len(images) // nrow)
        _, ax = plt.subplots(figsize=figsize or (min(nrow, len(images)) * 0.8, rows * 0.8 + (0.4 if title else 0)))
    ax.imshow(grid.numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, terms: Sequence[str] | None = None, axes=None):
    """One panel per objective term, train and test curves over epochs; returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = history.keys()
    if terms is None:
        terms = [t for t in ("loss", "recon", "kl", "gsnn_recon") if f"train_{t}" in keys]
    labels = {
        "loss": "objective (nats)",
        "recon": "reconstruction -E[log p(y|x,z)]",
        "kl": "KL(q(z|x,y) || p(z|x))",
        "gsnn_recon": "GSNN -E_p[log p(y|x,z)]",
        "elbo": "ELBO",
    }
    if axes is None:
        _, axes = plt.subplots(1, len(terms), figsize=(4 * len(terms), 3), squeeze=False)
        axes = axes[0]
    epochs = history["epoch"]
    for ax, term in zip(axes, terms):
        for split, style in (("train", "-"), ("test", "--")):
            key = f"{split}_{term}"
            if key in keys:
                ax.plot(epochs, history[key], style, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(labels.get(term, term), fontsize=10)
        ax.legend()
    return axes
