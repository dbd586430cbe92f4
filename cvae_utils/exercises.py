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

The checkers, the notebook that uses each, and the student's function:

* :func:`check_kl_diag_gaussians` (notebook 1): ``fn(mu_q, logvar_q, mu_p, logvar_p)`` -> (B,)
* :func:`check_reparameterize` (notebook 2): ``fn(mu, logvar)`` -> z shaped like mu
* :func:`check_masked_log_likelihood` (notebook 3): ``fn(logits, y, mask)`` -> (B,)
* :func:`check_elbo` (notebook 4): ``fn(logits, y, mu, logvar, prior_mu, prior_logvar)`` -> a scalar
* :func:`check_importance_sampled_log_likelihood` (notebook 5): ``fn(log_w)`` with log_w (S, B) -> (B,)
* :func:`check_sample` (notebook 6): ``fn(model, x, temperature, generator)`` -> images (len(x), *y_shape)
* :func:`check_log_importance_weights` (notebook 7): ``fn(model, y, x, mask, eps)`` with eps (S, B, z_dim) -> (S, B)

Arguments are always passed by position, so the student may name them as they like.
"""

from __future__ import annotations

import math
import os
import textwrap
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from .quadrants import split_quadrants
from .losses import (bernoulli_log_likelihood, gaussian_log_density, kl_diag_gaussians, kl_standard_normal,
                     log_mean_exp)
from .models import MLPCVAE, BaseVAE
from .validation import check_labels, label_batch

__all__ = [
    "CheckResult",
    "check_kl_diag_gaussians",
    "check_reparameterize",
    "check_masked_log_likelihood",
    "check_elbo",
    "check_importance_sampled_log_likelihood",
    "check_sample",
    "check_log_importance_weights",
]

PASS_MARK = "Passed ✓"
FAIL_MARK = "Not yet ✗"
_WIDTH = 110


# ----------------------------------------------------------------------------------
# The result, and the machinery every checker shares
# ----------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class CheckResult:
    """What a checker returns: truthy when the function passed every case.

    ``message`` is the text to show (printed when the result is a cell's last
    expression); ``case`` names the failing case in words (None on a pass).
    """

    checker: str
    passed: bool
    message: str
    case: str | None = None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's display of a cell's last value
        p.text(self.message)


@dataclass
class _Case:
    title: str  # a few words, listed in the pass message
    inputs: str  # the input, in words: shapes, dtypes, special values
    run: Callable[["_Session", "_Case"], None]


class _Signal(Exception):
    """Raised by the checker's own models into the student's code; ``_Session.call`` lets it through."""


class _Stop(Exception):
    """Ends a check early with a result (a failed case)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def _require_callable(checker: str, fn) -> None:
    if callable(fn):
        return
    hint = ""
    if fn is None or isinstance(fn, (Tensor, int, float)):
        hint = " It looks like the result of calling your function: pass the function itself, without parentheses."
    raise TypeError(
        f"{checker} takes your function, e.g. {checker}(my_function); got {type(fn).__name__} instead.{hint}"
    )


def _fmt(v: float) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    return f"{v:.5g}"


def _dtype(t: Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _brief(value, n: int = 4) -> str:
    """A short description of a value: a tensor's shape, dtype and first values."""
    if isinstance(value, Tensor):
        flat = value.detach().flatten()
        shown = ", ".join(_fmt(v) for v in flat[:n].cpu().tolist())
        more = ", ..." if flat.numel() > n else ""
        return f"tensor of shape {tuple(value.shape)}, {_dtype(value)}: [{shown}{more}]"
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _vec(t: Tensor) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in t.detach().flatten().tolist()) + "]"


def _shape_text(shape: Sequence[int]) -> str:
    return str(tuple(shape)) if len(shape) != 1 else f"({shape[0]},)"


def _wrap(label: str, text: str) -> str:
    return textwrap.fill(text, width=_WIDTH, initial_indent=f"  {label:<9} ", subsequent_indent=" " * 12,
                         break_long_words=False, break_on_hyphens=False)


def _student_line(err: BaseException) -> str | None:
    """'line N: source' of the deepest frame of the traceback that is not inside torch or this module."""
    skip = (os.path.dirname(torch.__file__), os.path.dirname(__file__))
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if not frame.filename.startswith(skip):
            code = (frame.line or "").strip()
            return f"line {frame.lineno} of {frame.name}: {code}" if code else f"line {frame.lineno} of {frame.name}"
    return None


class _Session:
    """One run of a checker: calls the student's function and builds the messages."""

    def __init__(self, checker: str, fn, total: int) -> None:
        self.checker = checker
        self.fn = fn
        self.name = getattr(fn, "__name__", None) or "your function"
        self.total = total
        self.index = 0
        self.notes: list[str] = []

    def _result(self, case: _Case, lines: list[str]) -> CheckResult:
        head = f"{FAIL_MARK}  {self.name}: case {self.index} of {self.total} failed: {case.title}."
        return CheckResult(self.checker, False, "\n".join([head, *lines]), case.title)

    def fail(self, case: _Case, expected: str, got: str, hint: str) -> None:
        raise _Stop(self._result(case, [_wrap("input:", case.inputs), _wrap("expected:", expected),
                                        _wrap("got:", got), _wrap("hint:", hint)]))

    def call(self, case: _Case, *args):
        """fn(*args), or a failed case that reports the exception."""
        try:
            return self.fn(*args)
        except (_Stop, _Signal):
            raise
        except Exception as err:  # the student's code raised: report it, never propagate it
            where = _student_line(err)
            error = f"{type(err).__name__}: {err}".strip()
            if isinstance(err, NotImplementedError):
                hint = "write the function's body where it says `# your code here`, then run the cell again."
            else:
                hint = ("the error comes from your function, not from the checker: read the line above, check the "
                        "shapes and dtypes of the tensors it combines, then run the cell again.")
            lines = [_wrap("input:", case.inputs), _wrap("error:", error)]
            if where:
                lines.append(_wrap("at:", where))
            lines.append(_wrap("hint:", hint))
            result = self._result(case, lines)
            raise _Stop(CheckResult(result.checker, False, result.message.replace(" failed: ", " raised an error: ", 1),
                                    case.title)) from None

    def tensor(self, case: _Case, got, shape: Sequence[int], dtype: torch.dtype, *, what: str,
               shape_hint: Callable[[tuple], str | None] | None = None) -> Tensor:
        """Check that ``got`` is a tensor of the given shape and dtype; return it detached."""
        expected = f"{what}: a tensor of shape {_shape_text(shape)}, {_dtype(torch.empty(0, dtype=dtype))}"
        if got is None:
            self.fail(case, expected, "None",
                      f"{self.name} returns None: write its body where it says `# your code here` and end it with "
                      "`return` and the result (a common slip is to compute the value and forget the `return`).")
        if not isinstance(got, Tensor):
            hint = "return a torch.Tensor, computed with torch operations on the input tensors"
            if isinstance(got, (float, int)):
                hint += " (no .item(): keep the tensor)"
            elif type(got).__module__.startswith("numpy"):
                hint += " (no .numpy(): stay in torch)"
            elif isinstance(got, (tuple, list)):
                hint += ", one tensor, not a tuple or list"
            self.fail(case, expected, _brief(got), hint + ".")
        if tuple(got.shape) != tuple(shape):
            hint = shape_hint(tuple(got.shape)) if shape_hint else None
            self.fail(case, expected, _brief(got), hint or f"the result must have shape {_shape_text(shape)}.")
        if got.dtype != dtype:
            self.fail(case, expected, _brief(got),
                      f"the inputs are {_dtype(torch.empty(0, dtype=dtype))}, so the result should be too: do not "
                      "convert with .float() / .double(), and create any new tensor with the inputs' dtype "
                      "(torch.zeros_like, torch.randn_like, or dtype=...).")
        return got.detach()

    def values(self, case: _Case, got: Tensor, expected: Tensor, *, rtol: float, atol: float, hint: str,
               variants: Sequence[tuple[str, Tensor]] = (), nonfinite_hint: str | None = None) -> None:
        """Compare values; on a mismatch, name the typical mistake whose result matches ``got``."""
        if torch.allclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol):
            return
        g64 = got.detach().double()
        if not torch.isfinite(g64).all() and torch.isfinite(expected).all():
            self.fail(case, _brief(expected), _brief(got), nonfinite_hint or
                      "NaN or infinite values: look for an exp that overflows, a log of 0, or 0 * inf.")
        for variant_hint, value in variants:
            value = value.double()
            if value.shape == g64.shape and torch.isfinite(value).all() and torch.allclose(
                    g64, value, rtol=max(rtol, 1e-4), atol=max(atol, 1e-5)):
                self.fail(case, _brief(expected), _brief(got), variant_hint)
        self.fail(case, _brief(expected), _brief(got), hint)


