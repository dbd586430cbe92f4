"""Pictures of the models, drawn with matplotlib so that they show wherever a notebook's outputs do.

* :func:`graphical_model`: the graphical model of the VAE, the CVAE, the baseline or the GSNN
  (the paper's Figure 1 style): observed variables shaded, solid arrows for the generative
  model, dashed arrows for the recognition network.
* :func:`network_diagram`: a CVAE's three networks with the tensor shapes each one takes and
  gives, read off the model itself (a forward pass on a batch of two dummy examples); for a model
  that fills x's missing pixels with a frozen baseline (``fill_missing``), what each network reads.
* :func:`reparameterisation_graph`: z = mu + sigma * eps as a computation graph, the random
  node eps off the path that gradients take back to the encoder.

Each returns the matplotlib Figure (shown by a notebook when it is a cell's last expression, or
by ``plt.show()``).
"""

from __future__ import annotations

import torch
from torch import nn

KINDS = ("vae", "cvae", "baseline", "gsnn")

_OBSERVED = "#d9d9d9"
_LATENT = "white"
_GENERATIVE = "black"
_RECOGNITION = "tab:blue"
_GRADIENT = "tab:red"


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _node(ax, xy, label, observed, radius=0.32, deterministic=False):
    from matplotlib.patches import Circle, FancyBboxPatch

    if deterministic:  # a deterministic quantity: a square, not a random variable's circle
        r = radius * 0.9
        patch = FancyBboxPatch(
            (xy[0] - r, xy[1] - r), 2 * r, 2 * r, boxstyle="square,pad=0", fc=_OBSERVED if observed else _LATENT
        )
    else:
        patch = Circle(xy, radius, fc=_OBSERVED if observed else _LATENT)
    patch.set(ec="black", lw=1.5, zorder=2)
    ax.add_patch(patch)
    ax.text(*xy, label, ha="center", va="center", fontsize=15, zorder=3)


def _arrow(ax, a, b, *, color=_GENERATIVE, dashed=False, rad=0.0, gap=0.36, label=None, label_xy=None):
    """An arrow from node a to node b that starts and ends ``gap`` (data units) away from their centres."""
    import math

    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    ux, uy = dx / length, dy / length
    turn = math.atan(2 * rad) if rad else 0.0  # an arc leaves its start at about this angle off the chord
    cos, sin = math.cos(turn), math.sin(turn)
    start = (a[0] + gap * (ux * cos - uy * sin), a[1] + gap * (ux * sin + uy * cos))
    end = (b[0] - gap * (ux * cos + uy * sin), b[1] - gap * (-ux * sin + uy * cos))
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "lw": 1.6,
            "linestyle": (0, (4, 3)) if dashed else "-",
            "shrinkA": 0,
            "shrinkB": 0,
            "connectionstyle": f"arc3,rad={rad}",
            "mutation_scale": 14,
        },
        zorder=1,
    )
    if label:
        ax.text(*label_xy, label, ha="center", va="center", fontsize=9, color=color)


def _plate(ax, x0, y0, x1, y1, label="N"):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.05", fc="none", ec="grey"))
    ax.text(x1 - 0.08, y0 + 0.1, label, ha="right", va="bottom", fontsize=10, color="grey")


