"""The distributions NVAE is built from.

Every latent group ``z_l`` is a diagonal Gaussian. The prior ``p(z_l | z_<l)`` comes
from the top-down path; the approximate posterior ``q(z_l | z_<l, x)`` could be
parameterised on its own, but NVAE (Sec. 3.2) writes it *relative to the prior*:

    p = N(mu_p, sigma_p),   q = N(mu_p + dmu, sigma_p * dsigma)

so the encoder only predicts the correction ``(dmu, log dsigma)``. The KL between
the two then depends on the correction alone (and on ``sigma_p`` through ``dmu``):

    KL(q || p) = 1/2 * (dmu^2 / sigma_p^2 + dsigma^2) - 1/2 - log dsigma

When the prior moves in the top-down path the posterior moves with it, and the KL
stays small and well conditioned; the paper reports this stabilises training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def soft_clamp(x: torch.Tensor, bound: float = 5.0) -> torch.Tensor:
    """Smoothly keep a parameter inside ``(-bound, bound)`` so no exp() explodes."""
    return bound * torch.tanh(x / bound)


class Normal:
    """A diagonal Gaussian given by its mean and log standard deviation (same shape)."""

    def __init__(self, mu: torch.Tensor, log_sigma: torch.Tensor):
        self.mu = mu
        self.log_sigma = log_sigma

    @classmethod
    def from_params(cls, params: torch.Tensor) -> "Normal":
        """Split a conv output ``(B, 2C, H, W)`` into a clamped mean and log-std ``(B, C, H, W)``."""
        mu, log_sigma = params.chunk(2, dim=1)
        return cls(soft_clamp(mu), soft_clamp(log_sigma))

    @classmethod
    def standard(cls, like: torch.Tensor) -> "Normal":
        return cls(torch.zeros_like(like), torch.zeros_like(like))

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def residual(self, delta_params: torch.Tensor) -> "Normal":
        """The residual posterior ``N(mu + dmu, sigma * dsigma)`` from the encoder's ``(dmu, log dsigma)``."""
        dmu, dlog_sigma = (soft_clamp(t) for t in delta_params.chunk(2, dim=1))
        return ResidualNormal(self, dmu, dlog_sigma)

    def rsample(self, temperature: float = 1.0) -> torch.Tensor:
        """Reparameterised sample; ``temperature`` scales the noise (t < 1: sharper samples)."""
        return self.mu + temperature * self.sigma * torch.randn_like(self.mu)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Elementwise log density (same shape as ``z``)."""
        eps = (z - self.mu) * torch.exp(-self.log_sigma)
        return -0.5 * eps * eps - self.log_sigma - 0.5 * LOG_2PI

    def kl(self, other: "Normal") -> torch.Tensor:
        """Elementwise analytic ``KL(self || other)`` between two diagonal Gaussians."""
        return kl_normal(self.mu, self.log_sigma, other.mu, other.log_sigma)


class ResidualNormal(Normal):
    """A posterior stored as a correction of its prior; knows its cheap analytic KL."""

    def __init__(self, prior: Normal, dmu: torch.Tensor, dlog_sigma: torch.Tensor):
        super().__init__(prior.mu + dmu, prior.log_sigma + dlog_sigma)
        self.prior, self.dmu, self.dlog_sigma = prior, dmu, dlog_sigma

    def kl(self, other: Normal) -> torch.Tensor:
        if other is not self.prior:  # the shortcut only holds against the prior it corrects
            return super().kl(other)
        return kl_residual(self.dmu, self.dlog_sigma, self.prior.log_sigma)


def kl_normal(mu_q, log_sigma_q, mu_p, log_sigma_p) -> torch.Tensor:
    """``KL(N(mu_q, s_q) || N(mu_p, s_p))`` elementwise, the general formula."""
    var_ratio = torch.exp(2 * (log_sigma_q - log_sigma_p))
    mean_term = ((mu_q - mu_p) * torch.exp(-log_sigma_p)) ** 2
    return 0.5 * (var_ratio + mean_term) - 0.5 - (log_sigma_q - log_sigma_p)


def kl_residual(dmu: torch.Tensor, dlog_sigma: torch.Tensor, log_sigma_p: torch.Tensor) -> torch.Tensor:
    """NVAE's Eq. 2: ``KL(N(mu_p+dmu, s_p*ds) || N(mu_p, s_p))`` from the correction alone."""
    return 0.5 * ((dmu * torch.exp(-log_sigma_p)) ** 2 + torch.exp(2 * dlog_sigma)) - 0.5 - dlog_sigma


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` of a binary image under independent Bernoulli pixels, summed per image -> (B,)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