def _run(checker: str, fn, cases: list[_Case], pass_text: Callable[[_Session], str]) -> CheckResult:
    _require_callable(checker, fn)
    session = _Session(checker, fn, len(cases))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        for session.index, case in enumerate(cases, 1):
            try:
                case.run(session, case)
            except _Stop as stop:
                return stop.result
            except Exception as err:  # what came back was too odd for the checker to examine
                result = session._result(case, [
                    _wrap("input:", case.inputs),
                    _wrap("problem:", f"the checker could not examine the result ({type(err).__name__}: {err})."),
                    _wrap("hint:", "return a tensor of the shape the exercise asks for, computed from the inputs."),
                ])
                return result
    titles = "; ".join(c.title for c in cases)
    text = f"{PASS_MARK}  {session.name} {pass_text(session)} on all {len(cases)} cases ({titles})."
    if session.notes:
        text += " " + " ".join(session.notes)
    return CheckResult(checker, True, textwrap.fill(text, width=_WIDTH, break_long_words=False))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _clone(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Fresh copies for the student's function, so that an in-place change cannot touch the reference."""
    return tuple(t.clone() for t in tensors)


def _reduction_hint(got: tuple, batch: int, inner: str) -> str | None:
    """A hint for a per-example result of the wrong shape (reduced too much, too little, or the wrong dim)."""
    if len(got) == 0 or (got == (1,) and batch != 1):
        return (f"return one value per example, shape ({batch},): sum over the {inner} only (e.g. "
                ".sum(dim=1)), not over the batch too (no bare .sum() or .mean()).")
    if len(got) >= 2 and got[0] == batch:
        return f"sum over the {inner}, so that one value per example is left: shape ({batch},)."
    if len(got) == 1 and got[0] != batch:
        return f"you reduced the batch dimension (dim 0); reduce the {inner} instead: shape ({batch},)."
    return None


# ----------------------------------------------------------------------------------
# Notebook 1: the KL between two diagonal Gaussians
# ----------------------------------------------------------------------------------


def _kl_variants(mu_q: Tensor, lv_q: Tensor, mu_p: Tensor, lv_p: Tensor) -> list[tuple[str, Tensor]]:
    mu_q, lv_q, mu_p, lv_p = (t.double() for t in (mu_q, lv_q, mu_p, lv_p))
    kl = kl_diag_gaussians(mu_q, lv_q, mu_p, lv_p)
    d = mu_q.shape[1]
    d2 = (mu_q - mu_p) ** 2

    def bracket_sum(t: Tensor) -> Tensor:
        return 0.5 * t.sum(dim=1)

    return [
        ("sign error: a KL divergence is never negative. The bracket is logvar_p - logvar_q "
         "+ (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1, with 0.5 in front.", -kl),
        ("off by a factor 2: the formula has a 0.5 in front of the sum.", 2 * kl),
        ("half the expected value: is the 0.5 applied twice?", 0.5 * kl),
        ("you averaged over the latent dimensions: the KL of a diagonal Gaussian is a sum over them "
         "(.sum(dim=1), not .mean(dim=1)).", kl / d),
        ("the -1 inside the bracket is missing (check: the KL of q = p must be 0).", kl + 0.5 * d),
        ("you computed KL(p || q): the arguments are swapped. The KL is not symmetric; here q is "
         "(mu_q, logvar_q), inside, and p is (mu_p, logvar_p).", kl_diag_gaussians(mu_p, lv_p, mu_q, lv_q)),
        ("the log-variance terms have the wrong sign: the bracket starts with logvar_p - logvar_q "
         "(that is 2 log(sigma_p / sigma_q)).", bracket_sum(lv_q - lv_p + (lv_q.exp() + d2) / lv_p.exp() - 1)),
        ("you forgot the exponent: logvar is the log of the variance, so the variance is e^logvar "
         "(logvar.exp()), not logvar itself.", bracket_sum(lv_p - lv_q + (lv_q + d2) / lv_p - 1)),
        ("you used e^(logvar / 2), the standard deviation, where the variance e^logvar belongs.",
         bracket_sum(lv_p - lv_q + ((0.5 * lv_q).exp() + d2) / (0.5 * lv_p).exp() - 1)),
        ("(mu_q - mu_p)^2 must be divided by the prior variance e^logvar_p too, not only e^logvar_q.",
         bracket_sum(lv_p - lv_q + (lv_q - lv_p).exp() + d2 - 1)),
    ]


def check_kl_diag_gaussians(fn) -> CheckResult:
    """Check ``fn(mu_q, logvar_q, mu_p, logvar_p)`` = KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)).

    All four arguments have shape (batch, z_dim); the answer is the KL summed over the
    latent dimensions, one value per example, shape (batch,), in the inputs' dtype, as
    :func:`cvae_utils.kl_diag_gaussians` returns it.
    """

    def kl_case(title, inputs, mu_q, lv_q, mu_p, lv_p):
        def run(s: _Session, case: _Case):
            expected = kl_diag_gaussians(mu_q, lv_q, mu_p, lv_p)
            tight = mu_q.dtype == torch.float64
            got = s.call(case, *_clone(mu_q, lv_q, mu_p, lv_p))
            got = s.tensor(case, got, expected.shape, expected.dtype, what="one KL per example",
                           shape_hint=lambda shp: _reduction_hint(shp, len(mu_q), "latent dimensions"))
            s.values(case, got, expected, rtol=1e-6 if tight else 1e-4, atol=1e-7 if tight else 1e-4,
                     variants=_kl_variants(mu_q, lv_q, mu_p, lv_p),
                     hint="write the boxed formula term by term: 0.5 * sum over dim 1 of [logvar_p - logvar_q "
                          "+ (logvar_q.exp() + (mu_q - mu_p)**2) / logvar_p.exp() - 1].",
                     nonfinite_hint="NaN or inf: compute the variances as logvar.exp() and divide by the prior "
                                    "variance (or multiply by (-logvar_p).exp()); no log of a variance is needed.")
        return _Case(title, inputs, run)

    g = _gen(1)

    def randn(*shape, dtype=torch.float32, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=dtype)

    mu = randn(3, 5)
    lv = randn(3, 5)
    cases = [
        kl_case("a random batch", "mu_q, logvar_q, mu_p, logvar_p of shape (4, 3), random values, float32",
                randn(4, 3), randn(4, 3), randn(4, 3), randn(4, 3)),
        kl_case("q equal to p", "q = p: mu_q = mu_p and logvar_q = logvar_p, shape (3, 5), float32; the KL must "
                "be 0 for every example", mu, lv, mu.clone(), lv.clone()),
        kl_case("p = N(0, I)", "mu_p = 0 and logvar_p = 0 (a standard normal prior), q random, shape (4, 2), float32",
                randn(4, 2), randn(4, 2), torch.zeros(4, 2), torch.zeros(4, 2)),
        kl_case("a batch of 1", "a single example with a single latent dimension, shape (1, 1), float64",
                *(randn(1, 1, dtype=torch.float64) for _ in range(4))),
        kl_case("sigma = 1 on both sides", "logvar_q = logvar_p = 0 (both variances 1), different means, "
                "shape (3, 4), float64: the KL is 0.5 * sum (mu_q - mu_p)^2",
                randn(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64),
                randn(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)),
        kl_case("large log-variances", "log-variances between -10 and 10 (variances from 5e-5 to 2e4), shape (5, 3), "
                "float64", randn(5, 3, dtype=torch.float64, scale=3),
                20 * torch.rand(5, 3, generator=g, dtype=torch.float64) - 10, randn(5, 3, dtype=torch.float64, scale=3),
                20 * torch.rand(5, 3, generator=g, dtype=torch.float64) - 10),
        kl_case("20 latent dimensions", "a batch of 6 with z_dim = 20 (as the MNIST models), float64",
                *(randn(6, 20, dtype=torch.float64) for _ in range(4))),
    ]
    return _run("check_kl_diag_gaussians", fn, cases, lambda s: "agrees with cu.kl_diag_gaussians")


# ----------------------------------------------------------------------------------
# Notebook 2: the reparameterisation
# ----------------------------------------------------------------------------------


def _spread_hint(ratio: float, candidates: Sequence[tuple[float, str]], tol: float = 0.06) -> str | None:
    for value, hint in candidates:
        if abs(ratio - value) <= tol * max(abs(value), 0.1):
            return hint
    return None


def check_reparameterize(fn) -> CheckResult:
    """Check ``fn(mu, logvar)`` = mu + exp(0.5 * logvar) * eps with eps ~ N(0, I), differentiable in mu and logvar.

    The noise is random, so the checker does not compare values one by one: it checks
    the shape and dtype, the mean and standard deviation of many draws, that every
    example and every latent dimension gets its own eps, and the gradients
    dz/dmu = 1 and dz/dlogvar = sigma * eps / 2. (The library's version is
    ``model.reparameterize``.)
    """
    n = 20_000

    def shape_case(title, inputs, mu, logvar):
        def run(s: _Session, case: _Case):
            got = s.call(case, *_clone(mu, logvar))
            z = s.tensor(case, got, mu.shape, mu.dtype, what="z shaped like mu")
            if not torch.isfinite(z).all():
                s.fail(case, "finite values", _brief(z), "NaN or inf: compute sigma as torch.exp(0.5 * logvar).")
            if torch.equal(z, mu):
                s.fail(case, "z = mu + sigma * eps, different from mu", "z equal to mu",
                       "no noise was added: draw eps = torch.randn_like(mu) and return mu + sigma * eps.")
        return _Case(title, inputs, run)

    def stats_case(title, inputs, mu_value, sigma, dims, dtype):
        mu = torch.full((n, dims), float(mu_value), dtype=dtype)
        logvar = torch.full((n, dims), 2 * math.log(sigma), dtype=dtype)

        def run(s: _Session, case: _Case):
            got = s.call(case, *_clone(mu, logvar))
            z = s.tensor(case, got, mu.shape, mu.dtype, what="z shaped like mu").double()
            if not torch.isfinite(z).all():
                s.fail(case, "finite values", _brief(z), "NaN or inf: compute sigma as torch.exp(0.5 * logvar).")
            eps = (z - mu_value) / sigma
            if eps.abs().max() > 0 and torch.allclose(eps, eps[:1].expand_as(eps)):
                s.fail(case, "a different eps for every example", "the same z in every row",
                       "every example got the same noise: draw eps with the shape of mu, torch.randn_like(mu), "
                       "not one vector for the whole batch.")
            if dims > 1 and eps.abs().max() > 0 and torch.allclose(eps[:, :1].expand_as(eps), eps):
                s.fail(case, "a different eps for every latent dimension", "the same eps in every column",
                       "every latent dimension got the same noise: eps must have the shape of mu (torch.randn_like(mu)).")
            mean, std = z.mean().item(), z.std().item()
            expected = f"draws with mean {_fmt(mu_value)} and standard deviation sigma = exp(0.5 * logvar) = {_fmt(sigma)}"
            got_text = f"draws with mean {mean:.4g} and standard deviation {std:.4g}"
            if abs(mean - mu_value) > 0.05 * sigma:
                if abs(mean) < 0.05 * sigma:
                    hint = "the draws are centred on 0: add mu (z = mu + sigma * eps)."
                elif abs(mean + mu_value) < 0.05 * sigma:
                    hint = "the draws are centred on -mu: sign error, z = mu + sigma * eps."
                else:
                    hint = "z must be centred on mu: z = mu + sigma * eps with eps ~ N(0, I) (torch.randn_like, not torch.rand)."
                s.fail(case, expected, got_text, hint)
            ratio = std / sigma
            if abs(ratio - 1) > 0.03:
                lv = 2 * math.log(sigma)
                hint = _spread_hint(ratio, [
                    (0.0, "z has no spread: no noise was added. Draw eps = torch.randn_like(mu)."),
                    (math.exp(lv) / sigma, "the spread is e^logvar, the variance: the standard deviation is its square "
                                           "root, sigma = torch.exp(0.5 * logvar)."),
                    (abs(lv) / sigma, "the spread is logvar itself: you forgot the exponent, sigma = torch.exp(0.5 * logvar)."),
                    (1.0 / sigma, "the spread is 1 whatever logvar says: multiply eps by sigma = torch.exp(0.5 * logvar)."),
                    (math.exp(-0.5 * lv) / sigma, "the spread is 1 / sigma: sign error in the exponent, "
                                                  "sigma = torch.exp(+0.5 * logvar)."),
                    (math.exp(0.25 * lv) / sigma, "the spread is exp(logvar / 4): take the square root of the variance "
                                                  "once, sigma = torch.exp(0.5 * logvar)."),
                ]) or (f"the standard deviation of z must be sigma = exp(0.5 * logvar); eps must be standard normal "
                       "(torch.randn_like, not torch.rand).")
                s.fail(case, expected, got_text, hint)
        return _Case(title, inputs, run)

    def grad_case():
        g = _gen(2)
        mu0 = torch.randn(6, 3, generator=g, dtype=torch.float64)
        lv0 = torch.randn(6, 3, generator=g, dtype=torch.float64)

        def run(s: _Session, case: _Case):
            mu, logvar = mu0.clone().requires_grad_(), lv0.clone().requires_grad_()
            got = s.call(case, mu, logvar)
            s.tensor(case, got, mu.shape, mu.dtype, what="z shaped like mu")
            expected = "gradients dz/dmu = 1 and dz/dlogvar = sigma * eps / 2"
            if not got.requires_grad:
                s.fail(case, expected, "z without a grad_fn (cut off from mu and logvar)",
                       "z must stay in the computation graph: .sample(), .detach(), .item() or torch.no_grad() cut it "
                       "off. Write z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) (or use .rsample()).")
            d_mu, d_lv = torch.autograd.grad(got.sum(), (mu, logvar), allow_unused=True)
            if d_mu is None or not d_mu.abs().sum() > 0:
                s.fail(case, expected, f"dz/dmu = {'None' if d_mu is None else 'all zeros'}",
                       "no gradient reaches mu: torch.normal(mu, std) has a grad_fn but gives zero gradients "
                       "(notebook 2). Move the randomness into eps: z = mu + sigma * eps.")
            if not torch.allclose(d_mu, torch.ones_like(d_mu)):
                s.fail(case, expected, f"dz/dmu: {_brief(d_mu)}", "z = mu + sigma * eps has dz/dmu = 1 for every entry.")
            sigma = torch.exp(0.5 * lv0)
            eps = (got.detach() - mu0) / sigma
            want = 0.5 * sigma * eps
            if d_lv is None or not d_lv.abs().sum() > 0:
                s.fail(case, expected, f"dz/dlogvar = {'None' if d_lv is None else 'all zeros'}",
                       "no gradient reaches logvar: compute sigma from logvar inside the graph (no .detach(), "
                       "no math.exp on a number).")
            if not torch.allclose(d_lv, want, rtol=1e-5, atol=1e-8):
                s.fail(case, f"dz/dlogvar: {_brief(want)}", f"dz/dlogvar: {_brief(d_lv)}",
                       "with sigma = exp(0.5 * logvar), dz/dlogvar = 0.5 * sigma * eps: compute sigma exactly so.")
        return _Case("gradients", "mu and logvar of shape (6, 3), float64, requiring gradients; the checker "
                     "differentiates z.sum()", run)

    g = _gen(3)
    cases = [
        shape_case("a random batch", "mu and logvar of shape (4, 3), random values, float32",
                   torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)),
        stats_case("mean and spread, sigma = 0.5", f"mu = 2 and logvar = log(0.25) (sigma = 0.5) in every entry, "
                   f"shape ({n}, 2), float32", 2.0, 0.5, 2, torch.float32),
        stats_case("mean and spread, sigma = 3, float64", f"mu = -1 and logvar = log(9) (sigma = 3) in every entry, "
                   f"shape ({n}, 1), float64", -1.0, 3.0, 1, torch.float64),
        shape_case("a batch of 1", "mu = 0.5 and logvar = 0 (sigma = 1), shape (1, 1), float64",
                   torch.full((1, 1), 0.5, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)),
        grad_case(),
    ]
    return _run("check_reparameterize", fn, cases,
                lambda s: "draws z ~ N(mu, e^logvar) with gradients flowing to mu and logvar")


