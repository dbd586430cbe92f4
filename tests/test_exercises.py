"""The exercise checkers: they pass the reference solutions, fail the typical wrong answers with the
right diagnosis, report (never propagate) a student's exception, and every notebook has a checked exercise."""

import ast
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence

import cvae_utils as cu
from cvae_utils import exercises as ex

ROOT = Path(__file__).resolve().parents[1]
# The notebooks whose Exercises section has a checked coding exercise.
NOTEBOOKS_WITH_CHECKED_EXERCISES = (
    "01_the_elbo.ipynb",
    "02_the_encoder.ipynb",
    "03_the_decoder.ipynb",
    "04_the_loss.ipynb",
    "05_training.ipynb",
    "06_conditional_sampling.ipynb",
    "07_structured_output.ipynb",
)
# Every checker of the package (a notebook may have several: each lives in that notebook's module, nbNN_*.py).
CHECKERS = [getattr(ex, name) for name in ex.__all__ if name.startswith("check_")]


# ----------------------------------------------------------------------------------
# Reference solutions, and other correct ways to write them
# ----------------------------------------------------------------------------------


def reference_kl(mu_q, logvar_q, mu_p, logvar_p):
    per_dim = logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1
    return 0.5 * per_dim.sum(dim=1)


def kl_with_torch_distributions(mu_q, logvar_q, mu_p, logvar_p):
    def diag(mu, logvar):
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    return kl_divergence(diag(mu_q, logvar_q), diag(mu_p, logvar_p))


