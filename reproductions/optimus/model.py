"""Optimus, small: a BERT-style encoder and a GPT-style decoder tied by a latent z.

The paper (Li et al. 2020) joins a pre-trained BERT (encoder, posterior q(z|x)) and a
pre-trained GPT-2 (decoder, p(x|z)) through a Gaussian latent z. The decoder sees z in
two ways, both switchable here:

* **memory** — one projection maps z to L vectors of width d_model, h = W z ∈ R^{L×d}
  (L = decoder layers). Layer l's h_l is an extra key/value slot in front of the sequence,
  so each layer attends to T + 1 positions instead of T. ``memory_kv="raw"`` (default, as
  the paper and its code do) uses h_l itself as that slot's key AND value, split into
  heads like any key; ``memory_kv="projected"`` (our earlier form) sends h_l through the
  layer's own key/value projections instead, as if it were one more token.
* **embedding** — z is projected to d_model and added to every token embedding.

With both switches off the decoder *is* a plain causal transformer LM; this is how the
LM baseline is built, and a test checks it matches a VAE decoder bit for bit given
the same weights. No pre-trained weights are reachable offline, so both halves are
small transformers trained from scratch (our own blocks, pre-LayerNorm like GPT-2).
The attention arithmetic itself is the project's one core,
`reproductions.self_attention.attention`; SDPA is the fast path and a test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from reproductions.self_attention.attention import attend

MEMORY_KV = ("raw", "projected")


@dataclass(frozen=True)
class OptimusConfig:
    """Architecture only (the experiment's config holds training and data settings)."""

    vocab_size: int
    max_len: int = 128  # positions, <bos> included
    d_model: int = 128
    n_head: int = 4
    n_layer: int = 2  # decoder layers (the paper's L: one memory vector per decoder layer)
    n_enc_layer: int = 2
    d_ff: int = 512
    d_latent: int = 32
    dropout: float = 0.1
    inject_memory: bool = True
    inject_embedding: bool = True
    memory_kv: str = "raw"  # "raw": h_l is the key and value; "projected": through the layer's K/V
    pad_id: int = 0

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.memory_kv not in MEMORY_KV:
            raise ValueError(f"memory_kv must be one of {MEMORY_KV}, got {self.memory_kv!r}")


def init_weights(module: nn.Module) -> None:
    """GPT-2 style: N(0, 0.02) weights, zero biases, so tied-embedding logits start near uniform."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class MemoryAttention(nn.Module):
    """Multi-head self-attention with an optional causal mask and an optional memory slot.

    Two paths compute the same thing: `F.scaled_dot_product_attention` (fast) and the
    project's explicit core `attend` (reference, and the only one that returns the weights).
    """

    def __init__(self, d_model: int, n_head: int, causal: bool, dropout: float, memory_kv: str = "raw"):
        super().__init__()
        self.n_head, self.causal, self.dropout, self.memory_kv = n_head, causal, dropout, memory_kv
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b s (h e) -> b h s e", h=self.n_head)

    def _keys_values(self, x: torch.Tensor, memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, H, S, d/H), the memory slot (if any) at position 0."""
        if memory is None:
            k, v = self.kv(x).chunk(2, dim=-1)
        elif self.memory_kv == "projected":  # memory treated as one more token of the layer's input
            k, v = self.kv(torch.cat([memory.unsqueeze(1), x], dim=1)).chunk(2, dim=-1)
        else:  # raw: the memory vector is itself the key and the value of its slot
            k_tok, v_tok = self.kv(x).chunk(2, dim=-1)
            slot = memory.unsqueeze(1).to(k_tok.dtype)
            k, v = torch.cat([slot, k_tok], dim=1), torch.cat([slot, v_tok], dim=1)
        return self._heads(k), self._heads(v)

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor | None = None, memory: torch.Tensor | None = None,
                reference: bool = False, return_attn: bool = False):
        # x: (B, T, d); key_pad: (B, T) True where padding; memory: (B, d) or None
        B, T, _ = x.shape
        q = self._heads(self.q(x))  # (B, H, T, dh)
        k, v = self._keys_values(x, memory)  # (B, H, S, dh), S = T (+1)
        allowed = self._mask(B, T, k.shape[2], key_pad, x.device)  # (B, 1, T, S) bool or None
        p = self.dropout if self.training else 0.0
        att = None
        if reference or return_attn:
            if allowed is None and self.causal:
                allowed = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y, att = attend(q, k, v, allowed, dropout_p=p, training=self.training, return_weights=True)
        elif allowed is None and self.causal:  # the common LM case: let the kernel build the mask
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        y = self.proj(rearrange(y, "b h t e -> b t (h e)"))
        return (y, att) if return_attn else y

    def _mask(self, B, T, S, key_pad, device):
        """Which (query, key) pairs may attend; None means 'causal only' (or nothing) for the kernel."""
        n_mem = S - T
        if n_mem == 0 and key_pad is None and self.causal:
            return None
        allowed = torch.ones(B, 1, T, S, dtype=torch.bool, device=device)
        if self.causal:  # query i sees memory and tokens 0..i
            tok = torch.ones(T, T, dtype=torch.bool, device=device).tril()
            allowed[..., n_mem:] = tok
        if key_pad is not None:
            allowed[..., n_mem:] &= ~key_pad[:, None, None, :]
        return allowed


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN x), then x + MLP(LN x)."""

    def __init__(self, cfg: OptimusConfig, causal: bool):
        super().__init__()
        d = cfg.d_model
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = MemoryAttention(d, cfg.n_head, causal, cfg.dropout, cfg.memory_kv)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, key_pad=None, memory=None, reference=False, return_attn=False):
        out = self.attn(self.ln1(x), key_pad, memory, reference, return_attn)
        a, att = out if return_attn else (out, None)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.ln2(x)))
        return (x, att) if return_attn else x


class Embed(nn.Module):
    def __init__(self, cfg: OptimusConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, ids: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        # ids: (B, T) -> (B, T, d); extra: (B, d) added at every position
        T = ids.shape[1]
        if T > self.pos.num_embeddings:
            raise ValueError(f"sequence of {T} positions exceeds max_len={self.pos.num_embeddings}")
        h = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))
        if extra is not None:
            h = h + extra.unsqueeze(1)
        return self.drop(h)


class Encoder(nn.Module):
    """BERT-style: bidirectional blocks, pooled at position 0 (<bos>), -> (mu, logvar) of q(z|x)."""

    def __init__(self, cfg: OptimusConfig):
        super().__init__()
        self.embed = Embed(cfg)
        self.blocks = nn.ModuleList(Block(cfg, causal=False) for _ in range(cfg.n_enc_layer))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.to_posterior = nn.Linear(cfg.d_model, 2 * cfg.d_latent)
        self.pad_id = cfg.pad_id
        self.apply(init_weights)

    def forward(self, ids: torch.Tensor, reference: bool = False):
        # ids: (B, T) = <bos> w_1 .. w_n <eos> <pad>...
        key_pad = ids.eq(self.pad_id)
        h = self.embed(ids)
        for blk in self.blocks:
            h = blk(h, key_pad=key_pad, reference=reference)
        mu, logvar = self.to_posterior(self.ln(h[:, 0])).chunk(2, dim=-1)  # (B, D) each
        return mu, logvar


class Decoder(nn.Module):
    """GPT-style causal LM over <bos> w_1 .. w_n predicting w_1 .. w_n <eos>, optionally given z."""

    def __init__(self, cfg: OptimusConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.blocks = nn.ModuleList(Block(cfg, causal=True) for _ in range(cfg.n_layer))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.tok.weight  # tied input/output embeddings, as in GPT-2
        # Latent projections exist only when used, so an LM has exactly the LM's parameters.
        if cfg.inject_memory:
            # the paper's single projection z -> L x H: one memory vector per decoder layer
            self.z_to_memory = nn.Linear(cfg.d_latent, cfg.n_layer * cfg.d_model, bias=False)
        if cfg.inject_embedding:
            self.z_to_embedding = nn.Linear(cfg.d_latent, cfg.d_model, bias=False)
        self.apply(init_weights)

    def forward(self, ids: torch.Tensor, z: torch.Tensor | None = None, reference: bool = False,
                return_attn: bool = False):
        # ids: (B, T); z: (B, D) or None -> logits (B, T, V) [, per-layer attention (B, H, T, S)]
        cfg = self.cfg
        use_z = z is not None
        extra = self.z_to_embedding(z) if use_z and cfg.inject_embedding else None
        memories = [None] * cfg.n_layer
        if use_z and cfg.inject_memory:
            memories = list(rearrange(self.z_to_memory(z), "b (l d) -> l b d", l=cfg.n_layer))  # L x (B, d)
        h = self.embed(ids, extra)
        atts = []
        for blk, mem in zip(self.blocks, memories):
            if return_attn:
                h, att = blk(h, memory=mem, reference=reference, return_attn=True)
                atts.append(att)
            else:
                h = blk(h, memory=mem, reference=reference)
        logits = self.head(self.ln(h))
        return (logits, atts) if return_attn else logits


def sentence_nll(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Summed negative log-likelihood per sentence, padding excluded: (B, T, V), (B, T) -> (B,)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=pad_id)
    return nll.sum(dim=1)


class OptimusVAE(nn.Module):
    """q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, I), p(x|z) the injected decoder."""

    def __init__(self, cfg: OptimusConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @staticmethod
    def sample_z(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def forward(self, enc_ids: torch.Tensor, dec_in: torch.Tensor, targets: torch.Tensor,
                eps: torch.Tensor | None = None):
        """One-sample ELBO terms: rec (B,) summed NLL, kl (B, D) per dimension, and mu, logvar.

        ``eps`` (B, D) is the reparameterisation noise when the caller draws it (so a data-parallel
        run can give each sentence the same noise as a single-process run); fresh N(0, I) otherwise.
        """
        mu, logvar = self.encoder(enc_ids)
        mu, logvar = mu.float(), logvar.float()  # KL and sampling in fp32 even under bf16 autocast
        z = self.sample_z(mu, logvar) if eps is None else mu + eps.to(mu) * (0.5 * logvar).exp()
        rec = sentence_nll(self.decoder(dec_in, z), targets, self.cfg.pad_id)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)  # KL(q(z_i|x) || N(0,1)) per dim
        return {"rec": rec, "kl": kl, "mu": mu, "logvar": logvar, "z": z}


class LanguageModel(nn.Module):
    """The baseline: the same decoder with both injections off and no encoder."""

    def __init__(self, cfg: OptimusConfig):
        super().__init__()
        self.cfg = replace(cfg, inject_memory=False, inject_embedding=False)
        self.decoder = Decoder(self.cfg)

    def forward(self, dec_in: torch.Tensor, targets: torch.Tensor):
        return {"rec": sentence_nll(self.decoder(dec_in), targets, self.cfg.pad_id)}
