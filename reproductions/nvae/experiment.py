"""Train NVAE on binarized MNIST, measure test NLL (nats) and run the ablations.

One call of `run` trains the main arm ("nvae") and then each ablation arm under the
same preset, evaluates each on the same test images, and writes:

* ``metrics.jsonl``: training curves (loss, ELBO, KL weight beta, lr) per arm;
* ``samples.png``: ancestral samples at temperature 1.0 (left) and 0.7 (right);
* ``reconstructions.png``: test images (top row) and their reconstructions (bottom);
* metrics returned to the runner (``nll_nats`` is the headline number).

Training length is ``steps`` with an optional wall-clock cap ``train_seconds`` per
arm. The learning-rate and KL warm-up schedules follow *progress*, the larger of the
step fraction and the time fraction, so a run cut short by the clock still finishes
its warm-up and its cosine decay.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from reproductions.api import ConfigError, RunContext, config_from_dict
from reproductions.data import DatasetMissing, load_binarized_mnist, load_mnist, resolve_data_dir
from reproductions.nvae.likelihood import importance_weighted_log_likelihood
from reproductions.nvae.model import NVAE, NVAEConfig, count_params
from reproductions.nvae.distributions import bernoulli_log_prob
from reproductions.nvae.regularizers import SpectralRegularizer, balanced_kl, kl_warmup

ARMS = ("nvae", "plain_vae", "no_residual_normal", "no_spectral_reg")
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active when Var_x E_q[u] > 0.01


@dataclass
class ExperimentConfig:
    data: str = "binarized"  # "binarized": fixed binarization (50k train); "dynamic_t10k": grey t10k, resampled
    train_images: int = 0  # 0 = the whole train split
    test_images: int = 1000  # test images for ELBO / KL / active units
    iw_images: int = 200  # test images for the importance-weighted NLL
    iw_k: int = 100  # importance samples per image, main arm
    ablation_iw_k: int = 50
    eval_batch: int = 512  # max rows per forward pass during evaluation
    batch_size: int = 64
    steps: int = 1000
    train_seconds: float = 0.0  # wall-clock cap per arm, 0 = none
    ablation_train_seconds: float | None = None  # None = same as train_seconds
    lr: float = 1e-2
    lr_min: float = 1e-4
    lr_warmup: float = 0.02  # fraction of progress with a linear lr ramp
    kl_warmup: float = 0.3  # fraction of progress over which beta goes 0 -> 1
    kl_balance: bool = True
    spectral_coeff: float = 0.01  # lambda of the spectral regulariser
    grad_clip: float = 200.0
    channels_last: bool = False
    compile: bool = False
    log_every: int = 25
    checkpoint_every: int = 0  # 0 = only at the end of each arm
    halt_after: int = 0  # stop after this many steps of an arm, leaving a checkpoint (tests, preemption)
    ablations: tuple[str, ...] = ("plain_vae", "no_residual_normal", "no_spectral_reg")
    model: dict = field(default_factory=dict)  # NVAEConfig fields

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "ExperimentConfig":
        cfg = config_from_dict(cls, config, name="nvae")
        bad = [a for a in cfg.ablations if a not in ARMS[1:]]
        if bad:
            raise ConfigError(f"nvae: unknown ablations {bad}; choose from {list(ARMS[1:])}")
        if cfg.data not in ("binarized", "dynamic_t10k"):
            raise ConfigError(f"nvae: data must be 'binarized' or 'dynamic_t10k', got {cfg.data!r}")
        model_known = {f.name for f in fields(NVAEConfig)}
        if set(cfg.model) - model_known:
            raise ConfigError(f"nvae: unknown model keys {sorted(set(cfg.model) - model_known)}")
        return cfg


# ---------------------------------------------------------------------- data

@dataclass
class Data:
    train: torch.Tensor  # (N, 1, 28, 28) float: {0,1}, or grey in [0,1] when dynamic
    test: torch.Tensor  # (M, 1, 28, 28) float {0,1}
    dynamic: bool  # resample pixels from grey levels at every batch
    description: str


def load_data(cfg: ExperimentConfig, ctx: RunContext) -> Data:
    root = resolve_data_dir(ctx.data_dir)
    try:
        if cfg.data == "binarized":
            splits = load_binarized_mnist(root)
            train, test = splits["train"].images, splits["test"].images
            desc = ("binarized MNIST, fixed (Larochelle & Murray) binarization: train 50k split, test 10k split; "
                    "the paper uses dynamic binarization of MNIST (not possible here: grey train images absent)")
            dynamic = False
        else:
            tr, te = load_mnist(root)
            train = tr.images.astype(np.float32) / 255.0
            test = (np.random.default_rng(0).random(te.images.shape) < te.images / 255.0).astype(np.uint8)
            desc = (f"dynamically binarized MNIST from grey levels ({tr.description}); test part binarized "
                    "once with seed 0; the paper's dynamic binarization uses the 60k train set")
            dynamic = True
    except DatasetMissing:
        if ctx.preset != "smoke":
            raise
        train, test = _synthetic_digits(2048, 1), _synthetic_digits(256, 2)
        desc, dynamic = "synthetic (binarized MNIST missing): random binary bars, smoke only", False
    if cfg.train_images:
        train = train[: cfg.train_images]
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float().reshape(-1, 1, 28, 28)  # noqa: E731
    return Data(as_t(train), as_t(test[: max(cfg.test_images, cfg.iw_images)]), dynamic, desc)


def _synthetic_digits(n: int, seed: int) -> np.ndarray:
    """Binary images of one horizontal and one vertical bar at random places (smoke fallback)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for img, r, c in zip(x, rng.integers(4, 24, n), rng.integers(4, 24, n)):
        img[r - 1:r + 2, 4:24] = 1
        img[4:24, c - 1:c + 2] = 1
    return x