def reference_reparameterize(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def reparameterize_with_rsample(mu, logvar):
    return Normal(mu, torch.exp(0.5 * logvar)).rsample()


def reference_masked_ll(logits, y, mask):
    per_pixel = y * logits - F.softplus(logits)
    return torch.where(mask.bool(), per_pixel, torch.zeros_like(per_pixel)).flatten(1).sum(dim=1)


def masked_ll_with_bce(logits, y, mask):
    y_safe = torch.where(mask.bool(), y, torch.zeros_like(y))  # BCE wants targets in [0, 1]
    bce = F.binary_cross_entropy_with_logits(logits, y_safe, reduction="none")
    return -(bce * mask).flatten(1).sum(dim=1)


def reference_loss(logits, y, mu, logvar, prior_mu, prior_logvar):
    recon = -cu.bernoulli_log_likelihood(logits, y).mean()
    return recon + cu.kl_diag_gaussians(mu, logvar, prior_mu, prior_logvar).mean()


def loss_with_bce_sum(logits, y, mu, logvar, prior_mu, prior_logvar):
    recon = F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / len(y)
    return recon + reference_kl(mu, logvar, prior_mu, prior_logvar).mean()


def reference_importance(log_w):
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def reference_sample(model, x, temperature, generator):
    with torch.no_grad():
        mu, logvar = model.prior(x)
        eps = torch.randn(mu.shape, generator=generator).to(mu)
        return torch.sigmoid(model.decode(mu + temperature * torch.exp(0.5 * logvar) * eps, x))


def reference_log_weights(model, y, x, mask, eps, *, drop=None, std=lambda lv: torch.exp(0.5 * lv)):
    """The log importance weights; ``drop`` leaves out one piece, to make the typical wrong answers."""
    num, batch = eps.shape[:2]
    mu_q, logvar_q = model.encode(y, x)
    mu_p, logvar_p = model.prior(x)
    z = mu_q + std(logvar_q) * eps
    rep = lambda t: t.repeat(num, 1, 1, 1)  # noqa: E731
    ll = model.log_likelihood(
        model.decode(z.reshape(num * batch, -1), rep(x)), rep(y), None if drop == "mask" else rep(mask)
    ).view(num, batch)
    log_prior = cu.gaussian_log_density(z, mu_p, logvar_p)
    if drop == "prior":
        log_prior = 0.0
    elif drop == "standard prior":
        log_prior = cu.gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
    sign = -1.0 if drop == "flipped ratio" else 1.0
    return ll + sign * (log_prior - cu.gaussian_log_density(z, mu_q, logvar_q))


def log_weights_with_distributions(model, y, x, mask, eps):
    """Correct, with torch.distributions and the mask applied by hand."""
    num, batch = eps.shape[:2]
    mu_q, logvar_q = model.encode(y, x)
    mu_p, logvar_p = model.prior(x)
    q = Independent(Normal(mu_q, torch.exp(0.5 * logvar_q)), 1)
    p = Independent(Normal(mu_p, torch.exp(0.5 * logvar_p)), 1)
    z = mu_q + q.base_dist.scale * eps
    logits = model.decode(z.reshape(num * batch, -1), x.repeat(num, 1, 1, 1)).view(num, batch, -1)
    target = y.flatten(1).clamp(0, 1).expand(num, -1, -1)
    m = mask.flatten(1).float().expand(num, -1, -1)
    ll = -(F.binary_cross_entropy_with_logits(logits, target, reduction="none") * m).sum(-1)
    return ll + p.log_prob(z) - q.log_prob(z)


def sample_with_other_noise_stream(model, x, temperature, generator):
    """Correct, but draws eps transposed: other numbers than model.sample, the same distribution."""
    mu, logvar = model.prior(x)
    eps = torch.randn(mu.shape[1], mu.shape[0], generator=generator, dtype=mu.dtype).T
    return model.mean_output(model.decode(mu + temperature * torch.exp(0.5 * logvar) * eps, x))


@pytest.mark.parametrize(
    "check, fn",
    [
        (ex.check_kl_diag_gaussians, reference_kl),
        (ex.check_kl_diag_gaussians, kl_with_torch_distributions),
        (ex.check_kl_diag_gaussians, cu.kl_diag_gaussians),
        (ex.check_reparameterize, reference_reparameterize),
        (ex.check_reparameterize, reparameterize_with_rsample),
        (ex.check_reparameterize, cu.BaseVAE.reparameterize),
        (ex.check_masked_log_likelihood, reference_masked_ll),
        (ex.check_masked_log_likelihood, masked_ll_with_bce),
        (ex.check_masked_log_likelihood, cu.bernoulli_log_likelihood),
        (ex.check_elbo, reference_loss),
        (ex.check_elbo, loss_with_bce_sum),
        (ex.check_importance_sampled_log_likelihood, reference_importance),
        (ex.check_importance_sampled_log_likelihood, cu.log_mean_exp),
        (ex.check_sample, reference_sample),
        (ex.check_sample, sample_with_other_noise_stream),
        (ex.check_log_importance_weights, reference_log_weights),
        (ex.check_log_importance_weights, log_weights_with_distributions),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_checker_passes_a_correct_function(check, fn):
    result = check(fn)
    assert result, result.message
    assert result.passed is True and result.case is None
    assert result.message.startswith(ex.PASS_MARK)
    assert fn.__name__ in result.message


def test_sample_pass_message_notes_an_exact_match_with_model_sample():
    assert "reproduces model.sample" in ex.check_sample(reference_sample).message
    assert "reproduces model.sample" not in ex.check_sample(sample_with_other_noise_stream).message


def test_check_elbo_can_ask_for_the_elbo_itself():
    def elbo(*args):
        return -reference_loss(*args)

    assert ex.check_elbo(elbo, negative=False)
    result = ex.check_elbo(reference_loss, negative=False)
    assert not result and "you returned the loss -ELBO" in result.message


# ----------------------------------------------------------------------------------
# Typical wrong answers, and the diagnosis each must get
# ----------------------------------------------------------------------------------


def _prior_sample(model, x, temperature, generator, *, std=None, mean=True, scale_mean=False, prior_x=None):
    mu, logvar = model.prior(x if prior_x is None else prior_x)
    sigma = torch.exp(0.5 * logvar) if std is None else std(logvar)
    eps = torch.randn(mu.shape, generator=generator).to(mu)
    z = (mu if mean else 0) + temperature * sigma * eps
    if scale_mean:
        z = temperature * (mu + sigma * eps)
    return torch.sigmoid(model.decode(z, x))


def _naive_bernoulli(logits, y):
    p = torch.sigmoid(logits)
    return y * torch.log(p) + (1 - y) * torch.log(1 - p)


WRONG = {
    # check_kl_diag_gaussians
    "kl: sign error": (ex.check_kl_diag_gaussians, lambda *a: -reference_kl(*a), "a random batch", "sign error"),
    "kl: missing 0.5": (
        ex.check_kl_diag_gaussians,
        lambda *a: 2 * reference_kl(*a),
        "a random batch",
        "0.5 in front of the sum",
    ),
    "kl: mean over dimensions": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: reference_kl(mq, lq, mp, lp) / mq.shape[1],
        "a random batch",
        "averaged over the latent dimensions",
    ),
    "kl: no exponent": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + (lq + (mq - mp) ** 2) / lp - 1).sum(1),
        "a random batch",
        "forgot the exponent",
    ),
    "kl: std for variance": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + ((0.5 * lq).exp() + (mq - mp) ** 2) / (0.5 * lp).exp() - 1).sum(1),
        "a random batch",
        "the standard deviation",
    ),
    "kl: swapped": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: reference_kl(mp, lp, mq, lq),
        "a random batch",
        "KL(p || q)",
    ),
    "kl: missing -1": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + (lq.exp() + (mq - mp) ** 2) / lp.exp()).sum(1),
        "a random batch",
        "the -1 inside the bracket",
    ),
    "kl: batch mean": (
        ex.check_kl_diag_gaussians,
        lambda *a: reference_kl(*a).mean(),
        "a random batch",
        "one value per example",
    ),
    "kl: no reduction": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: 0.5 * (lp - lq + (lq.exp() + (mq - mp) ** 2) / lp.exp() - 1),
        "a random batch",
        "sum over the latent dimensions",
    ),
    "kl: float32 always": (
        ex.check_kl_diag_gaussians,
        lambda *a: reference_kl(*a).float(),
        "a batch of 1",
        "should be too",
    ),
    # check_reparameterize
    "reparam: variance as std": (
        ex.check_reparameterize,
        lambda mu, lv: mu + torch.exp(lv) * torch.randn_like(mu),
        "sigma = 0.5",
        "the variance",
    ),
    "reparam: no exponent": (
        ex.check_reparameterize,
        lambda mu, lv: mu + lv * torch.randn_like(mu),
        "sigma = 0.5",
        "forgot the exponent",
    ),
    "reparam: no noise": (ex.check_reparameterize, lambda mu, lv: mu + 0 * lv, "a random batch", "no noise was added"),
    "reparam: forgot mu": (
        ex.check_reparameterize,
        lambda mu, lv: torch.exp(0.5 * lv) * torch.randn_like(mu),
        "sigma = 0.5",
        "add mu",
    ),
    "reparam: one eps per batch": (
        ex.check_reparameterize,
        lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape[1], dtype=mu.dtype),
        "sigma = 0.5",
        "every example got the same noise",
    ),
    "reparam: uniform noise": (
        ex.check_reparameterize,
        lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.rand_like(mu),
        "sigma = 0.5",
        "torch.rand",
    ),
    "reparam: torch.normal": (
        ex.check_reparameterize,
        lambda mu, lv: torch.normal(mu, torch.exp(0.5 * lv)),
        "gradients",
        "torch.normal",
    ),
    "reparam: .sample()": (
        ex.check_reparameterize,
        lambda mu, lv: Normal(mu, torch.exp(0.5 * lv)).sample(),
        "gradients",
        "computation graph",
    ),
    "reparam: detached sigma": (
        ex.check_reparameterize,
        lambda mu, lv: mu + torch.exp(0.5 * lv).detach() * torch.randn_like(mu),
        "gradients",
        "no gradient reaches logvar",
    ),
    # check_masked_log_likelihood
    "masked: mask ignored": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: (y * l - F.softplus(l)).flatten(1).sum(1),
        "one quadrant observed",
        "the mask is ignored",
    ),
    "masked: inverted mask": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: reference_masked_ll(l, y, ~m.bool()),
        "one quadrant observed",
        "instead of the targets",
    ),
    "masked: sign error": (
        ex.check_masked_log_likelihood,
        lambda *a: -reference_masked_ll(*a),
        "one quadrant observed",
        "sign error",
    ),
    "masked: mean over targets": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: reference_masked_ll(l, y, m) / m.flatten(1).sum(1).clamp(min=1),
        "one quadrant observed",
        "averaged over the target pixels",
    ),
    "masked: mean over pixels": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: reference_masked_ll(l, y, m) / y[0].numel(),
        "one quadrant observed",
        "averaged over all pixels",
    ),
    "masked: masked y only": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: ((y * m) * l - F.softplus(l)).flatten(1).sum(1),
        "one quadrant observed",
        "you masked y but not the per-pixel terms",
    ),
    "masked: naive log-sigmoid": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: (_naive_bernoulli(l, y) * m).flatten(1).sum(1),
        "confident logits",
        "F.softplus",
    ),
    # check_elbo
    "elbo: returns the ELBO": (
        ex.check_elbo,
        lambda *a: -reference_loss(*a),
        "a random batch",
        "you returned the ELBO",
    ),
    "elbo: mean over pixels": (
        ex.check_elbo,
        lambda l, y, *q: F.binary_cross_entropy_with_logits(l, y) + cu.kl_diag_gaussians(*q).mean(),
        "a random batch",
        "averaged over the pixels",
    ),
    "elbo: sum over batch": (
        ex.check_elbo,
        lambda l, y, *q: F.binary_cross_entropy_with_logits(l, y, reduction="sum") + cu.kl_diag_gaussians(*q).sum(),
        "a random batch",
        "summed over the batch",
    ),
    "elbo: KL missing 0.5": (
        ex.check_elbo,
        lambda l, y, *q: -cu.bernoulli_log_likelihood(l, y).mean() + 2 * cu.kl_diag_gaussians(*q).mean(),
        "a random batch",
        "0.5 in front",
    ),
    "elbo: KL sign": (
        ex.check_elbo,
        lambda l, y, *q: -cu.bernoulli_log_likelihood(l, y).mean() - cu.kl_diag_gaussians(*q).mean(),
        "a random batch",
        "the KL has the wrong sign",
    ),
    "elbo: KL to N(0, I)": (
        ex.check_elbo,
        lambda l, y, mu, lv, pm, plv: -cu.bernoulli_log_likelihood(l, y).mean() + cu.kl_standard_normal(mu, lv).mean(),
        "a random batch",
        "N(0, I) instead of the prior network",
    ),
    "elbo: KL missing": (
        ex.check_elbo,
        lambda l, y, *q: -cu.bernoulli_log_likelihood(l, y).mean(),
        "a random batch",
        "the KL term is missing",
    ),
    "elbo: per example": (
        ex.check_elbo,
        lambda l, y, *q: -cu.bernoulli_log_likelihood(l, y) + cu.kl_diag_gaussians(*q),
        "a random batch",
        "return one number",
    ),
    "elbo: naive log-sigmoid": (
        ex.check_elbo,
        lambda l, y, *q: -_naive_bernoulli(l, y).flatten(1).sum(1).mean() + cu.kl_diag_gaussians(*q).mean(),
        "confident logits",
        "F.softplus",
    ),
    "elbo: .item()": (ex.check_elbo, lambda *a: reference_loss(*a).item(), "a random batch", "no .item()"),
    # check_importance_sampled_log_likelihood
    "importance: mean of log-weights": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: w.mean(0),
        "a small batch",
        "Jensen",
    ),
    "importance: missing 1/S": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: torch.logsumexp(w, 0),
        "a small batch",
        "the 1/S is missing",
    ),
    "importance: plus log S": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: torch.logsumexp(w, 0) + math.log(len(w)),
        "a small batch",
        "sign error on log S",
    ),
    "importance: naive exp": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: w.exp().mean(0).log(),
        "very negative log-weights",
        "underflows",
    ),
    "importance: wrong dim": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: torch.logsumexp(w, 1) - math.log(w.shape[1]),
        "a small batch",
        "the samples are along dim 0",
    ),
    "importance: max": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: w.max(0).values,
        "a small batch",
        "largest log-weight",
    ),
    # check_sample
    "sample: logits": (
        ex.check_sample,
        lambda m, x, t, g: torch.logit(reference_sample(m, x, t, g)),
        "six samples of one label",
        "apply torch.sigmoid",
    ),
    "sample: no noise": (
        ex.check_sample,
        lambda m, x, t, g: _prior_sample(m, x, 0.0, g),
        "six samples of one label",
        "no noise was added",
    ),
    "sample: global RNG": (
        ex.check_sample,
        lambda m, x, t, g: torch.sigmoid(
            m.decode(m.prior(x)[0] + t * torch.exp(0.5 * m.prior(x)[1]) * torch.randn_like(m.prior(x)[0]), x)
        ),
        "reproducible",
        "draw eps from the generator",
    ),
    "sample: z ~ N(0, I)": (
        ex.check_sample,
        lambda m, x, t, g: _prior_sample(m, x, t, g, mean=False, std=lambda lv: torch.ones_like(lv)),
        "the prior's mean and spread",
        "drew z from N(0, I)",
    ),
    "sample: variance as std": (
        ex.check_sample,
        lambda m, x, t, g: _prior_sample(m, x, t, g, std=torch.exp),
        "the prior's mean and spread",
        "the variance",
    ),
    "sample: temperature ignored": (
        ex.check_sample,
        lambda m, x, t, g: _prior_sample(m, x, 1.0, g),
        "temperature 0.5",
        "the temperature is ignored",
    ),
    "sample: temperature on the mean": (
        ex.check_sample,
        lambda m, x, t, g: _prior_sample(m, x, t, g, scale_mean=True),
        "temperature 0.5",
        "temperature scales the noise only",
    ),
    "sample: first label's prior": (
        ex.check_sample,
        lambda m, x, t, g: _prior_sample(m, x, t, g, prior_x=x[:1].expand(len(x))),
        "the prior's mean and spread",
        "prior of the first label",
    ),
    "weights: no prior term": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a, drop="prior"),
        "one quadrant observed",
        "prior term log p(z|x) is missing",
    ),
    "weights: N(0, I) prior": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a, drop="standard prior"),
        "one quadrant observed",
        "used N(0, I) as the prior",
    ),
    "weights: ratio upside down": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a, drop="flipped ratio"),
        "one quadrant observed",
        "upside down",
    ),
    "weights: no mask": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a, drop="mask"),
        "one quadrant observed",
        "pass the mask",
    ),
    "weights: variance as std": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a, std=torch.exp),
        "one quadrant observed",
        "exp(0.5 * logvar_q), not exp(logvar_q)",
    ),
    "weights: averaged": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a).mean(0),
        "one quadrant observed",
        "one value per example",
    ),
    "sample: calls model.sample": (
        ex.check_sample,
        lambda m, x, t, g: m.sample(len(x), x, temperature=t, generator=g),
        "six samples of one label",
        "what this exercise re-implements",
    ),
}


