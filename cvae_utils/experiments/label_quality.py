"""The sample quality of the shipped label CVAEs, measured as issue 12 asks (prints one JSON line per model).

    python -m cvae_utils.experiments.label_quality                 # label_cvae and label_cvae_hybrid
    python -m cvae_utils.experiments.label_quality --per-digit 100  # a quicker, noisier look

For each model: the share of samples (``--per-digit`` of each digit, temperature 1) that the
project's digit classifier reads as the digit asked for, overall and for the worst digit; the
class-conditional Fréchet distance between the classifier's penultimate features of the samples
and of the 10,000 test digits; and the test log-likelihood by importance sampling (S =
``--num-samples``). A first line gives the floor of the distance: 10,000 real training digits
against the test digits.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ..data import TensorBatches, load_mnist
from ..losses import evaluate_log_likelihood
from ..pretrained import load_pretrained
from ..quality import class_conditional_frechet_distance, sample_quality
from ..utils import get_device, seed_everything


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvae_utils.experiments.label_quality",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("models", nargs="*", default=["label_cvae", "label_cvae_hybrid"])
    parser.add_argument("--per-digit", type=int, default=1000, help="samples of each digit")
    parser.add_argument("--num-samples", type=int, default=1000, help="S of the importance-sampled likelihood")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    device = get_device(args.device)
    test, train = load_mnist("test", device), load_mnist("train", device, limit=10_000)
    classifier = load_pretrained("digit_classifier", device)
    floor = class_conditional_frechet_distance(classifier.penultimate(train.images), train.labels,
                                               classifier.penultimate(test.images), test.labels, 10)  # fmt: skip
    print(json.dumps({"floor": "10,000 training digits against the 10,000 test digits", "frechet": floor["mean"]}))
    for name in args.models:
        start = time.perf_counter()
        model = load_pretrained(name, device)
        figures = sample_quality(model, classifier, test.images, test.labels, args.per_digit)
        seed_everything(0)
        batches = TensorBatches(test.images, test.labels, batch_size=500, shuffle=False)
        log_likelihood = evaluate_log_likelihood(model, batches, num_samples=args.num_samples)
        print(json.dumps({"model": name, "samples_per_digit": args.per_digit, **figures,
                          f"test_log_likelihood_S{args.num_samples}": log_likelihood,
                          "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
