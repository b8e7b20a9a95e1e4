"""Scaled dot-product self-attention as modules (Vaswani et al. 2017, §3.2).

Every position of a sequence asks a question (a *query*), every position offers a
*key* to be matched against and a *value* to hand over. Position ``i`` takes the
softmax-weighted average of all values, the weights being how well its query matches
each key:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V

The division by √d keeps the dot products of two random d-dimensional vectors at unit
variance; without it, large d pushes the softmax into saturation where its gradient
vanishes. The softmax runs over the *keys* (the last axis of the score matrix): each
query distributes one unit of attention, not each key. The formula itself lives in one
place, `reproductions.self_attention.attention` (`attend`, `attention_weights`); the
modules here only project, split into heads and merge.

A boolean ``mask`` (True = may attend, the convention of
`torch.nn.functional.scaled_dot_product_attention`) removes pairs before the softmax:
`causal_mask` hides the future, `padding_mask` hides padded keys. A query row whose
keys are all masked has no distribution to take (the softmax of all ``-inf`` is NaN),
exactly as in SDPA; keep at least one key visible per row.

`SingleHeadSelfAttention` is one head; `MultiHeadSelfAttention` runs ``n_head`` of them
in parallel on ``d_model / n_head``-dimensional slices and mixes them with one output
projection. Both are plain reference code: SDPA is the fast path, and the tests check
these against it and against `torch.nn.MultiheadAttention` (outputs and gradients).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange

from reproductions.self_attention.attention import attend


def causal_mask(t: int, device=None) -> torch.Tensor:
    """(t, t) bool, True on and below the diagonal: query i may look at keys 0..i."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, 1, t) bool, True where the key position is a real token (< its sequence's length)."""
    return (torch.arange(t, device=lengths.device)[None, :] < lengths[:, None])[:, None, :]


class SingleHeadSelfAttention(nn.Module):
    """One attention head: project to q, k, v; attend (score, mask, softmax over keys, mix values)."""

    def __init__(self, d_model: int, d_head: int | None = None, bias: bool = True):
        super().__init__()
        d_head = d_head or d_model
        self.q = nn.Linear(d_model, d_head, bias=bias)
        self.k = nn.Linear(d_model, d_head, bias=bias)
        self.v = nn.Linear(d_model, d_head, bias=bias)
        self.out = nn.Linear(d_head, d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, d_model); mask: bool broadcastable to (B, T, T), True = may attend
        return self.out(attend(self.q(x), self.k(x), self.v(x), mask))  # (B, T, d) -> (B, T, d_model)


class MultiHeadSelfAttention(nn.Module):
    """``n_head`` heads in parallel, one fused q/k/v projection, one output projection.

    Parameter layout matches `torch.nn.MultiheadAttention` (``qkv`` = ``in_proj``,
    ``out`` = ``out_proj``), so weights copy across. ``dropout`` acts on the attention
    weights. ``head_hook`` (e.g. `DropHead`) sees the per-head outputs (B, H, T, d_head)
    before they are merged.
    """

    def __init__(self, d_model: int, n_head: int, bias: bool = True, dropout: float = 0.0,
                 head_hook: nn.Module | None = None):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model {d_model} must split evenly into n_head {n_head}")
        self.n_head = n_head
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.head_hook = head_hook if head_hook is not None else nn.Identity()

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> q, k, v, each (B, H, T, C/H): each head works on its own slice of the channels."""
        return tuple(rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.n_head))

    def merge_heads(self, heads: torch.Tensor) -> torch.Tensor:
        """(B, H, T, C/H) -> (B, T, C) through the output projection."""
        return self.out(rearrange(heads, "b h t d -> b t (h d)"))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, C); mask: bool broadcastable to (B, H, T, T), True = may attend
        if mask is not None and mask.dim() == 3:  # (B, T, T) or (B, 1, T): the same mask for every head
            mask = mask.unsqueeze(1)
        heads = attend(*self.split_heads(x), mask, dropout_p=self.dropout, training=self.training)
        return self.merge_heads(self.head_hook(heads))  # DropHead and friends act on whole heads


class TinyTransformer(nn.Module):
    """Token + position embeddings, ``n_layer`` pre-LN blocks of our attention, a per-position head.

    Used by the experiment: sequence-to-sequence tasks of equal length (reversal),
    where each output position must fetch the token from another position, which
    only attention can do.
    """

    def __init__(self, vocab: int, max_len: int, d_model: int = 64, n_head: int = 4, n_layer: int = 2,
                 d_ff: int = 128, dropout: float = 0.0):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_head, d_ff, dropout) for _ in range(n_layer))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # tokens: (B, T) int -> logits (B, T, vocab)
        x = self.tok(tokens) + self.pos(torch.arange(tokens.size(1), device=tokens.device))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


class _Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_head, dropout=dropout)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ff(self.norm2(x))
