"""Scaled dot-product self-attention, written out (Vaswani et al. 2017, §3.2).

Every position of a sequence asks a question (a *query*), every position offers a
*key* to be matched against and a *value* to hand over. Position ``i`` takes the
softmax-weighted average of all values, the weights being how well its query matches
each key:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V

The division by √d keeps the dot products of two random d-dimensional vectors at unit
variance; without it, large d pushes the softmax into saturation where its gradient
vanishes. The softmax runs over the *keys* (the last axis of the score matrix): each
query distributes one unit of attention, not each key.

A boolean ``mask`` (True = may attend, the convention of
`torch.nn.functional.scaled_dot_product_attention`) removes pairs before the softmax:
`causal_mask` hides the future, `padding_mask` hides padded keys. A query row whose
keys are all masked has no distribution to take (the softmax of all ``-inf`` is NaN),
exactly as in SDPA; keep at least one key visible per row.

`SelfAttention` is one head; `MultiHeadSelfAttention` runs ``heads`` of them in
parallel on ``d_model / heads``-dimensional slices and mixes them with one output
projection. Both are plain reference code: `torch.nn.functional.scaled_dot_product_attention`
is the fast path, and the tests check these against it and against
`torch.nn.MultiheadAttention` (outputs and gradients).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def causal_mask(t: int, device=None) -> torch.Tensor:
    """(t, t) bool, True on and below the diagonal: query i may look at keys 0..i."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B, 1, t) bool, True where the key position is a real token (< its sequence's length)."""
    return (torch.arange(t, device=lengths.device)[None, :] < lengths[:, None])[:, None, :]


class SelfAttention(nn.Module):
    """One attention head: project to q, k, v; score; mask; softmax over keys; mix values."""

    def __init__(self, d_model: int, d_head: int | None = None, bias: bool = True):
        super().__init__()
        d_head = d_head or d_model
        self.q = nn.Linear(d_model, d_head, bias=bias)
        self.k = nn.Linear(d_model, d_head, bias=bias)
        self.v = nn.Linear(d_model, d_head, bias=bias)
        self.out = nn.Linear(d_head, d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, d_model); mask: bool broadcastable to (B, T, T), True = may attend
        q, k, v = self.q(x), self.k(x), self.v(x)  # (B, T, d)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, T_query, T_key)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)  # each query's weights over the keys sum to 1
        return self.out(weights @ v)  # (B, T, d) -> (B, T, d_model)


class MultiHeadSelfAttention(nn.Module):
    """``heads`` heads in parallel, one fused q/k/v projection, one output projection.

    Parameter layout matches `torch.nn.MultiheadAttention` (``qkv`` = ``in_proj``,
    ``out`` = ``out_proj``), so weights copy across. ``head_hook`` (e.g. `DropHead`)
    sees the per-head outputs (B, H, T, d_head) before they are merged.
    """

    def __init__(self, d_model: int, heads: int, bias: bool = True, attn_dropout: float = 0.0,
                 head_hook: nn.Module | None = None):
        super().__init__()
        assert d_model % heads == 0, "d_model must split evenly into heads"
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.head_hook = head_hook if head_hook is not None else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, C); mask: bool broadcastable to (B, H, T, T), True = may attend
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=-1)  # 3 x (B, T, C)
        # (B, T, C) -> (B, H, T, C/H): each head works on its own slice of the channels
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(q.size(-1))  # (B, H, T, T)
        if mask is not None:
            if mask.dim() == 3:  # (B, T, T) or (B, 1, T): the same mask for every head
                mask = mask.unsqueeze(1)
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = self.attn_dropout(scores.softmax(dim=-1))  # over keys j
        heads = torch.einsum("bhij,bhjd->bhid", weights, v)  # (B, H, T, C/H)
        heads = self.head_hook(heads)  # DropHead and friends act on whole heads here
        return self.out(heads.transpose(1, 2).reshape(b, t, c))  # merge heads: (B, T, C)


class TinyTransformer(nn.Module):
    """Token + position embeddings, ``layers`` pre-LN blocks of our attention, a per-position head.

    Used by the experiment: sequence-to-sequence tasks of equal length (reversal),
    where each output position must fetch the token from another position, which
    only attention can do.
    """

    def __init__(self, vocab: int, max_len: int, d_model: int = 64, heads: int = 4, layers: int = 2,
                 d_ff: int = 128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, heads, d_ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # tokens: (B, T) int -> logits (B, T, vocab)
        x = self.tok(tokens) + self.pos(torch.arange(tokens.size(1), device=tokens.device))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


class _Block(nn.Module):
    def __init__(self, d_model: int, heads: int, d_ff: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, heads)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ff(self.norm2(x))
