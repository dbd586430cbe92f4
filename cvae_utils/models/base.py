"""The interface every latent-variable model of the series shares, and the model registry.

Notation (Sohn, Lee & Yan, 2015): **x** is the condition (a digit label, or the
observed quadrants of an image), **y** the output (the image, or its missing
quadrants), **z** the latent. Every model has

* ``encode(y, x)``  -> (mu, logvar) of the recognition network q(z|x,y);
* ``prior(x)``      -> (mu, logvar) of the prior network p(z|x) (zeros for N(0, I));
* ``decode(z, x)``  -> the parameters of the generation network p(y|x,z): Bernoulli
  logits, or the mean of a Gaussian with fixed standard deviation ``obs_std``;
* ``reparameterize``, ``forward``, ``loss_function``, ``sample`` and ``generate``,
  the interface of PyTorch-VAE's ``BaseVAE``, which the starting model of this series uses.

Constructors copy their arguments (a caller's list is never changed) and record
them in ``model.config``, from which :func:`build_model` rebuilds the model; a
checkpoint carries that config.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..losses import bernoulli_log_likelihood, elbo_terms, gaussian_log_likelihood, kl_diag_gaussians, objective_terms
from ..utils import eval_mode
from ..validation import check_same_batch

LIKELIHOODS = ("bernoulli", "gaussian")
MODEL_REGISTRY: dict[str, type[nn.Module]] = {}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Make ``cls`` rebuildable by :func:`build_model` from its ``config`` (a class decorator)."""
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


def model_config(model: nn.Module, **kwargs) -> dict:
    """The ``config`` of ``model``: its class name and the constructor arguments that rebuild it."""
    return {"name": type(model).__name__, "kwargs": kwargs}


def as_shape(shape: Sequence[int], name: str) -> tuple[int, ...]:
    """A shape as a tuple of positive ints (a copy: the caller's list is never kept or changed)."""
    out = tuple(int(s) for s in shape)
    if not out or any(s < 1 for s in out):
        raise ValueError(f"{name} must be a non-empty shape of positive sizes, e.g. (1, 28, 28); got {shape!r}.")
    return out


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ForwardOutput(NamedTuple):
    """What ``forward(y, x)`` returns: a tuple, so ``loss_function(*out)`` style still reads.

    Taught in notebook 4, "The reconstruction term: a sum over pixels".
    """

    decoded: Tensor  # parameters of p(y|x,z): logits (bernoulli) or mean (gaussian)
    y: Tensor  # the target the model was given
    mu: Tensor  # q(z|x,y)
    logvar: Tensor
    prior_mu: Tensor  # p(z|x)
    prior_logvar: Tensor
    z: Tensor  # the sample z ~ q(z|x,y) that was decoded