@pytest.mark.parametrize("name", list(WRONG))
def test_checker_fails_a_typical_wrong_answer_with_its_diagnosis(name):
    check, fn, case, hint = WRONG[name]
    result = check(fn)
    assert not result and result.passed is False
    message = result.message
    assert message.startswith(ex.FAIL_MARK), message
    assert case in result.case, message  # the failing case, named in words
    for label in ("input:", "expected:", "got:", "hint:"):
        assert f"  {label}" in message, message
    assert hint in message.split("  hint:")[1], message


def test_a_stub_gets_not_yet_with_guidance():
    def kl_by_hand(mu_q, logvar_q, mu_p, logvar_p):
        # your code here
        return None

    result = ex.check_kl_diag_gaussians(kl_by_hand)
    assert not result
    assert "kl_by_hand returns None" in result.message and "`return`" in result.message
    assert "case 1 of 7" in result.message


@pytest.mark.parametrize("check", CHECKERS, ids=lambda c: c.__name__)
def test_a_student_exception_is_reported_not_raised(check):
    def broken(*args):
        values = [1, 2, 3]
        return values[10]  # IndexError inside the student's code

    result = check(broken)
    assert not result
    assert "raised an error" in result.message
    assert "IndexError: list index out of range" in result.message
    assert "return values[10]" in result.message  # the student's line
    assert "  input:" in result.message


