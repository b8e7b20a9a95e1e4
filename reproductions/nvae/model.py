"""NVAE: a deep hierarchical VAE with a bidirectional encoder (Vahdat & Kautz, 2020).

The latent variables come in groups ``z_1 .. z_L`` arranged over several spatial
scales (coarse first). The generative model is top-down and autoregressive over
groups:

    p(z, x) = p(z_1) * prod_l p(z_l | z_<l) * p(x | z)

A single top-down network carries a state ``h``: each group's prior is read off
``h``, a sample of the group is merged back into ``h``, and generative cells refine
it; between scales it is upsampled. The encoder is *bidirectional*: a bottom-up
network turns ``x`` into one feature map per group, and the posterior of group l is
read off that feature *plus the same top-down state h* the prior uses, so

    q(z | x) = q(z_1 | x) * prod_l q(z_l | z_<l, x)

shares the top-down path with the generative model (Fig. 2 of the paper). The
posterior is a residual correction of the prior (see `distributions`). The decoder
is Bernoulli over the 28x28 binary pixels.

Shapes for the defaults (MNIST padded to 32x32, ``channels=C``, two pre-downsamplings):

    x (B,1,28,28) -> pad (B,1,32,32) -> stem (B,C,32,32) -> pre (B,4C,8,8)
    bottom-up over latent scales fine->coarse: 8x8 groups, down, 4x4 groups
    top-down coarse->fine: h0 (1,8C,4,4) ... up ... (B,4C,8,8) -> post (B,C,32,32) -> logits (B,1,28,28)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from reproductions.nvae.cells import EncoderCell, GenerativeCell, Swish
from reproductions.nvae.distributions import Normal, bernoulli_log_prob


@dataclass
class NVAEConfig:
    channels: int = 16  # width at full resolution; doubles at every downsampling
    latent_channels: int = 8  # channels of each latent group z_l
    groups_per_scale: tuple[int, ...] = (2, 2)  # coarsest scale first; len = number of latent scales
    pre_downs: int = 2  # 32 -> 8 before the finest latent scale
    cells_per_group: int = 1  # residual cells between two groups (encoder and decoder each)
    expand: int = 3  # expansion of the generative cell's inverted bottleneck
    residual_normal: bool = True  # posterior relative to the prior (False: independent Gaussian)
    weight_norm: bool = True  # every conv as g * v / ||v|| per output channel (paper Sec. 3.2, Appendix)
    image_size: int = 28

    @property
    def padded_size(self) -> int:
        """Input side after zero-padding to a multiple of every downsampling."""
        m = 2 ** (self.pre_downs + len(self.groups_per_scale) - 1)
        return -(-self.image_size // m) * m

    def scale_channels(self, s: int) -> int:
        """Width at latent scale s (0 = coarsest)."""
        return self.channels * 2 ** (self.pre_downs + len(self.groups_per_scale) - 1 - s)

    def scale_size(self, s: int) -> int:
        return self.padded_size // 2 ** (self.pre_downs + len(self.groups_per_scale) - 1 - s)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GroupStats:
    """What one latent group contributes to the bound, per image (B,)."""

    kl: torch.Tensor  # analytic KL(q || p), summed over the group's dims
    log_q: torch.Tensor  # log q(z_l | z_<l, x) at the sampled z_l
    log_p: torch.Tensor  # log p(z_l | z_<l) at the sampled z_l
    posterior_mean: torch.Tensor  # (B, Z, r, r), for active-unit counting


@dataclass
class Output:
    logits: torch.Tensor  # (B, 1, 28, 28) Bernoulli logits of p(x | z)
    groups: list[GroupStats] = field(default_factory=list)

    def kl_per_group(self) -> torch.Tensor:  # (B, L)
        return torch.stack([g.kl for g in self.groups], dim=1)

    def log_weight(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x, z) - log q(z | x)`` at the sampled z: one importance weight per image (B,)."""
        log_px = bernoulli_log_prob(self.logits.float(), x.float())
        return log_px + sum(g.log_p - g.log_q for g in self.groups)


