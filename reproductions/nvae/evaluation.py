"""Evaluating one trained NVAE arm (test NLL by the IW bound, ELBO, KL per group, active units)
and drawing the main arm's samples and reconstructions.

BN statistics are re-estimated from training images before every evaluation, as NVAE does.
Evaluation is sharded over ranks and the sums reduced. The ELBO pass runs in fp32; the IW
bound's top-down passes may run under bf16 autocast (``iw_bf16``: about 2.2x faster on a CPU
with AVX512-BF16) while the densities and the log-mean-exp stay in fp32.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from reproductions.api import RunContext
from reproductions.nvae.batches import Data
from reproductions.nvae.config import ACTIVE_UNIT_THRESHOLD, ExperimentConfig
from reproductions.nvae.distributions import bernoulli_log_prob
from reproductions.nvae.likelihood import importance_weighted_log_likelihood
from reproductions.nvae.model import NVAE, readjust_batchnorm


def readjust_on_train_images(model: NVAE, data: Data, cfg: ExperimentConfig, ctx: RunContext, seed: int) -> None:
    """Re-estimate BN statistics from ``bn_readjust_images`` training images (the same on every rank)."""
    if not cfg.bn_readjust_images:
        model.eval()
        return
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(seed + 17)
    n = min(cfg.bn_readjust_images, len(data.train))
    idx = torch.randperm(len(data.train), generator=gen)[:n]
    pixels = data.train[idx].float()
    x = (torch.rand(pixels.shape, generator=gen) * 255.0 < pixels).float() if data.dynamic else pixels
    batches = x.reshape(-1, 1, 28, 28).split(min(cfg.batch_size * 4, cfg.eval_batch_size))

    def passes():
        for xb in batches:
            yield lambda xb=xb: model(xb.to(ctx.device).contiguous(memory_format=fmt))

    readjust_batchnorm(model, passes())


def iw_autocast(cfg: ExperimentConfig, device: torch.device):
    """bf16 autocast for the IW bound's passes when ``iw_bf16`` is on, else nothing."""
    if not cfg.iw_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@torch.no_grad()