@pytest.mark.parametrize("check", CHECKERS, ids=lambda c: c.__name__)
def test_a_stub_that_raises_not_implemented_gets_guidance(check):
    def todo(*args):
        raise NotImplementedError

    result = check(todo)
    assert not result and "# your code here" in result.message


@pytest.mark.parametrize("check", CHECKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("value", [None, 3.0, torch.zeros(2), "kl_by_hand"], ids=["None", "float", "tensor", "str"])
def test_a_non_callable_is_a_type_error(check, value):
    with pytest.raises(TypeError, match="takes your function"):
        check(value)


@pytest.mark.parametrize(
    "check, fn",
    [
        (ex.check_reparameterize, reference_reparameterize),
        (ex.check_sample, reference_sample),
        (ex.check_kl_diag_gaussians, reference_kl),
    ],
    ids=["reparameterize", "sample", "kl"],
)
def test_checking_leaves_the_global_random_state_alone(check, fn):
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    assert check(fn)
    torch.testing.assert_close(torch.rand(5), expected)


def test_a_checker_does_not_let_in_place_changes_reach_its_reference():
    def in_place(mu_q, logvar_q, mu_p, logvar_p):
        logvar_q.exp_()  # changes the caller's tensor
        logvar_p.exp_()
        return 0.5 * (logvar_p.log() - logvar_q.log() + (logvar_q + (mu_q - mu_p) ** 2) / logvar_p - 1).sum(1)

    assert ex.check_kl_diag_gaussians(in_place)  # right answer, odd style: still right


def test_check_result_shows_its_message_once():
    result = ex.check_importance_sampled_log_likelihood(reference_importance)
    assert bool(result) and str(result) == result.message and repr(result) == result.message

    class Printer:
        def __init__(self):
            self.out = []

        def text(self, s):
            self.out.append(s)

    p = Printer()
    result._repr_pretty_(p, False)
    assert p.out == [result.message]
    failed = ex.check_importance_sampled_log_likelihood(lambda w: w.mean(0))
    assert not failed and failed.message.count("Not yet") == 1


def test_results_are_deterministic():
    wrong = WRONG["reparam: variance as std"][1]
    assert ex.check_reparameterize(wrong).message == ex.check_reparameterize(wrong).message
    assert ex.check_sample(reference_sample).message == ex.check_sample(reference_sample).message


# ----------------------------------------------------------------------------------
# The notebooks: a checked exercise in each, with a stub and a hidden solution
# ----------------------------------------------------------------------------------


def _cells(name):
    return json.loads((ROOT / "notebooks" / name).read_text())["cells"]


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _checks(source):
    return {
        line.strip().split("(")[0] for line in source.splitlines() if line.strip().startswith("cu.exercises.check_")
    }


def _is_solution(cell):
    return "solution" in cell.get("metadata", {}).get("tags", [])


def _exercise_cells(name):
    cells = [c for c in _cells(name) if c["cell_type"] == "code" and _checks(_source(c))]
    return [c for c in cells if not _is_solution(c)], [c for c in cells if _is_solution(c)]


def test_the_notebook_list_matches_the_notebooks():
    names = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert set(NOTEBOOKS_WITH_CHECKED_EXERCISES) <= names


@pytest.mark.parametrize("name", NOTEBOOKS_WITH_CHECKED_EXERCISES)
def test_notebook_has_a_checked_exercise_with_a_hidden_solution(name):
    stubs, solutions = _exercise_cells(name)
    assert stubs, f"{name}: no cu.exercises.check_ call in a student cell"
    assert solutions, f"{name}: no cu.exercises.check_ call in a solution cell"
    stub_checks = set().union(*(_checks(_source(c)) for c in stubs))
    for check in stub_checks:
        assert hasattr(ex, check.split(".")[-1]), check
        hidden = [c for c in solutions if check in _checks(_source(c))]
        assert hidden, f"{name}: {check} has no solution cell"
        for c in hidden:
            assert c["metadata"] == {"cellView": "form", "jupyter": {"source_hidden": True}, "tags": ["solution"]}
            first = _source(c).splitlines()[0]
            assert first.startswith("# @title Solution to exercise ") and first.endswith(  # Colab reads "# @title"
                "(double-click or expand to show the code)"
            )
            # the answer is not shown under the question: no stored output (the test below proves the pass)
            assert c["outputs"] == [] and "NBVAL_CHECK_OUTPUT" not in _source(c)
    for c in stubs:
        assert "# your code here" in _source(c)
        assert "Not yet" in json.dumps(c["outputs"])


def _run_cell(source, namespace):
    """exec a cell; return the value of its last expression, as Jupyter would display it."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None


@pytest.mark.parametrize("name", NOTEBOOKS_WITH_CHECKED_EXERCISES)
def test_notebook_stub_says_not_yet_and_solution_passes(name):
    stubs, solutions = _exercise_cells(name)
    namespace = {"torch": torch, "F": F, "math": math, "cu": cu}
    for c in stubs:
        result = _run_cell(_source(c), namespace)
        assert isinstance(result, ex.CheckResult) and not result and "Not yet" in result.message
    for c in solutions:
        result = _run_cell(_source(c), namespace)
        assert isinstance(result, ex.CheckResult) and result, result.message


@pytest.mark.parametrize("name", NOTEBOOKS_WITH_CHECKED_EXERCISES)
def test_exercise_intro_mentions_the_checker(name):
    intro = next(_source(c) for c in _cells(name) if _source(c).startswith("## Exercises"))
    assert "cu.exercises" in intro and "checker" in intro


def test_log_weights_reference_is_the_library_estimate():
    """log_mean_exp of the weights the checker expects is cu.importance_sampled_log_likelihood, same draws."""
    torch.manual_seed(0)
    model = cu.QuadrantCVAE(
        cu.BaselineNet(x_shape=(1, 8, 8), hidden_dims=[16]), img_shape=(1, 8, 8), z_dim=3, hidden_dims=[24]
    ).eval()
    y, x, mask = cu.split_quadrants(torch.rand(5, 1, 8, 8), 1)
    torch.manual_seed(1)
    library = cu.importance_sampled_log_likelihood(model, y, x, mask, num_samples=7)
    torch.manual_seed(1)
    eps = torch.randn(7 * 5, 3).view(7, 5, 3)
    with torch.no_grad():
        ours = cu.log_mean_exp(reference_log_weights(model, y, x, mask, eps), dim=0)
    torch.testing.assert_close(ours, library)


# ----------------------------------------------------------------------------------
# The subpackage: one module per notebook, checkers written as data
# ----------------------------------------------------------------------------------


def _sample_with(model, x, temperature, generator, *, eps_shape=None, std=lambda lv: torch.exp(0.5 * lv)):
    mu, logvar = model.prior(x)
    eps = torch.randn(eps_shape or mu.shape, generator=generator).to(mu)
    return torch.sigmoid(model.decode(mu + temperature * std(logvar) * eps, x))


MORE_WRONG = {  # diagnoses the table above leaves out: (checker, wrong function, failing case, hint)
    "kl: half": (ex.check_kl_diag_gaussians, lambda *a: 0.5 * reference_kl(*a), "a random batch", "applied twice"),
    "kl: log-variance signs": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: 0.5 * (lq - lp + (lq.exp() + (mq - mp) ** 2) / lp.exp() - 1).sum(1),
        "a random batch",
        "the log-variance terms have the wrong sign",
    ),
    "kl: dim 0": (
        ex.check_kl_diag_gaussians,
        lambda mq, lq, mp, lp: reference_kl(mq.T, lq.T, mp.T, lp.T),
        "a random batch",
        "you reduced the batch dimension",
    ),
    "reparam: 1 / sigma": (
        ex.check_reparameterize,
        lambda mu, lv: mu + torch.exp(-0.5 * lv) * torch.randn_like(mu),
        "sigma = 0.5",
        "sign error in the exponent",
    ),
    "reparam: -mu": (
        ex.check_reparameterize,
        lambda mu, lv: -mu + torch.exp(0.5 * lv) * torch.randn_like(mu),
        "sigma = 0.5",
        "centred on -mu",
    ),
    "reparam: one eps per example": (
        ex.check_reparameterize,
        lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(len(mu), 1, dtype=mu.dtype),
        "sigma = 0.5",
        "every latent dimension got the same noise",
    ),
    "reparam: dz/dmu = 2": (
        ex.check_reparameterize,
        lambda mu, lv: 2 * mu - mu.detach() + torch.exp(0.5 * lv) * torch.randn_like(mu),
        "gradients",
        "dz/dmu = 1 for every entry",
    ),
    "masked: per pixel": (
        ex.check_masked_log_likelihood,
        lambda l, y, m: (y * l - F.softplus(l)) * m,
        "one quadrant observed",
        "sum over the pixels",
    ),
    "elbo: both averaged": (
        ex.check_elbo,
        lambda l, y, mu, lv, pm, plv: (
            F.binary_cross_entropy_with_logits(l, y) + (reference_kl(mu, lv, pm, plv) / mu.shape[1]).mean()
        ),
        "a random batch",
        "both terms are averaged",
    ),
    "importance: divided by S": (
        ex.check_importance_sampled_log_likelihood,
        lambda w: torch.logsumexp(w, 0) / len(w),
        "a small batch",
        "you divided the logsumexp",
    ),
    "sample: one eps for all": (
        ex.check_sample,
        lambda m, x, t, g: _sample_with(m, x, t, g, eps_shape=(1, m.z_dim)),
        "six samples of one label",
        "every sample needs its own noise",
    ),
    "sample: label ignored": (
        ex.check_sample,
        lambda m, x, t, g: reference_sample(m, torch.zeros_like(x), t, g),
        "the label is used",
        "pass the labels x to both networks",
    ),
    "sample: temperature squared": (
        ex.check_sample,
        lambda m, x, t, g: _sample_with(m, x, t * t, g),
        "temperature 0.5",
        "applied twice",
    ),
    "sample: no exponent": (
        ex.check_sample,
        lambda m, x, t, g: _sample_with(m, x, t, g, std=torch.abs),
        "the prior's mean and spread",
        "forgot the exponent",
    ),
    "sample: wrong shape": (
        ex.check_sample,
        lambda m, x, t, g: reference_sample(m, x, t, g).flatten(1),
        "six samples of one label",
        "one image per label in x",
    ),
    "weights: z from the prior": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a) + _prior_z_shift(*a),
        "one quadrant observed",
        "z must come from the proposal",
    ),
    "weights: transposed": (
        ex.check_log_importance_weights,
        lambda *a: reference_log_weights(*a).T,
        "one quadrant observed",
        "transpose your result",
    ),
}


def _prior_z_shift(model, y, x, mask, eps):
    """What drawing z from the prior, mu_p + sigma_p * eps, changes in the likelihood term."""
    num, batch = eps.shape[:2]
    rep = lambda t: t.repeat(num, 1, 1, 1)  # noqa: E731
    mu_p, logvar_p = model.prior(x)
    mu_q, logvar_q = model.encode(y, x)

    def ll(z):
        logits = model.decode(z.reshape(num * batch, -1), rep(x))
        return model.log_likelihood(logits, rep(y), rep(mask)).view(num, batch)

    return ll(mu_p + torch.exp(0.5 * logvar_p) * eps) - ll(mu_q + torch.exp(0.5 * logvar_q) * eps)


@pytest.mark.parametrize("name", list(MORE_WRONG))
def test_more_wrong_answers_get_their_diagnosis(name):
    check, fn, case, hint = MORE_WRONG[name]
    result = check(fn)
    assert not result and result.message.startswith(ex.FAIL_MARK), result.message
    assert case in result.case, result.message
    assert hint in result.message.split("  hint:")[1], result.message


def test_an_error_inside_the_library_points_at_the_students_line():
    def sample_by_hand(model, x, temperature, generator):
        mu, logvar = model.prior(x.float())  # labels must be integers: cvae_utils raises
        return mu

    message = ex.check_sample(sample_by_hand).message
    assert "raised an error" in message and "must hold integer class indices" in message
    assert "of sample_by_hand: mu, logvar = model.prior(x.float())" in message


def test_the_subpackage_has_short_modules_named_by_notebook():
    package = ROOT / "cvae_utils" / "exercises"
    assert not (ROOT / "cvae_utils" / "exercises.py").exists()
    modules = sorted(p.name for p in package.glob("nb*.py"))
    assert sorted({m[:4] for m in modules}) == [f"nb0{i}" for i in range(1, 8)]  # every notebook has its checkers
    for path in package.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name
    assert sorted(ex.__all__) == sorted(["CheckResult", *(c.__name__ for c in CHECKERS)])


@pytest.mark.parametrize("check", CHECKERS, ids=lambda c: c.__name__)
def test_each_checker_names_its_notebook_and_section(check):
    number = int(check.__module__.rsplit(".", 1)[-1][2:4])  # cvae_utils.exercises.nb05_... -> 5
    notebook = next(n for n in NOTEBOOKS_WITH_CHECKED_EXERCISES if int(n[:2]) == number)
    assert f'Used in notebook {number} (``{notebook}``), section "Exercises"' in check.__doc__


def test_the_probe_model_implements_expand_condition():
    from cvae_utils.exercises.nb06_sample import _ProbeCVAE

    probe = _ProbeCVAE()
    assert torch.equal(probe.expand_condition(2, 3), torch.tensor([2, 2, 2]))
    assert torch.equal(probe.expand_condition(torch.tensor([0, 1]), 2), torch.tensor([0, 1]))
    assert probe.sample(4, 1, generator=torch.Generator().manual_seed(0)).shape == (4, 1, 2, 2)
