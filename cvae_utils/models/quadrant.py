"""The paper's models for structured output prediction (notebook 7): the baseline and the CVAE that uses it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..losses import bernoulli_log_likelihood
from ..validation import check_same_batch, check_tensor, tensor_batch
from .base import BaseVAE, as_shape, mlp, model_config, register_model


@register_model
class BaselineNet(nn.Module):
    """A deterministic network y_hat = f(x) with a Bernoulli likelihood (the paper's NN baseline).

    Trained by :func:`cvae_utils.train.fit` like the CVAEs: its ``objective`` is the
    negative Bernoulli log-likelihood of the (masked) target pixels, nats per example.

    Taught in notebook 7, "The baseline, and why it blurs".
    """

    def __init__(
        self,
        x_shape: Sequence[int] = (1, 28, 28),
        y_shape: Sequence[int] | None = None,
        hidden_dims: Sequence[int] = (500, 500),
    ) -> None:
        super().__init__()
        self.x_shape = as_shape(x_shape, "x_shape")
        self.y_shape = as_shape(y_shape, "y_shape") if y_shape is not None else self.x_shape
        hidden = [int(h) for h in hidden_dims]
        self.net = mlp([math.prod(self.x_shape), *hidden, math.prod(self.y_shape)])
        self.config = model_config(self, x_shape=list(self.x_shape), y_shape=list(self.y_shape), hidden_dims=hidden)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of y given x."""
        check_tensor("x", x, self.x_shape)
        return self.net(x.flatten(1)).view(len(x), *self.y_shape)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """The prediction as probabilities in [0, 1]."""
        return torch.sigmoid(self(x))

    def objective(self, y: Tensor, x: Tensor, mask: Tensor | None = None, **_ignored) -> dict[str, Tensor]:
        check_tensor("y", y, self.y_shape)
        check_same_batch(y=y, x=x, mask=mask)
        nll = -bernoulli_log_likelihood(self(x), y, mask).mean()
        return {"loss": nll, "recon": nll}


GENERATION_INPUTS = ("z_and_x_hat", "z")  # what QuadrantCVAE's generation network reads


@register_model
class QuadrantCVAE(BaseVAE):
    """The paper's CVAE for structured output prediction, with its recurrent baseline connection.

    x is an image whose unobserved pixels hold ``fill`` (-1), y the same image with the
    observed pixels at ``fill`` (see :func:`cvae_utils.quadrants.split_quadrants`). A trained,
    frozen :class:`BaselineNet` predicts y_hat from x; feeding that prediction to the prior
    network is the paper's "recurrent connection" (Sec. 4.1), and by default this model gives
    it to the generation network as well:

    * recognition q(z|x,y): an MLP on the whole image (x's observed pixels, y's target ones);
    * prior p(z|x):         an MLP on x_hat = :meth:`fill_missing` (x with y_hat on its missing pixels);
    * generation p(y|x,z):  an MLP on (z, x_hat) (``generation_input="z_and_x_hat"``, the default)
      or on z alone (``generation_input="z"``, as in pyro's example, where x reaches y only
      through the prior), giving Bernoulli logits for every pixel; the likelihood counts only
      the target pixels (the batch's mask).

    Trained with ``objective="cvae"``, ``"gsnn"`` or ``"hybrid"`` as the other models.

    Taught in notebook 7, "The CVAE with the paper's recurrent connection".
    """

    def __init__(
        self,
        baseline: BaselineNet | None = None,
        *,
        img_shape: Sequence[int] = (1, 28, 28),
        z_dim: int = 32,
        hidden_dims: Sequence[int] = (500, 500),
        baseline_hidden_dims: Sequence[int] = (500, 500),
        fill: float = -1.0,
        generation_input: str = "z_and_x_hat",
    ) -> None:
        super().__init__(z_dim, "bernoulli")
        if generation_input not in GENERATION_INPUTS:
            raise ValueError(f"generation_input must be one of {GENERATION_INPUTS}; got {generation_input!r}.")
        self.generation_input = generation_input
        self.x_shape = self.y_shape = as_shape(img_shape, "img_shape")
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
        sees_x = generation_input == "z_and_x_hat"
        self.generation_net = mlp([self.z_dim + (d if sees_x else 0), *reversed(hidden), d])
        self.config = model_config(
            self,
            img_shape=list(self.x_shape),
            z_dim=self.z_dim,
            hidden_dims=hidden,
            baseline_hidden_dims=list(baseline.config["kwargs"]["hidden_dims"]),
            fill=self.fill,
            generation_input=generation_input,
        )

    def train(self, mode: bool = True):
        super().train(mode)
        self.baseline.eval()  # the baseline stays frozen, always in evaluation mode
        return self

    def fill_missing(self, x: Tensor) -> Tensor:
        """x_hat: x with its unobserved pixels filled by the baseline's prediction, flat (B, D).

        Derived in notebook 7, "The CVAE with the paper's recurrent connection".
        """
        check_tensor("x", x, self.x_shape)
        flat = x.flatten(1)
        with torch.no_grad():
            y_hat = torch.sigmoid(self.baseline.net(flat))
        return torch.where(flat == self.fill, y_hat, flat)

    def expand_condition(self, x, num_samples: int) -> Tensor:
        return tensor_batch(x, num_samples, self.x_shape, self._device())

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("y", y, self.y_shape)
        check_tensor("x", x, self.x_shape)
        check_same_batch(y=y, x=x)
        whole = torch.where(x == self.fill, y, x)  # observed pixels from x, the rest from y
        return self.recognition_net(whole.flatten(1)).chunk(2, dim=1)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior_net(self.fill_missing(x)).chunk(2, dim=1)

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        check_same_batch(z=z, x=x)
        if self.generation_input == "z":
            h = self.generation_net(z)
        else:
            h = self.generation_net(torch.cat([z, self.fill_missing(x)], dim=1))
        return h.view(len(z), *self.y_shape)

    @torch.no_grad()
    def complete(self, x: Tensor, y_part: Tensor) -> Tensor:
        """Whole images: the observed pixels of x, and ``y_part`` (e.g. samples) on the missing ones."""
        return torch.where(x == self.fill, y_part, x)
