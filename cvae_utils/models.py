"""Conditional VAEs with the paper's three networks, behind one ``BaseVAE`` interface.

Notation (Sohn, Lee & Yan, 2015): **x** is the condition (a digit label, or the
observed quadrants of an image), **y** the output (the image, or its missing
quadrants), **z** the latent. Every model has

* ``encode(y, x)``  -> (mu, logvar) of the recognition network q(z|x,y);
* ``prior(x)``      -> (mu, logvar) of the prior network p(z|x) (zeros for N(0, I));
* ``decode(z, x)``  -> the parameters of the generation network p(y|x,z): Bernoulli
  logits, or the mean of a Gaussian with fixed standard deviation ``obs_std``;
* ``reparameterize``, ``forward``, ``loss_function``, ``sample`` and ``generate``,
  the interface of PyTorch-VAE's ``BaseVAE``, which the starting model of this series uses.

The starting model (PyTorch-VAE's convolutional ConditionalVAE) called the image ``input`` and the label ``labels``
(one-hot); here they are y and x, and x is the class index.

Constructors copy their arguments (a caller's list is never changed) and record
them in ``model.config``, from which :func:`build_model` rebuilds the model; a
checkpoint carries that config.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import bernoulli_log_likelihood, gaussian_log_likelihood, kl_diag_gaussians, objective_terms

LIKELIHOODS = ("bernoulli", "gaussian")


class ForwardOutput(NamedTuple):
    """What ``forward(y, x)`` returns: a tuple, so ``loss_function(*out)`` style still reads."""

    decoded: Tensor  # parameters of p(y|x,z): logits (bernoulli) or mean (gaussian)
    y: Tensor  # the target the model was given
    mu: Tensor  # q(z|x,y)
    logvar: Tensor
    prior_mu: Tensor  # p(z|x)
    prior_logvar: Tensor
    z: Tensor  # the sample z ~ q(z|x,y) that was decoded


# ----------------------------------------------------------------------------------
# Input checks: clear errors instead of broadcasting surprises or device asserts
# ----------------------------------------------------------------------------------


def check_images(name: str, t: Tensor, shape: Sequence[int]) -> None:
    """A float tensor (B, *shape) with finite values, else ValueError saying what to pass."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, {', '.join(map(str, shape))}); got {type(t).__name__}.")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (e.g. images in [0, 1]); got {t.dtype}. Convert with .float().")
    if tuple(t.shape[1:]) != tuple(shape) or t.dim() != len(shape) + 1:
        raise ValueError(
            f"{name} must have shape (batch, {', '.join(map(str, shape))}); got {tuple(t.shape)}."
            + (" Add the batch dimension with .unsqueeze(0)." if tuple(t.shape) == tuple(shape) else "")
        )
    # One reduction instead of an elementwise test: a NaN or inf anywhere makes the sum
    # non-finite; only then (or on an overflowing sum) look closer.
    if not torch.isfinite(t.sum()) and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the data or the preceding computation.")