# ----------------------------------------------------------------------------------
# Notebook 3: the Bernoulli log-likelihood of the target pixels only
# ----------------------------------------------------------------------------------


def check_masked_log_likelihood(fn) -> CheckResult:
    """Check ``fn(logits, y, mask)`` = sum over the pixels where ``mask`` is True of y * logits - softplus(logits).

    The quadrant task of notebook 7: ``cu.split_quadrants`` gives y with the fill value
    -1 on the observed pixels and a boolean ``mask``, shaped like y, that is True on the
    target pixels. One value per example, shape (batch,), as
    ``cu.bernoulli_log_likelihood(logits, y, mask)`` returns it.
    """

    def ll_case(title, inputs, logits, y, mask):
        def run(s: _Session, case: _Case):
            expected = bernoulli_log_likelihood(logits, y, mask)
            tight = logits.dtype == torch.float64
            got = s.call(case, *_clone(logits, y, mask))
            got = s.tensor(case, got, expected.shape, expected.dtype, what="one log-likelihood per example",
                           shape_hint=lambda shp: _reduction_hint(shp, len(y), "pixels (dims 1, 2, 3)"))
            keep = mask.to(torch.float64).expand_as(logits)
            l64, y64 = logits.double(), y.double()
            per_pixel = y64 * l64 - nn.functional.softplus(l64)
            targets = keep.flatten(1).sum(1).clamp(min=1)
            variants = [
                ("the mask is ignored: the observed pixels, where y holds the fill value -1, were counted too. "
                 "Multiply the per-pixel terms by the mask (or torch.where(mask, per_pixel, 0)) before summing.",
                 per_pixel.flatten(1).sum(1)),
                ("you counted the observed pixels instead of the targets: mask is True on the pixels to predict.",
                 (per_pixel * (1 - keep)).flatten(1).sum(1)),
                ("sign error: this is the binary cross-entropy, the negative log-likelihood. A log-likelihood of "
                 "a probability is at most 0.", -(per_pixel * keep).flatten(1).sum(1)),
                ("you averaged over the target pixels: the log-likelihood is a sum over them.",
                 (per_pixel * keep).flatten(1).sum(1) / targets),
                ("you averaged over all pixels: the log-likelihood is a sum over the target pixels.",
                 (per_pixel * keep).flatten(1).mean(1)),
                ("you masked y but not the per-pixel terms: -softplus(logits) of the observed pixels still counts. "
                 "Mask the per-pixel log-likelihood, y * logits - softplus(logits).",
                 ((y64 * keep) * l64 - nn.functional.softplus(l64)).flatten(1).sum(1)),
            ]
            s.values(case, got, expected, rtol=1e-7 if tight else 1e-5, atol=1e-6 if tight else 1e-3,
                     variants=variants,
                     hint="per pixel, log p = y * logits - F.softplus(logits); keep the pixels where mask is True "
                          "and sum them per example: .flatten(1).sum(dim=1).",
                     nonfinite_hint="NaN or inf: torch.log(torch.sigmoid(logits)) underflows to -inf for confident "
                                    "logits, and -inf * 0 (a masked pixel) is NaN. Use y * logits - F.softplus(logits) "
                                    "and select pixels with torch.where(mask, per_pixel, 0).")
        return _Case(title, inputs, run)

    g = _gen(4)

    def quadrants(batch, size, num_observed, dtype=torch.float32):
        images = torch.rand(batch, 1, size, size, generator=g, dtype=dtype)
        y, _, mask = split_quadrants(images, num_observed)
        logits = 2 * torch.randn(batch, 1, size, size, generator=g, dtype=dtype)
        return logits, y, mask

    logits_all = torch.randn(3, 1, 6, 6, generator=g)
    y_all = torch.rand(3, 1, 6, 6, generator=g)
    l_float, y_float, m_float = quadrants(2, 10, 2)
    binary = (torch.rand(3, 1, 8, 8, generator=g) > 0.5).float()
    wrong = torch.rand(3, 1, 8, 8, generator=g) < 0.2  # confidently wrong on a fifth of the pixels
    confident = (2 * binary - 1) * (30 + 20 * torch.rand(3, 1, 8, 8, generator=g)) * torch.where(wrong, -1.0, 1.0)
    y_conf, _, m_conf = split_quadrants(binary, 1)
    cases = [
        ll_case("one quadrant observed", "3 images (1, 8, 8), the bottom-left quadrant observed: y holds -1 there, "
                "mask (bool) is True on the other three quadrants, as cu.split_quadrants returns them; float32",
                *quadrants(3, 8, 1)),
        ll_case("two quadrants observed, 28x28", "2 images (1, 28, 28), the left half observed; float32",
                *quadrants(2, 28, 2)),
        ll_case("every pixel a target", "mask all True, grey-level y in [0, 1], shape (3, 1, 6, 6), float32: "
                "the plain Bernoulli log-likelihood", logits_all, y_all, torch.ones(3, 1, 6, 6, dtype=torch.bool)),
        ll_case("no target pixel", "mask all False, y = -1 everywhere (every pixel observed), shape (3, 1, 6, 6), "
                "float32: the log-likelihood is 0", logits_all, torch.full((3, 1, 6, 6), -1.0),
                torch.zeros(3, 1, 6, 6, dtype=torch.bool)),
        ll_case("a float mask", "mask of 0.0 and 1.0 (float32) instead of False and True, 2 images (1, 10, 10), "
                "the left half observed", l_float, y_float, m_float.float()),
        ll_case("a batch of 1, float64", "one image (1, 8, 8), three quadrants observed, float64",
                *quadrants(1, 8, 3, torch.float64)),
        ll_case("confident logits", "binary targets, logits of size 30 to 50 (a fifth of them confidently wrong), "
                "3 images (1, 8, 8), one quadrant observed, float32", confident, y_conf, m_conf),
    ]
    return _run("check_masked_log_likelihood", fn, cases,
                lambda s: "agrees with cu.bernoulli_log_likelihood(logits, y, mask)")


