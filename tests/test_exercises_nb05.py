"""Notebook 5's checkers of the training loop's pieces: the KL warm-up weight (exercise 2) and the global gradient
norm (exercise 4). They pass correct functions, fail each typical mistake with its diagnosis, and the warm-up
weight they check is the one `cu.fit` uses."""

import math

import pytest
import torch
from torch import nn

import cvae_utils as cu
from cvae_utils import exercises as ex
from cvae_utils.train import kl_warmup_weight

# ----------------------------------------------------------------------------------
# Exercise 2: the KL warm-up weight
# ----------------------------------------------------------------------------------


def warmup_by_hand(epoch, step, steps_per_epoch, warmup_epochs):
    if warmup_epochs == 0:
        return 1.0
    return min(1.0, (epoch + step / steps_per_epoch) / warmup_epochs)


def warmup_in_global_steps(epoch, step, steps_per_epoch, warmup_epochs):
    """Correct, counted in steps and returned as a tensor."""
    if warmup_epochs <= 0:
        return torch.tensor(1.0)
    done = epoch * steps_per_epoch + step
    return torch.clamp(torch.tensor(done / (warmup_epochs * steps_per_epoch)), max=1.0)


@pytest.mark.parametrize("fn", [warmup_by_hand, warmup_in_global_steps, kl_warmup_weight], ids=lambda f: f.__name__)
def test_warmup_checker_passes_a_correct_function(fn):
    result = ex.check_kl_warmup_weight(fn)
    assert result, result.message
    assert result.message.startswith(ex.PASS_MARK) and fn.__name__ in result.message


def _uncapped(e, s, n, w):
    return (e + s / n) / w if w else 1.0


WARMUP_MISTAKES = {
    "no cap at 1": (_uncapped, "after the warm-up", "stop at 1"),
    "once per epoch": (lambda e, s, n, w: min(1.0, e / w) if w else 1.0, "within the first epoch", "batch by batch"),
    "epoch from 1": (
        lambda e, s, n, w: min(1.0, (e + 1 + s / n) / w) if w else 1.0,
        "the first step",
        "count from 0",
    ),
    "step + 1": (
        lambda e, s, n, w: min(1.0, (e + (s + 1) / n) / w) if w else 1.0,
        "the first step",
        "(step + 1) shifts",
    ),
    "step not divided": (lambda e, s, n, w: min(1.0, (e + s) / w) if w else 1.0, "within the first epoch", "divide"),
    "falls instead of rising": (
        lambda e, s, n, w: 1.0 - min(1.0, (e + s / n) / w) if w else 1.0,
        "the first step",
        "rises from 0 to 1",
    ),
    "divides by zero": (lambda e, s, n, w: min(1.0, (e + s / n) / w), "no warm-up", "return 1.0 before dividing"),
    "0 without warm-up": (lambda e, s, n, w: min(1.0, (e + s / n) / w) if w else 0.0, "no warm-up", "weight is 1"),
    "returns None": (lambda e, s, n, w: None, "the first step", "returns None"),
    "a tensor per element": (lambda e, s, n, w: torch.zeros(3), "the first step", "one number"),
}


@pytest.mark.parametrize("name", list(WARMUP_MISTAKES))
def test_warmup_checker_diagnoses_each_typical_mistake(name):
    fn, case, hint = WARMUP_MISTAKES[name]
    result = ex.check_kl_warmup_weight(fn)
    assert not result and result.message.startswith(ex.FAIL_MARK), result.message
    assert case == result.case, result.message
    assert hint in result.message.split("  hint:")[1], result.message


