"""The measures of sample quality: the Fréchet distance, and accuracy and variety of a label CVAE's samples."""

import pytest
import torch

from cvae_utils import pretrained, quality


def test_frechet_distance_of_a_set_with_itself_is_zero():
    a = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_an_affine_copy_has_its_closed_form():
    """b = 2a + 1: C_b = 4 C_a, and the trace of (C_a^1/2 C_b C_a^1/2)^1/2 is 2 tr(C_a).

    So FD = |m_a + 1|^2 + tr(C_a) + 4 tr(C_a) - 4 tr(C_a) = |m_a + 1|^2 + tr(C_a)."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(400, 5, generator=g) @ torch.randn(5, 5, generator=g) + torch.randn(5, generator=g)
    b = 2 * a + 1
    expected = (a.double().mean(0) + 1).pow(2).sum() + torch.cov(a.double().T).trace()
    assert quality.frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-9)
    assert quality.frechet_distance(b, a) == pytest.approx(float(expected), rel=1e-6)


def test_frechet_distance_in_one_dimension_is_the_gaussian_formula():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(300, 1, generator=g), 3 * torch.randn(200, 1, generator=g) + 2
    m1, m2, s1, s2 = a.double().mean(), b.double().mean(), a.double().std(), b.double().std()
    assert quality.frechet_distance(a, b) == pytest.approx(float((m1 - m2) ** 2 + (s1 - s2) ** 2), rel=1e-9)


def test_frechet_distance_bad_input():
    with pytest.raises(ValueError, match="two feature sets"):
        quality.frechet_distance(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="N, M >= 2"):
        quality.frechet_distance(torch.randn(1, 3), torch.randn(10, 3))


def test_class_conditional_distance_compares_class_with_class():
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(2).repeat_interleave(200)
    a = torch.randn(400, 3, generator=g) + 5 * labels[:, None]
    swapped = quality.class_conditional_frechet_distance(a, labels, a, 1 - labels, 2)
    same = quality.class_conditional_frechet_distance(a, labels, a, labels, 2)
    assert same["mean"] == pytest.approx(0.0, abs=1e-8) and swapped["mean"] > 50
    assert len(same["per_class"]) == 2


@pytest.fixture(scope="module")
def classifier():
    return pretrained.load_pretrained("digit_classifier", "cpu")


def test_prototypes_score_high_accuracy_but_a_large_distance(classifier, mnist_test):
    """The hybrid-objective model draws near-prototypes: more often right, far less varied than real digits."""
    real = mnist_test.images[:2000], mnist_test.labels[:2000]
    cvae = quality.sample_quality(pretrained.load_pretrained("label_cvae", "cpu"), classifier, *real, 100)
    hybrid = quality.sample_quality(pretrained.load_pretrained("label_cvae_hybrid", "cpu"), classifier, *real, 100)
    for result in (cvae, hybrid):
        assert len(result["per_digit"]) == 10 and result["worst_digit"] == min(result["per_digit"])
        assert 0.8 < result["accuracy"] <= 1.0
    assert hybrid["accuracy"] > cvae["accuracy"]
    assert hybrid["frechet"] > 2 * cvae["frechet"]