def check_labels(name: str, t: Tensor, num_classes: int) -> None:
    """An integer tensor (B,) with values in [0, num_classes), else a clear error."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices (batch,); got {type(t).__name__}.")
    if t.dim() != 1:
        hint = " If these are one-hot vectors, pass labels.argmax(dim=1)." if t.dim() == 2 else ""
        raise ValueError(f"{name} must have shape (batch,) of class indices; got {tuple(t.shape)}.{hint}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer class indices (torch.long), not {t.dtype}. "
            "Pass e.g. torch.tensor([3, 7]), or convert with .long()."
        )
    if t.numel() and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}]; got values from {t.min().item()} to {t.max().item()}."
        )


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------
# The interface
# ----------------------------------------------------------------------------------


class BaseVAE(nn.Module, ABC):
    """The interface of every latent-variable model in the series (see the module docstring)."""

    def __init__(self, z_dim: int, likelihood: str = "bernoulli", obs_std: float = 0.1) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={likelihood!r} is not one of {LIKELIHOODS}.")
        if obs_std <= 0:
            raise ValueError(f"obs_std={obs_std} must be positive (the Gaussian likelihood's standard deviation).")
        if int(z_dim) < 1:
            raise ValueError(f"the latent size must be at least 1; got {z_dim}.")
        self.z_dim = int(z_dim)
        self.likelihood = likelihood
        self.obs_logvar = 2.0 * math.log(obs_std)
        self.config: dict = {}

    # --- the three networks -------------------------------------------------------
    @abstractmethod
    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """Recognition network q(z|x,y): (mu, logvar), each (B, z_dim)."""

    @abstractmethod
    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Prior network p(z|x): (mu, logvar), each (B, z_dim)."""

    @abstractmethod
    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        """Generation network p(y|x,z): logits or mean, shaped like y."""

    @abstractmethod
    def condition_batch(self, x, num_samples: int) -> Tensor:
        """One condition repeated ``num_samples`` times, or a batch of ``num_samples`` checked as is."""

    # --- shared machinery ----------------------------------------------------------
    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample whose gradient flows to mu and logvar."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def log_likelihood(self, decoded: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p(y|x,z) per example, summed over the (masked) pixels."""
        if decoded.shape != y.shape:
            raise ValueError(f"y has shape {tuple(y.shape)} but the model generates {tuple(decoded.shape)}.")
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(decoded, y, mask)
        return gaussian_log_likelihood(decoded, y, self.obs_logvar, mask)

    def mean_output(self, decoded: Tensor) -> Tensor:
        """The mean of p(y|x,z): sigmoid of the logits, or the Gaussian mean itself."""
        return torch.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def forward(self, y: Tensor, x: Tensor) -> ForwardOutput:
        """One pass of the CVAE: encode (y, x), sample z ~ q(z|x,y), decode (z, x)."""
        mu, logvar = self.encode(y, x)
        prior_mu, prior_logvar = self.prior(x)
        z = self.reparameterize(mu, logvar)
        return ForwardOutput(self.decode(z, x), y, mu, logvar, prior_mu, prior_logvar, z)

    def loss_function(self, out: ForwardOutput, mask: Tensor | None = None, kl_weight: float = 1.0) -> dict[str, Tensor]:
        """The negative CVAE bound in nats per example, with its terms named as in the paper.

        ``recon`` = -E_q[log p(y|x,z)], ``kl`` = KL(q(z|x,y) || p(z|x)), ``elbo`` = -(recon + kl)
        and ``loss`` = recon + kl_weight * kl (the ELBO's negative at weight 1; a weight
        below 1 only during a KL warm-up).
        """
        recon = -self.log_likelihood(out.decoded, out.y, mask).mean()
        kl = kl_diag_gaussians(out.mu, out.logvar, out.prior_mu, out.prior_logvar).mean()
        return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl, "elbo": -(recon + kl)}

    def objective(self, y: Tensor, x: Tensor, mask: Tensor | None = None, **kwargs) -> dict[str, Tensor]:
        """The training objective by name (``objective="cvae" | "gsnn" | "hybrid"``); see losses."""
        return objective_terms(self, y, x, mask, **kwargs)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        x,
        *,
        temperature: float = 1.0,
        eps: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw y ~ p(y|x) (its mean given z): z = mu_p + temperature * sigma_p * eps, eps ~ N(0, I).

        ``x``: one condition (a label, or one image) used for every sample, or a batch of
        ``num_samples`` conditions. ``eps`` fixes the noise, shape (num_samples, z_dim).
        """
        if temperature < 0:
            raise ValueError(f"temperature={temperature} must be >= 0 (0 gives the prior mean).")
        device = next(self.parameters()).device
        x = self.condition_batch(x, num_samples)
        with _eval_mode(self):
            mu, logvar = self.prior(x)
            if eps is None:
                eps = torch.randn(mu.shape, generator=generator, device=generator.device if generator else device)
                eps = eps.to(device)
            elif tuple(eps.shape) != tuple(mu.shape):
                raise ValueError(f"eps must have shape {tuple(mu.shape)} (num_samples, z_dim); got {tuple(eps.shape)}.")
            z = mu + temperature * torch.exp(0.5 * logvar) * eps.to(device, mu.dtype)
            return self.mean_output(self.decode(z, x))

    @torch.no_grad()
    def generate(self, y: Tensor, x: Tensor, *, sample_z: bool = False) -> Tensor:
        """Reconstruct y given x: decode the mean of q(z|x,y) (or a sample, ``sample_z=True``)."""
        with _eval_mode(self):
            mu, logvar = self.encode(y, x)
            z = self.reparameterize(mu, logvar) if sample_z else mu
            return self.mean_output(self.decode(z, x))


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Evaluation mode (BatchNorm's running statistics, no dropout) for the block, then back.

    ``sample`` and ``generate`` use it, so that they give the same images right after
    ``fit`` (which leaves the model in training mode) as after ``model.eval()``.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _as_batch_of_labels(x, num_samples: int, num_classes: int, device) -> Tensor:
    x = torch.as_tensor(x, device=device)
    if x.dim() == 0:
        x = x.expand(num_samples)
    elif len(x) != num_samples:
        raise ValueError(f"got {len(x)} labels for num_samples={num_samples}: pass one label or one per sample.")
    check_labels("x (labels)", x, num_classes)
    return x


def _as_batch_of_images(x, num_samples: int, shape: Sequence[int], device) -> Tensor:
    x = torch.as_tensor(x, device=device)
    if tuple(x.shape) == tuple(shape):
        x = x.unsqueeze(0).expand(num_samples, *shape)
    elif len(x) != num_samples:
        raise ValueError(f"got {len(x)} conditions for num_samples={num_samples}: pass one or one per sample.")
    check_images("x", x, shape)
    return x


# ----------------------------------------------------------------------------------
# The MLP CVAE: recognition, prior and generation networks as in the paper
# ----------------------------------------------------------------------------------


class MLPCVAE(BaseVAE):
    """A CVAE whose three networks are MLPs.

    The condition x is either a class label (``num_classes``) or an image of shape
    ``x_shape`` (e.g. the observed quadrants); y has shape ``y_shape``.

    * recognition q(z|x,y): [y, x] -> hidden_dims -> (mu, logvar)
    * prior p(z|x): x -> hidden_dims -> (mu, logvar) when ``learned_prior``, else N(0, I)
    * generation p(y|x,z): [z, x] -> reversed(hidden_dims) -> y
    """

    def __init__(
        self,
        y_shape: Sequence[int] = (1, 28, 28),
        z_dim: int = 20,
        hidden_dims: Sequence[int] = (512,),
        *,
        num_classes: int | None = None,
        x_shape: Sequence[int] | None = None,
        learned_prior: bool = True,
        likelihood: str = "bernoulli",
        obs_std: float = 0.1,
    ) -> None:
        super().__init__(z_dim, likelihood, obs_std)
        if (num_classes is None) == (x_shape is None):
            raise ValueError("give exactly one condition: num_classes=... (labels) or x_shape=... (an image).")
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes={num_classes} must be at least 2.")
        self.y_shape = tuple(int(s) for s in y_shape)
        self.x_shape = tuple(int(s) for s in x_shape) if x_shape is not None else None
        self.num_classes = int(num_classes) if num_classes is not None else None
        hidden = [int(h) for h in hidden_dims]
        y_dim = math.prod(self.y_shape)
        x_dim = self.num_classes if self.num_classes is not None else math.prod(self.x_shape)
        self.recognition_net = mlp([y_dim + x_dim, *hidden, 2 * self.z_dim])
        self.prior_net = mlp([x_dim, *hidden, 2 * self.z_dim]) if learned_prior else None
        self.generation_net = mlp([self.z_dim + x_dim, *reversed(hidden), y_dim])
        self.config = {
            "name": type(self).__name__,
            "kwargs": dict(
                y_shape=list(self.y_shape), z_dim=self.z_dim, hidden_dims=hidden, num_classes=self.num_classes,
                x_shape=list(self.x_shape) if self.x_shape else None, learned_prior=bool(learned_prior),
                likelihood=likelihood, obs_std=float(obs_std),
            ),
        }

    def condition_features(self, x: Tensor) -> Tensor:
        """x as a flat float vector per example: one-hot for a label, flattened for an image."""
        if self.num_classes is not None:
            check_labels("x (labels)", x, self.num_classes)
            return F.one_hot(x, self.num_classes).to(self.recognition_net[0].weight.dtype)
        check_images("x", x, self.x_shape)
        return x.flatten(1)

    def condition_batch(self, x, num_samples: int) -> Tensor:
        device = self.recognition_net[0].weight.device
        if self.num_classes is not None:
            return _as_batch_of_labels(x, num_samples, self.num_classes, device)
        return _as_batch_of_images(x, num_samples, self.x_shape, device)

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_images("y", y, self.y_shape)
        h = self.recognition_net(torch.cat([y.flatten(1), self.condition_features(x)], dim=1))
        return h.chunk(2, dim=1)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.condition_features(x)
        if self.prior_net is None:
            zeros = c.new_zeros(len(c), self.z_dim)
            return zeros, zeros
        return self.prior_net(c).chunk(2, dim=1)

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        h = self.generation_net(torch.cat([z, self.condition_features(x)], dim=1))
        return h.view(len(z), *self.y_shape)


# ----------------------------------------------------------------------------------
# The starting model's convolutional ConditionalVAE, working at any size and channel count
# ----------------------------------------------------------------------------------


def _conv_sizes(img_size: int, num_layers: int) -> list[int]:
    """Spatial sizes through stride-2, kernel-3, padding-1 convolutions: s -> ceil(s / 2)."""
    sizes = [img_size]
    for _ in range(num_layers):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def _up_block(c_in: int, c_out: int, size_in: int, size_out: int) -> list[nn.Module]:
    # ConvTranspose2d(k=3, s=2, p=1) gives 2 * size_in - 1 + output_padding: pick the
    # output_padding (0 or 1) that lands exactly on the encoder's size at this depth.
    return [
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=size_out - 2 * size_in + 1),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(),
    ]


class ConditionalVAE(BaseVAE):
    """The starting model's label-conditioned convolutional CVAE (after PyTorch-VAE), fixed.

    The label is embedded as an extra input channel (a learned img_size x img_size
    map per class); the encoder halves the image ``len(hidden_dims)`` times; the
    decoder mirrors it, every transposed convolution sized to land on the encoder's
    size at that depth, so any ``img_size`` and ``in_channels`` work. The prior is
    the fixed N(0, I), as in the starting model; the decoder sees [z, one-hot label].
    Unlike the starting model, the output is logits (Bernoulli) or a mean (Gaussian), not a
    Tanh image, and the loss is the ELBO, not a pixel-mean MSE.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        latent_dim: int,
        hidden_dims: Sequence[int] | None = None,
        img_size: int = 64,
        *,
        likelihood: str = "bernoulli",
        obs_std: float = 0.1,
    ) -> None:
        super().__init__(latent_dim, likelihood, obs_std)
        hidden = [int(h) for h in hidden_dims] if hidden_dims is not None else [32, 64, 128, 256, 512]
        if not hidden:
            raise ValueError("hidden_dims needs at least one entry (the channels of each conv layer).")
        if in_channels < 1 or img_size < 1 or num_classes < 2:
            raise ValueError(
                f"need in_channels >= 1, img_size >= 1 and num_classes >= 2; got {in_channels}, {img_size}, {num_classes}."
            )
        self.in_channels, self.num_classes, self.img_size = int(in_channels), int(num_classes), int(img_size)
        self.latent_dim = self.z_dim
        self.y_shape = (self.in_channels, self.img_size, self.img_size)
        sizes = _conv_sizes(self.img_size, len(hidden))
        self.bottleneck = (hidden[-1], sizes[-1], sizes[-1])
        flat = math.prod(self.bottleneck)

        self.embed_class = nn.Linear(self.num_classes, self.img_size * self.img_size)
        self.embed_data = nn.Conv2d(self.in_channels, self.in_channels, kernel_size=1)
        blocks, c = [], self.in_channels + 1  # + 1 for the label channel
        for h in hidden:
            blocks.append(nn.Sequential(nn.Conv2d(c, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()))
            c = h
        self.encoder = nn.Sequential(*blocks)
        self.fc_mu = nn.Linear(flat, self.z_dim)
        self.fc_var = nn.Linear(flat, self.z_dim)

        self.decoder_input = nn.Linear(self.z_dim + self.num_classes, flat)
        rev, rsizes = hidden[::-1], sizes[::-1]
        self.decoder = nn.Sequential(
            *[nn.Sequential(*_up_block(rev[i], rev[i + 1], rsizes[i], rsizes[i + 1])) for i in range(len(rev) - 1)]
        )
        self.final_layer = nn.Sequential(
            *_up_block(rev[-1], rev[-1], rsizes[-2], rsizes[-1]),
            nn.Conv2d(rev[-1], self.in_channels, kernel_size=3, padding=1),
        )
        self.config = {
            "name": type(self).__name__,
            "kwargs": dict(
                in_channels=self.in_channels, num_classes=self.num_classes, latent_dim=self.z_dim, hidden_dims=hidden,
                img_size=self.img_size, likelihood=likelihood, obs_std=float(obs_std),
            ),
        }

    def _one_hot(self, x: Tensor) -> Tensor:
        check_labels("x (labels)", x, self.num_classes)
        return F.one_hot(x, self.num_classes).to(self.fc_mu.weight.dtype)

    def condition_batch(self, x, num_samples: int) -> Tensor:
        return _as_batch_of_labels(x, num_samples, self.num_classes, self.fc_mu.weight.device)

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_images("y", y, self.y_shape)
        label_map = self.embed_class(self._one_hot(x)).view(-1, 1, self.img_size, self.img_size)
        h = self.encoder(torch.cat([self.embed_data(y), label_map], dim=1)).flatten(1)
        return self.fc_mu(h), self.fc_var(h)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        zeros = self._one_hot(x).new_zeros(len(x), self.z_dim)
        return zeros, zeros

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        h = self.decoder_input(torch.cat([z, self._one_hot(x)], dim=1)).view(-1, *self.bottleneck)
        return self.final_layer(self.decoder(h))


# ----------------------------------------------------------------------------------
# The paper's deterministic baseline for structured output prediction
# ----------------------------------------------------------------------------------


class BaselineNet(nn.Module):
    """A deterministic network y_hat = f(x) with a Bernoulli likelihood (the paper's NN baseline).

    Trained by :func:`cvae_utils.train.fit` like the CVAEs: its ``objective`` is the
    negative Bernoulli log-likelihood of the (masked) target pixels, nats per example.
    """

    def __init__(self, x_shape: Sequence[int] = (1, 28, 28), y_shape: Sequence[int] | None = None,
                 hidden_dims: Sequence[int] = (500, 500)) -> None:
        super().__init__()
        self.x_shape = tuple(int(s) for s in x_shape)
        self.y_shape = tuple(int(s) for s in y_shape) if y_shape is not None else self.x_shape
        hidden = [int(h) for h in hidden_dims]
        self.net = mlp([math.prod(self.x_shape), *hidden, math.prod(self.y_shape)])
        self.config = {
            "name": type(self).__name__,
            "kwargs": dict(x_shape=list(self.x_shape), y_shape=list(self.y_shape), hidden_dims=hidden),
        }

    def forward(self, x: Tensor) -> Tensor:
        """Logits of y given x."""
        check_images("x", x, self.x_shape)
        return self.net(x.flatten(1)).view(len(x), *self.y_shape)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """The prediction as probabilities in [0, 1]."""
        return torch.sigmoid(self(x))

    def objective(self, y: Tensor, x: Tensor, mask: Tensor | None = None, **_ignored) -> dict[str, Tensor]:
        check_images("y", y, self.y_shape)
        nll = -bernoulli_log_likelihood(self(x), y, mask).mean()
        return {"loss": nll, "recon": nll}


class QuadrantCVAE(BaseVAE):
    """The paper's CVAE for structured output prediction, with its recurrent baseline connection.

    x is an image whose unobserved pixels hold ``fill`` (-1), y the same image with the
    observed pixels at ``fill`` (see :func:`cvae_utils.data.split_quadrants`). A trained,
    frozen :class:`BaselineNet` predicts y_hat from x; the paper feeds that prediction to
    the prior and generation networks (Sec. 4.1, "recurrent connection"):

    * recognition q(z|x,y): an MLP on the whole image (x's observed pixels, y's target ones);
    * prior p(z|x):         an MLP on x_hat, the observed pixels with y_hat filled in;
    * generation p(y|x,z):  an MLP on (z, x_hat) giving Bernoulli logits for every pixel;
      the likelihood counts only the target pixels (the batch's mask).

    Trained with ``objective="cvae"``, ``"gsnn"`` or ``"hybrid"`` as the other models.
    x_hat is computed once per condition tensor (a small cache keyed by the tensor's
    identity and version), since encode, prior and decode all see the same x.
    """

    def __init__(self, baseline: BaselineNet | None = None, *, img_shape: Sequence[int] = (1, 28, 28),
                 z_dim: int = 32, hidden_dims: Sequence[int] = (500, 500),
                 baseline_hidden_dims: Sequence[int] = (500, 500), fill: float = -1.0) -> None:
        super().__init__(z_dim, "bernoulli")
        self.x_shape = self.y_shape = tuple(int(s) for s in img_shape)
        hidden = [int(h) for h in hidden_dims]
        if baseline is None:
            baseline = BaselineNet(self.x_shape, self.y_shape, baseline_hidden_dims)
        elif baseline.x_shape != self.x_shape or baseline.y_shape != self.y_shape:
            raise ValueError(
                f"the baseline maps {baseline.x_shape} -> {baseline.y_shape}, but img_shape is {self.x_shape}."
            )
        self.baseline = baseline.requires_grad_(False).eval()
        self.fill = float(fill)
        d = math.prod(self.x_shape)
        self.recognition_net = mlp([d, *hidden, 2 * self.z_dim])
        self.prior_net = mlp([d, *hidden, 2 * self.z_dim])
        self.generation_net = mlp([self.z_dim + d, *reversed(hidden), d])
        self._cache: tuple | None = None
        self.config = {
            "name": type(self).__name__,
            "kwargs": dict(img_shape=list(self.x_shape), z_dim=self.z_dim, hidden_dims=hidden,
                           baseline_hidden_dims=list(baseline.config["kwargs"]["hidden_dims"]), fill=self.fill),
        }

    def train(self, mode: bool = True):
        super().train(mode)
        self.baseline.eval()  # the baseline stays frozen, always in evaluation mode
        return self

    def condition(self, x: Tensor) -> Tensor:
        """x_hat: x with its unobserved pixels filled by the baseline's prediction, flat (B, D)."""
        key = (id(x), x._version, x.shape)
        if self._cache is not None and self._cache[0] is x and self._cache[1] == key:
            return self._cache[2]
        check_images("x", x, self.x_shape)
        with torch.no_grad():
            y_hat = torch.sigmoid(self.baseline.net(x.flatten(1)))
        flat = x.flatten(1)
        x_hat = torch.where(flat == self.fill, y_hat, flat)
        self._cache = (x, key, x_hat)
        return x_hat

    def condition_batch(self, x, num_samples: int) -> Tensor:
        return _as_batch_of_images(x, num_samples, self.x_shape, next(self.parameters()).device)

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_images("y", y, self.y_shape)
        check_images("x", x, self.x_shape)
        whole = torch.where(x == self.fill, y, x)  # observed pixels from x, the rest from y
        return self.recognition_net(whole.flatten(1)).chunk(2, dim=1)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior_net(self.condition(x)).chunk(2, dim=1)

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        h = self.generation_net(torch.cat([z, self.condition(x)], dim=1))
        return h.view(len(z), *self.y_shape)

    @torch.no_grad()
    def complete(self, x: Tensor, y_part: Tensor) -> Tensor:
        """Whole images: the observed pixels of x, and ``y_part`` (e.g. samples) on the missing ones."""
        return torch.where(x == self.fill, y_part, x)


class DigitClassifier(nn.Module):
    """A small CNN that labels digit images (to score generated samples).

    Two 5x5 convolutions with max-pooling, then a linear layer; trained by
    :func:`cvae_utils.train.fit` through ``objective(y=labels, x=images)``
    (cross-entropy in nats per example).
    """

    def __init__(self, in_channels: int = 1, img_size: int = 28, num_classes: int = 10,
                 channels: Sequence[int] = (32, 64), hidden: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        chans = [int(c) for c in channels]
        self.x_shape = (int(in_channels), int(img_size), int(img_size))
        self.num_classes = int(num_classes)
        layers: list[nn.Module] = []
        c, size = self.x_shape[0], self.x_shape[1]
        for h in chans:
            layers += [nn.Conv2d(c, h, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            c, size = h, size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * size * size, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, self.num_classes))
        self.config = {
            "name": type(self).__name__,
            "kwargs": dict(in_channels=self.x_shape[0], img_size=self.x_shape[1], num_classes=self.num_classes,
                           channels=chans, hidden=int(hidden), dropout=float(dropout)),
        }

    def forward(self, x: Tensor) -> Tensor:
        """Class logits for images x (B, C, H, W)."""
        check_images("images", x, self.x_shape)
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        """The most likely class of each image (evaluated in eval mode, in batches)."""
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
        finally:
            self.train(was_training)

    def objective(self, y: Tensor, x: Tensor, mask: Tensor | None = None, **_ignored) -> dict[str, Tensor]:
        """Cross-entropy of the labels ``y`` given images ``x`` (mean over the batch), and the error rate."""
        check_labels("labels", y, self.num_classes)
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "error": (logits.argmax(1) != y).float().mean()}


MODEL_REGISTRY: dict[str, type[nn.Module]] = {
    c.__name__: c for c in (MLPCVAE, ConditionalVAE, BaselineNet, QuadrantCVAE, DigitClassifier)
}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Make ``cls`` rebuildable by :func:`build_model` (a decorator)."""
    MODEL_REGISTRY[cls.__name__] = cls
    return cls


def build_model(config: dict) -> nn.Module:
    """Rebuild a model from its ``config`` ({"name": class name, "kwargs": constructor arguments})."""
    try:
        name, kwargs = config["name"], config["kwargs"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a model config (needs 'name' and 'kwargs'): {config!r}") from err
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODEL_REGISTRY)}.")
    return MODEL_REGISTRY[name](**kwargs)
