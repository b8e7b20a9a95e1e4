"""Training one NVAE arm: the objective, the lr and KL schedules, the loop with checkpoints.

Budgets: an arm trains for ``steps`` (or ``ablation_steps``), optionally capped by a
wall-clock ``train_seconds`` that counts training steps only: compilation and the
warm-up passes run before the clock starts. Learning-rate and KL warm-ups follow the
step count; the cosine decay follows the larger of the step and time fractions, so a
run cut short by the clock still decays. The optimizer is Adamax with the official
code's eps and weight decay (see `config`).
"""

from __future__ import annotations

import math
import resource
import time

import torch

from reproductions.api import RunContext
from reproductions.nvae.batches import BatchStream, Data
from reproductions.nvae.config import ExperimentConfig, arm_spectral_coeff
from reproductions.nvae.distributions import bernoulli_log_prob
from reproductions.nvae.model import NVAE, NVAEConfig, count_params
from reproductions.nvae.regularizers import SpectralRegularizer, balanced_kl, bn_scale_penalty, kl_warmup


def schedule(step: int, progress: float, steps: int, cfg: ExperimentConfig) -> tuple[float, float]:
    """(lr, beta) at `step` of `steps`: linear lr ramp then cosine decay over `progress` in [0, 1];
    linear KL warm-up. Both warm-ups count steps only, never the clock."""
    ramp = max(1, round(cfg.lr_warmup * steps))
    if step < ramp:
        lr = cfg.lr * max(step / ramp, 0.01)
    else:
        t = (progress - cfg.lr_warmup) / max(1e-8, 1 - cfg.lr_warmup)
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
    return lr, kl_warmup(step, round(cfg.kl_warmup * steps))


def loss_fn(model, x, beta: float, balance: bool, group_sizes, spectral, spectral_coeff: float,
            bn_module=None, bn_coeff: float = 0.0):
    """The training objective per image (nats): -log p(x|z) + beta * balanced KL + the smoothness
    penalties (lambda * sum of conv spectral norms, lambda_bn * sum of max BN scales of `bn_module`)."""
    out = model(x)
    recon = bernoulli_log_prob(out.logits.float(), x)  # (B,)
    kl = out.kl_per_group().float()  # (B, L)
    kl_term = balanced_kl(kl, beta, group_sizes) if balance else beta * kl.sum(1).mean()
    loss = -recon.mean() + kl_term
    if spectral is not None and spectral_coeff > 0:
        loss = loss + spectral_coeff * spectral()
    if bn_module is not None and bn_coeff > 0:
        loss = loss + bn_coeff * bn_scale_penalty(bn_module)
    elbo = (recon - kl.sum(1)).mean()
    return loss, elbo.detach()


# ---------------------------------------------------------------------- training

def make_optimizer(model: torch.nn.Module, cfg: ExperimentConfig) -> torch.optim.Adamax:
    """Adamax over every parameter with the config's eps and L2 weight decay (the official code's recipe)."""
    return torch.optim.Adamax(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)


def arm_seed(seed: int, arm: str) -> int:
    """The random stream of an arm on one seed. Every arm of a seed shares it (pairing): the same
    initial weights where the architecture is the same, the same batches and binarization noise."""
    del arm  # deliberately unused: a per-arm offset would unpair the arms
    return seed * 1000 + 1


def arm_key(arm: str, seed: int) -> str:
    """How an arm trained on one seed is named in checkpoints: ``"plain_vae@2"``."""
    return f"{arm}@{seed}"


def _warm_up(forward, x: torch.Tensor, sizes, spectral, coeff: float, base: NVAE, cfg: ExperimentConfig,
             ctx: RunContext, passes: int) -> float:
    """Forward and backward passes without an optimizer step, before the clock starts: they pay
    for torch.compile (and first-call allocations). Returns their seconds."""
    t0 = time.perf_counter()
    for _ in range(passes):
        with ctx.autocast():
            loss, _ = loss_fn(forward, x, 1.0, cfg.kl_balance, sizes, spectral, coeff, base, cfg.bn_scale_coeff)
        loss.backward()
        base.zero_grad(set_to_none=True)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    return time.perf_counter() - t0


