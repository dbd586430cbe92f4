"""A small CNN that labels digits: not a VAE, the judge of what the CVAEs draw (notebook 6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils import eval_mode
from ..validation import check_labels, check_same_batch, check_tensor
from .base import as_shape, model_config, register_model


@register_model
class DigitClassifier(nn.Module):
    """Two 5x5 convolutions with max-pooling, then a linear layer, for images of ``x_shape``.

    ``channels=()`` leaves out the convolutions: an MLP with one hidden layer (the second
    referee, ``digit_classifier_mlp``).

    Trained by :func:`cvae_utils.train.fit` through ``objective(y=labels, x=images)``
    (cross-entropy in nats per example).

    Taught in notebook 6, "The pretrained models, loaded in seconds".
    """

    def __init__(
        self,
        x_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        chans = [int(c) for c in channels]
        self.x_shape = as_shape(x_shape, "x_shape")
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape must be (channels, height, width); got {self.x_shape}.")
        self.num_classes = int(num_classes)
        layers: list[nn.Module] = []
        c, h, w = self.x_shape
        for out in chans:
            layers += [nn.Conv2d(c, out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(
                f"{len(chans)} pooling layers are too many for images of {self.x_shape}: use fewer channels."
            )
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c * h * w, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, self.num_classes),
        )
        self.config = model_config(
            self,
            x_shape=list(self.x_shape),
            num_classes=self.num_classes,
            channels=chans,
            hidden=int(hidden),
            dropout=float(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Class logits for images x (B, C, H, W)."""
        check_tensor("images", x, self.x_shape)
        return self.head(self.features(x))

    @torch.no_grad()
    def penultimate(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        """The ``hidden`` features before the last layer (eval mode, in batches): what a Fréchet distance compares."""
        check_tensor("images", x, self.x_shape)
        with eval_mode(self):
            return torch.cat(
                [self.head[:-1](self.features(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
            )

    @torch.no_grad()
    def read(self, x: Tensor, batch_size: int = 2048) -> tuple[Tensor, Tensor]:
        """``(predict(x), penultimate(x))`` from one pass of the network: what a sample-quality measure needs."""
        features = self.penultimate(x, batch_size)
        with eval_mode(self):
            return self.head[-1](features).argmax(1), features

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        """The most likely class of each image (evaluated in eval mode, in batches)."""
        with eval_mode(self):
            return torch.cat([self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])

    def objective(self, y: Tensor, x: Tensor, mask: Tensor | None = None, **_ignored) -> dict[str, Tensor]:
        """Cross-entropy of the labels ``y`` given images ``x`` (mean over the batch), and the error rate."""
        check_labels("labels", y, self.num_classes)
        check_same_batch(labels=y, images=x)
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "error": (logits.argmax(1) != y).float().mean()}
