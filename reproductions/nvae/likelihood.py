"""Test log-likelihood by importance weighting (Burda et al., IWAE bound).

For any proposal ``q(z | x)`` that covers the posterior,

    log p(x) >= L_k = E[ log (1/k) sum_i p(x, z_i) / q(z_i | x) ],   z_i ~ q(z | x)

``L_1`` is the ELBO, ``L_k`` rises with k and tends to ``log p(x)``. NVAE reports
``-L_1000`` on MNIST as its NLL. Here the estimator is generic: it takes any function
that maps a batch of inputs to one log weight per input, so the same code is
checked exactly on a linear-Gaussian model (tests) and used on the NVAE.
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def iwae_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """``log mean_i exp(log_weights[i])`` over dim 0, computed stably: (k, B) -> (B,)."""
    k = log_weights.shape[0]
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


@torch.no_grad()
def importance_weighted_log_likelihood(log_weight_fn: Callable[[torch.Tensor], torch.Tensor],
                                       x: torch.Tensor, k: int, max_batch: int = 1024) -> torch.Tensor:
    """``L_k`` for each input in ``x`` (B, ...) -> (B,).

    ``log_weight_fn(xs)`` draws one ``z ~ q(z|xs)`` per row of ``xs`` and returns
    ``log p(xs, z) - log q(z|xs)`` (N,). The k samples per input are drawn in chunks of
    ``max_batch // B`` copies of ``x`` so memory stays bounded for k = 1000.
    """
    B = x.shape[0]
    per_call = max(1, max_batch // B)
    chunks, done = [], 0
    while done < k:
        n = min(per_call, k - done)
        xs = x.repeat(n, *([1] * (x.dim() - 1)))  # (n*B, ...): copy j of input b sits at row j*B + b
        w = log_weight_fn(xs)
        chunks.append(w.to(torch.promote_types(w.dtype, torch.float32)).reshape(n, B))  # bf16 -> fp32, keep fp64
        done += n
    return iwae_bound(torch.cat(chunks, dim=0))
