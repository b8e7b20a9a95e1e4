"""The two tricks Optimus uses against posterior collapse, as plain functions.

**KL thresholding** ("free bits" per dimension; the paper's λ):

* ``"example"`` (default; what the official Optimus code does) — per sentence and per
  latent dimension, a dimension's KL counts only where it exceeds λ:

      L = mean_x [ rec(x) + β · Σ_i 1[KL_i(x) > λ] · KL_i(x) ],   KL_i(x) = KL(q(z_i|x) || N(0, 1))

* ``"batch"`` (our earlier form) — the threshold acts on the batch-mean KL of each dimension:

      L = mean_x rec(x) + β · Σ_i max(λ, mean_x KL_i(x))

Either way a KL term below λ gives no gradient: the optimiser is not pushed to squeeze
that information out, so the encoder can keep using it. The per-example form lets
each sentence keep up to λ nats per dimension; the batch form lets the average do so,
which a dimension can satisfy with no information at all (every posterior narrow
around the same mean). Only the training loss uses this; every reported number uses
the true KL.

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


THRESHOLD_MODES = ("example", "batch")


def thresholded_kl(kl: torch.Tensor, lam: float, mode: str = "example") -> torch.Tensor:
    """The KL term of the training loss for per-sample, per-dim KL (B, D) -> scalar (batch mean).

    λ <= 0 gives the plain KL, mean_x Σ_i KL_i(x), in either mode.
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"KL threshold mode must be one of {THRESHOLD_MODES}, got {mode!r}")
    if lam <= 0:
        return kl.sum(dim=1).mean()
    if mode == "example":
        # the mask is a constant: entries at or below λ drop out with their gradient
        return (kl * (kl > lam).to(kl.dtype)).sum(dim=1).mean()
    return kl.mean(dim=0).clamp(min=lam).sum()  # clamp: constant λ and zero gradient below it


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


def reconstruction_term(rec: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Batch mean of the summed NLL per sentence (B,), or with ``lengths`` (B,) of each sentence's NLL per token.

    The per-token form is the official code's ``--length_weighted_loss`` (modules/vae.py:
    ``loss_rec / sent_length + beta * loss_kl``, sent_length = the sentence's non-padding labels):
    it divides the reconstruction only, so against it each nat of KL weighs |x| times more.
    """
    return (rec if lengths is None else rec / lengths.to(rec.dtype)).mean()


def vae_loss(rec: torch.Tensor, kl: torch.Tensor, beta: float, lam: float, mode: str = "example",
             lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Training loss averaged over the batch: reconstruction term + β · thresholded KL."""
    return reconstruction_term(rec, lengths) + beta * thresholded_kl(kl, lam, mode)
