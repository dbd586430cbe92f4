"""Throughput of one training epoch: the fast path against a torchvision DataLoader.

Trains the label-conditioned MLP CVAE of the series (recognition 784+10 -> 512 -> z=20,
generation 20+10 -> 512 -> 784, N(0, I) prior) for one epoch of MNIST twice in the
same run, at the same batch size:

* fast:       the split preloaded as one tensor, batches by shuffled indexing (TensorBatches);
* dataloader: torchvision.datasets.MNIST + ToTensor + DataLoader, image by image.

It also measures this machine's peak float32 matmul rate (the best sustained rate over
square products from 512 to 2048) and prints one JSON line: images/s of each path, their ratio, the
model's training FLOPs per image, and the share of the matmul rate that the fast
path reaches. Both paths run with glibc's allocator tuned by ``cu.utils.tune_cpu_allocator()``
(about 10% faster on the CPU; ``--no-tune-allocator`` leaves it alone).
Usage: python benchmarks/bench_mlp_throughput.py [--batch-size 512] [--no-tune-allocator]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time

import torch
from torch import nn

import cvae_utils as cu
from cvae_utils.validation import trusted_inputs


def matmul_gflops(sizes=(512, 768, 1024, 1536, 2048), seconds: float = 0.5, device="cpu") -> dict:
    """Sustained float32 GFLOP/s of n x n by n x n products, for each n in ``sizes``.

    Each size runs back-to-back products for at least ``seconds`` after a warm-up and
    is scored by total FLOPs over total time: a rate the machine holds, as the
    training epoch must, rather than the fastest single product.
    """
    rates = {}
    for n in sizes:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        for _ in range(3):
            a @ b  # warm-up
        _sync(device)
        count, t0 = 0, time.perf_counter()
        while True:
            a @ b
            count += 1
            if count % 4 == 0:
                _sync(device)
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds:
                    break
        rates[n] = 2 * n**3 * count / elapsed / 1e9
    return rates


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def training_flops_per_image(model: nn.Module, y: torch.Tensor, x: torch.Tensor) -> float:
    """Matmul FLOPs of one training step per image, counted on the model's Linear layers.

    Forward 2*in*out per row; backward 2*in*out for the weight gradient and another
    2*in*out for the input gradient when the layer's input needs one.
    """
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        rows = inputs[0].shape[0]
        per = 2 * module.in_features * module.out_features * rows
        total += per * (3 if inputs[0].requires_grad else 2)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        model.objective(y, x)["loss"].backward()
    finally:
        for h in handles:
            h.remove()
    model.zero_grad(set_to_none=True)
    return total / len(y)


def train_epoch(model, optimizer, batches, device, max_batches=None) -> tuple[int, float]:
    """Images seen and seconds taken for one pass over ``batches``.

    The step of ``cu.fit``: the first batch is checked in full, the rest run inside
    ``trusted_inputs()`` (shape checks only, no check that reads a tensor's values).
    """
    seen = 0
    _sync(device)
    t0 = time.perf_counter()
    for i, (y, x) in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        y, x = y.to(device, non_blocking=True), x.to(device, non_blocking=True)
        with trusted_inputs() if i else contextlib.nullcontext():
            loss = model.objective(y, x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    _sync(device)
    return seen, time.perf_counter() - t0


def make_model(device):
    torch.manual_seed(0)
    model = cu.MLPCVAE(y_shape=(1, 28, 28), z_dim=20, hidden_dims=[512], num_classes=10, learned_prior=False)
    model = model.to(device)
    return model, cu.make_adam(model.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--no-tune-allocator", action="store_true", help="leave glibc's malloc thresholds alone")
    args = parser.parse_args()
    device = cu.get_device(args.device)
    tuned = False if args.no_tune_allocator else cu.utils.tune_cpu_allocator()

    peak = matmul_gflops(device=device)
    train = cu.load_mnist("train", device)

    model, opt = make_model(device)
    flops = training_flops_per_image(model, train.images[: args.batch_size], train.labels[: args.batch_size])

    # fast path: warm up on a few batches, then one full epoch
    fast_batches = cu.TensorBatches(train.images, train.labels, batch_size=args.batch_size, seed=0)
    train_epoch(model, opt, fast_batches, device, max_batches=5)
    model, opt = make_model(device)
    fast_n, fast_s = train_epoch(model, opt, fast_batches, device)

    # DataLoader path: the same model and batch size, one full epoch
    loader = cu.mnist_dataloader("train", batch_size=args.batch_size, shuffle=True)
    model, opt = make_model(device)
    train_epoch(model, opt, loader, device, max_batches=5)
    model, opt = make_model(device)
    dl_n, dl_s = train_epoch(model, opt, loader, device)

    fast_ips, dl_ips = fast_n / fast_s, dl_n / dl_s
    peak_gflops = max(peak.values())
    result = {
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "allocator_tuned": tuned,
        "fast_images_per_s": round(fast_ips, 1),
        "dataloader_images_per_s": round(dl_ips, 1),
        "speedup": round(fast_ips / dl_ips, 2),
        "train_mflop_per_image": round(flops / 1e6, 3),
        "fast_gflop_per_s": round(fast_ips * flops / 1e9, 1),
        "peak_matmul_gflop_per_s": round(peak_gflops, 1),
        "peak_matmul_by_size": {str(k): round(v, 1) for k, v in peak.items()},
        "fraction_of_matmul_peak": round(fast_ips * flops / 1e9 / peak_gflops, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