def train_arm(arm: str, seed: int, cfg: ExperimentConfig, mcfg: NVAEConfig, data: Data, ctx: RunContext,
              saved: dict | None, done: dict) -> tuple[NVAE | None, dict]:
    """Train one arm on one seed; returns the model (None when halted early) and its training stats."""
    dev = ctx.device
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    steps, limit = cfg.budget(arm)
    torch.manual_seed(arm_seed(seed, arm))  # same init on every rank, whatever arm ran before
    model = NVAE(mcfg).to(memory_format=fmt)
    forward = ctx.wrap_model(model)  # on the device; compiled with --set compile=true; DDP with N processes
    if cfg.compile and not ctx.compile:
        forward = torch.compile(forward)
    opt = make_optimizer(model, cfg)
    coeff = arm_spectral_coeff(arm, cfg)
    spectral = SpectralRegularizer(model, include_linear=cfg.spectral_on_linear) if coeff > 0 else None
    gen = torch.Generator().manual_seed(arm_seed(seed, arm))  # shared: batches and binarization noise
    stream = BatchStream(data, cfg.batch_size, gen, ctx)
    group_sizes = model.group_sizes().to(dev)
    local = ctx.local_batch(cfg.batch_size)
    probe = (torch.rand(local, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.15).float()
    compile_s = _warm_up(forward, probe.to(dev).contiguous(memory_format=fmt), group_sizes, spectral, coeff, model,
                         cfg, ctx, passes=2 if (cfg.compile or ctx.compile) else 1)
    if ctx.world_size > 1:  # different posterior noise per rank (the init above was shared)
        torch.manual_seed(arm_seed(seed, arm) * 7919 + ctx.rank)
    step, elapsed = 0, 0.0
    key = arm_key(arm, seed)
    if saved and saved.get("arm") == key:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        if spectral is not None:
            spectral.load_state_dict(saved["spectral"])
        gen.set_state(saved["gen"])
        stream.load(saved["stream"])
        step, elapsed = saved["step"], saved["elapsed"]
        if ctx.world_size > 1:
            torch.manual_seed(arm_seed(seed, arm) * 7919 + ctx.rank + 104729 * step)
        else:
            torch.set_rng_state(saved["rng"])
        ctx.note(f"resumed_{key}", f"from step {step}")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def checkpoint():
        ctx.save_checkpoint({"arm": key, "step": step, "elapsed": elapsed, "model": model.state_dict(),
                             "opt": opt.state_dict(), "spectral": spectral.state_dict() if spectral else None,
                             "gen": gen.get_state(), "stream": stream.state(), "rng": torch.get_rng_state(),
                             "done": done})

    model.train()
    last_loss, last_elbo, start_step = float("nan"), float("nan"), step
    with ctx.progress(steps - step, f"train {key}") as advance:
        while step < steps:
            progress = max(step / steps, elapsed / limit if limit else 0.0)
            if progress >= 1.0:
                break
            lr, beta = schedule(step, progress, steps, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            x, _ = stream.next()
            t0 = time.perf_counter()
            x = x.to(dev, non_blocking=True).contiguous(memory_format=fmt)
            with ctx.autocast():
                loss, elbo = loss_fn(forward, x, beta, cfg.kl_balance, group_sizes, spectral, coeff, model,
                                     cfg.bn_scale_coeff)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            elapsed += time.perf_counter() - t0
            step += 1
            ctx.count_examples(len(x))
            if step % cfg.log_every == 0 or step == steps:
                last_loss = ctx.mean_over_ranks(loss.item())
                last_elbo = ctx.mean_over_ranks(elbo.item())
                ctx.log(step, arm=arm, seed=seed, loss=round(last_loss, 4), elbo_nats=round(last_elbo, 4),
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
    return model, {"train_steps": step, "train_seconds": round(elapsed, 1), "compile_seconds": round(compile_s, 2),
                   "budget_steps": steps, "budget_seconds": limit,
                   "train_images_seen": step * cfg.batch_size,
                   "final_train_loss": round(last_loss, 3), "final_train_elbo_nats": round(-last_elbo, 3),
                   "images_per_s": round(step * cfg.batch_size / elapsed, 1) if elapsed else None,
                   "peak_mem_mb": round(peak_mb, 1), "params": count_params(model)}
