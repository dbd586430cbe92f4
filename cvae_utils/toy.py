"""A small linear-Gaussian conditional model where log p(y|x) is exact.

    p(z|x)   = N(A x + a, diag(exp(prior_logvar)))
    p(y|x,z) = N(C z + D x, obs_std^2 I)
    q(z|x,y) = N(E y + F x + e, diag(exp(q_logvar)))      (linear recognition network)

Marginalising z gives p(y|x) = N(C (A x + a) + D x, C Sigma_p C^T + obs_std^2 I), and
the true posterior p(z|x,y) is Gaussian too, so the bound
log p(y|x) = ELBO(q) + KL(q(z|x,y) || p(z|x,y)) can be checked to the last digit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal

from .models import BaseVAE, register_model
from .validation import check_same_batch, check_tensor, tensor_batch


@register_model
class LinearGaussianCVAE(BaseVAE):
    """The linear-Gaussian CVAE above; its parameters are drawn from ``seed``.

    Derived in notebook 1, "A CVAE where everything is exact".
    """

    def __init__(self, x_dim: int = 2, y_dim: int = 3, z_dim: int = 2, obs_std: float = 0.5, seed: int = 0) -> None:
        super().__init__(z_dim, likelihood="gaussian", obs_std=obs_std)
        self.x_dim, self.y_dim = int(x_dim), int(y_dim)
        self.y_shape, self.x_shape = (self.y_dim,), (self.x_dim,)
        g = torch.Generator().manual_seed(seed)

        def param(*shape, scale=1.0):
            return nn.Parameter(scale * torch.randn(*shape, generator=g, dtype=torch.float64))

        z = self.z_dim
        self.A, self.a, self.prior_logvar = param(z, x_dim), param(z, scale=0.5), param(z, scale=0.3)
        self.C, self.D = param(y_dim, z), param(y_dim, x_dim)
        self.E, self.F, self.e = param(z, y_dim, scale=0.3), param(z, x_dim, scale=0.3), param(z, scale=0.1)
        self.q_logvar = param(z, scale=0.3)
        self.config = {
            "name": type(self).__name__,
            "kwargs": dict(x_dim=self.x_dim, y_dim=self.y_dim, z_dim=z, obs_std=float(obs_std), seed=seed),
        }

    # --- the three networks ----------------------------------------------------------
    def encode(self, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("y", y, self.y_shape)
        check_tensor("x", x, self.x_shape)
        check_same_batch(y=y, x=x)
        return y @ self.E.T + x @ self.F.T + self.e, self.q_logvar.expand(len(y), -1)

    def prior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor("x", x, self.x_shape)
        return x @ self.A.T + self.a, self.prior_logvar.expand(len(x), -1)

    def decode(self, z: Tensor, x: Tensor) -> Tensor:
        return z @ self.C.T + x @ self.D.T

    def expand_condition(self, x, num_samples: int) -> Tensor:
        return tensor_batch(x, num_samples, self.x_shape, self.A.device)

    # --- what only a linear-Gaussian model can give exactly ----------------------------
    def _obs_var(self) -> float:
        return math.exp(self.obs_logvar)

    def marginal(self, x: Tensor) -> MultivariateNormal:
        """p(y|x) in closed form.

        Derived in notebook 1, "A CVAE where everything is exact".
        """
        mu_p, _ = self.prior(x)
        eye = torch.eye(self.y_dim, dtype=self.C.dtype, device=self.C.device)
        cov = self.C @ torch.diag(self.prior_logvar.exp()) @ self.C.T + self._obs_var() * eye
        return MultivariateNormal(mu_p @ self.C.T + x @ self.D.T, covariance_matrix=cov)

    def exact_log_likelihood(self, y: Tensor, x: Tensor) -> Tensor:
        """log p(y|x) per example, exactly.

        Derived in notebook 1, "A CVAE where everything is exact".
        """
        return self.marginal(x).log_prob(y)

    def posterior(self, y: Tensor, x: Tensor) -> MultivariateNormal:
        """The true posterior p(z|x,y) (a full-covariance Gaussian).

        Derived in notebook 1, "A CVAE where everything is exact".
        """
        mu_p, _ = self.prior(x)
        prec_p = torch.diag(torch.exp(-self.prior_logvar))
        prec = prec_p + self.C.T @ self.C / self._obs_var()
        cov = torch.linalg.inv(prec)
        cov = 0.5 * (cov + cov.T)
        mean = (mu_p @ prec_p + (y - x @ self.D.T) @ self.C / self._obs_var()) @ cov
        return MultivariateNormal(mean, covariance_matrix=cov)

    @torch.no_grad()
    def match_posterior(self) -> LinearGaussianCVAE:
        """Set q(z|x,y) to the best it can be: the true posterior's mean, exactly, and the
        diagonal variances 1 / diag(posterior precision) that minimise KL(q || p(z|x,y)).
        Returns the model (the gap left is the posterior's correlation, which a diagonal q lacks).

        Derived in notebook 1, "Maximising the ELBO over $q$: the gap a diagonal $q$ cannot close".
        """
        prec_p = torch.diag(torch.exp(-self.prior_logvar))
        prec = prec_p + self.C.T @ self.C / self._obs_var()
        cov = torch.linalg.inv(prec)
        # posterior mean (row vector) = y C Sigma / s2 + x (A^T P_p - D^T C / s2) Sigma + a P_p Sigma
        self.E.copy_((self.C @ cov / self._obs_var()).T)
        self.F.copy_(((self.A.T @ prec_p - self.D.T @ self.C / self._obs_var()) @ cov).T)
        self.e.copy_(self.a @ prec_p @ cov)
        self.q_logvar.copy_(-torch.log(torch.diagonal(prec)))
        return self

    def recognition(self, y: Tensor, x: Tensor) -> MultivariateNormal:
        """q(z|x,y) as a torch distribution (diagonal covariance).

        Taught in notebook 1, "A CVAE where everything is exact".
        """
        mu, logvar = self.encode(y, x)
        return MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp()))

    def exact_elbo(self, y: Tensor, x: Tensor) -> Tensor:
        """The ELBO per example with the expectation over q taken in closed form.

        Derived in notebook 1, "The ELBO in closed form".
        """
        from .losses import gaussian_log_likelihood, kl_diag_gaussians

        mu_q, logvar_q = self.encode(y, x)
        mu_p, logvar_p = self.prior(x)
        expected_ll = gaussian_log_likelihood(self.decode(mu_q, x), y, self.obs_logvar) - 0.5 * (
            (self.C.pow(2) @ logvar_q.exp().T).sum(0) / self._obs_var()
        )
        return expected_ll - kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p)

    @torch.no_grad()
    def sample_data(self, num: int, seed: int = 0) -> tuple[Tensor, Tensor]:
        """Draw (y, x) pairs from the model itself: x ~ N(0, I), z ~ p(z|x), y ~ p(y|x,z).

        Taught in notebook 1, "A CVAE where everything is exact".
        """
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(num, self.x_dim, generator=g, dtype=self.C.dtype)
        mu_p, logvar_p = self.prior(x)
        z = mu_p + torch.exp(0.5 * logvar_p) * torch.randn(mu_p.shape, generator=g, dtype=self.C.dtype)
        y = self.decode(z, x) + math.sqrt(self._obs_var()) * torch.randn(
            num, self.y_dim, generator=g, dtype=self.C.dtype
        )
        return y, x
