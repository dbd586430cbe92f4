"""cvae_utils: the small library behind the Conditional VAE notebook series.

Sohn, Lee & Yan (2015), "Learning Structured Output Representation using Deep
Conditional Generative Models". Notation: x the condition, y the output, z the latent.
"""

from .checkpoint import CheckpointError, load_into, load_model, read_checkpoint, save_checkpoint
from .config import QUICK_ENV_VAR, pick, quick_mode
from .data import (
    DataIntegrityError,
    MNISTSplit,
    Quadrants,
    TensorBatches,
    binarize_images,
    load_mnist,
    mnist_dataloader,
    prepare_mnist,
    quadrant_mask,
    split_quadrants,
    train_val_split,
)
from .losses import (
    bernoulli_log_likelihood,
    cvae_terms,
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
    BaselineNet,
    BaseVAE,
    ConditionalVAE,
    DigitClassifier,
    ForwardOutput,
    MLPCVAE,
    QuadrantCVAE,
    build_model,
    register_model,
)
from .plotting import image_grid, plot_history, show_images
from .pretrained import load_pretrained
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
from .train import History, evaluate, fit, make_adam
from .utils import file_digest, get_device, seed_everything, tune_cpu_allocator
from . import exercises  # cu.exercises.check_*: the checkers of the notebooks' coding exercises

__version__ = "0.1.0"