# ----------------------------------------------------------------------------------
# Notebook 4: the ELBO, in nats per example
# ----------------------------------------------------------------------------------


def check_elbo(fn, *, negative: bool = True) -> CheckResult:
    """Check ``fn(logits, y, mu, logvar, prior_mu, prior_logvar)``: the one-sample CVAE loss, a scalar.

    With ``negative=True`` (the default) the answer is the loss the optimiser minimises,
    -ELBO = recon + KL; with ``negative=False`` the ELBO itself. In nats per example, as
    ``cu.cvae_terms`` and ``model.loss_function`` compute them: recon =
    -log p(y|x,z) summed over pixels (Bernoulli with ``logits``), KL =
    KL(q(z|x,y) || p(z|x)) summed over latent dimensions, both averaged over the batch.
    The arguments are the fields of ``model(y, x)`` in order (``decoded`` = logits).
    """
    sign = 1.0 if negative else -1.0
    name = "the loss -ELBO = recon + KL" if negative else "the ELBO = -(recon + KL)"

    def elbo_case(title, inputs, logits, y, mu, logvar, prior_mu, prior_logvar):
        def run(s: _Session, case: _Case):
            recon = -bernoulli_log_likelihood(logits, y).mean()
            kl = kl_diag_gaussians(mu, logvar, prior_mu, prior_logvar).mean()
            expected = sign * (recon + kl)
            tight = logits.dtype == torch.float64
            got = s.call(case, *_clone(logits, y, mu, logvar, prior_mu, prior_logvar))
            batch = len(y)

            def shape_hint(shp):
                if shp == (batch,) or (len(shp) >= 1 and shp[0] == batch and batch > 1):
                    return ("return one number, the batch mean (nats per example), not one value per example: "
                            "average the per-example terms with .mean().")
                return "return a single number (a 0-dimensional tensor), e.g. recon + kl with each a batch mean."

            if isinstance(got, Tensor) and got.numel() == 1 and got.dim() <= 1:
                got = got.reshape(())
            got = s.tensor(case, got, (), expected.dtype, what=name, shape_hint=shape_hint)
            # the typical mistakes, computed in float64
            l64, y64 = logits.double(), y.double()
            rec_ex = -bernoulli_log_likelihood(l64, y64)
            kl_ex = kl_diag_gaussians(mu.double(), logvar.double(), prior_mu.double(), prior_logvar.double())
            kl_std = kl_standard_normal(mu.double(), logvar.double()).mean()
            r, k = rec_ex.mean(), kl_ex.mean()
            pixels, dz = y[0].numel(), mu.shape[1]
            opposite = ("you returned the ELBO; the loss is its negative, -ELBO = recon + KL, which the optimiser "
                        "minimises" if negative else "you returned the loss -ELBO = recon + KL; the ELBO is its negative")
            variants = [(opposite + ".", -(r + k)),
                        ("the reconstruction term is averaged over the pixels (F.binary_cross_entropy_with_logits "
                         "defaults to reduction='mean'): log p(y|x,z) is a sum over the pixels. Use reduction='none' "
                         "and .flatten(1).sum(dim=1), then the batch mean.", r / pixels + k),
                        ("both terms are averaged over pixels / latent dimensions: each is a sum per example, then a "
                         "mean over the batch.", r / pixels + k / dz),
                        ("the KL is averaged over the latent dimensions: sum it over them (dim 1), then average over "
                         "the batch.", r + k / dz),
                        ("you summed over the batch: nats per example means a mean over the batch.", batch * (r + k)),
                        ("the reconstruction term is summed over the batch, the KL averaged: average both.",
                         batch * r + k),
                        ("the KL is summed over the batch, the reconstruction averaged: average both.", r + batch * k),
                        ("the KL is off by a factor 2: its formula has a 0.5 in front of the sum.", r + 2 * k),
                        ("the KL has the wrong sign: the loss adds it (ELBO = log-likelihood - KL).", r - k),
                        ("the reconstruction term has the wrong sign: recon = -log p(y|x,z), a positive number of nats.",
                         -r + k),
                        ("the KL term is missing.", r),
                        ("the reconstruction term is missing.", k),
                        ("the KL goes to N(0, I) instead of the prior network's p(z|x): use prior_mu and prior_logvar "
                         "(cu.kl_diag_gaussians, not cu.kl_standard_normal).", r + kl_std)]
            variants = [(h, sign * v) for h, v in variants]  # computed for the loss; the ELBO flips every sign
            s.values(case, got, expected, rtol=1e-7 if tight else 1e-5, atol=1e-6 if tight else 1e-3,
                     variants=variants,
                     hint=f"build {name} from the two batch means: recon = -(y * logits - F.softplus(logits)) summed over "
                          "the pixels per example, then .mean(); kl = cu.kl_diag_gaussians(mu, logvar, prior_mu, "
                          "prior_logvar).mean().",
                     nonfinite_hint="NaN or inf: log(sigmoid(logits)) underflows for confident logits. Use "
                                    "y * logits - F.softplus(logits), or F.binary_cross_entropy_with_logits.")
        return _Case(title, inputs, run)

    g = _gen(5)

    def make(batch, y_shape, z_dim, dtype=torch.float32, *, binary=False, confident=False, q_is_prior=False):
        y = torch.rand(batch, *y_shape, generator=g, dtype=dtype)
        if binary:
            y = (y > 0.5).to(dtype)
        logits = torch.randn(batch, *y_shape, generator=g, dtype=dtype)
        if confident:
            flip = torch.where(torch.rand(y.shape, generator=g) < 0.1, -1.0, 1.0).to(dtype)
            logits = (2 * y - 1) * (30 + 30 * torch.rand(y.shape, generator=g, dtype=dtype)) * flip
        mu, logvar = (0.7 * torch.randn(batch, z_dim, generator=g, dtype=dtype) for _ in range(2))
        prior = (mu.clone(), logvar.clone()) if q_is_prior else tuple(
            0.7 * torch.randn(batch, z_dim, generator=g, dtype=dtype) for _ in range(2))
        return logits, y, mu, logvar, *prior

    cases = [
        elbo_case("a random batch", "4 grey-level images of shape (1, 6, 5), random logits, z_dim = 3, float32",
                  *make(4, (1, 6, 5), 3)),
        elbo_case("a batch of 1", "one image (1, 28, 28), z_dim = 20, float32", *make(1, (1, 28, 28), 20)),
        elbo_case("q equal to the prior", "mu = prior_mu and logvar = prior_logvar (the KL term is 0), 3 images "
                  "(1, 5, 5), z_dim = 4, float32", *make(3, (1, 5, 5), 4, q_is_prior=True)),
        elbo_case("confident logits", "binary images (1, 7, 7), logits of size 30 to 60 (a tenth confidently wrong), "
                  "batch of 3, z_dim = 2, float32", *make(3, (1, 7, 7), 2, binary=True, confident=True)),
        elbo_case("MNIST-sized, float64", "8 images (1, 28, 28), z_dim = 20, float64",
                  *make(8, (1, 28, 28), 20, torch.float64)),
    ]
    return _run("check_elbo", fn, cases,
                lambda s: f"computes {name} in nats per example, as cu.cvae_terms does,")


