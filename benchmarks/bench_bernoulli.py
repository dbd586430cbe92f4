"""Does the hand-written Bernoulli autograd Function pay? Custom Function against plain BCE-with-logits.

Two ways to compute log p(y|logits) = sum_pixels mask * [y * logits - softplus(logits)]
per example, compared in one process on the CPU (and on CUDA when present, same code):

* custom: ``_BernoulliLogLikelihood``, the ``torch.autograd.Function`` of
  ``cvae_utils.losses``, copied here as it stood when this script was written, so the
  script keeps measuring the same thing after the library changes;
* bce:    ``-F.binary_cross_entropy_with_logits(logits, y, reduction="none")``, times the
  mask when one is given, summed per example.

Both sit behind the library's wrapper (shape check, mask cast to the logits' dtype and
expanded for ``custom``; ``bce`` multiplies by the mask as given, bool or float).

Measured, with the variants alternated block by block (A/B/A/B ...) so that load from
other processes falls on both alike; each figure is the median over blocks, with the
min, max, quartiles and the per-block values; ``custom_over_bce_*`` is the median of the
ratios of the two blocks of each A/B pair (robust to load that comes and goes), by wall
time and by this process's CPU time, and over the "clean" pairs only (both blocks within
1.5x of their variant's best block: on a shared 2-core machine a loaded block can run
20x slower). Each measurement has a wall-clock budget: past it
no new block starts, so a loaded machine gives fewer blocks rather than a longer run:

* ``likelihood``: forward + backward (``torch.autograd.grad`` of minus the batch mean)
  of the likelihood alone, batch 512 x (1, 28, 28), float32, mask none / bool / float;
* ``train_step``: whole training steps of the label CVAE of the series
  (``MLPCVAE(y_shape=(1,28,28), z_dim=20, hidden_dims=[512], num_classes=10)``,
  ``make_adam``, ``model.objective(y, x)``) on MNIST through ``TensorBatches`` at batch
  512, with each variant swapped in for ``cvae_utils.models.bernoulli_log_likelihood``
  (the name ``BaseVAE.log_likelihood`` calls); images/s.

Also checked: the values and gradients of both agree (max abs diff), and whether double
backward (``grad(..., create_graph=True)`` then a second ``grad``) works, and is right,
with each.

Prints JSON lines: one ``check`` line per device, then one line per measurement.
Usage: python benchmarks/bench_bernoulli.py [--quick] [--device cpu|cuda|all] [--threads N] [--no-tune-allocator]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

import cvae_utils as cu
import cvae_utils.models as cu_models

# ----------------------------------------------------------------------------------
# The two variants
# ----------------------------------------------------------------------------------


class _BernoulliLogLikelihood(torch.autograd.Function):
    """Copied verbatim from cvae_utils/losses.py (commit 939ef46)."""

    @staticmethod
    def forward(ctx, logits: Tensor, y: Tensor, mask: Tensor | None) -> Tensor:
        ctx.save_for_backward(logits, y, mask)
        ll = torch.mul(y, logits).sub_(F.softplus(logits))
        if mask is not None:
            ll.mul_(mask)
        return ll.reshape(len(ll), -1).sum(dim=1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        logits, y, mask = ctx.saved_tensors
        g = torch.sigmoid(logits).neg_().add_(y)
        if mask is not None:
            g.mul_(mask)
        g.mul_(grad.view(-1, *([1] * (logits.dim() - 1))))
        return g, None, None


def ll_custom(logits: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
    """The library's ``bernoulli_log_likelihood`` as of commit 939ef46."""
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and y {tuple(y.shape)} must have the same shape.")
    if mask is not None:
        mask = mask.to(logits.dtype).expand_as(logits)
    return _BernoulliLogLikelihood.apply(logits, y.to(logits.dtype), mask)


def ll_bce(logits: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
    """The same wrapper around plain autograd: minus BCE-with-logits, masked, summed per example."""
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and y {tuple(y.shape)} must have the same shape.")
    nll = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
    if mask is not None:
        nll = nll * mask
    return -nll.reshape(logits.shape[0], -1).sum(1)


VARIANTS = {"custom": ll_custom, "bce": ll_bce}


# ----------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _summary(values: list[float], digits: int = 4) -> dict:
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) >= 2 else [values[0]] * 3
    r = lambda v: round(v, digits)  # noqa: E731
    return {
        "median": r(statistics.median(values)),
        "q1": r(q[0]),
        "q3": r(q[2]),
        "min": r(min(values)),
        "max": r(max(values)),
        "blocks": len(values),
    }


def _clean_ratios(a: list[float], b: list[float], lower_is_better: bool, slack: float = 1.5) -> dict:
    """a/b over the A/B pairs in which neither block was hit by load.

    A block counts as clean when it is within ``slack`` of its variant's best block (the
    machine is shared: a loaded block can be many times slower, for both variants).
    """
    if lower_is_better:
        ok = [x <= slack * min(a) and y <= slack * min(b) for x, y in zip(a, b)]
    else:
        ok = [x >= max(a) / slack and y >= max(b) / slack for x, y in zip(a, b)]
    ratios = [x / y for x, y, k in zip(a, b, ok) if k]
    return _summary(ratios, 3) if ratios else {"blocks": 0}


