"""The models of the series, one module each, behind the ``BaseVAE`` interface of :mod:`.base`.

* :mod:`.base`: the interface (``encode``, ``prior``, ``decode``, ``sample``, ...) and the registry;
* :mod:`.mlp_cvae`: the paper's CVAE with MLP networks (label or image condition);
* :mod:`.conv_cvae`: the starting model's convolutional CVAE, working at any size;
* :mod:`.quadrant`: the paper's baseline and its CVAE for quadrant completion;
* :mod:`.classifier`: the digit classifier that scores samples (not a VAE).
"""

from .base import MODEL_REGISTRY, BaseVAE, ForwardOutput, build_model, mlp, register_model
from .classifier import DigitClassifier
from .conv_cvae import ConditionalVAE
from .mlp_cvae import MLPCVAE
from .quadrant import BaselineNet, QuadrantCVAE

__all__ = [
    "BaseVAE",
    "ForwardOutput",
    "MLPCVAE",
    "ConditionalVAE",
    "BaselineNet",
    "QuadrantCVAE",
    "DigitClassifier",
    "build_model",
    "register_model",
    "MODEL_REGISTRY",
    "mlp",
]
