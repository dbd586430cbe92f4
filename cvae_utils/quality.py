"""How good are a label CVAE's samples: the digit asked for, and as varied as real digits of that digit.

* **accuracy**: the share of samples that a classifier reads as the digit asked for
  (:func:`cvae_utils.sampling.conditional_accuracy`);
* **class-conditional Fréchet distance**: for each digit, the Fréchet distance between Gaussians
  fitted to a classifier's penultimate features of the samples and of real test digits of that
  class, averaged over the classes (:func:`class_conditional_frechet_distance`). A model that
  draws one prototype per class scores a high accuracy but a large distance (the samples' spread
  is too small); real training digits against real test digits give the floor.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .sampling import sample_noise


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2) of Gaussians fitted to features a, b.

    ``a`` (N, D) and ``b`` (M, D) are feature sets (N, M >= 2), computed in float64. The matrix
    square root is taken through symmetric eigendecompositions, so it stays real.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two feature sets (N, D) and (M, D) with N, M >= 2; got {tuple(a.shape)}, {tuple(b.shape)}."
        )
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    values, vectors = torch.linalg.eigh(cov_a)
    sqrt_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    mean_term = (a.mean(0) - b.mean(0)).pow(2).sum()
    return float(mean_term + cov_a.trace() + cov_b.trace() - 2 * cross)


def class_conditional_frechet_distance(
    features_a: Tensor, labels_a: Tensor, features_b: Tensor, labels_b: Tensor, num_classes: int
) -> dict:
    """The Fréchet distance between the features of each class in a and in b: ``{"mean", "per_class"}``."""
    per_class = [frechet_distance(features_a[labels_a == c], features_b[labels_b == c]) for c in range(num_classes)]
    return {"mean": sum(per_class) / num_classes, "per_class": per_class}


@torch.no_grad()
def sample_quality(
    model,
    classifier,
    images: Tensor,
    labels: Tensor,
    num_per_digit: int = 1000,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    judges: Mapping[str, nn.Module] | None = None,
    real_features: Tensor | None = None,
) -> dict:
    """Accuracy (overall, per digit, worst) and class-conditional Fréchet distance of ``model``'s samples.

    ``num_per_digit`` samples of each class are drawn from p(y|x) at ``temperature`` (noise from
    ``seed``); ``classifier`` (with ``predict`` and ``penultimate``) reads them and the real
    ``images`` with their ``labels`` (e.g. the test split). Each of ``judges`` ({name:
    classifier}, e.g. a second classifier trained independently) reads the same samples too:
    ``result["judges"][name]`` holds its accuracy, per-digit shares and worst digit.
    ``real_features``: ``classifier.penultimate(images)`` when already computed; they depend
    only on the classifier and the real images, so several models can be judged against them
    without recomputing them.

    Taught in notebook 6, "Does the model draw the digit we ask for?".
    """
    num_classes = int(model.num_classes)
    device = next(model.parameters()).device
    asked = torch.arange(num_classes, device=device).repeat_interleave(num_per_digit)
    eps = sample_noise(len(asked), model.z_dim, seed).to(device)
    samples = model.sample(len(asked), asked, temperature=temperature, eps=eps)

    if real_features is not None and len(real_features) != len(images):
        raise ValueError(
            f"real_features holds {len(real_features)} rows for {len(images)} images: pass "
            "classifier.penultimate(images) for these very images, or leave real_features out."
        )

    def accuracy(predicted: Tensor) -> dict:
        per_digit = [(predicted[asked == c] == c).float().mean().item() for c in range(num_classes)]
        return {"accuracy": sum(per_digit) / num_classes, "per_digit": per_digit, "worst_digit": min(per_digit)}

    classifier = classifier.to(device)
    if hasattr(classifier, "read"):  # one pass gives both the classes and the features
        predicted, features = classifier.read(samples)
    else:
        predicted, features = classifier.predict(samples), classifier.penultimate(samples)
    if real_features is None:
        real_features = classifier.penultimate(images.to(device))
    fd = class_conditional_frechet_distance(features, asked, real_features.to(device), labels.to(device), num_classes)
    judged = {name: accuracy(judge.to(device).predict(samples)) for name, judge in (judges or {}).items()}
    return {**accuracy(predicted), "frechet": fd["mean"], "frechet_per_class": fd["per_class"], "judges": judged}
