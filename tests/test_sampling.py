"""The sampler's drawing function and widget, latent usage, and scoring with the classifier."""

import pytest
import torch

import cvae_utils as cu
from cvae_utils import pretrained
from cvae_utils.experiments import pretrained as recipes
from cvae_utils.sampling import conditional_accuracy, latent_usage, render_samples, sampler_widget


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return cu.MLPCVAE(num_classes=10, z_dim=6, hidden_dims=[32]).eval()


def test_render_samples_is_a_pure_function_of_its_arguments(model):
    a = render_samples(model, 3, {0: 1.5}, temperature=0.8, seed=4, num_samples=5)
    assert a.shape == (5, 1, 28, 28) and (0 <= a).all() and (a <= 1).all()
    assert torch.equal(a, render_samples(model, 3, {0: 1.5}, temperature=0.8, seed=4, num_samples=5))
    assert not torch.equal(a, render_samples(model, 4, {0: 1.5}, temperature=0.8, seed=4, num_samples=5))
    assert not torch.equal(a, render_samples(model, 3, {0: -1.5}, temperature=0.8, seed=4, num_samples=5))
    assert not torch.equal(a, render_samples(model, 3, {0: 1.5}, temperature=0.8, seed=5, num_samples=5))
    # the slider value is the same for every sample: at temperature 0 all samples coincide
    still = render_samples(model, 3, {0: 2.0}, temperature=0.0, seed=1, num_samples=3)
    assert torch.allclose(still[0], still[1])


def test_render_samples_bad_input(model):
    with pytest.raises(ValueError, match="z_dim=6"):
        render_samples(model, 3, {6: 1.0})
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        render_samples(model, 10)
    with pytest.raises(ValueError, match="num_samples"):
        render_samples(model, 1, num_samples=0)


def test_sampler_widget_redraws_when_controls_change(model):
    import matplotlib.pyplot as plt

    w = sampler_widget(model, dims=[0, 2], num_samples=4)
    c = w.controls
    assert set(c["sliders"]) == {0, 2}
    first = w.render()
    c["digit"].value = 7
    after_digit = w.render()
    assert not torch.equal(first, after_digit)
    c["sliders"][2].value = 2.5
    after_slider = w.render()
    assert not torch.equal(after_digit, after_slider)
    seed = c["seed"].value
    c["resample"].click()
    assert c["seed"].value == seed + 1
    assert not torch.equal(after_slider, w.render())
    assert torch.equal(w.render(), render_samples(model, 7, {0: 0.0, 2: 2.5}, seed=seed + 1, num_samples=4))
    plt.close("all")


def test_sampler_widget_labels_say_what_they_set_and_fit(model):
    c = sampler_widget(model, dims=[0, 2], num_samples=2).controls
    assert [s.description for s in c["sliders"].values()] == ["ε[0]", "ε[2]"]  # eps, as notebook 6 names it
    assert c["temperature"].description == "temperature T"
    for control in (c["digit"], c["temperature"], c["seed"], c["use_sliders"], *c["sliders"].values()):
        assert control.style.description_width == "initial", control.description  # never cut to "temperat..."


def test_latent_usage(model):
    y, x = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    usage = latent_usage(model, cu.TensorBatches(y, x, batch_size=16, shuffle=False))
    assert usage.shape == (6,) and (usage >= 0).all()
    out = model(y, x)
    total = cu.kl_diag_gaussians(out.mu, out.logvar, out.prior_mu, out.prior_logvar).mean()
    torch.testing.assert_close(usage.sum(), total, rtol=1e-4, atol=1e-4)


def test_conditional_accuracy_counts(model):
    class Oracle(torch.nn.Module):
        """Says every image shows a 3."""

        def predict(self, x):
            return torch.full((len(x),), 3)

    result = conditional_accuracy(model, Oracle(), num_per_digit=5)
    assert result["accuracy"] == pytest.approx(0.1)
    assert result["per_digit"][3] == 1.0 and result["per_digit"][0] == 0.0
    assert result["confusion"].sum() == 50 and result["confusion"][:, 3].sum() == 50


# --- the shipped pretrained weights ---------------------------------------------------


