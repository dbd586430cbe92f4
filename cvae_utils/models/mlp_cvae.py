"""The CVAE of the paper with MLPs for its three networks, conditioned on a label or an image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..validation import check_labels, check_same_batch, check_tensor, label_batch, tensor_batch
from .base import BaseVAE, as_shape, mlp, model_config, register_model


@register_model
class MLPCVAE(BaseVAE):
    """A CVAE whose three networks are MLPs.

    The condition x is either a class label (``num_classes``) or an image of shape
    ``x_shape`` (e.g. the observed quadrants); y has shape ``y_shape``.

    * recognition q(z|x,y): [y, x] -> hidden_dims -> (mu, logvar)
    * prior p(z|x): x -> hidden_dims -> (mu, logvar) when ``learned_prior``, else N(0, I)
    * generation p(y|x,z): [z, x] -> reversed(hidden_dims) -> y

    Taught in notebook 2, "The same two networks in the library".
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
        self.y_shape = as_shape(y_shape, "y_shape")
        self.x_shape = as_shape(x_shape, "x_shape") if x_shape is not None else None
        self.num_classes = int(num_classes) if num_classes is not None else None
        hidden = [int(h) for h in hidden_dims]
        y_dim = math.prod(self.y_shape)
        x_dim = self.num_classes if self.num_classes is not None else math.prod(self.x_shape)
        self.recognition_net = mlp([y_dim + x_dim, *hidden, 2 * self.z_dim])
        self.prior_net = mlp([x_dim, *hidden, 2 * self.z_dim]) if learned_prior else None
        self.generation_net = mlp([self.z_dim + x_dim, *reversed(hidden), y_dim])
        self.config = model_config(
            self, y_shape=list(self.y_shape), z_dim=self.z_dim, hidden_dims=hidden, num_classes=self.num_classes,
            x_shape=list(self.x_shape) if self.x_shape else None, learned_prior=bool(learned_prior),
            likelihood=likelihood, obs_std=float(obs_std),
        )  # fmt: skip

    def condition_vector(self, x: Tensor) -> Tensor:
        """x as one flat float vector per example: one-hot for a label, the flattened image otherwise."""
        if self.num_classes is not None:
            check_labels("x (labels)", x, self.num_classes)
            return F.one_hot(x, self.num_classes).to(self.recognition_net[0].weight.dtype)
        check_tensor("x", x, self.x_shape)
        return x.flatten(1)

    def expand_condition(self, x, num_samples: int) -> Tensor:
        device = self.recognition_net[0].weight.device
        if self.num_classes is not None:
            return label_batch(x, num_samples, self.num_classes, device)
        return tensor_batch(x, num_samples, self.x_shape, device)

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("y", y, self.y_shape)
        check_same_batch(y=y, x=x)
        h = self.recognition_net(torch.cat([y.flatten(1), self.condition_vector(x)], dim=1))
        return h.chunk(2, dim=1)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c = self.condition_vector(x)
        if self.prior_net is None:
            zeros = c.new_zeros(len(c), self.z_dim)
            return zeros, zeros
        return self.prior_net(c).chunk(2, dim=1)

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        check_same_batch(z=z, x=x)
        h = self.generation_net(torch.cat([z, self.condition_vector(x)], dim=1))
        return h.view(len(z), *self.y_shape)