class NVAE(nn.Module):
    def __init__(self, cfg: NVAEConfig):
        super().__init__()
        self.cfg = cfg
        S, C, Z = len(cfg.groups_per_scale), cfg.channels, cfg.latent_channels
        self.pad = (cfg.padded_size - cfg.image_size) // 2

        # ---- bottom-up encoder: stem, pre-process downsamplings, then the latent scales fine->coarse
        self.stem = nn.Conv2d(1, C, 3, padding=1)
        self.pre = nn.Sequential(*[EncoderCell(C * 2 ** i, C * 2 ** (i + 1), downsample=True)
                                   for i in range(cfg.pre_downs)])
        self.enc_groups = nn.ModuleList()  # one stack of cells per group, fine -> coarse
        self.enc_downs = nn.ModuleDict()  # between latent scales
        for s in reversed(range(S)):
            c = cfg.scale_channels(s)
            for _ in range(cfg.groups_per_scale[s]):
                self.enc_groups.append(nn.Sequential(*[EncoderCell(c) for _ in range(cfg.cells_per_group)]))
            if s > 0:
                self.enc_downs[str(s)] = EncoderCell(c, 2 * c, downsample=True)
        self.enc_top = nn.Sequential(Swish(), nn.Conv2d(cfg.scale_channels(0), cfg.scale_channels(0), 1), Swish())

        # ---- top-down path, shared by the generative model and the posterior
        self.h0 = nn.Parameter(torch.randn(1, cfg.scale_channels(0), cfg.scale_size(0), cfg.scale_size(0)))
        self.dec_cells = nn.ModuleList()  # cells before each group (empty for the very first)
        self.prior_heads = nn.ModuleList()  # h -> prior params (Identity for group 0, whose prior is N(0, I))
        self.post_mix = nn.ModuleList()  # h -> added to the encoder feature
        self.post_heads = nn.ModuleList()  # encoder feature + h -> posterior params
        self.merge = nn.ModuleList()  # [h, z] -> h
        self.dec_ups = nn.ModuleDict()
        self.group_scale: list[int] = []
        first = True
        for s in range(S):
            c = cfg.scale_channels(s)
            for _ in range(cfg.groups_per_scale[s]):
                self.group_scale.append(s)
                n_cells = 0 if first else cfg.cells_per_group
                self.dec_cells.append(nn.Sequential(*[GenerativeCell(c, expand=cfg.expand) for _ in range(n_cells)]))
                # the first group's prior is N(0, I): no head (DDP refuses parameters without gradients)
                self.prior_heads.append(nn.Identity() if first else
                                        nn.Sequential(Swish(), nn.Conv2d(c, 2 * Z, 3, padding=1)))
                self.post_mix.append(nn.Conv2d(c, c, 1))
                self.post_heads.append(nn.Sequential(Swish(), nn.Conv2d(c, 2 * Z, 3, padding=1)))
                self.merge.append(nn.Conv2d(c + Z, c, 1))
                first = False
            if s < S - 1:
                self.dec_ups[str(s)] = GenerativeCell(c, c // 2, expand=cfg.expand, upsample=True)
        c = cfg.scale_channels(S - 1)
        self.post = nn.Sequential(*[GenerativeCell(c // 2 ** i, c // 2 ** (i + 1), expand=cfg.expand, upsample=True)
                                    for i in range(cfg.pre_downs)])
        self.to_logits = nn.Sequential(Swish(), nn.Conv2d(C, 1, 3, padding=1))
        if cfg.weight_norm:
            apply_weight_norm(self)

    # ------------------------------------------------------------------ pieces
    @property
    def num_groups(self) -> int:
        return len(self.group_scale)

    def group_sizes(self) -> torch.Tensor:
        """Latent dims of each group (L,), coarse first."""
        return torch.tensor([float(self.cfg.latent_channels * self.cfg.scale_size(s) ** 2)
                             for s in self.group_scale])

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Bottom-up pass: one feature map per group, in top-down order (coarse first)."""
        h = F.pad(2 * x - 1, [self.pad] * 4)  # (B,1,28,28) in {0,1} -> (B,1,32,32) in [-1,1]
        h = self.pre(self.stem(h))  # (B, 4C, 8, 8)
        feats, g = [], 0
        for s in reversed(range(len(self.cfg.groups_per_scale))):
            for _ in range(self.cfg.groups_per_scale[s]):
                h = self.enc_groups[g](h)
                feats.append(h)
                g += 1
            if s > 0:
                h = self.enc_downs[str(s)](h)
        feats[-1] = self.enc_top(feats[-1])
        return feats[::-1]

    def top_down(self, feats: list[torch.Tensor] | None, batch: int, temperature: float = 1.0) -> Output:
        """Walk the groups coarse->fine. With ``feats`` sample each z from q, else from p (ancestral)."""
        h = self.h0.expand(batch, -1, -1, -1)
        out = Output(logits=None)
        for l, s in enumerate(self.group_scale):
            h = self.dec_cells[l](h)
            if l == 0:
                z_shape = (h.shape[0], self.cfg.latent_channels, h.shape[2], h.shape[3])
                prior = Normal.standard(h.new_zeros(z_shape, dtype=torch.float32))  # p(z_1) = N(0, I)
            else:
                prior = Normal.from_params(self.prior_heads[l](h).float())  # fp32 densities under autocast
            if feats is None:
                z = prior.rsample(temperature)
            else:
                params = self.post_heads[l](feats[l] + self.post_mix[l](h)).float()  # (B, 2Z, r, r)
                q = prior.residual(params) if self.cfg.residual_normal else Normal.from_params(params)
                z = q.rsample()
                out.groups.append(GroupStats(
                    kl=q.kl(prior).flatten(1).sum(1),
                    log_q=q.log_prob(z).flatten(1).sum(1),
                    log_p=prior.log_prob(z).flatten(1).sum(1),
                    posterior_mean=q.mu.detach()))
            h = self.merge[l](torch.cat([h, z.to(h.dtype)], dim=1))
            if l + 1 < self.num_groups and self.group_scale[l + 1] != s:
                h = self.dec_ups[str(s)](h)
        logits = self.to_logits(self.post(h))  # (B, 1, 32, 32)
        p = self.pad
        out.logits = logits[:, :, p:logits.shape[2] - p, p:logits.shape[3] - p]  # (B, 1, 28, 28)
        return out

    # ------------------------------------------------------------------ uses
    def forward(self, x: torch.Tensor) -> Output:
        """Encode ``x`` (B,1,28,28) and decode one posterior sample; the ELBO's pieces."""
        return self.top_down(self.encode(x), x.shape[0])

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """Ancestral sampling through the hierarchy; returns Bernoulli means (n,1,28,28)."""
        return torch.sigmoid(self.top_down(None, n, temperature).logits)


def apply_weight_norm(model: nn.Module) -> None:
    """Reparameterise every conv weight as ``g * v / ||v||`` (one g per output channel).

    Initialised so the function is unchanged; the spectral regulariser then sees the
    effective weight, as it reads ``module.weight`` at every step.
    """
    from torch.nn.utils.parametrizations import weight_norm

    for module in list(model.modules()):
        if isinstance(module, nn.Conv2d):
            weight_norm(module, name="weight", dim=0)


@torch.no_grad()
def readjust_batchnorm(model: nn.Module, passes: Iterable[Callable[[], object]]) -> None:
    """Re-estimate every BatchNorm's running mean/var as a plain average over ``passes``.

    The running statistics collected during training lag behind the weights (they mix
    many past models); NVAE recomputes them before sampling. Each pass is a forward
    call in train mode: ``lambda: model(x)`` over training images before evaluation,
    ``lambda: model.sample(n)`` before sampling. The model is left in eval mode; every
    rank must make the same passes so the statistics agree.
    """
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for forward in passes:
        forward()
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