def test_shipped_weights_match_the_manifest():
    assert tuple(recipes.RECIPES) == pretrained.NAMES
    for name in pretrained.NAMES:
        path = pretrained.verified_path(name)
        assert path is not None, (
            f"{name}: shipped weights missing or changed (python -m cvae_utils.experiments.pretrained build {name})"
        )
        assert path.parent == pretrained.PRETRAINED_DIR and path.stat().st_size < 12_000_000


def test_load_pretrained_loads_without_training(monkeypatch):
    monkeypatch.setattr(recipes, "train_recipe", lambda *a, **k: pytest.fail("trained instead of loading"))
    m = pretrained.load_pretrained("label_cvae", "cpu")
    assert isinstance(m, cu.MLPCVAE) and not m.training


@pytest.fixture
def tampered_shipped_dir(tmp_path, monkeypatch):
    """A copy of data/pretrained whose label_cvae.pt no longer matches its checksum; an empty user cache."""
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(pretrained.PRETRAINED_DIR, shipped)
    (shipped / "label_cvae.pt").write_bytes(b"tampered")
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", shipped)
    monkeypatch.setenv("CVAE_CACHE_DIR", str(tmp_path / "cache"))
    return shipped


def test_corrupt_weights_are_not_loaded_but_retrained(tampered_shipped_dir, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(
        recipes, "train_recipe", lambda name, *a, **k: calls.append(name) or (cu.MLPCVAE(num_classes=10), {})
    )
    pretrained.load_pretrained("label_cvae", "cpu")
    assert calls == ["label_cvae"]
    assert "no shipped weights match their checksum" in capsys.readouterr().err
    with pytest.raises(KeyError, match="known"):
        pretrained.load_pretrained("nope")


@pytest.fixture(scope="module")
def classifier():
    return pretrained.load_pretrained("digit_classifier", "cpu")


def test_classifier_reaches_99_percent_on_the_test_set(mnist_test, classifier):
    accuracy = (classifier.predict(mnist_test.images) == mnist_test.labels).float().mean().item()
    assert accuracy >= 0.99


def test_hybrid_cvae_generates_the_digit_asked_for(classifier):
    """The issue's target: >= 97% of T = 1 samples classified as the digit asked for."""
    model = pretrained.load_pretrained("label_cvae_hybrid", "cpu")
    result = conditional_accuracy(model, classifier, num_per_digit=100, seed=0)
    assert result["accuracy"] >= 0.97, result["per_digit"]


def test_cvae_objective_model_keeps_its_measured_share(classifier):
    """The plain-CVAE model misses the target (about 0.9 at T = 1; notebook 6 explains why).

    A guard against regressions."""
    model = pretrained.load_pretrained("label_cvae", "cpu")
    result = conditional_accuracy(model, classifier, num_per_digit=100, seed=0)
    assert result["accuracy"] >= 0.85, result["per_digit"]
    assert conditional_accuracy(model, classifier, num_per_digit=100, seed=0, temperature=0.5)["accuracy"] >= 0.97


def test_transfer_style_keeps_own_label_reconstruction_and_shapes():
    torch.manual_seed(0)
    m = cu.MLPCVAE(num_classes=10, z_dim=6, hidden_dims=[32])  # learned prior: mu_p, sigma_p depend on x
    y, x = torch.rand(3, 1, 28, 28), torch.tensor([4, 7, 1])
    eps = cu.standardised_latent(m, y, x)
    mu, _ = m.encode(y, x)
    prior_mu, prior_logvar = m.prior(x)
    torch.testing.assert_close(prior_mu + torch.exp(0.5 * prior_logvar) * eps, mu)
    out = cu.transfer_style(m, y, x, torch.arange(10))
    assert out.shape == (30, 1, 28, 28)
    # for each image, the column of its own label is its reconstruction
    for i, label in enumerate(x.tolist()):
        torch.testing.assert_close(out[10 * i + label], m.generate(y[i : i + 1], x[i : i + 1])[0])
    assert cu.transfer_style(m, y, x, 5).shape == (3, 1, 28, 28)


def test_standardised_latent_with_a_fixed_prior_is_the_recognition_mean():
    torch.manual_seed(0)
    m = cu.MLPCVAE(num_classes=10, z_dim=6, hidden_dims=[32], learned_prior=False)
    y, x = torch.rand(2, 1, 28, 28), torch.tensor([0, 9])
    torch.testing.assert_close(cu.standardised_latent(m, y, x), m.encode(y, x)[0])