def _inputs(device: torch.device, batch: int, mask_kind: str, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 1, 28, 28)
    logits = (3.0 * torch.randn(shape, generator=g, dtype=dtype)).to(device)
    y = torch.rand(shape, generator=g, dtype=dtype).to(device)  # grey levels, as MNIST un-binarised
    bool_mask = (torch.rand(shape, generator=g) < 0.5).to(device)
    mask = {"none": None, "bool": bool_mask, "float": bool_mask.to(dtype)}[mask_kind]
    return logits, y, mask


# ----------------------------------------------------------------------------------
# Checks: values, gradients, double backward
# ----------------------------------------------------------------------------------


def _double_backward(fn, logits: Tensor, y: Tensor, mask: Tensor | None) -> dict:
    """grad with create_graph=True, then the grad of the sum of that grad (the Hessian diagonal).

    The exact answer is -sigmoid(l) * (1 - sigmoid(l)) * mask per pixel; ``max_abs_err``
    compares with it (a wrong-but-silent second derivative is the failure to watch for).
    """
    l = logits.detach().clone().requires_grad_(True)
    try:
        (g,) = torch.autograd.grad(fn(l, y, mask).sum(), l, create_graph=True)
        if not g.requires_grad:
            return {"works": False, "error": "first grad has no graph (requires_grad=False): second grad impossible"}
        (h,) = torch.autograd.grad(g.sum(), l, allow_unused=True)
        if h is None:
            return {"works": False, "error": "second grad is None: the first grad does not depend on the logits"}
    except RuntimeError as e:
        return {"works": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    s = torch.sigmoid(l.detach())
    exact = -s * (1 - s) * (1.0 if mask is None else mask.to(l.dtype))
    err = (h - exact).abs().max().item()
    return {"works": err < 1e-4, "max_abs_err": err}


def checks(device: torch.device, batch: int) -> dict:
    out: dict = {"kind": "check", "device": str(device)}
    for mask_kind in ("none", "bool", "float"):
        logits, y, mask = _inputs(device, batch, mask_kind, seed=1)
        vals, grads = {}, {}
        for name, fn in VARIANTS.items():
            l = logits.clone().requires_grad_(True)
            v = fn(l, y, mask)
            (gr,) = torch.autograd.grad(v.sum(), l)
            vals[name], grads[name] = v.detach(), gr
        # float64 reference for scale
        ref = ll_bce(logits.double(), y.double(), None if mask is None else mask.double())
        out[f"mask_{mask_kind}"] = {
            "max_abs_diff_value": (vals["custom"] - vals["bce"]).abs().max().item(),
            "max_abs_diff_grad": (grads["custom"] - grads["bce"]).abs().max().item(),
            "max_abs_err_value_vs_float64": {k: (v.double() - ref).abs().max().item() for k, v in vals.items()},
            "value_magnitude": ref.abs().max().item(),
            "double_backward": {k: _double_backward(fn, logits, y, mask) for k, fn in VARIANTS.items()},
        }
    return out


# ----------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------


def bench_likelihood(
    device: torch.device, batch: int, mask_kind: str, blocks: int, iters: int, budget_s: float
) -> dict:
    """Forward + backward of -mean(log-likelihood), ms per call; A/B blocks alternated."""
    logits, y, mask = _inputs(device, batch, mask_kind)
    logits.requires_grad_(True)

    def run(fn, n):
        for _ in range(n):
            (g,) = torch.autograd.grad(-fn(logits, y, mask).mean(), logits)
        _sync(device)

    names = list(VARIANTS)
    for name in names:  # warm-up
        run(VARIANTS[name], max(3, iters // 4))
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    deadline = time.perf_counter() + budget_s
    for b in range(blocks):
        if b >= 4 and time.perf_counter() > deadline:
            break
        order = names if b % 2 == 0 else names[::-1]  # A B, B A, ... no variant always first
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            run(VARIANTS[name], iters)
            times[name].append((time.perf_counter() - t0) / iters * 1e3)
            cpu[name].append((time.process_time() - c0) / iters * 1e3)
    res = {n: _summary(t) for n, t in times.items()}
    ratios = [c / b for c, b in zip(times["custom"], times["bce"])]
    cpu_ratios = [c / b for c, b in zip(cpu["custom"], cpu["bce"])]
    return {
        "kind": "likelihood",
        "device": str(device),
        "shape": [batch, 1, 28, 28],
        "dtype": "float32",
        "mask": mask_kind,
        "unit": "ms per forward+backward",
        "iters_per_block": iters,
        "custom": res["custom"],
        "bce": res["bce"],
        "custom_over_bce_time": _summary(ratios, 3),
        "custom_over_bce_cpu_time": _summary(cpu_ratios, 3),
        "custom_over_bce_time_clean_pairs": _clean_ratios(times["custom"], times["bce"], True),
        "per_block": {n: [round(v, 3) for v in t] for n, t in times.items()},
    }


def bench_train_step(
    device: torch.device, batch: int, blocks: int, steps: int, limit: int | None, budget_s: float
) -> dict:
    """Images/s of whole training steps of the label MLP CVAE, each variant swapped in; A/B blocks."""
    data = cu.load_mnist("train", device=device, limit=limit)
    states = {}
    for i, name in enumerate(VARIANTS):
        torch.manual_seed(0)  # the same initial weights for both
        model = cu.MLPCVAE(y_shape=(1, 28, 28), z_dim=20, hidden_dims=[512], num_classes=10).to(device)
        opt = cu.make_adam(model.parameters())
        batches = cu.TensorBatches(data.images, data.labels, batch_size=batch, drop_last=True, seed=i)
        states[name] = {"model": model, "opt": opt, "batches": batches, "it": iter(batches)}

    original = cu_models.bernoulli_log_likelihood

    def run(name, n):
        s = states[name]
        model, opt = s["model"], s["opt"]
        cu_models.bernoulli_log_likelihood = VARIANTS[name]
        try:
            loss = None
            for _ in range(n):
                try:
                    y, x = next(s["it"])
                except StopIteration:
                    s["it"] = iter(s["batches"])
                    y, x = next(s["it"])
                loss = model.objective(y, x)["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _sync(device)
            return loss.item()
        finally:
            cu_models.bernoulli_log_likelihood = original

    names = list(VARIANTS)
    for name in names:  # warm-up
        run(name, max(3, steps // 2))
    rates: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    last_loss = {}
    deadline = time.perf_counter() + budget_s
    for b in range(blocks):
        if b >= 4 and time.perf_counter() > deadline:
            break
        order = names if b % 2 == 0 else names[::-1]
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            last_loss[name] = run(name, steps)
            rates[name].append(steps * batch / (time.perf_counter() - t0))
            cpu[name].append((time.process_time() - c0) / steps * 1e3)
    assert cu_models.bernoulli_log_likelihood is original
    ratios = [c / b for c, b in zip(rates["custom"], rates["bce"])]
    cpu_ratios = [b / c for c, b in zip(cpu["custom"], cpu["bce"])]
    return {
        "kind": "train_step",
        "device": str(device),
        "batch": batch,
        "unit": "images/s",
        "steps_per_block": steps,
        "custom": _summary(rates["custom"], 0),
        "bce": _summary(rates["bce"], 0),
        "custom_over_bce_rate": _summary(ratios, 3),
        "custom_over_bce_rate_by_cpu_time": _summary(cpu_ratios, 3),
        "custom_over_bce_rate_clean_pairs": _clean_ratios(rates["custom"], rates["bce"], False),
        "cpu_ms_per_step": {n: _summary(c, 2) for n, c in cpu.items()},
        "last_loss": {k: round(v, 3) for k, v in last_loss.items()},
        "per_block": {n: [round(v) for v in r] for n, r in rates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run (tiny block counts)")
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (the CPU, and CUDA when present)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--no-tune-allocator", action="store_true", help="leave glibc's malloc thresholds alone")
    args = parser.parse_args()

    tuned = False if args.no_tune_allocator else cu.tune_cpu_allocator()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "all":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(args.device)]
    if args.quick:
        ll_blocks, ll_iters, tr_blocks, tr_steps, limit = 2, 5, 2, 2, 4 * args.batch_size
    else:
        ll_blocks, ll_iters, tr_blocks, tr_steps, limit = 60, 20, 80, 5, None
    # wall-clock budgets per measurement (seconds): past one, no new block starts (at least 4 run)
    ll_budget, tr_budget = (1.0, 2.0) if args.quick else (15.0, 60.0)

    print(
        json.dumps(
            {
                "kind": "env",
                "torch": torch.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "threads": torch.get_num_threads(),
                "allocator_tuned": tuned,
                "quick": args.quick,
                "loadavg_start": os.getloadavg(),
                "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            }
        ),
        flush=True,
    )
    t_start = time.perf_counter()
    for device in devices:
        print(json.dumps(checks(device, args.batch_size)), flush=True)
        for mask_kind in ("none", "bool", "float"):
            print(
                json.dumps(bench_likelihood(device, args.batch_size, mask_kind, ll_blocks, ll_iters, ll_budget)),
                flush=True,
            )
        print(json.dumps(bench_train_step(device, args.batch_size, tr_blocks, tr_steps, limit, tr_budget)), flush=True)
    print(
        json.dumps(
            {"kind": "done", "seconds": round(time.perf_counter() - t_start, 1), "loadavg_end": os.getloadavg()}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
