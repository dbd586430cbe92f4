import copy

import pytest
import torch

import cvae_utils as cu


def small_conv_cvae(channels=1, size=28, z=4, hidden=(8, 16), num_classes=10):
    """The only place a test below spells the ConditionalVAE constructor's argument names."""
    return cu.ConditionalVAE(y_shape=(channels, size, size), num_classes=num_classes, z_dim=z, hidden_dims=list(hidden))


def label_batch(n=4, shape=(1, 28, 28)):
    return torch.rand(n, *shape), torch.randint(0, 10, (n,))


# --- the MLP CVAE -------------------------------------------------------------------


def test_mlp_cvae_label_condition_shapes():
    m = cu.MLPCVAE(num_classes=10, z_dim=8, hidden_dims=[64, 32])
    y, x = label_batch()
    out = m(y, x)
    assert isinstance(out, cu.ForwardOutput)
    assert out.decoded.shape == y.shape and out.mu.shape == (4, 8) and out.prior_mu.shape == (4, 8)
    terms = m.loss_function(out)
    assert set(terms) == {"loss", "recon", "kl", "elbo"}
    assert torch.allclose(terms["elbo"], -(terms["recon"] + terms["kl"]))
    assert m.sample(5, 3).shape == (5, 1, 28, 28)
    assert m.generate(y, x).shape == y.shape


def test_mlp_cvae_image_condition():
    m = cu.MLPCVAE(y_shape=(1, 28, 28), x_shape=(1, 28, 28), z_dim=4, hidden_dims=[32])
    images = torch.rand(3, 1, 28, 28)
    y, x, mask = cu.split_quadrants(images, 2)
    terms = m.objective(y, x, mask)
    assert terms["loss"].ndim == 0 and torch.isfinite(terms["loss"])
    s = m.sample(6, x[0])
    assert s.shape == (6, 1, 28, 28) and (0 <= s).all() and (s <= 1).all()


def test_constructor_never_mutates_its_arguments():
    hidden = [64, 32]
    shape = [1, 28, 28]
    cu.MLPCVAE(y_shape=shape, num_classes=10, hidden_dims=hidden)
    cu.ConditionalVAE((1, 28, 28), 8, num_classes=10, hidden_dims=hidden)
    cu.BaselineNet(x_shape=shape, hidden_dims=hidden)
    assert hidden == [64, 32] and shape == [1, 28, 28]


def test_mlp_cvae_layer_sizes_follow_the_arguments():
    m = cu.MLPCVAE(y_shape=(3, 8, 8), num_classes=5, z_dim=6, hidden_dims=[40, 30])
    assert m.recognition_net[0].in_features == 3 * 8 * 8 + 5
    assert m.recognition_net[-1].out_features == 12
    assert m.prior_net[0].in_features == 5
    assert m.generation_net[0].in_features == 6 + 5 and m.generation_net[0].out_features == 30
    assert m.generation_net[-1].out_features == 192


def test_fixed_prior_is_standard_normal_and_learned_prior_is_not():
    y, x = label_batch()
    fixed = cu.MLPCVAE(num_classes=10, learned_prior=False)
    mu, logvar = fixed.prior(x)
    assert torch.equal(mu, torch.zeros(4, 20)) and torch.equal(logvar, torch.zeros(4, 20))
    assert fixed.prior_net is None
    learned = cu.MLPCVAE(num_classes=10)
    mu, _ = learned.prior(x)
    assert mu.abs().sum() > 0
    # with the fixed prior the KL term is the closed form against N(0, I)
    out = fixed(y, x)
    assert torch.allclose(fixed.loss_function(out)["kl"], cu.kl_standard_normal(out.mu, out.logvar).mean())


def test_exactly_one_condition_is_required():
    with pytest.raises(ValueError, match="exactly one condition"):
        cu.MLPCVAE()
    with pytest.raises(ValueError, match="exactly one condition"):
        cu.MLPCVAE(num_classes=10, x_shape=(1, 28, 28))


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (torch.tensor([0, 1, 2, 10]), ValueError, r"\[0, 9\].*10"),
        (torch.tensor([-1, 1, 2, 3]), ValueError, r"\[0, 9\].*-1"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "integer class indices"),
        (torch.eye(10)[:4], ValueError, r"shape \(batch,\)"),
    ],
)
def test_bad_labels_are_clear_errors(bad, error, match):
    m = cu.MLPCVAE(num_classes=10)
    y, _ = label_batch()
    with pytest.raises(error, match=match):
        m(y, bad)


