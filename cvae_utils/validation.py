"""Input checks: a clear error that says what was wrong and what to pass, instead of torch's own.

Every public entry point of the library (a model's ``encode``, ``prior``, ``decode``,
``sample`` and ``generate``; the loss functions; the first batch that ``fit`` and
``evaluate`` see) checks its tensors with the functions here.

Two kinds of check:

* **shape and type** checks read only a tensor's metadata: they cost nothing and always run;
* **value** checks (no NaN or infinity, labels within range) read the tensor's values,
  which on a GPU waits for the device (a "host sync") and breaks ``torch.compile`` graphs.
  Inside :func:`trusted_inputs` they are skipped: ``fit`` and ``evaluate`` check the first
  batch in full and then run the rest of the loop trusted, since the data no longer changes kind.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

__all__ = [
    "check_tensor",
    "check_labels",
    "check_same_batch",
    "label_batch",
    "tensor_batch",
    "unpack_batch",
    "trusted_inputs",
    "value_checks_enabled",
]

_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("cvae_utils_trusted_inputs", default=False)


@contextlib.contextmanager
def trusted_inputs() -> Iterator[None]:
    """Skip the value checks (NaN, label range) inside the block; shape and type checks still run."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def value_checks_enabled() -> bool:
    """False inside :func:`trusted_inputs`."""
    return not _TRUSTED.get()


def _shape_text(shape: Sequence[int]) -> str:
    return ", ".join(["batch", *map(str, shape)])


def check_tensor(name: str, t: Tensor, shape: Sequence[int]) -> None:
    """A float tensor of shape (batch, *shape) with finite values, else an error saying what to pass."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({_shape_text(shape)}); got {type(t).__name__}.")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (e.g. images in [0, 1]); got {t.dtype}. Convert with .float().")
    if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape):
        hint = " Add the batch dimension with .unsqueeze(0)." if tuple(t.shape) == tuple(shape) else ""
        raise ValueError(f"{name} must have shape ({_shape_text(shape)}); got {tuple(t.shape)}.{hint}")
    # One reduction instead of an elementwise test: a NaN or inf anywhere makes the sum
    # non-finite; only then (or on an overflowing sum) look closer.
    if value_checks_enabled() and not torch.isfinite(t.sum()) and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the data or the preceding computation.")


def check_labels(name: str, t: Tensor, num_classes: int) -> None:
    """An integer tensor (batch,) with values in [0, num_classes), else a clear error."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices (batch,); got {type(t).__name__}.")
    if t.dim() != 1:
        hint = " If these are one-hot vectors, pass labels.argmax(dim=1)." if t.dim() == 2 else ""
        raise ValueError(f"{name} must have shape (batch,) of class indices; got {tuple(t.shape)}.{hint}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer class indices (torch.long), not {t.dtype}. "
            "Pass e.g. torch.tensor([3, 7]), or convert with .long()."
        )
    if value_checks_enabled() and t.numel() and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}]; got values from {t.min().item()} to {t.max().item()}."
        )


def check_same_batch(**tensors: Tensor | None) -> None:
    """All given tensors (None ones are skipped) have the same first dimension, else a clear error.

    >>> check_same_batch(y=y, x=x, mask=mask)
    """
    sizes = {name: len(t) for name, t in tensors.items() if isinstance(t, Tensor) and t.dim() > 0}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise ValueError(
            f"{' and '.join(sizes)} must hold one entry per example, but {listed}. "
            "Pass tensors from the same batch (the same first dimension)."
        )


def label_batch(x, num_samples: int, num_classes: int, device) -> Tensor:
    """One label repeated ``num_samples`` times, or a checked batch of ``num_samples`` labels, on ``device``."""
    x = torch.as_tensor(x, device=device)
    if x.dim() == 0:
        x = x.expand(num_samples)
    elif len(x) != num_samples:
        raise ValueError(f"got {len(x)} labels for num_samples={num_samples}: pass one label or one per sample.")
    check_labels("x (labels)", x, num_classes)
    return x


def tensor_batch(x, num_samples: int, shape: Sequence[int], device) -> Tensor:
    """One condition of ``shape`` repeated ``num_samples`` times, or a checked batch of ``num_samples``."""
    x = torch.as_tensor(x, device=device)
    if tuple(x.shape) == tuple(shape):
        x = x.unsqueeze(0).expand(num_samples, *shape)
    elif len(x) != num_samples:
        raise ValueError(f"got {len(x)} conditions for num_samples={num_samples}: pass one or one per sample.")
    check_tensor("x", x, shape)
    return x


def unpack_batch(batch) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(y, x)`` or ``(y, x, mask)`` as ``(y, x, mask)`` (mask None when absent); anything else is an error.

    The one order of the series: the output y first, then the condition x, then the
    mask of the pixels of y that count (see :func:`cvae_utils.data.split_quadrants`).
    """
    try:
        items = tuple(batch)
    except TypeError:
        raise TypeError(f"a batch must be a tuple (y, x) or (y, x, mask); got {type(batch).__name__}.") from None
    if len(items) == 2:
        return items[0], items[1], None
    if len(items) == 3:
        return items
    raise ValueError(f"a batch must be (y, x) or (y, x, mask); got a tuple of {len(items)} items.")