# ----------------------------------------------------------------------------------
# Notebook 5: the importance-sampled estimate of log p(y|x)
# ----------------------------------------------------------------------------------


def check_importance_sampled_log_likelihood(fn) -> CheckResult:
    """Check ``fn(log_w)`` = log (1/S) sum_s exp(log_w[s]), per example: logsumexp over dim 0 minus log S.

    ``log_w`` has shape (S, batch): S log importance weights
    log p(y|x,z_s) + log p(z_s|x) - log q(z_s|x,y) per example, samples along dim 0 as in
    ``cu.importance_sampled_log_likelihood``. The answer has shape (batch,), as
    ``cu.log_mean_exp(log_w, dim=0)`` returns it, and must stay finite where exp(log_w)
    underflows to 0 or overflows.
    """

    def lw_case(title, inputs, log_w):
        def run(s: _Session, case: _Case):
            expected = log_mean_exp(log_w, dim=0)
            tight = log_w.dtype == torch.float64
            got = s.call(case, *_clone(log_w))
            num, batch = log_w.shape

            def shape_hint(shp):
                if shp == (num,) and num != batch:
                    return "you reduced over the examples (dim 1): the samples are along dim 0, reduce over dim=0."
                if len(shp) == 0 or shp == (1,) and batch != 1:
                    return f"return one estimate per example, shape ({batch},): reduce over the samples (dim 0) only."
                if shp == tuple(log_w.shape):
                    return "reduce over the samples (dim 0): one estimate per example is left."
                return None

            got = s.tensor(case, got, expected.shape, expected.dtype, what="one estimate per example",
                           shape_hint=shape_hint)
            w64 = log_w.double()
            lse = torch.logsumexp(w64, dim=0)
            variants = [
                ("you averaged the log-weights: that is E[log w], the ELBO-like estimate that Jensen's inequality "
                 "puts below log E[w]. Average the weights, then take the log: torch.logsumexp(log_w, dim=0) - "
                 "math.log(S).", w64.mean(0)),
                ("the 1/S is missing: subtract math.log(S) from the logsumexp (S = log_w.shape[0]).", lse),
                ("sign error on log S: the mean divides by S, so subtract math.log(S).", lse + math.log(num)),
                ("you divided the logsumexp by S; dividing the sum of the weights by S subtracts log S from its log.",
                 lse / num),
                ("you took the largest log-weight; the estimate is log of the mean of all the weights: "
                 "torch.logsumexp(log_w, dim=0) - math.log(S).", w64.max(0).values),
            ]
            s.values(case, got, expected, rtol=1e-9 if tight else 1e-5, atol=1e-7 if tight else 1e-4,
                     variants=variants,
                     hint="log (1/S) sum_s exp(log_w[s]) = torch.logsumexp(log_w, dim=0) - math.log(S).",
                     nonfinite_hint="inf or -inf: exp(log_w) underflows to 0 (or overflows) at these magnitudes. "
                                    "torch.logsumexp subtracts the largest value before exponentiating: use "
                                    "torch.logsumexp(log_w, dim=0) - math.log(S).")
        return _Case(title, inputs, run)

    g = _gen(6)
    f64 = torch.float64
    dominated = -500 + 50 * torch.randn(1000, 1, generator=g, dtype=f64)
    cases = [
        lw_case("a small batch", "S = 5 log-weights for each of 3 examples, values around 0 (spread 1), float32",
                torch.randn(5, 3, generator=g)),
        lw_case("S = 1", "a single sample (S = 1) for 4 examples, float32: the estimate is the log-weight itself",
                torch.randn(1, 4, generator=g)),
        lw_case("very negative log-weights", "S = 10, 4 examples, log-weights around -1000 (as for an image; exp "
                "underflows to 0), float64", -1000 + 3 * torch.randn(10, 4, generator=g, dtype=f64)),
        lw_case("very large log-weights", "S = 6, 2 examples, log-weights around +800 (exp overflows to inf), float64",
                800 + 3 * torch.randn(6, 2, generator=g, dtype=f64)),
        lw_case("equal log-weights", "S = 8 equal log-weights (-3.5) for each of 3 examples, float64: the estimate "
                "is -3.5 (no Jensen gap)", torch.full((8, 3), -3.5, dtype=f64)),
        lw_case("one sample dominates", "a batch of 1 with S = 1000 log-weights around -500, spread 50, float64",
                dominated),
        lw_case("MNIST scale, float32", "S = 100, 2 examples, log-weights around -90 with spread 5, float32",
                -90 + 5 * torch.randn(100, 2, generator=g)),
    ]
    return _run("check_importance_sampled_log_likelihood", fn, cases,
                lambda s: "agrees with cu.log_mean_exp(log_w, dim=0)")


