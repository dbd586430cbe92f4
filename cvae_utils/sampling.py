"""Conditional sampling: the drawing function behind the widget, latent usage, scoring.

The widget in notebook 6 is a thin layer over :func:`render_samples`, a pure
function of (model, digit, latent values, temperature, seed) that pytest drives
directly; :func:`sampler_widget` only wires ipywidgets controls to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from .losses import kl_diag_gaussians
from .models import BaseVAE
from .utils import eval_mode
from .validation import unpack_batch


def sample_noise(num_samples: int, z_dim: int, seed: int) -> Tensor:
    """Standard-normal noise eps (num_samples, z_dim) from its own seeded generator (CPU, reproducible).

    Taught in notebook 6, "How `model.sample` draws a digit".
    """
    return torch.randn(num_samples, z_dim, generator=torch.Generator().manual_seed(int(seed)))


@torch.no_grad()
def render_samples(
    model: BaseVAE,
    digit: int,
    latent_values: Mapping[int, float] | None = None,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    num_samples: int = 8,
) -> Tensor:
    """Images of ``digit`` drawn from p(y|x=digit): (num_samples, C, H, W) in [0, 1].

    The noise eps comes from ``seed``; each entry ``{dim: value}`` of
    ``latent_values`` fixes eps[:, dim] = value for every sample (the widget's sliders,
    in units of the prior's standard deviation). Then z = mu_p + temperature * sigma_p * eps.

    Taught in notebook 6, "An interactive sampler".
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be at least 1.")
    eps = sample_noise(num_samples, model.z_dim, seed)
    for dim, value in (latent_values or {}).items():
        if not 0 <= int(dim) < model.z_dim:
            raise ValueError(f"latent dimension {dim} does not exist: the model has z_dim={model.z_dim}.")
        eps[:, int(dim)] = float(value)
    return model.sample(num_samples, int(digit), temperature=temperature, eps=eps)


@torch.no_grad()
def standardised_latent(model: BaseVAE, y: Tensor, x: Tensor) -> Tensor:
    """eps = (mu_q - mu_p(x)) / sigma_p(x): where the recognition mean of (y, x) sits in the prior of x.

    The coordinates in which style lives: ``model.sample(n, x_new, eps=eps)`` places the
    same eps in the prior of another condition, and for x itself gives back the
    reconstruction ``model.generate(y, x)``. With a fixed N(0, I) prior, eps = mu_q.

    Derived in notebook 6, "Style transfer from a real digit".
    """
    mu, _ = model.encode(y, x)
    prior_mu, prior_logvar = model.prior(x)
    return (mu - prior_mu) * torch.exp(-0.5 * prior_logvar)


@torch.no_grad()
def transfer_style(model: BaseVAE, y: Tensor, x: Tensor, targets) -> Tensor:
    """Each image y[i] (with condition x[i]) redrawn with every condition of ``targets``.

    Returns (len(y) * len(targets), C, H, W): for each image, its style (its
    :func:`standardised_latent`) decoded with targets[0], targets[1], ... in turn.
    Decoding z = mu_q itself with a new label fails for a learned prior (z then also
    encodes the label, and the generation network follows z).

    Derived in notebook 6, "Style transfer from a real digit".
    """
    eps = standardised_latent(model, y, x)
    targets = torch.as_tensor(targets, device=eps.device)
    if targets.dim() == 0:
        targets = targets.unsqueeze(0)
    k = len(targets)
    repeated = targets.repeat(len(y), *([1] * (targets.dim() - 1)))
    return model.sample(len(y) * k, repeated, eps=eps.repeat_interleave(k, 0))


def draw_samples(images: Tensor, ax=None, title: str | None = None, nrow: int | None = None):
    """Draw a row (or grid) of images on matplotlib axes; return the axes."""
    from .plotting import show_images

    return show_images(images, nrow=nrow or len(images), title=title, ax=ax)


@torch.no_grad()
def latent_usage(model: BaseVAE, batches: Iterable, max_batches: int | None = None) -> Tensor:
    """Average KL(q(z_j|x,y) || p(z_j|x)) per latent dimension j, in nats, over ``batches``.

    Dimensions with a KL near 0 are unused ("collapsed"): the decoder ignores them.

    Derived in notebook 6, "Which latent dimensions does the model use?".
    """
    total, count = None, 0
    with eval_mode(model):
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            y, x, _ = unpack_batch(batch)
            mu_q, lv_q = model.encode(y, x)
            mu_p, lv_p = model.prior(x)
            # the per-dimension KL: the closed form with each dimension as its own "example"
            per_dim = (
                kl_diag_gaussians(mu_q.reshape(-1, 1), lv_q.reshape(-1, 1), mu_p.reshape(-1, 1), lv_p.reshape(-1, 1))
                .view(len(y), -1)
                .sum(0)
            )
            total = per_dim if total is None else total + per_dim
            count += len(y)
    if not count:
        raise ValueError("latent_usage got no examples: the batches were empty.")
    return (total / count).cpu()


@torch.no_grad()
def conditional_accuracy(
    model: BaseVAE, classifier, num_per_digit: int = 100, *, temperature: float = 1.0, seed: int = 0
) -> dict:
    """Share of generated digits that ``classifier`` labels as the digit asked for.

    Draws ``num_per_digit`` samples for each of the model's ``num_classes`` classes from p(y|x) and returns
    ``{"accuracy": overall share, "per_digit": [share for each class], "confusion": (asked, predicted) counts}``.

    Taught in notebook 6, "Does the model draw the digit we ask for?".
    """
    num_classes = _num_classes(model)
    device = next(model.parameters()).device
    asked = torch.arange(num_classes, device=device).repeat_interleave(num_per_digit)
    eps = sample_noise(len(asked), model.z_dim, seed).to(device)
    images = model.sample(len(asked), asked, temperature=temperature, eps=eps)
    predicted = classifier.to(device).predict(images)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((asked.cpu(), predicted.cpu()), torch.ones(len(asked), dtype=torch.long), accumulate=True)
    per_digit = (confusion.diag().float() / num_per_digit).tolist()
    return {"accuracy": (predicted == asked).float().mean().item(), "per_digit": per_digit, "confusion": confusion}


def _num_classes(model: BaseVAE) -> int:
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        raise ValueError(f"{type(model).__name__} is not conditioned on a label (no num_classes): give a label CVAE.")
    return int(num_classes)


def sampler_widget(
    model: BaseVAE, dims: Iterable[int], *, num_samples: int = 8, slider_range: float = 3.0, figsize=(10, 1.6)
):
    """An ipywidgets sampler: digit, sliders for ε of ``dims``, temperature, seed and a resample button.

    A slider labelled ε[j] sets the standardised coordinate eps_j of z, in the prior's standard
    deviations: z_j = mu_p(x)_j + T sigma_p(x)_j eps_j (as :func:`render_samples`).

    Core ipywidgets and inline matplotlib only, so it works in JupyterLab and on Colab.
    Returns the widget (display it, or leave it as a cell's last expression). Each
    change redraws with :func:`render_samples`; ``widget.render()`` redraws and
    returns the images, and ``widget.controls`` holds the controls, for tests.

    Taught in notebook 6, "An interactive sampler".
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    dims = [int(d) for d in dims]
    labels = {"description_width": "initial"}  # each control as wide as its label needs: no label is cut off
    digit = widgets.ToggleButtons(
        options=list(range(_num_classes(model))),
        value=0,
        description="digit x",
        style={**labels, "button_width": "32px"},
    )
    # A slider sets eps[j], z's standardised coordinate: z_j = mu_p(x)_j + T * sigma_p(x)_j * eps[j].
    sliders = {
        d: widgets.FloatSlider(
            value=0.0, min=-slider_range, max=slider_range, step=0.1, description=f"ε[{d}]", style=labels,
            continuous_update=False, tooltip=f"eps[{d}]: z[{d}] in prior standard deviations from the prior mean",
        )
        for d in dims
    }  # fmt: skip
    temperature = widgets.FloatSlider(
        value=1.0, min=0.0, max=2.0, step=0.05, description="temperature T", style=labels, continuous_update=False
    )
    seed = widgets.IntText(value=0, description="seed", style=labels, layout=widgets.Layout(width="140px"))
    resample = widgets.Button(description="resample", icon="refresh", tooltip="new noise for the other dimensions")
    use_sliders = widgets.Checkbox(value=True, description="use the ε sliders", style=labels)
    out = widgets.Output()

    def render():
        values = {d: s.value for d, s in sliders.items()} if use_sliders.value else {}
        images = render_samples(
            model, digit.value, values, temperature=temperature.value, seed=seed.value, num_samples=num_samples
        )
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=figsize)
            draw_samples(images, ax=ax, title=f"samples of digit {digit.value}")
            plt.show()
        return images

    def on_resample(_):
        seed.value = seed.value + 1  # triggers a redraw through the observer

    for control in (digit, temperature, seed, use_sliders, *sliders.values()):
        control.observe(lambda change: render(), names="value")
    resample.on_click(on_resample)
    box = widgets.VBox(
        [digit, widgets.HBox([temperature, seed, resample]), use_sliders, widgets.VBox(list(sliders.values())), out]
    )
    box.render = render
    box.controls = {
        "digit": digit,
        "temperature": temperature,
        "seed": seed,
        "resample": resample,
        "use_sliders": use_sliders,
        "sliders": sliders,
        "output": out,
    }
    render()
    return box
