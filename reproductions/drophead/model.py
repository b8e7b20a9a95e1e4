"""DropHead: dropout for whole attention heads (Zhou et al. 2020, arXiv 2004.13342).

Multi-head attention tends to be *dominated* by a few heads early in training: the
heads that happen to become useful first get the gradient, the rest stay idle and
can be pruned afterwards with little loss. Standard dropout acts on single units and
leaves that imbalance alone. DropHead instead removes entire heads, per example,
during training: every head must be able to carry the prediction without the others,
so none can dominate, and the model is regularised as an ensemble of sub-networks
with fewer heads.

Where it acts: on the per-head attention outputs, shape (batch, heads, seq, head_dim),
after softmax(QKᵀ/√d)V and before the heads are concatenated and projected. Any
multi-head attention exposing that tensor can use it; ours passes it through
``head_hook`` (`reproductions.self_attention.model.MultiHeadSelfAttention`), and
`DropHeadEncoderLayer` below is a drop-in for `torch.nn.TransformerEncoderLayer`
built on it.

**Rescaling rule.** Each head is kept independently with probability 1 - p. If ``K``
of the ``H`` heads of an example survive, the survivors are multiplied by ``H / K``.
Why this and not dropout's ``1 / (1 - p)``:

* The output projection sums the heads; ``H / K`` makes the *number* of heads
  entering that sum look like H for every example, not only on average, so the
  scale of the attention output does not fluctuate with how many heads the coin
  flips happened to keep (with 4 heads and p = 0.3, K ranges from 1 to 4).
* It is still unbiased: heads are exchangeable, so given K ≥ 1 a head is kept with
  probability K/H and E[keep_h · H/K] = E[K/H · H/K] = 1.
* An example never loses every head: if all H coins say "drop", one head chosen
  uniformly at random is kept (K = 1). The choice is symmetric across heads, so the
  expectation stays exact, and the output never collapses to the bias of the
  projection. The price: the expected fraction of dropped heads is p - pᴴ/H rather
  than p (`expected_drop_fraction`), a negligible difference unless H is tiny.

In eval mode, and at rate 0, DropHead is the identity.

**Scheduled drop rate.** The paper (§3.2, a "V-shaped" scheduler) changes the rate during
training: high at the start, in the early stage where a few heads would otherwise take
over; falling linearly to 0 by the end of that stage; then rising linearly to ``p_end`` by
the end of training, as a regulariser against over-fitting. Where the turn falls could not
be checked against the paper's text (see the card's notes); the experiment places it at the
end of the learning-rate warm-up. `DropHeadSchedule` with ``kind="v"`` is that shape,
with the turning point given in steps (``turn_step``; the experiment passes its
learning-rate warm-up length). ``kind="inverse_v"`` is the mirror image (0 → ``p_start``
at the turn → 0), kept for ablations; ``kind="constant"`` is plain DropHead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from reproductions.self_attention.model import MultiHeadSelfAttention


def drop_head(heads: torch.Tensor, p: float, training: bool = True,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop whole heads of ``heads`` (B, H, T, D) with probability ``p`` per (example, head).

    Kept heads are scaled by H / (number kept in that example); at least one head is kept.
    """
    if not training or p <= 0.0:
        return heads
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop rate must be in [0, 1], got {p}")
    b, h = heads.shape[:2]
    u = torch.rand(b, h, device=heads.device, generator=generator)
    keep = u >= p  # (B, H): one coin per example and head, shared by all positions and channels
    # Rows with no survivor keep the head whose uniform draw was largest: a uniformly random head.
    rescue = F.one_hot(u.argmax(dim=1), h).bool() & ~keep.any(dim=1, keepdim=True)
    keep = keep | rescue
    scale = h / keep.sum(dim=1, keepdim=True)  # (B, 1)
    return heads * (keep * scale).to(heads.dtype)[:, :, None, None]


def expected_drop_fraction(p: float, heads: int) -> float:
    """E[fraction of heads dropped] under `drop_head`: p, minus the rescued head when all would go."""
    return p - p ** heads / heads


