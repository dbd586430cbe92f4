"""The CVAE objectives and the conditional log-likelihood estimator, in nats per example.

Notation of Sohn, Lee & Yan (2015): x the condition, y the output, z the latent;
recognition network q(z|x,y), prior network p(z|x), generation network p(y|x,z).

Every ``*_log_likelihood`` / ``kl_*`` function returns one number per example: a
sum over pixels (or latent dimensions), never a mean. Objectives average those over
the batch, so that every figure in the series is in nats per example.

The model-level functions (:func:`cvae_terms`, :func:`gsnn_terms`,
:func:`hybrid_terms`, :func:`importance_sampled_log_likelihood`) work with any model
that provides ``encode(y, x)``, ``prior(x)``, ``decode(z, x)`` and
``log_likelihood(decoded, y, mask)`` (see :class:`cvae_utils.models.BaseVAE`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from .utils import eval_mode
from .validation import check_same_batch, trusted_inputs, unpack_batch

LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


# ----------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------


def kl_diag_gaussians(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)), one value per example.

    0.5 * sum_j [ logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1 ].

    Derived in notebook 4, "The KL divergence between two diagonal Gaussians".
    """
    return 0.5 * _sum_per_example(
        logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1.0
    )


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag e^logvar) || N(0, I)), one value per example: -0.5 * sum(1 + logvar - mu^2 - e^logvar).

    Derived in notebook 4, "The special case: a standard normal prior".
    """
    return -0.5 * _sum_per_example(1.0 + logvar - mu.pow(2) - logvar.exp())


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag e^logvar), summed over the last dimension.

    Taught in notebook 4, "The KL divergence between two diagonal Gaussians".
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def bernoulli_log_likelihood(logits: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
    """log p(y | logits) for a Bernoulli per pixel, summed over pixels, one value per example.

    Per pixel: y * logits - log(1 + e^logits) = y log sigmoid(logits) + (1 - y) log(1 - sigmoid(logits)),
    i.e. minus the binary cross-entropy, computed by ``F.binary_cross_entropy_with_logits``.
    ``y`` may hold grey levels in [0, 1] (the value then is a cross-entropy, not a normalised
    log-probability, as in pyro's example); ``mask`` keeps only the target pixels.

    Derived in notebook 3, "The two log-likelihoods, by hand".
    """
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and y {tuple(y.shape)} must have the same shape.")
    mask = _expand_mask(mask, logits)
    nll = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
    if mask is not None:
        nll = nll * mask
    return -_sum_per_example(nll)  # negated after the sum: one value per example, not per pixel


def gaussian_log_likelihood(
    mean: Tensor, y: Tensor, logvar: Tensor | float = 0.0, mask: Tensor | None = None
) -> Tensor:
    """log N(y; mean, e^logvar) per pixel, summed over pixels, one value per example.

    Derived in notebook 3, "The two log-likelihoods, by hand".
    """
    if mean.shape != y.shape:
        raise ValueError(f"mean {tuple(mean.shape)} and y {tuple(y.shape)} must have the same shape.")
    logvar = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device)
    ll = -0.5 * (LOG_2PI + logvar + (y - mean).pow(2) * torch.exp(-logvar))
    mask = _expand_mask(mask, mean)
    if mask is not None:
        ll = ll * mask
    return _sum_per_example(ll)


def _expand_mask(mask: Tensor | None, like: Tensor) -> Tensor | None:
    """The mask as a float tensor shaped like ``like`` (it may broadcast), or a clear error."""
    if mask is None:
        return None
    try:
        return mask.to(like.dtype).expand_as(like)
    except RuntimeError:
        raise ValueError(
            f"mask {tuple(mask.shape)} does not fit y {tuple(like.shape)}: give one mask per example, shaped like y "
            "(or a shape that broadcasts to it, such as one image's mask)."
        ) from None


def log_mean_exp(t: Tensor, dim: int = 0) -> Tensor:
    """log(mean(exp(t))) along ``dim``, computed stably.

    Taught in notebook 1, "A CVAE where everything is exact".
    """
    return torch.logsumexp(t, dim=dim) - math.log(t.shape[dim])


# ----------------------------------------------------------------------------------
# Objectives of the paper, for a model with encode / prior / decode / log_likelihood
# ----------------------------------------------------------------------------------


def elbo_terms(log_likelihood: Tensor, kl: Tensor, kl_weight: float = 1.0) -> dict[str, Tensor]:
    """The terms of the CVAE bound from per-example log p(y|x,z) and KL, as batch means (nats per example).

      * ``recon``: -E_q[log p(y|x,z)], the reconstruction term;
      * ``kl``:    KL(q(z|x,y) || p(z|x));
      * ``elbo``:  E_q[log p(y|x,z)] - KL, the bound on log p(y|x);
      * ``loss``:  recon + kl_weight * kl, what the optimiser minimises (= -ELBO at weight 1;
        a weight below 1 only during a KL warm-up).

    The one place the series assembles the bound.

    Derived in notebook 4, "The ELBO assembled".
    """
    recon = -log_likelihood.mean()
    kl = kl.mean()
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl, "elbo": -(recon + kl)}


def cvae_terms(model, y: Tensor, x: Tensor, mask: Tensor | None = None, kl_weight: float = 1.0) -> dict[str, Tensor]:
    """The CVAE bound, Eq. (4) of the paper, with one sample z ~ q(z|x,y).

    ``model.loss_function(model(y, x), mask, kl_weight)``: the terms of :func:`elbo_terms`.

    Derived in notebook 1, "The Monte Carlo ELBO that training uses".
    """
    return model.loss_function(model(y, x), mask, kl_weight)


def gsnn_terms(model, y: Tensor, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
    """The GSNN objective, Eq. (7): E_{p(z|x)}[log p(y|x,z)], one sample, as a loss to minimise.

    Training and testing then draw z the same way (from the prior network).

    Derived in notebook 4, "Two more objectives: the GSNN and the hybrid".
    """
    check_same_batch(y=y, x=x)
    mu_p, logvar_p = model.prior(x)
    z = model.reparameterize(mu_p, logvar_p)
    gsnn_recon = -model.log_likelihood(model.decode(z, x), y, mask).mean()
    return {"loss": gsnn_recon, "gsnn_recon": gsnn_recon}


def hybrid_terms(
    model, y: Tensor, x: Tensor, mask: Tensor | None = None, alpha: float = 0.5, kl_weight: float = 1.0
) -> dict[str, Tensor]:
    """The hybrid objective, Eq. (8): alpha * L_CVAE + (1 - alpha) * L_GSNN (as a loss).

    Derived in notebook 4, "Two more objectives: the GSNN and the hybrid".
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} must lie in [0, 1] (1 = pure CVAE, 0 = pure GSNN).")
    c = cvae_terms(model, y, x, mask, kl_weight)
    g = gsnn_terms(model, y, x, mask)
    return {**c, "gsnn_recon": g["gsnn_recon"], "loss": alpha * c["loss"] + (1.0 - alpha) * g["loss"]}


