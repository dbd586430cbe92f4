"""Checkers for the coding exercises of the notebooks: ``cu.exercises.check_*(your_function)``.

Each checker runs the student's function on several inputs, edge cases included,
compares what comes back with the library (shape and dtype first, then the values,
with a tolerance) and returns a :class:`CheckResult`: truthy when every case passes;
otherwise it names the failing case, what was expected, what came back, and a hint
that recognises the typical mistakes (a sign error, a mean instead of a sum, a
missing 0.5, a log-variance used without its exponent, ...). Shown as a cell's last
expression, the result prints its message.

A checker never raises because of the student's function (an exception inside it is
reported as a failed case), so a notebook with an unfinished exercise still runs
top to bottom; it raises ``TypeError`` only when it is given something that is not a
function. It draws its inputs from its own seeds and restores PyTorch's global
random state afterwards, so checking a function changes nothing else in the notebook.

The checkers, the notebook (and module) that uses each, and the student's function:

* :func:`check_kl_diag_gaussians` (notebook 1, ``nb01_kl``): ``fn(mu_q, logvar_q, mu_p, logvar_p)`` -> (B,)
* :func:`check_reparameterize` (notebook 2, ``nb02_reparameterize``): ``fn(mu, logvar)`` -> z shaped like mu
* :func:`check_masked_log_likelihood` (notebook 3, ``nb03_masked_likelihood``): ``fn(logits, y, mask)`` -> (B,)
* :func:`check_elbo` (notebook 4, ``nb04_elbo``): ``fn(logits, y, mu, logvar, prior_mu, prior_logvar)`` -> a scalar
* :func:`check_kl_warmup_weight` (notebook 5, ``nb05_training_loop``): ``fn(epoch, step, steps_per_epoch,
  warmup_epochs)`` -> a number
* :func:`check_global_grad_norm` (notebook 5, ``nb05_training_loop``): ``fn(parameters)`` -> a number
* :func:`check_importance_sampled_log_likelihood` (notebook 5, ``nb05_importance_sampling``): ``fn(log_w)`` with
  log_w (S, B) -> (B,)
* :func:`check_sample` (notebook 6, ``nb06_sample``): ``fn(model, x, temperature, generator)`` -> images
  (len(x), *y_shape)
* :func:`check_log_importance_weights` (notebook 7, ``nb07_importance_weights``): ``fn(model, y, x, mask, eps)``
  with eps (S, B, z_dim) -> (S, B)

Arguments are always passed by position, so the student may name them as they like.
Each notebook's module writes its checker as data (a list of cases, and the typical
mistakes with the wrong answer each computes); :mod:`.harness` interprets them.
"""

from .harness import FAIL_MARK as FAIL_MARK
from .harness import PASS_MARK as PASS_MARK
from .harness import CheckResult
from .nb01_kl import check_kl_diag_gaussians
from .nb02_reparameterize import check_reparameterize
from .nb03_masked_likelihood import check_masked_log_likelihood
from .nb04_elbo import check_elbo
from .nb05_importance_sampling import check_importance_sampled_log_likelihood
from .nb05_training_loop import check_global_grad_norm, check_kl_warmup_weight
from .nb06_sample import check_sample
from .nb07_importance_weights import check_log_importance_weights

__all__ = [
    "CheckResult",
    "check_kl_diag_gaussians",
    "check_reparameterize",
    "check_masked_log_likelihood",
    "check_elbo",
    "check_kl_warmup_weight",
    "check_global_grad_norm",
    "check_importance_sampled_log_likelihood",
    "check_sample",
    "check_log_importance_weights",
]