def sample_batch(data: Data, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(data.train), (batch_size,), generator=gen)
    x = data.train[idx]
    return torch.bernoulli(x, generator=gen) if data.dynamic else x


# ---------------------------------------------------------------------- arms

def arm_model_config(arm: str, base: NVAEConfig) -> NVAEConfig:
    """The model of an arm. The plain VAE keeps the backbone but has one latent group
    at the coarsest scale, with as many latent dims as the hierarchy and the width
    chosen so its parameter count is closest to the NVAE's."""
    if arm == "no_residual_normal":
        return replace(base, residual_normal=False)
    if arm != "plain_vae":
        return base
    S = len(base.groups_per_scale)
    dims = sum(base.latent_channels * base.scale_size(s) ** 2 * g for s, g in enumerate(base.groups_per_scale))
    top = base.scale_size(0) ** 2
    target = count_params(NVAE(base))
    best = None
    for channels in range(max(2, base.channels // 2), base.channels * 2 + 1):
        cand = replace(base, groups_per_scale=(1,), pre_downs=base.pre_downs + S - 1, channels=channels,
                       latent_channels=max(1, round(dims / top)), cells_per_group=base.cells_per_group * 2)
        gap = abs(count_params(NVAE(cand)) - target)
        if best is None or gap < best[0]:
            best = (gap, cand)
    return best[1]


def arm_spectral_coeff(arm: str, cfg: ExperimentConfig) -> float:
    return 0.0 if arm == "no_spectral_reg" else cfg.spectral_coeff


def schedule(progress: float, cfg: ExperimentConfig) -> tuple[float, float]:
    """(lr, beta) at a progress in [0, 1]: linear lr ramp then cosine decay; linear KL warm-up."""
    if progress < cfg.lr_warmup:
        lr = cfg.lr * max(progress / cfg.lr_warmup, 0.01)
    else:
        t = (progress - cfg.lr_warmup) / max(1e-8, 1 - cfg.lr_warmup)
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(t, 1.0)))
    beta = kl_warmup(int(progress * 1e6), int(cfg.kl_warmup * 1e6))
    return lr, beta


def loss_fn(model, x, beta: float, balance: bool, group_sizes, spectral, spectral_coeff: float):
    """The training objective per image (nats): -log p(x|z) + beta * balanced KL + lambda * sum of norms."""
    out = model(x)
    recon = bernoulli_log_prob(out.logits.float(), x)  # (B,)
    kl = out.kl_per_group().float()  # (B, L)
    kl_term = balanced_kl(kl, beta, group_sizes) if balance else beta * kl.sum(1).mean()
    loss = -recon.mean() + kl_term
    if spectral is not None and spectral_coeff > 0:
        loss = loss + spectral_coeff * spectral()
    elbo = (recon - kl.sum(1)).mean()
    return loss, elbo.detach()


# ---------------------------------------------------------------------- training