def evaluate(model: NVAE, data: Data, cfg: ExperimentConfig, ctx: RunContext, k: int, iw_images: int,
             seed: int) -> dict:
    """ELBO, KL per group and active units on the first ``test_images``; the IW NLL with k samples on
    the first ``iw_images``. Each rank takes its shard of the images; sums are reduced over ranks.
    The ELBO pass runs in fp32; the IW bound's passes under bf16 autocast only with ``iw_bf16`` (the
    densities and the log-mean-exp of large numbers stay fp32)."""
    t0 = time.perf_counter()
    readjust_on_train_images(model, data, cfg, ctx, seed)
    dev = ctx.device
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    n_eval = min(cfg.test_images, len(data.test))
    x_eval = data.test[:n_eval][list(ctx.shard(n_eval))]
    L = model.num_groups
    sums = torch.zeros(3 + L, dtype=torch.float64)  # elbo, recon, kl, kl per group
    mean_sum = mean_sq = None
    for xb in x_eval.split(cfg.eval_batch_size):
        xb = xb.to(dev).contiguous(memory_format=fmt)
        out = model(xb)
        recon = bernoulli_log_prob(out.logits.float(), xb).double().cpu()
        kl = out.kl_per_group().double().cpu()
        sums += torch.cat([(recon - kl.sum(1)).sum(0, keepdim=True), recon.sum(0, keepdim=True),
                           kl.sum().reshape(1), kl.sum(0)])
        means = torch.cat([g.posterior_mean.flatten(1) for g in out.groups], 1).double().cpu()  # (b, dims)
        mean_sum = means.sum(0) if mean_sum is None else mean_sum + means.sum(0)
        mean_sq = (means ** 2).sum(0) if mean_sq is None else mean_sq + (means ** 2).sum(0)
    dims = [g.posterior_mean[0].numel() for g in model(data.test[:1].to(dev).contiguous(memory_format=fmt)).groups]
    if mean_sum is None:  # this rank's shard is empty
        mean_sum, mean_sq = torch.zeros(sum(dims), dtype=torch.float64), torch.zeros(sum(dims), dtype=torch.float64)
    sums, mean_sum, mean_sq = (ctx.sum_over_ranks(t) for t in (sums, mean_sum, mean_sq))
    var = (mean_sq - mean_sum ** 2 / n_eval) / max(1, n_eval - 1)  # Var_x of each posterior mean
    active = [int(v.gt(ACTIVE_UNIT_THRESHOLD).sum()) for v in var.split(dims)]

    n_iw = min(iw_images, len(data.test))
    x_iw = data.test[:n_iw][list(ctx.shard(n_iw))]

    ll_sum = torch.zeros(1, dtype=torch.float64)
    iw_start = time.perf_counter()
    iw_batch = max(1, min(len(x_iw), cfg.eval_batch_size // 4))
    for xb in x_iw.split(iw_batch):
        xb = xb.to(dev).contiguous(memory_format=fmt)
        feats = model.encode(xb)  # deterministic: computed once per image, not once per sample

        def log_weight(xs, feats=feats, b=len(xb)):  # xs: copy j of image i at row j*b + i
            copies = len(xs) // b
            return model.top_down([f.repeat(copies, 1, 1, 1) for f in feats], len(xs)).log_weight(xs)

        with iw_autocast(cfg, dev):
            ll = importance_weighted_log_likelihood(log_weight, xb, k, cfg.eval_batch_size)
        ll_sum += ll.double().sum().cpu()
    ll_sum = ctx.sum_over_ranks(ll_sum)
    done = time.perf_counter()
    model.train()
    per_group = (sums[3:] / n_eval).tolist()
    return {
        "nll_nats": round(-ll_sum.item() / n_iw, 3),
        "elbo_nats": round(-sums[0].item() / n_eval, 3),  # reported as a positive NLL bound
        "recon_nats": round(-sums[1].item() / n_eval, 3),
        "kl_nats": round(sums[2].item() / n_eval, 3),
        "kl_per_group": [round(v, 3) for v in per_group],
        "active_units": sum(active),
        "active_units_per_group": active,
        "latent_dims": sum(dims),
        "iw_samples": k,
        "iw_images": n_iw,
        "eval_images": n_eval,
        "iw_precision": "bf16 autocast (densities fp32)" if cfg.iw_bf16 else "fp32",
        "iw_seconds": round(done - iw_start, 1),
        "eval_seconds": round(done - t0, 1),
    }


# ---------------------------------------------------------------------- figures

def _tile(images: torch.Tensor, cols: int) -> np.ndarray:
    """(N, 1, 28, 28) in [0, 1] -> one grey image with a 2-pixel gap between cells."""
    n = images.shape[0]
    rows = -(-n // cols)
    canvas = np.ones((rows * 30 + 2, cols * 30 + 2), np.float32)
    for i, img in enumerate(images[:, 0].cpu().float().numpy()):
        r, c = divmod(i, cols)
        canvas[2 + r * 30: 2 + r * 30 + 28, 2 + c * 30: 2 + c * 30 + 28] = img
    return canvas


def save_figures(model: NVAE, data: Data, ctx: RunContext, cfg: ExperimentConfig) -> list[str]:
    """Reconstructions (BN statistics from training images), then samples (BN statistics
    re-estimated from the model's own samples, as NVAE does before sampling). Rank 0 only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    readjust_on_train_images(model, data, cfg, ctx, ctx.seed)
    with torch.no_grad():
        xb = data.test[:16].to(ctx.device).contiguous(memory_format=fmt)
        recon = torch.sigmoid(model(xb).logits.float())
        torch.manual_seed(ctx.seed)  # the same samples for the same seed
        readjust_batchnorm(model, (lambda: model.sample(100) for _ in range(5)))
        warm = model.sample(64, temperature=1.0)
        cold = model.sample(64, temperature=0.7)
    model.train()
    gap = np.ones((8 * 30 + 2, 10), np.float32)
    plt.imsave(ctx.out_dir / "samples.png", np.hstack([_tile(warm, 8), gap, _tile(cold, 8)]), cmap="gray",
               vmin=0, vmax=1)
    plt.imsave(ctx.out_dir / "reconstructions.png", _tile(torch.cat([xb.cpu(), recon.cpu()]), 16),
               cmap="gray", vmin=0, vmax=1)
    return ["samples.png", "reconstructions.png"]
