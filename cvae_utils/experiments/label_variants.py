"""What makes a label CVAE draw the digit asked for: the variants tried for the shipped ``label_cvae``.

    python -m cvae_utils.experiments.label_variants            # print the recorded table
    python -m cvae_utils.experiments.label_variants run A C    # retrain variants and print their figures

Each variant is an :class:`~cvae_utils.models.MLPCVAE` trained with :func:`~cvae_utils.train.fit`
on the 60,000 grey-level training digits (Adam 1e-3, seed 0) and scored like the shipped models
(:mod:`cvae_utils.experiments.label_quality`): test ELBO, and 1,000 samples of each digit at
temperature 1 read by the project's classifier (accuracy, worst digit, class-conditional
Fréchet distance). ``RECORDED`` holds the figures measured on the 2-core CPU of the series
(2026-12-01); ``run`` measures them again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..data import TensorBatches, load_mnist
from ..models import MLPCVAE
from ..pretrained import load_pretrained
from ..quality import sample_quality
from ..train import evaluate, fit
from ..utils import get_device, seed_everything

# name: (learned prior, hidden_dims, z_dim, batch size, KL warm-up epochs, epochs)
VARIANTS = {
    "before": (True, (512,), 20, 512, 0, 40),  # label_cvae as shipped before issue 12
    "A": (True, (512, 512), 16, 256, 5, 30),
    "B": (True, (512, 512), 16, 256, 10, 30),
    "C": (False, (512, 512), 16, 256, 5, 30),
    "D": (True, (1024, 1024), 16, 256, 5, 40),  # label_cvae as shipped now
}
RECORDED = {  # measured 2026-12-01, 2-core CPU, torch 2.14.1: test ELBO, accuracy, worst digit (which), FD, seconds
    "before": {"test_elbo": -96.79, "accuracy": 0.9077, "worst_digit": 0.821, "worst_is": 8, "frechet": 119.3,
               "train_seconds": 697},
    "A": {"test_elbo": -93.85, "accuracy": 0.954, "worst_digit": 0.901, "worst_is": 9, "frechet": 53.1,
          "train_seconds": 167},
    "B": {"test_elbo": -94.09, "accuracy": 0.9525, "worst_digit": 0.887, "worst_is": 9, "frechet": 57.8,
          "train_seconds": 171},
    "C": {"test_elbo": -95.08, "accuracy": 0.9299, "worst_digit": 0.839, "worst_is": 5, "frechet": 102.5,
          "train_seconds": 139},
    "D": {"test_elbo": -92.43, "accuracy": 0.9745, "worst_digit": 0.931, "worst_is": 5, "frechet": 38.3,
          "train_seconds": 608},
}  # fmt: skip


def describe(name: str) -> str:
    learned, hidden, z_dim, batch, warmup, epochs = VARIANTS[name]
    prior = "learned p(z|x)" if learned else "fixed N(0, I)"
    return f"{prior}, hidden {list(hidden)}, z {z_dim}, batch {batch}, KL warm-up {warmup}, {epochs} epochs"


def table(figures: dict[str, dict] = RECORDED) -> str:
    """The variants and their figures as a markdown table.

    Taught in notebook 6, "Learned or fixed prior?".
    """
    rows = [
        "| variant | settings | test ELBO | accuracy | worst digit | Fréchet distance |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        settings = describe(name).replace("|", "\\|")  # a bar inside a cell must be escaped
        rows.append(f"| {name} | {settings} | {f['test_elbo']:.2f} | {f['accuracy']:.3f} | "
                    f"{f['worst_digit']:.3f} (digit {f['worst_is']}) | {f['frechet']:.1f} |")  # fmt: skip
    return "\n".join(rows)


def run_variant(name: str, device=None, per_digit: int = 1000) -> dict:
    """Train variant ``name`` from scratch (full data) and measure it."""
    learned, hidden, z_dim, batch, warmup, epochs = VARIANTS[name]
    device = get_device(device)
    train, test = load_mnist("train", device), load_mnist("test", device)
    seed_everything(0)
    model = MLPCVAE(z_dim=z_dim, hidden_dims=list(hidden), num_classes=10, learned_prior=learned).to(device)
    start = time.perf_counter()
    fit(model, TensorBatches(train.images, train.labels, batch_size=batch, seed=0), num_epochs=epochs,
        kl_warmup_epochs=warmup, progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    elbo = evaluate(model, TensorBatches(test.images, test.labels, batch_size=1000, shuffle=False))["elbo"]
    q = sample_quality(model, load_pretrained("digit_classifier", device), test.images, test.labels, per_digit)
    worst = min(range(10), key=lambda d: q["per_digit"][d])
    return {"test_elbo": round(elbo, 2), "accuracy": round(q["accuracy"], 4), "worst_digit": round(q["worst_digit"], 3),
            "worst_is": worst, "frechet": round(q["frechet"], 1), "train_seconds": round(seconds)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvae_utils.experiments.label_variants",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    sub = parser.add_subparsers(dest="command")
    r = sub.add_parser("run", help="retrain variants (default: all) and print one JSON line each")
    r.add_argument("names", nargs="*", help=f"default: all of {list(VARIANTS)}")
    r.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.command != "run":
        print(table())
        return 0
    unknown = sorted(set(args.names) - set(VARIANTS))
    if unknown:
        print(f"no variant named {unknown}; known: {list(VARIANTS)}", file=sys.stderr)
        return 2
    for name in args.names or list(VARIANTS):
        print(json.dumps({"variant": name, "settings": describe(name), **run_variant(name, args.device)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
