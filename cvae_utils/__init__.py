"""cvae_utils: the library behind the Conditional VAE notebook series.

Sohn, Lee & Yan (2015), "Learning Structured Output Representation using Deep
Conditional Generative Models". Notation: x the condition, y the output, z the latent.

``import cvae_utils as cu`` gives the names below, grouped in the order the notebooks
meet them. Infrastructure stays in its module: :mod:`cvae_utils.files` (digests,
manifests, atomic writes), :mod:`cvae_utils.validation` (input checks),
:mod:`cvae_utils.checkpoint`, :mod:`cvae_utils.utils` (``tune_cpu_allocator``),
:mod:`cvae_utils.models` (``register_model``), :mod:`cvae_utils.config` (``QUICK_ENV_VAR``),
and the runs that build the shipped files in :mod:`cvae_utils.experiments`.
"""

from importlib.metadata import PackageNotFoundError, version

# cu.diagrams: pictures of the models; cu.exercises.check_*: the checkers; cu.quadrants: notebook 7's task
from . import diagrams, exercises, quadrants
from .checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from .config import pick, quick_mode
from .data import (
    DataIntegrityError,
    MNISTSplit,
    TensorBatches,
    binarize_images,
    load_mnist,
    mnist_dataloader,
    train_val_split,
)
from .losses import (
    bernoulli_log_likelihood,
    cvae_terms,
    elbo_terms,
    evaluate_log_likelihood,
    gaussian_log_density,
    gaussian_log_likelihood,
    gsnn_terms,
    hybrid_terms,
    importance_sampled_log_likelihood,
    kl_diag_gaussians,
    kl_standard_normal,
    log_mean_exp,
    objective_terms,
)
from .models import (
    MLPCVAE,
    BaselineNet,
    BaseVAE,
    ConditionalVAE,
    DigitClassifier,
    ForwardOutput,
    QuadrantCVAE,
    build_model,
)
from .plotting import image_grid, plot_history, show_images
from .pretrained import load_pretrained
from .quadrants import Quadrants, load_quadrant_model, split_quadrants
from .quizzes import quiz
from .sampling import (
    conditional_accuracy,
    latent_usage,
    render_samples,
    sample_noise,
    sampler_widget,
    standardised_latent,
    transfer_style,
)
from .toy import LinearGaussianCVAE
from .train import History, TrainingDiverged, evaluate, fit, make_adam
from .utils import eval_mode, get_device, seed_everything

try:
    __version__ = version("cvae-utils")
except PackageNotFoundError:  # imported from a folder that was never installed
    __version__ = "0+unknown"

__all__ = [
    # set-up of every notebook
    "quick_mode", "pick", "get_device", "seed_everything",
    # 1. the ELBO: closed forms and a model where log p(y|x) is exact
    "kl_diag_gaussians", "kl_standard_normal", "gaussian_log_density", "log_mean_exp", "LinearGaussianCVAE",
    # 2-3. the networks: data, the model interface and the label CVAE, the starting model's CVAE
    "load_mnist", "MNISTSplit", "TensorBatches", "train_val_split", "binarize_images", "mnist_dataloader",
    "DataIntegrityError", "BaseVAE", "ForwardOutput", "MLPCVAE", "ConditionalVAE", "show_images", "image_grid",
    # 4. the loss
    "bernoulli_log_likelihood", "gaussian_log_likelihood", "elbo_terms", "cvae_terms", "gsnn_terms",
    "hybrid_terms", "objective_terms",
    # 5. training, checkpoints, the importance-sampled likelihood
    "fit", "evaluate", "make_adam", "History", "TrainingDiverged", "plot_history", "eval_mode", "save_checkpoint",
    "read_checkpoint", "load_model", "build_model", "CheckpointError", "importance_sampled_log_likelihood",
    "evaluate_log_likelihood", "latent_usage",
    # 6. conditional sampling
    "load_pretrained", "DigitClassifier", "sample_noise", "render_samples", "sampler_widget", "standardised_latent",
    "transfer_style", "conditional_accuracy",
    # 7. structured output: quadrant completion
    "quadrants", "split_quadrants", "Quadrants", "BaselineNet", "QuadrantCVAE", "load_quadrant_model",
    # pictures of the models (notebooks 1, 2, 3 and 7), the checkers of the exercises, the quiz of each notebook
    "diagrams", "exercises", "quiz",
]  # fmt: skip
