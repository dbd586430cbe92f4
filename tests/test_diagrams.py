"""The pictures of the models (cvae_utils.diagrams): each draws, and says what the model is."""

import io

import matplotlib
import pytest

import cvae_utils as cu
from cvae_utils import diagrams

matplotlib.use("Agg")


def _texts(fig):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # it renders
    assert buffer.getvalue().startswith(b"\x89PNG")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    return "\n".join(texts)


@pytest.mark.parametrize(
    "kind, present, absent",
    [
        ("vae", ["p(y|z)", "q(z|y)", "z", "y"], ["x"]),
        ("cvae", ["p(z|x)", "p(y|x,z)", "q(z|x,y)", "x"], []),
        ("baseline", ["ŷ = f(x)", "baseline"], ["z"]),
        ("gsnn", ["p(z|x)", "p(y|x,z)", "z ~ p(z|x)", "recognition network unused"], ["q(z|x,y)"]),
    ],
)
def test_graphical_models_name_their_networks(kind, present, absent):
    texts = _texts(diagrams.graphical_model(kind))
    lines = texts.splitlines()
    for label in present:
        assert label in texts, label
    for label in absent:
        assert label not in lines, label  # not a node of this model


def test_graphical_model_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind='hybrid' is not one of"):
        diagrams.graphical_model("hybrid")


def test_network_diagram_reads_the_shapes_off_the_model():
    model = cu.MLPCVAE(num_classes=10, z_dim=16, hidden_dims=[300, 200]).train()
    texts = _texts(diagrams.network_diagram(model))
    for expected in ("y: (B, 1, 28, 28)", "μ, log σ²: (B, 16) each", "794 → 300 → 200 → 32", "10 → 300 → 200 → 32",
                     "26 → 200 → 300 → 784", "logits of y: (B, 1, 28, 28)", "x: label (B,)"):  # fmt: skip
        assert expected in texts, expected
    assert model.training  # its mode is given back


def test_network_diagram_of_a_fixed_prior_a_conv_model_and_an_image_condition():
    fixed = _texts(diagrams.network_diagram(cu.MLPCVAE(num_classes=10, z_dim=8, hidden_dims=[64], learned_prior=False)))
    assert "fixed N(0, I)" in fixed and "(zeros: N(0, I), no network)" in fixed
    conv = _texts(diagrams.network_diagram(cu.ConditionalVAE((1, 28, 28), 20, [32, 64], num_classes=10)))
    assert "μ, log σ²: (B, 20) each" in conv and "logits of y: (B, 1, 28, 28)" in conv and "→" not in conv
    assert "fixed N(0, I)" in conv  # the starting model's prior: no network
    quadrant = cu.MLPCVAE(y_shape=(1, 28, 28), x_shape=(1, 28, 28), z_dim=4, hidden_dims=[32])
    assert "x: (B, 1, 28, 28)" in _texts(diagrams.network_diagram(quadrant))


def test_network_diagram_of_a_quadrant_cvae_says_what_each_network_reads():
    """The frozen baseline's x̂ feeds the prior and generation networks; the recognition network reads one image."""
    model = cu.QuadrantCVAE(z_dim=4, hidden_dims=[32], baseline_hidden_dims=[16]).train()
    texts = _texts(diagrams.network_diagram(model))
    for expected in ("y, x: (B, 1, 28, 28) each\n→ one image: x's observed and\ny's target pixels (B, 784)",
                     "→ x̂ = fill_missing(x): (B, 784)", "z: (B, 4), x̂: (B, 784)\nside by side: (B, 788)",
                     "788 → 32 → 784", "the frozen BaselineNet (784 → 16 → 784)"):  # fmt: skip
        assert expected in texts, expected
    assert "z: (B, 4)\nx: (B, 1, 28, 28)" not in texts  # the generation network does not read the raw x
    assert model.training and not model.baseline.training
    pyro_layout = cu.QuadrantCVAE(z_dim=4, hidden_dims=[32], baseline_hidden_dims=[16], generation_input="z")
    texts = _texts(diagrams.network_diagram(pyro_layout))
    assert "(z alone: x̂ not read)" in texts and "4 → 32 → 784" in texts and "side by side" not in texts


def test_reparameterisation_graph_keeps_the_noise_off_the_gradient_path():
    texts = _texts(diagrams.reparameterisation_graph())
    assert "z = μ + σ ⊙ ε" in texts and "random: no gradient" in texts and "gradients (backward pass)" in texts
    assert "−log p(y|x,z)" in texts and "KL part is closed form" in texts  # the drawn loss is the part that needs z