# ----------------------------------------------------------------------------------
# Notebook 6: a sampling routine, z ~ p(z|x), then the mean of p(y|x,z)
# ----------------------------------------------------------------------------------


class _ProbeCVAE(BaseVAE):
    """A tiny label-conditioned model whose decoder the checker can invert, to read z back from the images.

    decode(z, x) = 0.5 * z + offset[x] (one logit per latent dimension), so
    z = (logit(image) - offset[x]) / 0.5; its prior has a different mean and
    standard deviation in every label and dimension.
    """

    def __init__(self) -> None:
        super().__init__(z_dim=4, likelihood="bernoulli")
        f64 = torch.float64
        self.num_classes = 3
        self.y_shape = (1, 2, 2)
        sigma = torch.tensor([[0.5, 2.0, 0.8, 1.5], [1.3, 0.6, 2.5, 0.7], [0.9, 1.8, 0.4, 1.1]], dtype=f64)
        self.prior_mu = nn.Parameter(torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.5, 0.0, 2.0, -0.5],
                                                   [0.3, 1.2, -2.5, 1.0]], dtype=f64))
        self.prior_logvar = nn.Parameter(2 * sigma.log())
        self.offset = nn.Parameter(torch.tensor([[0.2, -0.3, 0.1, 0.0], [-0.2, 0.4, 0.0, 0.3],
                                                 [0.1, 0.0, -0.4, 0.2]], dtype=f64))

    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior(x)  # not needed to sample; q = p keeps the interface complete

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_labels("x (labels)", x, self.num_classes)
        return self.prior_mu[x], self.prior_logvar[x]

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        check_labels("x (labels)", x, self.num_classes)
        return (0.5 * z + self.offset[x]).view(len(z), *self.y_shape)

    def expand_condition(self, x, num_samples: int) -> Tensor:
        return label_batch(x, num_samples, self.num_classes, self.prior_mu.device)

    def latent(self, images: Tensor, x: Tensor) -> Tensor:
        """z back from the images the sampler returned (mean images, sigmoid of the logits)."""
        return (torch.logit(images.double().flatten(1)) - self.offset[x].detach()) / 0.5


class _UsedModelSample(_Signal):
    pass


def _forbid_model_sample(model: BaseVAE) -> BaseVAE:
    def refuse(*args, **kwargs):
        raise _UsedModelSample()

    model.sample = refuse  # an instance attribute: the class's sample stays for the reference
    return model