class _WeightRecorder(nn.Module):
    """A model whose objective records the KL weight that fit passes it."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.weights = []

    def objective(self, y, x, mask=None, kl_weight=1.0, **kwargs):
        if self.training:
            self.weights.append(kl_weight)
        loss = ((self.w - y.mean()) ** 2).sum()
        return {"loss": loss}


def test_fit_uses_the_checked_warmup_weight():
    batches = [(torch.rand(2, 1), torch.zeros(2, dtype=torch.long)) for _ in range(4)]
    model = _WeightRecorder()
    cu.fit(model, batches, num_epochs=3, kl_warmup_epochs=1.5, progress=False)
    expected = [kl_warmup_weight(e, s, 4, 1.5) for e in range(3) for s in range(4)]
    assert model.weights == expected
    assert expected[0] == 0.0 and expected[-1] == 1.0 and expected[3] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------
# Exercise 4: the global gradient norm
# ----------------------------------------------------------------------------------


def norm_by_hand(parameters):
    total = 0.0
    for p in parameters:
        if p.grad is not None:
            total += (p.grad**2).sum()
    return total**0.5


def norm_of_norms(parameters):
    """Correct, as clip_grad_norm_ computes it: the norm of the per-parameter norms, a float."""
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)).item()


def norm_with_clip_grad_norm(parameters):
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm=float("inf"))


@pytest.mark.parametrize("fn", [norm_by_hand, norm_of_norms, norm_with_clip_grad_norm], ids=lambda f: f.__name__)
def test_norm_checker_passes_a_correct_function(fn):
    result = ex.check_global_grad_norm(fn)
    assert result, result.message
    assert result.message.startswith(ex.PASS_MARK) and fn.__name__ in result.message


def _grads(ps):
    return [p.grad for p in ps if p.grad is not None]


def _two_passes(parameters):
    count = sum(1 for p in parameters if p.grad is not None)  # the first pass empties a generator
    return math.sqrt(sum(float((p.grad**2).sum()) for p in parameters if p.grad is not None)) if count else 0.0


def _no_none_check(parameters):
    return torch.sqrt(sum((p.grad**2).sum() for p in parameters))


def _clips(parameters):
    params = list(parameters)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=float("inf"))
    for p in params:
        if p.grad is not None:
            p.grad.mul_(0.5)
    return norm


def _last_only(parameters):
    for p in parameters:
        if p.grad is not None:
            total = (p.grad**2).sum()
    return total.sqrt()


NORM_MISTAKES = {
    "sum of norms": (lambda ps: sum(g.norm() for g in _grads(ps)), "several parameters", "added up the norms"),
    "no square root": (lambda ps: sum((g**2).sum() for g in _grads(ps)), "one parameter", "square root is missing"),
    "largest norm": (lambda ps: max(g.norm() for g in _grads(ps)), "several parameters", "largest norm"),
    "mean of norms": (lambda ps: torch.stack([g.norm() for g in _grads(ps)]).mean(), "several parameters", "averaged"),
    "weights, not gradients": (
        lambda ps: torch.sqrt(sum((p.detach() ** 2).sum() for p in ps)),
        "one parameter",
        "parameters themselves",
    ),
    "L1 norm": (lambda ps: sum(g.abs().sum() for g in _grads(ps)), "one parameter", "L1 norm"),
    "last parameter only": (_last_only, "several parameters", "only the last parameter"),
    "grad None not skipped": (_no_none_check, "a parameter without gradient", "skip it"),
    "two passes over a generator": (_two_passes, "a generator", "wrong on a generator"),
    "changes the gradients": (_clips, "one parameter", "without changing p.grad"),
    "one norm per parameter": (
        lambda ps: torch.stack([g.norm() for g in _grads(ps)]),
        "several parameters",
        "one number",
    ),
    "returns None": (lambda ps: None, "one parameter", "returns None"),
}


@pytest.mark.parametrize("name", list(NORM_MISTAKES))
def test_norm_checker_diagnoses_each_typical_mistake(name):
    fn, case, hint = NORM_MISTAKES[name]
    result = ex.check_global_grad_norm(fn)
    assert not result and result.message.startswith(ex.FAIL_MARK), result.message
    assert case == result.case, result.message
    assert hint in result.message.split("  hint:")[1], result.message


def test_the_norm_checker_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    assert ex.check_global_grad_norm(norm_by_hand)
    torch.testing.assert_close(torch.rand(5), expected)