def train_arm(arm: str, cfg: ExperimentConfig, mcfg: NVAEConfig, data: Data, ctx: RunContext,
              saved: dict | None, done: dict) -> tuple[NVAE | None, dict]:
    """Train one arm; returns the model (None when halted early) and its training stats."""
    dev = ctx.device
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    torch.manual_seed(ctx.seed * 1000 + ARMS.index(arm))  # same init for an arm whatever ran before it
    model = NVAE(mcfg).to(dev).to(memory_format=fmt)
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr)
    coeff = arm_spectral_coeff(arm, cfg)
    spectral = SpectralRegularizer(model) if coeff > 0 else None
    gen = torch.Generator().manual_seed(ctx.seed * 1000 + ARMS.index(arm))  # batches and binarization
    step, elapsed = 0, 0.0
    if saved and saved.get("arm") == arm:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        if spectral is not None:
            spectral.load_state_dict(saved["spectral"])
        gen.set_state(saved["gen"])
        torch.set_rng_state(saved["rng"])
        step, elapsed = saved["step"], saved["elapsed"]
        ctx.note(f"resumed_{arm}", f"from step {step}")
    forward = torch.compile(model) if cfg.compile or getattr(ctx, "compile", False) else model
    group_sizes = model.group_sizes().to(dev)
    limit = cfg.train_seconds if arm == "nvae" or cfg.ablation_train_seconds is None else cfg.ablation_train_seconds
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def checkpoint():
        ctx.save_checkpoint({"arm": arm, "step": step, "elapsed": elapsed, "model": model.state_dict(),
                             "opt": opt.state_dict(), "spectral": spectral.state_dict() if spectral else None,
                             "gen": gen.get_state(), "rng": torch.get_rng_state(), "done": done})

    model.train()
    timed_images, timed_seconds, last_loss, start_step = 0, 0.0, float("nan"), step
    with ctx.progress(cfg.steps - step, f"train {arm}") as advance:
        while step < cfg.steps:
            progress = max(step / cfg.steps, elapsed / limit if limit else 0.0)
            if progress >= 1.0:
                break
            lr, beta = schedule(progress, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            x = sample_batch(data, cfg.batch_size, gen).to(dev).contiguous(memory_format=fmt)
            t0 = time.perf_counter()
            with ctx.autocast():
                loss, elbo = loss_fn(forward, x, beta, cfg.kl_balance, group_sizes, spectral, coeff)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            dt = time.perf_counter() - t0
            elapsed += dt
            step += 1
            if step - start_step > 3:  # skip warm-up (and compilation) steps in the throughput
                timed_images += cfg.batch_size
                timed_seconds += dt
            last_loss = loss.item()
            if step % cfg.log_every == 0 or step == cfg.steps:
                ctx.log(step, arm=arm, loss=round(last_loss, 4), elbo_nats=round(elbo.item(), 4),
                        beta=round(beta, 5), lr=round(lr, 6))
            advance(1)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint()
            if cfg.halt_after and step - start_step >= cfg.halt_after:
                checkpoint()
                return None, {"halted_at": step}
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)
    return model, {"train_steps": step, "train_seconds": round(elapsed, 1), "final_train_loss": round(last_loss, 3),
                   "images_per_s": round(timed_images / timed_seconds, 1) if timed_seconds else None,
                   "peak_mem_mb": round(peak_mb, 1), "params": count_params(model)}