def check_sample(fn) -> CheckResult:
    """Check a sampling routine ``fn(model, x, temperature, generator)`` -> images.

    ``x`` is a tensor of labels, one per sample; the routine draws eps ~ N(0, I) from
    ``generator`` (a ``torch.Generator``), sets z = mu_p + temperature * sigma_p * eps
    with (mu_p, log sigma_p^2) = ``model.prior(x)``, and returns the mean image
    ``torch.sigmoid(model.decode(z, x))``, shape (len(x), *model.y_shape), values in
    [0, 1]: what ``model.sample(len(x), x, temperature=..., generator=...)`` does,
    written with ``model.prior`` and ``model.decode``. The checker tests shape, range,
    that samples differ, that the label is used, reproducibility given the generator,
    temperature 0, and, on a model whose decoder it can invert, that z has the prior's
    mean and spread.
    """
    with torch.random.fork_rng(devices=[]):  # the models' initialisation leaves the global state alone
        torch.manual_seed(7)
        mlp = _forbid_model_sample(MLPCVAE(y_shape=(1, 6, 6), z_dim=3, hidden_dims=[16], num_classes=4).eval())
    probe = _forbid_model_sample(_ProbeCVAE())
    mlp_text = "an MLPCVAE with 4 labels, images (1, 6, 6) and z_dim = 3"

    def call(s: _Session, case: _Case, model, x, temperature, seed):
        gen = _gen(seed) if seed is not None else None
        try:
            return s.call(case, model, x.clone(), temperature, gen)
        except _UsedModelSample:
            s.fail(case, "images drawn with model.prior and model.decode", "a call of model.sample",
                   "model.sample is what this exercise re-implements: use model.prior(x) for mu_p and logvar_p, "
                   "draw eps, form z, and decode it with model.decode(z, x).")

    def images(s: _Session, case: _Case, model, x, temperature, seed) -> Tensor:
        got = call(s, case, model, x, temperature, seed)
        dtype = next(model.parameters()).dtype
        got = s.tensor(case, got, (len(x), *model.y_shape), dtype, what=f"{len(x)} images shaped like y",
                       shape_hint=lambda shp: ("one image per label in x: shape (len(x), *model.y_shape); draw eps of "
                                               "the shape of mu_p (len(x), model.z_dim)."))
        if not torch.isfinite(got).all():
            s.fail(case, "finite pixel values", _brief(got), "NaN or inf: sigma_p = torch.exp(0.5 * logvar_p).")
        if got.min() < 0 or got.max() > 1:
            s.fail(case, "mean images: pixel values in [0, 1]", _brief(got),
                   "model.decode returns Bernoulli logits: apply torch.sigmoid (or model.mean_output) to get the "
                   "mean image.")
        return got

    def reference(model, x, temperature, seed) -> Tensor:
        return BaseVAE.sample(model, len(x), x, temperature=temperature, generator=_gen(seed))

    label2 = torch.full((6,), 2)

    def basic(s: _Session, case: _Case):
        got = images(s, case, mlp, label2, 1.0, 0)
        if torch.allclose(got, got[:1].expand_as(got)):
            with torch.no_grad():
                mean_image = torch.sigmoid(mlp.decode(mlp.prior(label2)[0], label2))
            if torch.allclose(got, mean_image, rtol=1e-5, atol=1e-6):
                hint = ("these are the images of the prior mean: no noise was added. Draw eps ~ N(0, I) with "
                        "torch.randn(shape, generator=generator) and set z = mu_p + temperature * sigma_p * eps.")
            else:
                hint = ("every sample needs its own noise: eps of shape (len(x), model.z_dim), drawn with "
                        "torch.randn(..., generator=generator).")
            s.fail(case, "6 different samples", "6 identical images", hint)
        if torch.allclose(got, reference(mlp, label2, 1.0, 0), rtol=1e-5, atol=1e-6):
            s.notes.append("It even reproduces model.sample(..., generator=...) exactly.")

    def reproducible(s: _Session, case: _Case):
        first = images(s, case, mlp, label2, 1.0, 11)
        second = images(s, case, mlp, label2, 1.0, 11)
        if not torch.equal(first, second):
            s.fail(case, "the same images from two generators with the same seed",
                   f"images that differ by up to {(first - second).abs().max().item():.3g}",
                   "draw eps from the generator you are given: torch.randn(shape, generator=generator) (then "
                   ".to(mu_p) for the device and dtype); torch.randn_like ignores it.")
        other = images(s, case, mlp, label2, 1.0, 12)
        if torch.equal(first, other):
            s.fail(case, "different images for a generator with another seed", "the same images",
                   "the noise must come from the generator: torch.randn(shape, generator=generator).")

    def uses_label(s: _Session, case: _Case):
        zeros, threes = torch.zeros(6, dtype=torch.long), torch.full((6,), 3)
        a = images(s, case, mlp, zeros, 1.0, 21)
        b = images(s, case, mlp, threes, 1.0, 21)
        if torch.allclose(a, b):
            s.fail(case, "different images for label 0 and label 3 (same noise)", "the same images",
                   "pass the labels x to both networks: model.prior(x) and model.decode(z, x).")

    def cold(s: _Session, case: _Case):
        x = torch.tensor([0, 1, 2, 3, 3, 1])
        got = images(s, case, mlp, x, 0.0, 31)
        with torch.no_grad():
            mu_p, _ = mlp.prior(x)
            want = torch.sigmoid(mlp.decode(mu_p, x))
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
            s.fail(case, f"the images of the prior means: {_brief(want)}", _brief(got),
                   "temperature scales the noise only: z = mu_p + temperature * sigma_p * eps, so temperature 0 "
                   "gives z = mu_p.")

    def one(s: _Session, case: _Case):
        images(s, case, mlp, torch.tensor([1]), 1.0, 41)

    def distribution(temperature: float):
        per_label = 3000
        x = torch.arange(3).repeat(per_label)

        def run(s: _Session, case: _Case):
            got = images(s, case, probe, x, temperature, 51)
            z = probe.latent(got.clamp(1e-12, 1 - 1e-12), x).view(per_label, 3, 4)  # (sample, label, dim)
            mu = probe.prior_mu.detach()
            sigma = torch.exp(0.5 * probe.prior_logvar.detach())
            mean, spread = z.mean(0), z.std(0)
            tol_mean = 6 * spread / math.sqrt(per_label) + 1e-6  # six standard errors of each mean
            expected = (f"z = mu_p + temperature * sigma_p * eps with temperature {_fmt(temperature)}: for every "
                        f"label and dimension, mean mu_p and standard deviation {_fmt(temperature)} * sigma_p")
            k = int(((mean - mu).abs() / tol_mean).amax(1).argmax())  # the label that is furthest off
            got_text = f"for label {k}, z has means {_vec(mean[k])} where mu_p = {_vec(mu[k])}"
            if not ((mean - mu).abs() <= tol_mean).all():
                if (mean.abs() <= tol_mean).all():
                    hint = ("z is centred on 0: you drew z from N(0, I), not from the prior p(z|x). Use "
                            "mu_p, logvar_p = model.prior(x) and z = mu_p + temperature * sigma_p * eps.")
                elif ((mean - temperature * mu).abs() <= tol_mean).all():
                    hint = "temperature scales the noise only, not the prior mean: z = mu_p + temperature * sigma_p * eps."
                elif ((mean - mu[x[0]]).abs() <= tol_mean).all():
                    hint = "every sample got the prior of the first label: use each sample's own label, model.prior(x)."
                else:
                    hint = "z must be centred on the prior mean mu_p of each sample's label: z = mu_p + temperature * sigma_p * eps."
                s.fail(case, expected, got_text, hint)
            ratio = spread / (temperature * sigma)
            if not ((ratio - 1).abs() <= 0.08).all():
                lv = probe.prior_logvar.detach()
                candidates = [
                    ("the spread of z is sigma_p^2, the variance: sigma_p = torch.exp(0.5 * logvar_p).",
                     temperature * lv.exp()),
                    ("the spread of z is logvar_p itself: you forgot the exponent, sigma_p = torch.exp(0.5 * logvar_p).",
                     temperature * lv.abs()),
                    ("the spread of z ignores the prior's standard deviation: multiply eps by "
                     "sigma_p = torch.exp(0.5 * logvar_p).", temperature * torch.ones_like(lv)),
                    ("the temperature is ignored: z = mu_p + temperature * sigma_p * eps.", sigma),
                    ("the temperature is applied twice (or squared): z = mu_p + temperature * sigma_p * eps.",
                     temperature ** 2 * sigma),
                    ("the temperature scales the variance, not the standard deviation: multiply sigma_p * eps by "
                     "temperature itself.", math.sqrt(temperature) * sigma),
                ]
                hint = next((h for h, want in candidates if ((spread / want - 1).abs() <= 0.08).all()),
                            "z = mu_p + temperature * sigma_p * eps with eps ~ N(0, I) (torch.randn, not torch.rand).")
                k = int((ratio - 1).abs().amax(1).argmax())
                s.fail(case, expected, f"for label {k}, z has standard deviations {_vec(spread[k])} where "
                       f"{_fmt(temperature)} * sigma_p = {_vec(temperature * sigma[k])}", hint)
        return run

    cases = [
        _Case("six samples of one label", f"{mlp_text}; x = six times label 2, temperature 1, a generator seeded "
              "with 0", basic),
        _Case("reproducible", f"{mlp_text}; x = six times label 2; two generators seeded with 11, then one with 12",
              reproducible),
        _Case("the label is used", f"{mlp_text}; six samples of label 0, then of label 3, generators seeded with 21",
              uses_label),
        _Case("a batch of 1", f"{mlp_text}; x = [1], temperature 1", one),
        _Case("the prior's mean and spread", "a model with 3 labels and z_dim = 4 whose decoder the checker inverts "
              "(float64); 3000 samples of each label, temperature 1", distribution(1.0)),
        _Case("temperature 0.5", "the same invertible model, 3000 samples of each label, temperature 0.5",
              distribution(0.5)),
        _Case("temperature 0", f"{mlp_text}; x = [0, 1, 2, 3, 3, 1], temperature 0", cold),
    ]
    return _run("check_sample", fn, cases, lambda s: "draws from p(y|x) as model.sample does")