def test_bad_images_are_clear_errors():
    m = cu.MLPCVAE(num_classes=10)
    y, x = label_batch()
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 28, 28\)"):
        m(y.view(4, 784), x)
    with pytest.raises(ValueError, match="unsqueeze"):
        m(y[0], x[:1])
    with pytest.raises(TypeError, match="float tensor"):
        m((y * 255).to(torch.uint8), x)
    y_nan = y.clone()
    y_nan[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m(y_nan, x)
    with pytest.raises(ValueError, match="num_samples"):
        m.sample(3, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"eps must have shape \(3, 20\)"):
        m.sample(3, 1, eps=torch.zeros(3, 5))
    with pytest.raises(ValueError, match="temperature"):
        m.sample(3, 1, temperature=-1.0)


def test_sample_with_fixed_noise_and_temperature():
    m = cu.MLPCVAE(num_classes=10, z_dim=4)
    eps = torch.randn(3, 4)
    assert torch.equal(m.sample(3, 7, eps=eps), m.sample(3, 7, eps=eps))
    # temperature 0 decodes the prior mean, whatever the noise
    assert torch.allclose(m.sample(3, 7, temperature=0.0), m.sample(3, 7, temperature=0.0, eps=eps))
    mu, _ = m.prior(torch.tensor([7]))
    assert torch.allclose(m.sample(1, 7, temperature=0.0), torch.sigmoid(m.decode(mu, torch.tensor([7]))))
    g = torch.Generator().manual_seed(1)
    a = m.sample(2, 3, generator=g)
    g.manual_seed(1)
    assert torch.equal(a, m.sample(2, 3, generator=g))


def test_gaussian_likelihood_option():
    m = cu.MLPCVAE(num_classes=10, likelihood="gaussian", obs_std=0.2)
    y, x = label_batch()
    out = m(y, x)
    expected = torch.distributions.Normal(out.decoded, 0.2).log_prob(y).flatten(1).sum(1)
    assert torch.allclose(m.log_likelihood(out.decoded, y), expected, atol=1e-3)
    assert torch.equal(m.mean_output(out.decoded), out.decoded)
    with pytest.raises(ValueError, match="likelihood"):
        cu.MLPCVAE(num_classes=10, likelihood="poisson")
    with pytest.raises(ValueError, match="obs_std"):
        cu.MLPCVAE(num_classes=10, likelihood="gaussian", obs_std=0)


# --- the starting model's convolutional ConditionalVAE ------------------------------------------


@pytest.mark.parametrize(
    "channels,size,hidden",
    [(1, 28, [32, 64]), (1, 28, None), (3, 64, None), (3, 64, [16, 32, 64]), (2, 17, [8, 16, 32]), (1, 5, [8])],
)
def test_conditional_vae_any_size_and_channel_count(channels, size, hidden):
    m = cu.ConditionalVAE((channels, size, size), num_classes=10, z_dim=8, hidden_dims=hidden)
    y, x = torch.rand(2, channels, size, size), torch.tensor([3, 9])
    out = m(y, x)
    assert out.decoded.shape == y.shape
    assert m.sample(3, 4).shape == (3, channels, size, size)
    assert m.generate(y, x).shape == y.shape
    terms = m.loss_function(out)
    assert torch.isfinite(terms["loss"])
    # nats per example: the reconstruction term sums over every pixel and channel
    assert terms["recon"] > 0.3 * channels * size * size


def test_conditional_vae_default_is_the_seed_architecture():
    m = cu.ConditionalVAE(
        (3, 64, 64), 128, num_classes=10
    )  # the starting model's defaults: 64 px, [32, 64, 128, 256, 512]
    assert m.bottleneck == (512, 2, 2)
    assert m.final_layer[-1].out_channels == 3
    assert m.embed_class.out_features == 64 * 64
    assert not any(isinstance(l, torch.nn.Tanh) for l in m.modules())


def test_conditional_vae_rejects_wrong_image_size():
    m = cu.ConditionalVAE((1, 28, 28), 8, num_classes=10, hidden_dims=[16, 32])
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 28, 28\)"):
        m(torch.rand(2, 1, 32, 32), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        m(torch.rand(2, 1, 28, 28), torch.tensor([0, 12]))


@pytest.fixture
def one_thread():
    """Tiny convolutions: a second thread only adds synchronisation, which on a busy machine costs
    ten times the arithmetic (measured: 0.02 s a step on one thread, 0.1-0.4 s on two under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_conditional_vae_learns_a_few_images_and_uses_its_label(mnist_test, one_thread):
    """Overfit 16 MNIST digits: the bound must fall far below its starting value, and the
    label must steer the decoder (same z, two labels: different images)."""
    y, x = mnist_test.images[:16], mnist_test.labels[:16]
    torch.manual_seed(0)
    model = small_conv_cvae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def bound():  # the negative ELBO by losses.cvae_terms, not through the loss_function being trained
        model.eval()  # BatchNorm's running statistics: the figure of the model as it is used
        with torch.no_grad():
            torch.manual_seed(1)
            return {k: v.item() for k, v in cu.cvae_terms(model, y, x).items()}

    def label_gap():  # the same noise, labels 1 and 7: mean absolute pixel difference of the samples
        eps = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
        return (model.sample(8, 1, eps=eps) - model.sample(8, 7, eps=eps)).abs().mean().item()

    before, gap_before = bound()["loss"], label_gap()
    model.train()
    for _ in range(60):
        terms = model.loss_function(model(y, x))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    trained = bound()
    after = trained["loss"]
    # measured on seeds 0-4: 540-573 -> 96-106 nats, a factor of 5.2-5.8
    assert after < before / 3, (before, after)
    # z carries information (measured: KL 4.9-7.1 nats); a collapsed posterior (KL ~0.01) decodes
    # one image per label, which these 16 digits would almost allow
    assert trained["kl"] > 1.0, trained

    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(y, x)
        other = (x + 1) % 10  # every image decoded from the same z with a wrong label
        right, wrong = model.decode(mu, x), model.decode(mu, other)
        nll_right = -model.log_likelihood(right, y).mean().item()
        nll_wrong = -model.log_likelihood(wrong, y).mean().item()
        pixel_gap = (model.mean_output(right) - model.mean_output(wrong)).abs().mean().item()
    # measured on seeds 0-4: 89-110 nats with the right label, 311-447 (3.1-4.1x) with the wrong one;
    # mean pixels 0.083-0.094 apart
    assert nll_wrong > 2 * nll_right, (nll_right, nll_wrong)
    assert pixel_gap > 0.03, pixel_gap
    # samples, measured on seeds 0-4: 0.0009-0.0016 apart untrained, 0.058-0.077 trained
    assert label_gap() > max(0.02, 5 * gap_before), (gap_before, label_gap())


# --- baseline and registry ------------------------------------------------------------


def test_baseline_net_objective_is_masked_bernoulli_nll():
    b = cu.BaselineNet(hidden_dims=[32])
    images = torch.rand(4, 1, 28, 28)
    y, x, mask = cu.split_quadrants(images, 1)
    terms = b.objective(y, x, mask)
    expected = -cu.bernoulli_log_likelihood(b(x), y, mask).mean()
    assert torch.allclose(terms["loss"], expected)
    assert b.predict(x).shape == images.shape


@pytest.mark.parametrize(
    "make",
    [
        lambda: cu.MLPCVAE(num_classes=10, hidden_dims=[16]),
        lambda: cu.MLPCVAE(x_shape=(1, 28, 28), hidden_dims=[16], learned_prior=False),
        lambda: cu.ConditionalVAE((1, 28, 28), 4, num_classes=10, hidden_dims=[8, 16]),
        lambda: cu.BaselineNet(hidden_dims=[16]),
        lambda: cu.LinearGaussianCVAE(),
    ],
)
def test_build_model_rebuilds_from_config(make):
    m = make()
    config = copy.deepcopy(m.config)
    rebuilt = cu.build_model(config)
    assert type(rebuilt) is type(m) and rebuilt.config == m.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}


def test_build_model_bad_config():
    with pytest.raises(ValueError, match="unknown model"):
        cu.build_model({"name": "Nope", "kwargs": {}})
    with pytest.raises(ValueError, match="not a model config"):
        cu.build_model({"kwargs": {}})


def test_sample_and_generate_use_eval_mode_and_restore_it():
    # right after fit the model is in training mode; BatchNorm must still use its running statistics
    torch.manual_seed(0)
    model = cu.ConditionalVAE(y_shape=(1, 28, 28), num_classes=10, z_dim=4, hidden_dims=[8, 16])
    y, x = torch.rand(8, 1, 28, 28), torch.arange(8) % 10
    model.train()
    model(y, x)  # moves the running statistics away from their initial values
    eps = torch.randn(3, 4)
    model.train()
    in_train = model.sample(3, torch.tensor([1, 2, 3]), eps=eps)
    assert model.training
    recon_train = model.generate(y, x)
    assert model.training
    model.eval()
    assert torch.allclose(in_train, model.sample(3, torch.tensor([1, 2, 3]), eps=eps))
    assert torch.allclose(recon_train, model.generate(y, x))
    assert not model.training