class DropHead(nn.Module):
    """`drop_head` as a module with a settable rate ``p`` (a schedule updates it every step)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, heads: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> same
        return drop_head(heads, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def set_drophead_rate(model: nn.Module, p: float) -> None:
    """Set the rate of every `DropHead` inside ``model`` (called by the training loop per step)."""
    for m in model.modules():
        if isinstance(m, DropHead):
            m.p = p


@dataclass(frozen=True)
class DropHeadSchedule:
    """Drop rate as a function of the training step.

    kind "constant": ``p_start`` throughout.
    kind "v": ``p_start`` → 0 linearly over steps 0 … ``turn_step``, then 0 → ``p_end``
    linearly until ``total_steps`` (the experiment turns at the end of the lr warm-up).
    kind "inverse_v": 0 → ``p_start`` until the turn, then back down to 0 (``p_end`` unused).
    Steps past ``total_steps`` hold the last value.
    """

    kind: str
    total_steps: int
    p_start: float
    p_end: float | None = None  # defaults to p_start
    turn_step: int | None = None  # required for "v" and "inverse_v"

    def __post_init__(self):
        if self.kind not in ("constant", "v", "inverse_v"):
            raise ValueError(f"unknown schedule kind {self.kind!r} (constant, v, inverse_v)")
        if self.total_steps < 1:
            raise ValueError("need total_steps >= 1")
        if self.kind != "constant" and (self.turn_step is None or not 0 < self.turn_step < self.total_steps):
            raise ValueError(f"a {self.kind} schedule needs 0 < turn_step < total_steps "
                             f"(got {self.turn_step} of {self.total_steps})")

    def rate(self, step: int) -> float:
        if self.kind == "constant":
            return self.p_start
        p_end = self.p_start if self.p_end is None else self.p_end
        step = min(max(step, 0), self.total_steps)
        turn = self.turn_step
        if step <= turn:
            down = 1.0 - step / turn  # 1 at the start, 0 at the turn
            return self.p_start * down if self.kind == "v" else self.p_start * (1.0 - down)
        up = (step - turn) / (self.total_steps - turn)  # 0 at the turn, 1 at the end
        return p_end * up if self.kind == "v" else self.p_start * (1.0 - up)

    def mean_rate(self) -> float:
        """The rate averaged over the training steps 0 … total_steps - 1, as the loop applies it
        (the rate-matched constant arm drops at this rate throughout)."""
        return sum(self.rate(s) for s in range(self.total_steps)) / self.total_steps

    def peak_rate(self) -> float:
        return max(self.rate(s) for s in range(self.total_steps + 1))


class DropHeadEncoderLayer(nn.Module):
    """`torch.nn.TransformerEncoderLayer` (batch_first, ReLU) with DropHead on the attention heads.

    Same submodule names and computation, so with ``drophead=0`` and the weights of a
    torch layer copied in (``self_attn.qkv`` ← ``in_proj``, ``self_attn.out`` ←
    ``out_proj``) it computes the same function; a test checks that.
    """

    def __init__(self, d_model: int, n_head: int, d_ff: int = 2048, dropout: float = 0.1,
                 drophead: float = 0.0, norm_first: bool = False, layer_norm_eps: float = 1e-5):
        super().__init__()
        self.self_attn = MultiHeadSelfAttention(d_model, n_head, dropout=dropout, head_hook=DropHead(drophead))
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, C); src_key_padding_mask: (B, T) bool, True = padding (torch's convention)
        keep = None if src_key_padding_mask is None else ~src_key_padding_mask[:, None, :]  # (B, 1, T)
        if self.norm_first:
            x = x + self._sa(self.norm1(x), keep)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, keep))
        return self.norm2(x + self._ff(x))

    def _sa(self, x, keep):
        return self.dropout1(self.self_attn(x, keep))

    def _ff(self, x):
        return self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x)))))


class TextClassifier(nn.Module):
    """Embeddings + positions → ``n_layer`` DropHead encoder layers → mean over real tokens → logits.

    ``emb_dropout`` and ``dropout`` are the standard-dropout knobs (0 in the "none" arm);
    the DropHead rate is set per step with `set_drophead_rate`.
    """

    def __init__(self, vocab: int, max_len: int, classes: int = 2, d_model: int = 64, n_head: int = 4,
                 n_layer: int = 2, d_ff: int = 128, dropout: float = 0.0, emb_dropout: float = 0.0,
                 pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.tok = nn.Embedding(vocab, d_model, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len, d_model)
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.layers = nn.ModuleList(
            DropHeadEncoderLayer(d_model, n_head, d_ff, dropout=dropout, norm_first=True) for _ in range(n_layer))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # tokens: (B, T) int, padded with pad_id -> logits (B, classes)
        pad = tokens == self.pad_id  # (B, T)
        x = self.emb_dropout(self.tok(tokens) + self.pos(torch.arange(tokens.size(1), device=tokens.device)))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        x = self.norm(x)
        real = (~pad).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        pooled = (x * real).sum(1) / real.sum(1).clamp(min=1.0)  # mean over real tokens: (B, C)
        return self.head(pooled)


__all__ = ["DropHead", "DropHeadEncoderLayer", "DropHeadSchedule", "TextClassifier", "drop_head",
           "expected_drop_fraction", "set_drophead_rate"]