# ----------------------------------------------------------------------------------
# Notebook 7: the log importance weights of the paper's likelihood estimate
# ----------------------------------------------------------------------------------


def _log_weight_parts(model, y: Tensor, x: Tensor, mask: Tensor, eps: Tensor, *, std_power: float = 0.5,
                      proposal: str = "recognition") -> dict[str, Tensor]:
    """The pieces of log w = log p(y|x,z) + log p(z|x) - log q(z|x,y), each (S, B), for z = mu_q + sigma_q eps."""
    num, batch = eps.shape[:2]
    with torch.no_grad():
        mu_p, lv_p = model.prior(x)
        mu_q, lv_q = model.encode(y, x) if proposal == "recognition" else (mu_p, lv_p)
        z = mu_q + torch.exp(std_power * lv_q) * eps  # (S, B, z_dim)
        xs, ys, ms = (t.repeat(num, *([1] * (t.dim() - 1))) for t in (x, y, mask))
        decoded = model.decode(z.reshape(num * batch, -1), xs)
        ll = model.log_likelihood(decoded, ys, ms).view(num, batch)
        ll_all = model.log_likelihood(decoded, ys, None).view(num, batch)  # the mask forgotten
        log_prior = gaussian_log_density(z, mu_p, lv_p)
        log_q = gaussian_log_density(z, mu_q, lv_q)
        log_std_normal = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
    return {"ll": ll, "ll_all": ll_all, "log_prior": log_prior, "log_q": log_q, "log_std_normal": log_std_normal}


def check_log_importance_weights(fn) -> CheckResult:
    """Check ``fn(model, y, x, mask, eps)`` -> the log importance weights, shape (S, B).

    For the quadrant CVAE of notebook 7 (:class:`cvae_utils.QuadrantCVAE`) and the
    noise ``eps`` of shape (S, B, z_dim): z_s = mu_q + sigma_q * eps[s] with
    (mu_q, logvar_q) = ``model.encode(y, x)``, and
    log w_s = log p(y|x,z_s) + log p(z_s|x) - log q(z_s|x,y), where the likelihood
    ``model.log_likelihood(model.decode(z, x), y, mask)`` counts only the target pixels
    and both densities are diagonal Gaussians (``cu.gaussian_log_density``), the prior's
    from ``model.prior(x)``. Then ``cu.log_mean_exp(log_w, dim=0)`` is the paper's estimate
    of log p(y|x), as ``cu.importance_sampled_log_likelihood`` computes it.
    """
    from .models import BaselineNet, QuadrantCVAE  # the quadrant model, built here only when checked

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        model = QuadrantCVAE(BaselineNet(x_shape=(1, 8, 8), hidden_dims=[16]), img_shape=(1, 8, 8), z_dim=3,
                             hidden_dims=[24]).eval()
        # a learned prior that differs from N(0, I), so that leaving it out shows
        with torch.no_grad():
            model.prior_net[-1].bias.uniform_(-0.8, 0.8)
    g = _gen(17)
    images = torch.rand(6, 1, 8, 8, generator=g)

    def task(k: int, n: int):
        y, x, mask = split_quadrants(images[:n], k)
        return y, x, mask

    def lw_case(title, inputs, k, n, eps):
        y, x, mask = task(k, n)

        def run(s: _Session, case: _Case):
            parts = _log_weight_parts(model, y, x, mask, eps)
            expected = parts["ll"] + parts["log_prior"] - parts["log_q"]
            num, batch = eps.shape[:2]
            got = s.call(case, model, y.clone(), x.clone(), mask.clone(), eps.clone())

            def shape_hint(shp):
                if shp == (num * batch,):
                    return f"reshape the S * B weights to (S, B) = ({num}, {batch}): samples along dim 0."
                if shp == (batch,):
                    return ("these look like one value per example: return the S weights of every example, shape "
                            "(S, B), before averaging them (the notebook does the log-mean-exp next).")
                if shp == (batch, num) and batch != num:
                    return "the samples go along dim 0: shape (S, B), transpose your result."
                return None

            got = s.tensor(case, got, (num, batch), expected.dtype, what="log w for each sample and example",
                           shape_hint=shape_hint)
            half = _log_weight_parts(model, y, x, mask, eps, std_power=1.0)
            prior_z = _log_weight_parts(model, y, x, mask, eps, proposal="prior")
            variants = [
                ("the prior term log p(z|x) is missing: the weight is p(y|x,z) p(z|x) / q(z|x,y).",
                 parts["ll"] - parts["log_q"]),
                ("the density ratio is upside down: add log p(z|x) and subtract log q(z|x,y).",
                 parts["ll"] - parts["log_prior"] + parts["log_q"]),
                ("you used N(0, I) as the prior: this model's prior is the prior network, model.prior(x) gives its "
                 "mean and log-variance.", parts["ll"] + parts["log_std_normal"] - parts["log_q"]),
                ("the likelihood counts every pixel: pass the mask, model.log_likelihood(logits, y, mask), so that "
                 "only the pixels to predict are scored.", parts["ll_all"] + parts["log_prior"] - parts["log_q"]),
                ("z has the wrong spread: sigma_q = exp(0.5 * logvar_q), not exp(logvar_q).",
                 half["ll"] + half["log_prior"] - half["log_q"]),
                ("z must come from the proposal q(z|x,y) = model.encode(y, x), not from the prior: "
                 "z = mu_q + sigma_q * eps.", prior_z["ll"] + parts["log_prior"] - parts["log_q"]),
                ("only the likelihood: the weight also has the density ratio p(z|x) / q(z|x,y).", parts["ll"]),
            ]
            s.values(case, got, expected, rtol=1e-4, atol=1e-4, variants=variants,
                     hint="log w = model.log_likelihood(model.decode(z, x_rep), y_rep, mask_rep) + "
                          "cu.gaussian_log_density(z, mu_p, logvar_p) - cu.gaussian_log_density(z, mu_q, logvar_q), "
                          "with z = mu_q + exp(0.5 * logvar_q) * eps and x, y, mask repeated S times "
                          "(t.repeat(S, 1, 1, 1)) to meet the S * B rows of z.")
        return _Case(title, inputs, run)

    cases = [
        lw_case("one quadrant observed", "6 images 8x8, 1 quadrant observed, S = 4 samples of z (z_dim = 3)", 1, 6,
                torch.randn(4, 6, 3, generator=g)),
        lw_case("S = 1", "6 images, 2 quadrants observed, a single sample (S = 1)", 2, 6,
                torch.randn(1, 6, 3, generator=g)),
        lw_case("a batch of 1", "1 image, 3 quadrants observed, S = 5", 3, 1, torch.randn(5, 1, 3, generator=g)),
        lw_case("eps = 0", "6 images, 1 quadrant observed, S = 2 with eps = 0 (z is the mean of q)", 1, 6,
                torch.zeros(2, 6, 3)),
        lw_case("many samples", "4 images, 2 quadrants observed, S = 50", 2, 4, torch.randn(50, 4, 3, generator=g)),
    ]
    return _run("check_log_importance_weights", fn, cases,
                lambda s: "gives the log importance weights of cu.importance_sampled_log_likelihood")
