"""One training loop for every model of the series.

``fit`` trains any model that has ``objective(y, x, mask, **kwargs)`` returning a
dict with a ``loss`` to minimise (the CVAEs, the GSNN and hybrid variants, the
deterministic baseline). Batches are ``(y, x)`` or ``(y, x, mask)`` tuples, from
:class:`cvae_utils.data.TensorBatches` or any iterable.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_into, read_checkpoint, save_checkpoint
from .utils import eval_mode
from .validation import trusted_inputs, unpack_batch


class History:
    """Per-epoch figures: a list of records such as ``{"epoch": 3, "train_loss": ..., "test_kl": ...}``.

    ``history["test_loss"]`` is the list of one figure over the epochs.

    Taught in notebook 5, "The training loop".
    """

    def __init__(self, records: Sequence[dict] | None = None) -> None:
        self.records: list[dict[str, float]] = [dict(r) for r in records or []]

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        if not self.records or key not in self.records[-1]:
            known = sorted(self.records[-1]) if self.records else []
            raise KeyError(f"no figure {key!r} in the history; recorded: {known}")
        return [r.get(key, float("nan")) for r in self.records]

    def keys(self) -> list[str]:
        return list(self.records[-1]) if self.records else []

    def last(self) -> dict[str, float]:
        return dict(self.records[-1]) if self.records else {}

    def best(self, key: str = "test_loss") -> dict[str, float]:
        """The record of the epoch where ``key`` was lowest (the first such epoch on a tie)."""
        values = self[key]
        return dict(self.records[min(range(len(values)), key=values.__getitem__)])

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, last={self.last()})"

    def plot(self, terms: Sequence[str] | None = None, axes=None):
        """One panel per term (default: loss, recon, kl where recorded), train and test curves.

        Taught in notebook 5, "The curves".
        """
        from .plotting import plot_history

        return plot_history(self, terms=terms, axes=axes)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, **objective_kwargs) -> dict[str, float]:
    """Average each term of ``model.objective`` over every example of ``batches`` (nats per example).

    The KL weight is always 1 here: test figures are the real objective. The model is
    evaluated in eval mode and left in the mode it had; the first batch is checked in
    full, the rest only for shapes (see :mod:`cvae_utils.validation`).

    Taught in notebook 5, "The model".
    """
    objective_kwargs = {**objective_kwargs, "kl_weight": 1.0}
    sums: dict[str, torch.Tensor] = defaultdict(float)
    count = 0
    with eval_mode(model):
        for batch in batches:
            y, x, mask = unpack_batch(batch)
            with trusted_inputs() if count else contextlib.nullcontext():
                terms = model.objective(y, x, mask, **objective_kwargs)
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach() * len(y)
            count += len(y)
    if count == 0:
        raise ValueError("evaluate got no examples: the batches were empty.")
    return {k: (v / count).item() for k, v in sums.items()}


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_adam(params, lr: float = 1e-3) -> torch.optim.Optimizer:
    """Adam, with the fused kernel where this PyTorch and device have one (the same maths, faster)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def kl_warmup_weight(epoch: int, step: int, steps_per_epoch: int, warmup_epochs: float) -> float:
    """The KL weight β of step ``step`` (from 0) of epoch ``epoch`` (from 0) under a linear warm-up.

    β = min(1, (epoch + step / steps_per_epoch) / warmup_epochs), the fraction of the warm-up completed
    before this step, capped at 1: it rises batch by batch from 0 (the first step) to 1 after
    ``warmup_epochs`` epochs and stays there; 1 throughout when ``warmup_epochs`` is 0 (no warm-up).
    ``fit`` minimises recon + β * KL with it.

    Taught in notebook 5, "Two options of `cu.fit`: KL warm-up and gradient clipping".
    """
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + step / steps_per_epoch) / warmup_epochs)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the model keeps the weights of its last good epoch."""


def _fit_settings(
    optimizer, objective: str, alpha: float, kl_warmup_epochs: float, grad_clip, patience, monitor: str
) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {
        "optimizer": type(optimizer).__name__,
        "lr": float(optimizer.param_groups[0]["lr"]),
        "objective": objective,
        "alpha": float(alpha) if objective == "hybrid" else None,
        "kl_warmup_epochs": float(kl_warmup_epochs),
        "grad_clip": None if grad_clip is None else float(grad_clip),
        "patience": patience,
        "monitor": monitor if patience is not None else None,
    }


def _check_resume(ckpt: dict, settings: dict, num_epochs: int, path) -> None:
    """Refuse to resume a checkpoint with other settings, or one that already trained past ``num_epochs``."""
    done = int(ckpt["epoch"])
    if done > num_epochs:
        raise CheckpointError(
            f"{path} has already trained {done} epochs, more than num_epochs={num_epochs}. Ask for "
            f"num_epochs={done} or more to continue training, or use the model as it is with load_model({str(path)!r})."
        )
    recorded = ckpt.get("fit_settings")
    if recorded is None:
        raise CheckpointError(
            f"{path} was written by an older cvae_utils (checkpoint format {ckpt.get('format')}) that did not record "
            "its training settings, so resuming it cannot be checked: start afresh with resume=False (or delete the "
            "file), or load its weights with load_model."
        )
    changed = {k: (recorded.get(k), v) for k, v in settings.items() if recorded.get(k) != v}
    if changed:
        listed = "; ".join(f"{k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in changed.items())
        raise CheckpointError(
            f"{path} was trained with other settings ({listed}). Resume with the checkpoint's settings, or start "
            "afresh with resume=False (or another checkpoint_path)."
        )


def fit(
    model: nn.Module,
    train_batches: Iterable,
    test_batches: Iterable | None = None,
    *,
    num_epochs: int,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    objective: str = "cvae",
    alpha: float = 0.5,
    kl_warmup_epochs: float = 0,
    grad_clip: float | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    patience: int | None = None,
    monitor: str = "test_loss",
    progress: bool = True,
) -> History:
    """Train ``model`` for ``num_epochs`` epochs and return its :class:`History`.

    * ``objective``: ``"cvae"``, ``"gsnn"`` or ``"hybrid"`` (with ``alpha``); ignored by
      the deterministic baseline.
    * ``kl_warmup_epochs``: the KL weight rises linearly from 0 to 1 over this many
      epochs (0 = no warm-up); it needs ``len(train_batches)``. Recorded ``recon``, ``kl``
      and ``elbo`` are always the unweighted terms; ``loss`` is what was minimised.
    * ``grad_clip``: clip the gradient's global norm to this value.
    * ``checkpoint_path``: save model, optimizer, history, random states and these
      settings after every epoch (atomically); with ``resume=True`` an existing checkpoint
      there is loaded and training continues exactly where it stopped, up to
      ``num_epochs``. A checkpoint trained with other settings, or for more epochs than
      ``num_epochs``, is refused with a :class:`~cvae_utils.checkpoint.CheckpointError`.
    * ``patience``: early stopping. Training ends once ``monitor`` (a figure of the
      history, by default the objective on ``test_batches``, which should then be a
      validation split, not the test set) has not improved for ``patience`` epochs,
      and the model is given back with the weights of its best epoch.
    * ``progress``: a tqdm bar per epoch and, at the end, one printed line with the
      epochs, the time and the last (or best) figures; ``False`` is silent.

    Each epoch records the training averages (``train_*``), the test averages
    (``test_*``, with KL weight 1) when ``test_batches`` is given, and ``seconds``. A loss
    that becomes NaN or infinite stops training with :class:`TrainingDiverged`, naming the
    epoch and step; the model keeps the weights of its last good epoch, and the checkpoint
    is not overwritten. The first batch is checked in full, the rest only for shapes.

    Derived in notebook 5, "The training loop".
    """
    if num_epochs < 0:
        raise ValueError(f"num_epochs={num_epochs} must be >= 0.")
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(f"grad_clip={grad_clip} must be positive, or None for no clipping.")
    if kl_warmup_epochs < 0:
        raise ValueError(f"kl_warmup_epochs={kl_warmup_epochs} must be >= 0 (0 = no warm-up).")
    if kl_warmup_epochs > 0 and not hasattr(train_batches, "__len__"):
        raise ValueError(
            f"kl_warmup_epochs={kl_warmup_epochs} needs the number of batches per epoch, but train_batches "
            f"({type(train_batches).__name__}) has no len(). Pass a TensorBatches, a DataLoader or a list of "
            "batches, or train without warm-up (kl_warmup_epochs=0)."
        )
    if patience is not None:
        if patience < 1:
            raise ValueError(f"patience={patience} must be >= 1 (epochs without improvement), or None.")
        if test_batches is None and monitor.startswith("test_"):
            raise ValueError(f"early stopping on {monitor!r} needs test_batches (pass a validation split).")
    if optimizer is None:
        optimizer = make_adam(model.parameters(), lr)
    settings = _fit_settings(optimizer, objective, alpha, kl_warmup_epochs, grad_clip, patience, monitor)
    history = History()
    start_epoch = 0
    best_value, best_state, stale = float("inf"), None, 0
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        ckpt = read_checkpoint(checkpoint_path)
        _check_resume(ckpt, settings, num_epochs, checkpoint_path)
        load_into(model, ckpt, str(checkpoint_path))
        optimizer.load_state_dict(ckpt["optimizer"])
        history = History(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
        _set_rng_state(ckpt["rng"])
        if "batches" in ckpt and hasattr(train_batches, "load_state_dict"):
            train_batches.load_state_dict(ckpt["batches"])
        if "early_stopping" in ckpt:
            best_value, best_state, stale = ckpt["early_stopping"]

    if patience is not None and stale >= patience:
        start_epoch = num_epochs  # a resumed run that had already stopped early
    resumed_epochs = len(history)  # epochs read from the checkpoint: the summary line counts only the new ones

    objective_kwargs = {"objective": objective, "alpha": alpha}
    steps = max(1, len(train_batches)) if hasattr(train_batches, "__len__") else None
    epochs = tqdm(
        range(start_epoch, num_epochs), desc="training", initial=start_epoch, total=num_epochs, disable=not progress
    )
    checked = False  # the first batch is validated in full, the rest run trusted
    for epoch in epochs:
        model.train()
        start = time.perf_counter()
        good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        sums: dict[str, torch.Tensor] = defaultdict(float)
        first_bad_step = None  # a tensor on the device: no host sync per step
        count = 0
        bar = tqdm(train_batches, desc=f"epoch {epoch + 1}", leave=False, total=steps, disable=not progress)
        for step, batch in enumerate(bar):
            y, x, mask = unpack_batch(batch)
            kl_weight = kl_warmup_weight(epoch, step, steps, kl_warmup_epochs)
            with trusted_inputs() if checked else contextlib.nullcontext():
                terms = model.objective(y, x, mask, kl_weight=kl_weight, **objective_kwargs)
            checked = True
            loss = terms["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            bad = ~torch.isfinite(loss.detach())
            if first_bad_step is None:
                first_bad_step = torch.where(bad, step, -1)
            else:
                first_bad_step = torch.where(bad & (first_bad_step < 0), step, first_bad_step)
            for k, v in terms.items():
                sums[k] = sums[k] + v.detach() * len(y)
            count += len(y)
        if count == 0:
            raise ValueError("fit got no training examples: the training batches were empty.")
        if int(first_bad_step) >= 0:
            model.load_state_dict(good_state)
            raise TrainingDiverged(
                f"the training loss became NaN or infinite at epoch {epoch + 1}, step {int(first_bad_step) + 1}. "
                + (
                    "The model keeps the weights it had before training"
                    if epoch == 0
                    else f"The model keeps the weights it had after epoch {epoch}"
                    + (f", as saved in {checkpoint_path}" if checkpoint_path is not None else "")
                )
                + f". Check the learning rate (lr={settings['lr']:g}; try 10 times smaller), clip gradients "
                "(grad_clip=...), warm up the KL (kl_warmup_epochs=...) and look for NaN or extreme values in the data."
            )
        record: dict[str, float] = {"epoch": epoch + 1}
        record.update({f"train_{k}": (v / count).item() for k, v in sums.items()})
        if test_batches is not None:
            record.update({f"test_{k}": v for k, v in evaluate(model, test_batches, **objective_kwargs).items()})
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        shown = {k: f"{record[k]:.2f}" for k in ("train_loss", "test_loss") if k in record}
        epochs.set_postfix(shown)
        if patience is not None:
            if monitor not in record:
                raise KeyError(f"monitor={monitor!r} is not a recorded figure; recorded: {sorted(record)}.")
            if record[monitor] < best_value:
                best_value, stale = record[monitor], 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
        if checkpoint_path is not None:
            extra = {
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "history": history.records,
                "rng": _rng_state(),
                "fit_settings": settings,
            }
            if hasattr(train_batches, "state_dict"):
                extra["batches"] = train_batches.state_dict()
            if patience is not None:
                extra["early_stopping"] = (best_value, best_state, stale)
            save_checkpoint(checkpoint_path, model, **extra)
        if patience is not None and stale >= patience:
            break
    epochs.close()
    stopped_early = patience is not None and stale >= patience
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    if progress and len(history):
        print(
            _summary_line(history, stopped_early, monitor if patience is not None else None, resumed_epochs),
            flush=True,
        )
    return history


def _epochs(n: int, adjective: str = "") -> str:
    """``"1 epoch"``, ``"2 epochs"``, ``"1 new epoch"``: the count with its noun in the right number."""
    return f"{n} {adjective}epoch{'' if n == 1 else 's'}"


def _summary_line(history: History, stopped_early: bool, monitor: str | None, resumed_epochs: int = 0) -> str:
    """One line of text that stays readable in a saved notebook, where the bars do not.

    A fresh run: ``fit: 20 epochs in 59.5 s (2.98 s/epoch); ...``. A resumed run counts and times only the
    epochs this call trained: ``fit: 2 new epochs (22 in all) in 5.7 s (2.85 s/epoch); ...``.
    """
    last = history.last()
    if resumed_epochs == 0:
        seconds = sum(history["seconds"])
        line = f"fit: {_epochs(len(history))} in {seconds:.1f} s ({seconds / len(history):.2f} s/epoch)"
    else:
        new = len(history) - resumed_epochs
        seconds = sum(history["seconds"][resumed_epochs:])
        line = f"fit: {_epochs(new, 'new ')} ({len(history)} in all)"
        if new > 0:
            line += f" in {seconds:.1f} s ({seconds / new:.2f} s/epoch)"
    figures = ", ".join(f"{k.replace('_', ' ')} {last[k]:.2f}" for k in ("train_loss", "test_loss") if k in last)
    line += f"; epoch {last['epoch']:.0f}: {figures}"
    if monitor is not None:
        best = history.best(monitor)
        line += ("; stopped early, " if stopped_early else "; ") + (
            f"kept epoch {best['epoch']:.0f} ({monitor.replace('_', ' ')} {best[monitor]:.2f})"
        )
    return line