OBJECTIVES = ("cvae", "gsnn", "hybrid")


def objective_terms(
    model,
    y: Tensor,
    x: Tensor,
    mask: Tensor | None = None,
    *,
    objective: str = "cvae",
    alpha: float = 0.5,
    kl_weight: float = 1.0,
) -> dict[str, Tensor]:
    """Dispatch to :func:`cvae_terms`, :func:`gsnn_terms` or :func:`hybrid_terms` by name.

    Taught in notebook 4, "Two more objectives: the GSNN and the hybrid".
    """
    if objective == "cvae":
        return cvae_terms(model, y, x, mask, kl_weight)
    if objective == "gsnn":
        return gsnn_terms(model, y, x, mask)
    if objective == "hybrid":
        return hybrid_terms(model, y, x, mask, alpha, kl_weight)
    raise ValueError(f"objective={objective!r} is not one of {OBJECTIVES}.")


# ----------------------------------------------------------------------------------
# The paper's test measure: importance-sampled conditional log-likelihood
# ----------------------------------------------------------------------------------


def _repeat(t: Tensor, s: int) -> Tensor:
    return t.repeat(s, *([1] * (t.dim() - 1)))


@torch.no_grad()
def importance_sampled_log_likelihood(
    model,
    y: Tensor,
    x: Tensor,
    mask: Tensor | None = None,
    num_samples: int = 100,
    max_rows: int = 8192,
    proposal: str = "recognition",
) -> Tensor:
    """Estimate log p(y|x) per example (Sec. 5.1 of the paper), in nats.

    log p(y|x) ~= log (1/S) sum_s p(y|x,z_s) p(z_s|x) / q(z_s|x,y),  z_s ~ q(z|x,y).

    At most ``max_rows`` rows (examples x samples) go through the generation network at
    once, whatever the batch size and S, so memory stays bounded. The model is evaluated
    in eval mode (and left in the mode it had). The estimate is a stochastic lower bound
    that tightens as S grows (Burda et al., 2016).

    ``proposal="prior"`` draws z_s from p(z|x) instead (then the weights are just
    p(y|x,z_s)): the estimator for a GSNN, whose recognition network is never trained.

    Derived in notebook 7, "The test measure: importance-sampled log p(y|x)".
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be at least 1.")
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows} must be at least 1 (rows decoded at once).")
    if proposal not in ("recognition", "prior"):
        raise ValueError(f"proposal={proposal!r} must be 'recognition' (q(z|x,y)) or 'prior' (p(z|x)).")
    check_same_batch(y=y, x=x)
    if mask is not None:
        mask = _expand_mask(mask, y)
    with eval_mode(model):
        if len(y) <= max_rows:
            return _importance_sampled(model, y, x, mask, num_samples, max_rows, proposal)
        parts = [
            _importance_sampled(model, y[i : i + max_rows], x[i : i + max_rows],
                                None if mask is None else mask[i : i + max_rows], num_samples, max_rows, proposal)
            for i in range(0, len(y), max_rows)
        ]  # fmt: skip
        return torch.cat(parts)


def _importance_sampled(model, y, x, mask, num_samples: int, max_rows: int, proposal: str) -> Tensor:
    """The estimate for a batch of at most ``max_rows`` examples, samples decoded in chunks of ``max_rows`` rows."""
    batch = y.shape[0]
    mu_p, logvar_p = model.prior(x)
    mu_q, logvar_q = model.encode(y, x) if proposal == "recognition" else (mu_p, logvar_p)
    per_chunk = max(1, max_rows // batch)
    log_w = []
    done = 0
    repeated: dict = {}  # the same repeated tensors serve every full chunk
    while done < num_samples:
        s = min(per_chunk, num_samples - done)
        if s not in repeated:
            tensors = (x, y, mask, mu_q, logvar_q, mu_p, logvar_p)
            repeated = {s: [None if t is None else _repeat(t, s) for t in tensors]}
        xs, ys, ms, mq, lq, mp, lp = repeated[s]
        z = mq + torch.exp(0.5 * lq) * torch.randn_like(mq)
        ll = model.log_likelihood(model.decode(z, xs), ys, ms)
        lw = ll + gaussian_log_density(z, mp, lp) - gaussian_log_density(z, mq, lq)
        log_w.append(lw.view(s, batch))
        done += s
    return log_mean_exp(torch.cat(log_w, dim=0), dim=0)


@torch.no_grad()
def evaluate_log_likelihood(
    model, batches: Iterable, num_samples: int = 100, max_rows: int = 8192, proposal: str = "recognition"
) -> float:
    """Mean importance-sampled log p(y|x) over every example of ``batches`` (nats per example).

    ``batches`` yields ``(y, x)`` or ``(y, x, mask)``, as :func:`cvae_utils.train.fit` takes;
    ``proposal`` as in :func:`importance_sampled_log_likelihood`. The first batch is
    checked in full, the rest only for shapes (see :mod:`cvae_utils.validation`).
    """
    total, count = 0.0, 0
    for batch in batches:
        y, x, mask = unpack_batch(batch)
        with trusted_inputs() if count else contextlib.nullcontext():
            ll = importance_sampled_log_likelihood(model, y, x, mask, num_samples, max_rows, proposal)
        total += ll.sum().item()
        count += len(ll)
    if count == 0:
        raise ValueError("evaluate_log_likelihood got no examples: the batches were empty.")
    return total / count
