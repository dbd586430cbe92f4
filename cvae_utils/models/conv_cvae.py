"""The starting model's convolutional CVAE (after PyTorch-VAE's ``ConditionalVAE``), working at any size.

The starting model called the image ``input`` and the label ``labels`` (one-hot); here
they are y and x, and x is the class index. Notebook 3 reads its decoder, notebook 5
trains it beside the MLP CVAE (the appendix on the starting model lists what was fixed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_labels, check_same_batch, check_tensor, label_batch
from .base import BaseVAE, as_shape, model_config, register_model

DEFAULT_HIDDEN_DIMS = (32, 64, 128, 256, 512)  # the starting model's channels


def conv_sizes(size: int, num_layers: int) -> list[int]:
    """Sizes along one axis through stride-2, kernel-3, padding-1 convolutions: s -> ceil(s / 2)."""
    sizes = [size]
    for _ in range(num_layers):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def default_hidden_dims(height: int, width: int) -> list[int]:
    """The starting model's channels, as many layers as keep the bottleneck at least 2 x 2."""
    layers = 0
    while (
        layers < len(DEFAULT_HIDDEN_DIMS)
        and min(conv_sizes(height, layers + 1)[-1], conv_sizes(width, layers + 1)[-1]) >= 2
    ):
        layers += 1
    return list(DEFAULT_HIDDEN_DIMS[:layers])


def _up_block(c_in: int, c_out: int, size_in: tuple[int, int], size_out: tuple[int, int]) -> list[nn.Module]:
    # ConvTranspose2d(k=3, s=2, p=1) gives 2 * size_in - 1 + output_padding: pick the
    # output_padding (0 or 1) per axis that lands exactly on the encoder's size at this depth.
    padding = tuple(o - 2 * i + 1 for i, o in zip(size_in, size_out))
    return [
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=padding),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(),
    ]


@register_model
class ConditionalVAE(BaseVAE):
    """The starting model's label-conditioned convolutional CVAE, fixed.

    The label is embedded as an extra input channel (a learned H x W map per class);
    the encoder halves the image ``len(hidden_dims)`` times; the decoder mirrors it,
    every transposed convolution sized to land on the encoder's size at that depth, so
    any ``y_shape`` = (channels, height, width) works, square or not. The prior is the
    fixed N(0, I), as in the starting model; the decoder sees [z, one-hot label]. Unlike
    the starting model, the output is logits (Bernoulli) or a mean (Gaussian), not a Tanh
    image, and the loss is the ELBO, not a pixel-mean MSE.

    BatchNorm needs more than one value per channel in training, so the encoder must stop
    at a bottleneck of at least 2 x 2 (then a batch of one image trains too): the default
    ``hidden_dims`` takes as many of the starting model's layers as fit, and ``hidden_dims``
    that would shrink the image to 1 pixel are refused.

    Taught in notebook 3, "Optional: The starting model's convolutional decoder, fixed".
    """

    def __init__(
        self,
        y_shape: Sequence[int] = (1, 28, 28),
        z_dim: int = 20,
        hidden_dims: Sequence[int] | None = None,
        *,
        num_classes: int = 10,
        likelihood: str = "bernoulli",
        obs_std: float = 0.1,
    ) -> None:
        super().__init__(z_dim, likelihood, obs_std)
        self.y_shape = as_shape(y_shape, "y_shape")
        if len(self.y_shape) != 3:
            raise ValueError(f"y_shape must be (channels, height, width); got {self.y_shape}.")
        if int(num_classes) < 2:
            raise ValueError(f"num_classes={num_classes} must be at least 2.")
        channels, height, width = self.y_shape
        self.num_classes = int(num_classes)
        hidden = [int(h) for h in hidden_dims] if hidden_dims is not None else default_hidden_dims(height, width)
        if not hidden:
            raise ValueError(
                f"hidden_dims needs at least one entry (the channels of each conv layer); images of {height} x {width} "
                "are too small for a stride-2 convolution that leaves at least 2 x 2."
            )
        heights, widths = conv_sizes(height, len(hidden)), conv_sizes(width, len(hidden))
        if min(heights[-1], widths[-1]) < 2:
            fits = len(default_hidden_dims(height, width))
            raise ValueError(
                f"{len(hidden)} conv layers shrink a {height} x {width} image to {heights[-1]} x {widths[-1]}: "
                "BatchNorm then sees one value per channel and a batch of one image cannot train. "
                f"Use at most {fits} entries in hidden_dims (or leave hidden_dims=None)."
            )
        sizes = list(zip(heights, widths))
        self.bottleneck = (hidden[-1], *sizes[-1])
        flat = math.prod(self.bottleneck)

        self.embed_class = nn.Linear(self.num_classes, height * width)
        self.embed_data = nn.Conv2d(channels, channels, kernel_size=1)
        blocks, c = [], channels + 1  # + 1 for the label channel
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
            nn.Conv2d(rev[-1], channels, kernel_size=3, padding=1),
        )
        self.config = model_config(
            self,
            y_shape=list(self.y_shape),
            num_classes=self.num_classes,
            z_dim=self.z_dim,
            hidden_dims=hidden,
            likelihood=likelihood,
            obs_std=float(obs_std),
        )

    def _one_hot(self, x: Tensor) -> Tensor:
        check_labels("x (labels)", x, self.num_classes)
        return F.one_hot(x, self.num_classes).to(self.fc_mu.weight.dtype)

    def expand_condition(self, x, num_samples: int) -> Tensor:
        return label_batch(x, num_samples, self.num_classes, self.fc_mu.weight.device)

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("y", y, self.y_shape)
        check_same_batch(y=y, x=x)
        label_map = self.embed_class(self._one_hot(x)).view(-1, 1, *self.y_shape[1:])
        h = self.encoder(torch.cat([self.embed_data(y), label_map], dim=1)).flatten(1)
        return self.fc_mu(h), self.fc_var(h)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        zeros = self._one_hot(x).new_zeros(len(x), self.z_dim)
        return zeros, zeros

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        check_same_batch(z=z, x=x)
        h = self.decoder_input(torch.cat([z, self._one_hot(x)], dim=1)).view(-1, *self.bottleneck)
        return self.final_layer(self.decoder(h))