class BaseVAE(nn.Module, ABC):
    """The interface of every latent-variable model in the series (see the module docstring).

    Each method that a notebook teaches names, in its docstring, the section that derives it.
    """

    def __init__(self, z_dim: int, likelihood: str = "bernoulli", obs_std: float = 0.1) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={likelihood!r} is not one of {LIKELIHOODS}.")
        if obs_std <= 0:
            raise ValueError(f"obs_std={obs_std} must be positive (the Gaussian likelihood's standard deviation).")
        if int(z_dim) < 1:
            raise ValueError(f"the latent size z_dim must be at least 1; got {z_dim}.")
        self.z_dim = int(z_dim)
        self.likelihood = likelihood
        self.obs_logvar = 2.0 * math.log(obs_std)
        self.config: dict = {}

    # --- the three networks -------------------------------------------------------
    @abstractmethod
    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Recognition network q(z|x,y): (mu, logvar), each (B, z_dim).

        Derived in notebook 2, "The recognition network $q(z \mid x, y)$, by hand".
        """

    @abstractmethod
    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Prior network p(z|x): (mu, logvar), each (B, z_dim).

        Derived in notebook 2, "The prior network $p(z \mid x)$, by hand".
        """

    @abstractmethod
    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        """Generation network p(y|x,z): logits or mean, shaped like y.

        Derived in notebook 3, "The generation network, built by hand".
        """

    @abstractmethod
    def expand_condition(self, x, num_samples: int) -> Tensor:
        """One condition repeated ``num_samples`` times, or a batch of ``num_samples`` conditions, checked."""

    # --- shared machinery ----------------------------------------------------------
    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample whose gradient flows to mu and logvar.

        Derived in notebook 2, "The reparameterisation trick".
        """
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def log_likelihood(self, decoded: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        """log p(y|x,z) per example, summed over the (masked) pixels.

        Derived in notebook 3, "The two log-likelihoods, by hand".
        """
        if decoded.shape != y.shape:
            raise ValueError(f"y has shape {tuple(y.shape)} but the model generates {tuple(decoded.shape)}.")
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(decoded, y, mask)
        return gaussian_log_likelihood(decoded, y, self.obs_logvar, mask)

    def mean_output(self, decoded: Tensor) -> Tensor:
        """The mean of p(y|x,z): sigmoid of the logits, or the Gaussian mean itself.

        Taught in notebook 3, "What `decode` returns".
        """
        return torch.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def forward(self, y: Tensor, x: Tensor) -> ForwardOutput:
        """One pass of the CVAE: encode (y, x), sample z ~ q(z|x,y), decode (z, x).

        Taught in notebook 4, "The reconstruction term: a sum over pixels".
        """
        check_same_batch(y=y, x=x)
        mu, logvar = self.encode(y, x)
        prior_mu, prior_logvar = self.prior(x)
        z = self.reparameterize(mu, logvar)
        return ForwardOutput(self.decode(z, x), y, mu, logvar, prior_mu, prior_logvar, z)

    def loss_function(
        self, out: ForwardOutput, mask: Tensor | None = None, kl_weight: float = 1.0
    ) -> dict[str, Tensor]:
        """The negative CVAE bound in nats per example, its terms named as in the paper.

        ``recon`` = -E_q[log p(y|x,z)], ``kl`` = KL(q(z|x,y) || p(z|x)), ``elbo`` = -(recon + kl)
        and ``loss`` = recon + kl_weight * kl (see :func:`cvae_utils.losses.elbo_terms`).

        Derived in notebook 4, "The ELBO assembled".
        """
        log_likelihood = self.log_likelihood(out.decoded, out.y, mask)
        kl = kl_diag_gaussians(out.mu, out.logvar, out.prior_mu, out.prior_logvar)
        return elbo_terms(log_likelihood, kl, kl_weight)

    def objective(self, y: Tensor, x: Tensor, mask: Tensor | None = None, **kwargs) -> dict[str, Tensor]:
        """The training objective by name (``objective="cvae" | "gsnn" | "hybrid"``); see losses.

        Taught in notebook 4, "Two more objectives: the GSNN and the hybrid".
        """
        return objective_terms(self, y, x, mask, **kwargs)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

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

        Derived in notebook 6, "How `model.sample` draws a digit".
        """
        if temperature < 0:
            raise ValueError(f"temperature={temperature} must be >= 0 (0 gives the prior mean).")
        device = self._device()
        x = self.expand_condition(x, num_samples)
        with eval_mode(self):
            mu, logvar = self.prior(x)
            if eps is None:
                eps = torch.randn(mu.shape, generator=generator, device=generator.device if generator else device)
            elif tuple(eps.shape) != tuple(mu.shape):
                raise ValueError(f"eps must have shape {tuple(mu.shape)} (num_samples, z_dim); got {tuple(eps.shape)}.")
            z = mu + temperature * torch.exp(0.5 * logvar) * eps.to(device, mu.dtype)
            return self.mean_output(self.decode(z, x))

    @torch.no_grad()
    def generate(self, y: Tensor, x: Tensor, *, sample_z: bool = False) -> Tensor:
        """Reconstruct y given x: decode the mean of q(z|x,y) (or a sample, ``sample_z=True``).

        Taught in notebook 4, "Why the sum over pixels matters: the starting model's loss, trained".
        """
        check_same_batch(y=y, x=x)
        with eval_mode(self):
            mu, logvar = self.encode(y, x)
            z = self.reparameterize(mu, logvar) if sample_z else mu
            return self.mean_output(self.decode(z, x))
