"""The sample quality of the shipped label CVAEs, measured as issue 12 asks (prints one JSON line per model).

    python -m cvae_utils.experiments.label_quality                  # every shipped label CVAE
    python -m cvae_utils.experiments.label_quality --record         # ... and store the figures in MANIFEST.json
    python -m cvae_utils.experiments.label_quality --per-digit 100  # a quicker, noisier look

For each model: the share of samples (``--per-digit`` of each digit, temperature 1) that the
project's digit classifier reads as the digit asked for, overall and for the worst digit, and the
same shares by a second classifier trained independently (``digit_classifier_mlp``, an MLP with
another seed); the class-conditional Fréchet distance between the project classifier's
penultimate features of the samples and of the 10,000 test digits; and the test log-likelihood by
importance sampling (S = ``--num-samples``). A first line gives the floor of the distance: 10,000
real training digits against the test digits. ``--record`` adds each model's figures to its entry
in ``data/pretrained/MANIFEST.json`` (under ``figures["sample_quality"]``).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ..data import TensorBatches, load_mnist
from ..files import read_manifest, record_files
from ..losses import evaluate_log_likelihood
from ..pretrained import PRETRAINED_DIR, load_pretrained
from ..quality import class_conditional_frechet_distance, sample_quality
from ..utils import get_device, seed_everything

LABEL_MODELS = ("label_cvae", "label_cvae_fixed_prior", "label_cvae_hybrid")
TARGETS = {"accuracy": 0.97, "worst_digit": 0.93}  # issue 12, by both classifiers, 1,000 samples per digit, T = 1


def frechet_floor(classifier, train, test, test_features=None) -> float:
    """The class-conditional Fréchet distance of real training digits against the real test digits.

    ``test_features``: ``classifier.penultimate(test.images)`` when already computed.
    """
    if test_features is None:
        test_features = classifier.penultimate(test.images)
    return class_conditional_frechet_distance(
        classifier.penultimate(train.images), train.labels, test_features, test.labels, 10
    )["mean"]


def measure(
    name: str, test, classifier, judges: dict, *, per_digit: int = 1000, num_samples: int = 1000, test_features=None
) -> dict:
    """The figures of one shipped label CVAE: sample quality by every classifier, and log p(y|x) (IS, S samples)."""
    start = time.perf_counter()
    device = test.images.device
    model = load_pretrained(name, device)
    figures = sample_quality(
        model, classifier, test.images, test.labels, per_digit, judges=judges, real_features=test_features
    )
    seed_everything(0)
    batches = TensorBatches(test.images, test.labels, batch_size=500, shuffle=False)
    log_likelihood = evaluate_log_likelihood(model, batches, num_samples=num_samples)
    return {"model": name, "samples_per_digit": per_digit, "temperature": 1.0, **figures,
            "test_images": len(test), "is_num_samples": num_samples, "test_log_likelihood": log_likelihood,
            "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__}  # fmt: skip


def record(name: str, figures: dict, floor: float) -> None:
    """Store ``figures`` (and the floor) in the manifest entry of ``name`` under ``figures["sample_quality"]``."""
    entry = dict(read_manifest(PRETRAINED_DIR)["files"][f"{name}.pt"])
    entry["figures"] = {**entry["figures"], "sample_quality": {**figures, "frechet_floor": floor}}
    record_files(PRETRAINED_DIR, {f"{name}.pt": {k: entry[k] for k in ("model", "description", "figures")}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvae_utils.experiments.label_quality",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("models", nargs="*", default=list(LABEL_MODELS))
    parser.add_argument("--per-digit", type=int, default=1000, help="samples of each digit")
    parser.add_argument("--num-samples", type=int, default=1000, help="S of the importance-sampled likelihood")
    parser.add_argument("--record", action="store_true", help="store the figures in data/pretrained/MANIFEST.json")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    device = get_device(args.device)
    test, train = load_mnist("test", device), load_mnist("train", device, limit=10_000)
    classifier = load_pretrained("digit_classifier", device)
    judges = {"digit_classifier_mlp": load_pretrained("digit_classifier_mlp", device)}
    test_features = classifier.penultimate(test.images)  # the real side of every distance: computed once
    floor = frechet_floor(classifier, train, test, test_features)
    print(json.dumps({"floor": "10,000 training digits against the 10,000 test digits", "frechet": floor}))
    for name in args.models:
        figures = measure(
            name, test, classifier, judges, per_digit=args.per_digit, num_samples=args.num_samples,
            test_features=test_features,
        )  # fmt: skip
        print(json.dumps(figures))
        if args.record:
            record(name, figures, floor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