# ---------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: NVAE, x_test: torch.Tensor, cfg: ExperimentConfig, ctx: RunContext,
             k: int, iw_images: int) -> dict:
    """ELBO, KL per group and active units on ``x_test``; IWAE NLL with k samples on its first ``iw_images``."""
    model.eval()
    dev = ctx.device
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    elbos, recons, kls, means = [], [], [], []
    for xb in x_test[: cfg.test_images].split(cfg.eval_batch):
        xb = xb.to(dev).contiguous(memory_format=fmt)
        with ctx.autocast():
            out = model(xb)
        recon = bernoulli_log_prob(out.logits.float(), xb)
        kl = out.kl_per_group().float()
        recons.append(recon.cpu())
        kls.append(kl.cpu())
        elbos.append((recon - kl.sum(1)).cpu())
        means.append([g.posterior_mean.float().flatten(1).cpu() for g in out.groups])
    kl = torch.cat(kls)
    per_group_means = [torch.cat(m) for m in zip(*means)]  # L x (N, dims)
    active = [int((m.var(0) > ACTIVE_UNIT_THRESHOLD).sum()) for m in per_group_means]

    def log_weight(xs):
        with ctx.autocast():
            return model(xs).log_weight(xs)

    lls = []
    iw_batch = max(1, min(iw_images, cfg.eval_batch // 4))
    for xb in x_test[:iw_images].split(iw_batch):
        xb = xb.to(dev).contiguous(memory_format=fmt)
        lls.append(importance_weighted_log_likelihood(log_weight, xb, k, cfg.eval_batch).cpu())
    model.train()
    return {
        "nll_nats": round(-torch.cat(lls).mean().item(), 3),
        "elbo_nats": round(-torch.cat(elbos).mean().item(), 3),  # reported as a positive NLL bound
        "recon_nats": round(-torch.cat(recons).mean().item(), 3),
        "kl_nats": round(kl.sum(1).mean().item(), 3),
        "kl_per_group": [round(v, 3) for v in kl.mean(0).tolist()],
        "active_units": sum(active),
        "active_units_per_group": active,
        "latent_dims": sum(m.shape[1] for m in per_group_means),
        "iw_k": k,
        "iw_images": min(iw_images, len(x_test)),
        "eval_images": min(cfg.test_images, len(x_test)),
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


def save_figures(model: NVAE, x_test: torch.Tensor, ctx: RunContext, cfg: ExperimentConfig) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    with torch.no_grad(), ctx.autocast():
        torch.manual_seed(ctx.seed)  # the same samples for the same seed
        warm = model.sample(64, temperature=1.0)
        cold = model.sample(64, temperature=0.7)
        xb = x_test[:16].to(ctx.device).contiguous(memory_format=fmt)
        recon = torch.sigmoid(model(xb).logits.float())
    model.train()
    gap = np.ones((8 * 30 + 2, 10), np.float32)
    plt.imsave(ctx.out_dir / "samples.png", np.hstack([_tile(warm, 8), gap, _tile(cold, 8)]), cmap="gray", vmin=0, vmax=1)
    plt.imsave(ctx.out_dir / "reconstructions.png", _tile(torch.cat([xb.cpu(), recon.cpu()]), 16),
               cmap="gray", vmin=0, vmax=1)
    return ["samples.png", "reconstructions.png"]


# ---------------------------------------------------------------------- entry point

def run(config: dict, ctx: RunContext) -> dict:
    """Train and evaluate every arm of the preset; return the main arm's metrics plus ``ablations``."""
    cfg = ExperimentConfig.from_dict(config)
    data = load_data(cfg, ctx)
    ctx.note("data", data.description)
    ctx.note("train_images", len(data.train))
    ctx.note("nll_estimator", f"importance-weighted bound: main arm k={cfg.iw_k}, ablations k={cfg.ablation_iw_k}, "
                              f"on the first {cfg.iw_images} test images; paper: k=1000 on the full test set")
    ctx.note("peak_mem", "CUDA max allocated" if ctx.device.type == "cuda" else "process peak RSS (CPU)")
    base = NVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()})
    saved = ctx.load_checkpoint()
    done: dict[str, dict] = dict(saved["done"]) if saved else {}
    result: dict[str, Any] = {}
    for arm in ("nvae", *cfg.ablations):
        if arm in done:
            continue
        mcfg = arm_model_config(arm, base)
        model, stats = train_arm(arm, cfg, mcfg, data, ctx, saved, done)
        if model is None:
            return {"halted": True, **stats}
        is_main = arm == "nvae"
        metrics = {**stats, **evaluate(model, data.test, cfg, ctx, cfg.iw_k if is_main else cfg.ablation_iw_k,
                                       cfg.iw_images)}
        metrics["model"] = mcfg.to_dict()
        if is_main and ctx.is_main:
            metrics["figures"] = save_figures(model, data.test, ctx, cfg)
        done[arm] = metrics
        ctx.log(metrics["train_steps"], arm=arm, **{k: metrics[k] for k in ("nll_nats", "elbo_nats", "kl_nats")})
        ctx.save_checkpoint({"arm": None, "done": done})
    result.update(done["nvae"])
    result["ablations"] = {arm: done[arm] for arm in cfg.ablations}
    for arm in cfg.ablations:
        result[f"nll_nats_{arm}"] = done[arm]["nll_nats"]
    result["paper_nll_nats"] = 78.01
    result["gap_nats"] = round(result["nll_nats"] - 78.01, 3)
    return result
