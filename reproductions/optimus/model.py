"""Optimus, small: a BERT-style encoder and a GPT-style decoder tied by a latent z.

The paper (Li et al. 2020) joins a pre-trained BERT (encoder, posterior q(z|x)) and a
pre-trained GPT-2 (decoder, p(x|z)) through a Gaussian latent z. The decoder sees z in
two ways, both switchable here:

* **memory** — z is projected to one extra vector per decoder layer, h_l = W_l z. Every
  position of layer l may attend to it as an extra key/value slot in front of the
  sequence (keys and values come from the layer's own projections), so each layer
  attends to exactly T + 1 positions instead of T.
* **embedding** — z is projected to d_model and added to every token embedding.

With both switches off the decoder *is* a plain causal transformer LM; this is how the
LM baseline is built, and a test checks it matches a VAE decoder bit for bit given
the same weights. No pre-trained weights are reachable offline, so both halves are
small transformers trained from scratch (our own blocks, pre-LayerNorm like GPT-2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class OptimusConfig:
    vocab_size: int
    max_len: int = 128  # positions, <bos> included
    d_model: int = 128
    n_head: int = 4
    n_enc_layer: int = 2
    n_dec_layer: int = 2
    ff_mult: int = 4
    d_latent: int = 32
    dropout: float = 0.1
    inject_memory: bool = True
    inject_embedding: bool = True
    pad_id: int = 0


def init_weights(module: nn.Module) -> None:
    """GPT-2 style: N(0, 0.02) weights, zero biases, so tied-embedding logits start near uniform."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class SelfAttention(nn.Module):
    """Multi-head self-attention with an optional causal mask and an optional memory slot.

    Two paths compute the same thing: `F.scaled_dot_product_attention` (fast) and an
    explicit softmax (reference, and the only one that can return the weights).
    """

    def __init__(self, d_model: int, n_head: int, causal: bool, dropout: float):
        super().__init__()
        assert d_model % n_head == 0
        self.n_head, self.causal, self.dropout = n_head, causal, dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, S, d) -> (B, H, S, d/H)
        B, S, d = x.shape
        return x.view(B, S, self.n_head, d // self.n_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor | None = None, memory: torch.Tensor | None = None,
                reference: bool = False, return_attn: bool = False):
        # x: (B, T, d); key_pad: (B, T) True where padding; memory: (B, d) or None
        B, T, d = x.shape
        src = x if memory is None else torch.cat([memory.unsqueeze(1), x], dim=1)  # (B, S, d), S = T (+1)
        S = src.shape[1]
        q = self._heads(self.q(x))  # (B, H, T, dh)
        k, v = (self._heads(t) for t in self.kv(src).chunk(2, dim=-1))  # (B, H, S, dh)

        allowed = self._mask(B, T, S, key_pad, x.device)  # (B, 1, T, S) bool or None
        p = self.dropout if self.training else 0.0
        if reference or return_attn:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, T, S)
            if allowed is not None:
                att = att.masked_fill(~allowed, float("-inf"))
            att = att.softmax(dim=-1)
            y = F.dropout(att, p, self.training) @ v
        else:
            att = None
            if allowed is None and self.causal:  # the common LM case: let the kernel build the mask
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        y = self.proj(y.transpose(1, 2).reshape(B, T, d))
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
        self.attn = SelfAttention(d, cfg.n_head, causal, cfg.dropout)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.ff_mult * d), nn.GELU(), nn.Linear(cfg.ff_mult * d, d))
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
        self.blocks = nn.ModuleList(Block(cfg, causal=True) for _ in range(cfg.n_dec_layer))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.tok.weight  # tied input/output embeddings, as in GPT-2
        # Latent projections exist only when used, so an LM has exactly the LM's parameters.
        if cfg.inject_memory:
            self.z_to_memory = nn.Linear(cfg.d_latent, cfg.n_dec_layer * cfg.d_model, bias=False)
        if cfg.inject_embedding:
            self.z_to_embedding = nn.Linear(cfg.d_latent, cfg.d_model, bias=False)
        self.apply(init_weights)

    def forward(self, ids: torch.Tensor, z: torch.Tensor | None = None, reference: bool = False,
                return_attn: bool = False):
        # ids: (B, T); z: (B, D) or None -> logits (B, T, V) [, per-layer attention (B, H, T, S)]
        cfg = self.cfg
        use_z = z is not None
        extra = self.z_to_embedding(z) if use_z and cfg.inject_embedding else None
        memories = [None] * cfg.n_dec_layer
        if use_z and cfg.inject_memory:
            memories = list(self.z_to_memory(z).chunk(cfg.n_dec_layer, dim=-1))  # n_layer x (B, d)
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

    def forward(self, enc_ids: torch.Tensor, dec_in: torch.Tensor, targets: torch.Tensor):
        """One-sample ELBO terms: rec (B,) summed NLL, kl (B, D) per dimension, and mu, logvar."""
        mu, logvar = self.encoder(enc_ids)
        mu, logvar = mu.float(), logvar.float()  # KL and sampling in fp32 even under bf16 autocast
        z = self.sample_z(mu, logvar)
        rec = sentence_nll(self.decoder(dec_in, z), targets, self.cfg.pad_id)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)  # KL(q(z_i|x) || N(0,1)) per dim
        return {"rec": rec, "kl": kl, "mu": mu, "logvar": logvar, "z": z}


class LanguageModel(nn.Module):
    """The baseline: the same decoder with both injections off and no encoder."""

    def __init__(self, cfg: OptimusConfig):
        super().__init__()
        from dataclasses import replace
        self.cfg = replace(cfg, inject_memory=False, inject_embedding=False)
        self.decoder = Decoder(self.cfg)

    def forward(self, dec_in: torch.Tensor, targets: torch.Tensor):
        return {"rec": sentence_nll(self.decoder(dec_in), targets, self.cfg.pad_id)}