def graphical_model(kind: str = "cvae", ax=None, *, title: str | None = None):
    """The graphical model of ``kind`` ("vae", "cvae", "baseline" or "gsnn"); returns the Figure.

    Shaded nodes are observed in training (x, y), white ones latent (z). Solid black arrows
    are the generative model (prior and generation networks), dashed blue ones the
    recognition network q(z|x,y) used in training. The baseline has no z: a square marks
    its deterministic prediction of y. The plate says that the model repeats for each of the
    N examples. The GSNN is trained on z from the prior: its recognition network (a QuadrantCVAE
    trained as a GSNN still has one) is never trained and never used, so it is not drawn.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}.")
    ax = _axes(ax, (3.6, 3.4))
    x, z, y = (0.0, 0.0), (1.4, 1.8), (2.8, 0.0)
    if kind == "vae":
        z, y = (1.4, 1.8), (1.4, 0.0)
        _node(ax, z, "z", observed=False)
        _node(ax, y, "y", observed=True)
        _arrow(ax, z, y, label="p(y|z)", label_xy=(0.95, 0.9))
        _arrow(ax, y, z, color=_RECOGNITION, dashed=True, rad=0.8, label="q(z|y)", label_xy=(2.45, 0.9))
        default = "VAE"
    elif kind == "baseline":
        _node(ax, x, "x", observed=True)
        _node(ax, y, "ŷ", observed=False, deterministic=True)
        _arrow(ax, x, y, label="ŷ = f(x)", label_xy=(1.4, 0.3))
        default = "baseline (no z)"
    else:
        _node(ax, x, "x", observed=True)
        _node(ax, z, "z", observed=False)
        _node(ax, y, "y", observed=True)
        _arrow(ax, x, z, label="p(z|x)", label_xy=(0.35, 1.05))
        _arrow(ax, z, y, label="p(y|x,z)", label_xy=(2.55, 1.05))
        _arrow(ax, x, y)
        if kind == "cvae":
            _arrow(ax, y, z, color=_RECOGNITION, dashed=True, rad=-0.55, label="q(z|x,y)", label_xy=(2.95, 1.75))
            _arrow(ax, x, z, color=_RECOGNITION, dashed=True, rad=0.55)
            default = "CVAE"
        else:
            ax.text(1.4, 2.35, "trained with z ~ p(z|x)", ha="center", fontsize=9, color=_RECOGNITION)
            default = "GSNN (recognition network unused)"
    _plate(ax, -0.6, -0.6, 3.4, 2.6 if kind != "baseline" else 0.7)
    ax.set_title(title if title is not None else default, fontsize=12)
    ax.set_xlim(-0.75, 3.55)
    ax.set_ylim(-0.75, 2.75 if kind != "baseline" else 0.85)
    return ax.figure


def _dummy_condition(model):
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None:
        return torch.zeros(2, dtype=torch.long)
    x_shape = getattr(model, "x_shape", None)
    if x_shape is None:
        raise ValueError(f"{type(model).__name__} has neither num_classes nor x_shape: cannot make a condition x.")
    return torch.zeros(2, *x_shape)


def _shape(t) -> str:
    return "(B, " + ", ".join(str(s) for s in t.shape[1:]) + ")"


def _widths(net) -> str | None:
    """'794 → 512 → 40' for a stack of Linear layers, None for anything else."""
    if not isinstance(net, nn.Sequential):
        return None
    linear = [m for m in net if isinstance(m, nn.Linear)]
    if not linear or any(not isinstance(m, (nn.Linear, nn.ReLU)) for m in net):
        return None
    return " → ".join([str(linear[0].in_features)] + [str(m.out_features) for m in linear])


@torch.no_grad()
def network_diagram(model, ax=None):
    """The three networks of a CVAE, each with the shapes of the tensors it takes and gives; returns the Figure.

    The shapes come from the model itself: it runs ``encode``, ``prior`` and ``decode`` on a
    batch of two dummy examples (B stands for the batch size). For MLP networks the layer
    widths are listed too (the ReLUs between them are not drawn). A model with ``fill_missing``
    (:class:`~cvae_utils.models.QuadrantCVAE`) shows what each network reads: the recognition
    network one image merging x's observed pixels with y's target ones, the prior network
    x̂ = fill_missing(x) (x's missing pixels filled by the frozen baseline, named under the
    boxes), the generation network z and x̂ side by side (or z alone).
    """
    from matplotlib.patches import FancyBboxPatch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        x = _dummy_condition(model).to(device)
        y = torch.zeros(2, *model.y_shape, device=device)
        mu, logvar = model.encode(y, x)
        prior_mu, _ = model.prior(x)
        decoded = model.decode(mu, x)
        x_hat = model.fill_missing(x) if hasattr(model, "fill_missing") else None
    finally:
        model.train(was_training)
    x_text = "x: label (B,)" if getattr(model, "num_classes", None) is not None else f"x: {_shape(x)}"
    learned = getattr(model, "prior_net", None) is not None  # every learned prior of the library is a prior_net
    inputs = [f"y: {_shape(y)}\n{x_text}", x_text, f"z: {_shape(mu)}\n{x_text}"]
    if x_hat is not None:  # x's missing pixels filled by a frozen baseline: say what each network reads
        d, z_dim = x_hat.shape[1], mu.shape[1]
        inputs = [
            f"y, x: {_shape(y)} each\n→ one image: x's observed and\ny's target pixels (B, {d})",
            f"{x_text}\n→ x̂ = fill_missing(x): (B, {d})",
            f"z: (B, {z_dim}), x̂: (B, {d})\nside by side: (B, {z_dim + d})"
            if getattr(model, "generation_input", "z_and_x_hat") != "z"
            else f"z: (B, {z_dim})\n(z alone: x̂ not read)",
        ]
    rows = [
        ("recognition q(z|x,y)", inputs[0], getattr(model, "recognition_net", None),
         f"μ, log σ²: {_shape(mu)} each"),
        ("prior p(z|x)", inputs[1], getattr(model, "prior_net", None),
         f"μ_p, log σ²_p: {_shape(prior_mu)} each" + ("" if learned else "\n(zeros: N(0, I), no network)")),
        ("generation p(y|x,z)", inputs[2], getattr(model, "generation_net", None),
         f"logits of y: {_shape(decoded)}"),
    ]  # fmt: skip
    ax = _axes(ax, (10.5, 4.2 if x_hat is None else 4.7))
    ax.set_aspect("auto")
    boxes = ((0.0, 2.6), (3.4, 3.2), (7.4, 3.0)) if x_hat is None else ((0.0, 3.1), (3.8, 3.0), (7.6, 2.9))
    for i, (name, given, net, gives) in enumerate(rows):
        top = 2 - i
        widths = _widths(net)
        middle = name + (f"\n{widths}" if widths else "")
        if net is None and not learned and name.startswith("prior"):
            middle = name + "\nfixed N(0, I)"
        for (x0, w), text, colour in zip(boxes, (given, middle, gives), ("#eeeeee", "#dbe9f6", "#eeeeee")):
            ax.add_patch(FancyBboxPatch((x0, top + 0.12), w, 0.72, boxstyle="round,pad=0.04", fc=colour, ec="grey"))
            ax.text(x0 + w / 2, top + 0.48, text, ha="center", va="center", fontsize=9.5)
        for a, b in ((boxes[0][1] + 0.08, boxes[1][0] - 0.08), (boxes[1][0] + boxes[1][1] + 0.08, boxes[2][0] - 0.08)):
            ax.annotate("", xy=(b, top + 0.48), xytext=(a, top + 0.48), arrowprops={"arrowstyle": "-|>", "lw": 1.4})
    ax.set_xlim(-0.1, 10.5 if x_hat is None else 10.65)
    ax.set_ylim(-0.05 if x_hat is None else -0.45, 2.95)
    if x_hat is not None:
        baseline = getattr(model, "baseline", None)
        widths = _widths(getattr(baseline, "net", None))
        name = "a baseline"
        if baseline is not None:
            name = f"the frozen {type(baseline).__name__}" + (f" ({widths})" if widths else "")
        ax.text(5.25, -0.18, f"x̂ = fill_missing(x): x with its missing pixels filled by the prediction of {name}",
                ha="center", va="center", fontsize=9.5)  # fmt: skip
    ax.set_title(f"{type(model).__name__}: the three networks (B = batch size)", fontsize=11)
    return ax.figure


def reparameterisation_graph(ax=None):
    """z = μ + σ ⊙ ε as a computation graph: gradients reach μ and σ, never the random node ε; returns the Figure.

    The loss node is the reconstruction part, −log p(y|x,z), the only part that needs z; the KL part is closed
    form in μ and σ and is not drawn.
    """
    ax = _axes(ax, (8.8, 3.7))
    enc, mu, sigma, eps, z, loss = (0.0, 1.0), (1.8, 1.7), (1.8, 0.3), (3.6, -0.4), (3.6, 1.0), (5.9, 1.0)
    _node(ax, enc, "φ", observed=False, deterministic=True)
    _node(ax, mu, "μ", observed=False, deterministic=True)
    _node(ax, sigma, "σ", observed=False, deterministic=True)
    _node(ax, eps, "ε", observed=True)
    _node(ax, z, "z", observed=False, deterministic=True)
    _node(ax, loss, "L", observed=False, deterministic=True)
    for a, b in ((enc, mu), (enc, sigma), (mu, z), (sigma, z), (eps, z), (z, loss)):
        _arrow(ax, a, b)
    for a, b in ((loss, z), (z, mu), (z, sigma), (mu, enc), (sigma, enc)):  # the backward pass
        _arrow(ax, a, b, color=_GRADIENT, dashed=True, rad=0.55)
    ax.text(enc[0], enc[1] - 0.75, "recognition\nweights", ha="center", va="center", fontsize=8.5)
    ax.text(eps[0] + 0.45, eps[1], "ε ~ N(0, I)\nrandom: no gradient", ha="left", va="center", fontsize=9)
    ax.text(z[0], z[1] + 0.55, "z = μ + σ ⊙ ε", ha="center", fontsize=10)
    ax.text(loss[0], loss[1] + 0.55, "L = −log p(y|x,z)", ha="center", fontsize=10)
    ax.text(loss[0], loss[1] - 0.45, "the loss's\nreconstruction part", ha="center", va="top", fontsize=9)
    ax.text(2.7, 2.3, "black: forward pass    red dashed: gradients (backward pass)", ha="center", fontsize=9)
    ax.text(2.7, -1.05, "squares are computed, the shaded circle is drawn at random", ha="center", fontsize=9)
    ax.text(2.7, -1.4, "the loss's KL part is closed form in μ and σ: it needs no z (not drawn)", ha="center", size=9)
    ax.set_xlim(-0.6, 6.8)
    ax.set_ylim(-1.65, 2.55)
    return ax.figure
