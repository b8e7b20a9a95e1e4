"""The one scaled dot-product attention core every reproduction uses (Vaswani et al. 2017, §3.2).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V

Plain reference code: the tests check it against
`torch.nn.functional.scaled_dot_product_attention` (the fast path) and the attention
bench times this function itself. Shapes are batch-first with any leading axes:
q (..., T, d), k and v (..., S, d). ``mask`` is boolean and broadcastable to
(..., T, S), True = may attend (the SDPA convention). A query whose keys are all masked
gets NaN, as in SDPA: keep at least one key visible per row.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q kᵀ / √d) over the keys: (..., T, S); each query's row sums to 1."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *,
           dropout_p: float = 0.0, training: bool = False,
           return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The values mixed by the attention weights: (..., T, d_v); with the weights if asked."""
    weights = attention_weights(q, k, mask)
    out = F.dropout(weights, dropout_p, training) @ v  # (..., T, S) @ (..., S, d_v)
    return (out, weights) if return_weights else out
