"""Training speed of the library against an earlier revision of itself, in one process.

    python benchmarks/bench_against_revision.py bb6af9d            # the label CVAE's step, batch 512
    python benchmarks/bench_against_revision.py HEAD~3 --blocks 30

The revision's ``cvae_utils`` is unpacked from git into a temporary folder under another
name, so both versions live in one process. The same model (the label-conditioned MLP CVAE
of ``bench_mlp_throughput.py``: 784+10 -> 512 -> z = 20, N(0, I) prior), the same batches
and the same optimizer run in alternating blocks of steps, so that the machine's drift
(large on a shared 2-core machine) falls on both sides alike. Each side trains as ``fit``
does in its revision: the current one checks the first batch in full and runs the rest
inside ``trusted_inputs()``; a revision without that mechanism checks every batch.
Prints one JSON line: the images/s of each block, their medians and the ratio of medians.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def import_revision(revision: str, folder: Path):
    """``cvae_utils`` as it was at ``revision``, imported as the package ``cvae_utils_old``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "cvae_utils"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "cvae_utils").rename(folder / "cvae_utils_old")
    sys.path.insert(0, str(folder))
    return importlib.import_module("cvae_utils_old")


def make(lib, seed: int = 0):
    torch.manual_seed(seed)
    model = lib.MLPCVAE(y_shape=(1, 28, 28), z_dim=20, hidden_dims=[512], num_classes=10, learned_prior=False)
    return model, lib.make_adam(model.parameters(), lr=1e-3)


def step_block(model, optimizer, batches, trusted) -> float:
    """Images/s over one block of (y, x) batches."""
    seen, t0 = 0, time.perf_counter()
    for y, x in batches:
        with trusted():
            loss = model.objective(y, x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="a git revision whose cvae_utils to compare with (e.g. bb6af9d)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--blocks", type=int, default=16, help="blocks per side")
    parser.add_argument("--steps", type=int, default=25, help="training steps per block")
    args = parser.parse_args()

    import cvae_utils as new

    new.utils.tune_cpu_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        old = import_revision(args.revision, Path(tmp))
        data = new.load_mnist("train")
        batches = list(new.TensorBatches(data.images, data.labels, batch_size=args.batch_size, drop_last=True, seed=0))
        batches = batches[: args.steps]
        sides = {
            "current": (*make(new), new.validation.trusted_inputs),
            args.revision: (*make(old), contextlib.nullcontext),
        }
        for model, optimizer, trusted in sides.values():  # warm-up, and the first batch checked in full
            model.objective(*batches[0])
            step_block(model, optimizer, batches[:3], trusted)
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for block in range(args.blocks):
            order = list(sides) if block % 2 == 0 else list(sides)[::-1]
            for name in order:
                rates[name].append(round(step_block(*sides[name][:2], batches, sides[name][2]), 1))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(json.dumps({
        "batch_size": args.batch_size, "steps_per_block": args.steps, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "median_images_per_s": medians,
        "current_over_revision": round(medians["current"] / medians[args.revision], 3), "blocks": rates,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
