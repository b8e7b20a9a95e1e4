"""The two tricks Optimus uses against posterior collapse, as plain functions.

**KL thresholding** (per dimension, "free bits" style; the paper's Eq. with λ):

    L = rec + β · Σ_i max(λ, KL_i),   KL_i = E_batch KL(q(z_i|x) || N(0, 1))

A dimension whose batch-averaged KL is already below λ contributes the constant λ and
therefore no gradient: the optimiser is not pushed to squeeze its information out,
so the encoder can keep using it. Only the training loss uses this; every reported
number uses the true KL.

**Cyclical β schedule** (Fu et al. 2019, as configured in Optimus): training is cut
into ``n_cycles`` equal cycles; in each, β = 0 for the first ``ratio_zero`` of the
cycle (a pure auto-encoder phase that makes z informative), rises linearly to
``beta_max`` over the next ``ratio_increase``, then holds at ``beta_max``. Optimus
uses ratio_zero = 0.5 and ratio_increase = 0.25.
"""

from __future__ import annotations

import torch


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample and dimension: (B, D) -> (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def thresholded_kl(kl: torch.Tensor, lam: float) -> torch.Tensor:
    """Σ_i max(λ, mean_batch KL_i) for per-sample, per-dim KL (B, D) -> scalar; λ = 0 is the plain KL."""
    per_dim = kl.mean(dim=0)  # (D,)
    if lam <= 0:
        return per_dim.sum()
    return per_dim.clamp(min=lam).sum()  # clamp: constant λ and zero gradient below the threshold


def cyclical_beta(step: int, total_steps: int, n_cycles: int = 1, ratio_zero: float = 0.5,
                  ratio_increase: float = 0.25, beta_max: float = 1.0) -> float:
    """β at ``step`` (0-based) of ``total_steps`` under the zero / ramp / hold cyclical schedule."""
    if total_steps <= 0 or n_cycles <= 0:
        raise ValueError("total_steps and n_cycles must be positive")
    if not (0 <= ratio_zero and 0 < ratio_increase and ratio_zero + ratio_increase <= 1):
        raise ValueError("need 0 <= ratio_zero, 0 < ratio_increase, ratio_zero + ratio_increase <= 1")
    period = total_steps / n_cycles
    t = (min(step, total_steps - 1) % period) / period  # position within the cycle, in [0, 1)
    if t < ratio_zero:
        return 0.0
    return beta_max * min(1.0, (t - ratio_zero) / ratio_increase)


def vae_loss(rec: torch.Tensor, kl: torch.Tensor, beta: float, lam: float) -> torch.Tensor:
    """Per-sentence training loss averaged over the batch: mean rec + β · thresholded KL."""
    return rec.mean() + beta * thresholded_kl(kl, lam)
