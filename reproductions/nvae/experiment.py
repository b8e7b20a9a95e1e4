"""Train NVAE on dynamically binarized MNIST, measure test NLL (nats) and run the ablations.

One call of `run` trains the main arm ("nvae"), then, when the ablations get a
different budget than the main arm, an NVAE control arm ("nvae_control") with exactly
the ablations' budget, then each ablation arm; every arm is evaluated on the same
test images and each ablation is reported as a delta against the control. It writes:

* ``metrics.jsonl``: training curves (loss, ELBO, KL weight beta, lr) per arm;
* ``samples.png``: ancestral samples at temperature 1.0 (left) and 0.7 (right);
* ``reconstructions.png``: test images (top row) and their reconstructions (bottom);
* metrics returned to the runner (``nll_nats`` is the headline number).

Data (``data="dynamic"``, the paper's setting): the 60k grey training images, each
binarized afresh by a Bernoulli draw every time it is visited; the 10k test images
binarized once with ``test_binarization_seed``. ``data="binarized"`` uses the fixed
(Larochelle & Murray) binarization instead.

Data parallelism: every rank draws the same global batch (a shared permutation and
shared Bernoulli noise) and trains on its rows ``rank::world_size``, so N processes
see exactly the images one process would; DDP averages the gradients. Evaluation is
sharded over ranks and the sums are reduced. Only rank 0 writes.

Budgets: an arm trains for ``steps`` (or ``ablation_steps``), optionally capped by a
wall-clock ``train_seconds`` that counts training steps only: compilation and the
warm-up passes run before the clock starts. Learning-rate and KL warm-ups follow the
step count; the cosine decay follows the larger of the step and time fractions, so a
run cut short by the clock still decays.
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
from reproductions.nvae.distributions import bernoulli_log_prob
from reproductions.nvae.likelihood import importance_weighted_log_likelihood
from reproductions.nvae.model import NVAE, NVAEConfig, count_params, readjust_batchnorm
from reproductions.nvae.regularizers import SpectralRegularizer, balanced_kl, bn_scale_penalty, kl_warmup

ARMS = ("nvae", "nvae_control", "plain_vae", "no_residual_normal", "no_spectral_reg")
ABLATIONS = ARMS[2:]
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active when Var_x E_q[u] > 0.01
DATA_KINDS = ("dynamic", "binarized")


@dataclass
class ExperimentConfig:
    data: str = "dynamic"  # "dynamic": 60k grey train images, resampled per visit; "binarized": fixed 50k
    allow_synthetic: bool = False  # only the smoke preset may fall back to synthetic bars
    train_images: int = 0  # 0 = the whole train split
    test_images: int = 1000  # test images for ELBO / KL / active units
    test_binarization_seed: int = 0  # the one Bernoulli draw that binarizes the grey test images
    iw_images: int = 2000  # test images for the importance-weighted NLL, main arm
    iw_samples: int = 100  # importance samples per image, main arm
    ablation_iw_images: int = 500  # control and ablation arms
    ablation_iw_samples: int = 20
    eval_batch_size: int = 512  # max rows per forward pass during evaluation
    bn_readjust_images: int = 2000  # training images used to re-estimate BN statistics before eval (0 = off)
    batch_size: int = 64  # global batch; each of N processes trains on batch_size / N
    steps: int = 1000
    train_seconds: float = 0.0  # wall-clock cap of the main arm, training steps only; 0 = none
    ablation_steps: int = 0  # control and ablation arms; 0 = same as steps (then the main arm is the control)
    ablation_train_seconds: float = 0.0
    lr: float = 1e-2
    lr_min: float = 1e-4
    lr_warmup: float = 0.02  # fraction of the arm's steps with a linear lr ramp
    kl_warmup: float = 0.3  # fraction of the arm's steps over which beta goes 0 -> 1
    kl_balance: bool = True
    spectral_coeff: float = 0.01  # lambda of the spectral regulariser
    spectral_on_linear: bool = False  # also the SE layers' Linear weights (the official recipe: convs only)
    bn_scale_coeff: float = 0.01  # lambda of the BN-scale penalty (the official recipe uses the spectral lambda)
    grad_clip: float = 200.0
    channels_last: bool = False
    compile: bool = False
    log_every: int = 25
    checkpoint_every: int = 0  # 0 = only at the end of each arm
    halt_after: int = 0  # stop after this many steps of an arm, leaving a checkpoint (tests, preemption)
    ablations: tuple[str, ...] = ABLATIONS
    model: dict = field(default_factory=dict)  # NVAEConfig fields

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "ExperimentConfig":
        cfg = config_from_dict(cls, config, name="nvae")
        bad = [a for a in cfg.ablations if a not in ABLATIONS]
        if bad:
            raise ConfigError(f"nvae: unknown ablations {bad}; choose from {list(ABLATIONS)}")
        if cfg.data not in DATA_KINDS:
            raise ConfigError(f"nvae: data must be one of {DATA_KINDS}, got {cfg.data!r}")
        model_known = {f.name for f in fields(NVAEConfig)}
        if set(cfg.model) - model_known:
            raise ConfigError(f"nvae: unknown model keys {sorted(set(cfg.model) - model_known)}")
        return cfg

    def budget(self, arm: str) -> tuple[int, float]:
        """(steps, wall-clock cap in seconds) of an arm: the main arm's, or the shared ablation budget."""
        if arm == "nvae":
            return self.steps, self.train_seconds
        return self.ablation_steps or self.steps, self.ablation_train_seconds

    def arms(self) -> list[str]:
        """The arms to train, in order; a separate control only when the ablation budget differs."""
        if not self.ablations:
            return ["nvae"]
        control = [] if self.budget("nvae_control") == self.budget("nvae") else ["nvae_control"]
        return ["nvae", *control, *self.ablations]

    def control_arm(self) -> str:
        return "nvae_control" if "nvae_control" in self.arms() else "nvae"


# ---------------------------------------------------------------------- data

@dataclass
class Data:
    train: torch.Tensor  # (N, 784) uint8: grey levels 0..255 when dynamic, else {0, 1}
    test: Any  # (M, 1, 28, 28) float {0, 1}; load_data returns it sealed until ctx.begin_final_evaluation()
    dynamic: bool  # draw fresh binary pixels from the grey levels at every visit
    description: str
    source: str  # "mnist" | "binarized_mnist" | "synthetic": which files were read


def load_data(cfg: ExperimentConfig, ctx: RunContext) -> Data:
    root = resolve_data_dir(ctx.data_dir)
    n_test = max(cfg.test_images, cfg.iw_images, cfg.ablation_iw_images)
    try:
        if cfg.data == "binarized":
            splits = load_binarized_mnist(root)
            train, test = splits["train"].images, splits["test"].images
            desc = ("binarized MNIST with the fixed (Larochelle & Murray) binarization: train 50k split, "
                    "test 10k split (the paper binarizes dynamically)")
            dynamic, source = False, "binarized_mnist"
        else:
            tr, te = load_mnist(root)
            train = tr.images
            rng = np.random.default_rng(cfg.test_binarization_seed)
            test = (rng.random(te.images.shape) < te.images / 255.0).astype(np.uint8)
            desc = (f"dynamically binarized MNIST: train {tr.description}, grey levels resampled as Bernoulli "
                    f"pixels at every visit; test {te.description}, binarized once with numpy "
                    f"default_rng({cfg.test_binarization_seed})")
            dynamic, source = True, "mnist"
    except DatasetMissing as exc:
        if not cfg.allow_synthetic:
            raise
        train, test = _synthetic_digits(2048, 1), _synthetic_digits(256, 2)
        desc = f"synthetic random binary bars (smoke fallback; MNIST missing: {exc})"
        dynamic, source = False, "synthetic"
    if cfg.train_images:
        train = train[: cfg.train_images]
    train_t = torch.from_numpy(np.array(train, copy=True)).reshape(len(train), 784)
    test_t = torch.from_numpy(np.ascontiguousarray(test[:n_test])).float().reshape(-1, 1, 28, 28)
    return Data(train_t, ctx.seal(test_t, "MNIST test images"), dynamic, desc, source)


def _synthetic_digits(n: int, seed: int) -> np.ndarray:
    """Binary images of one horizontal and one vertical bar at random places (smoke fallback)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for img, r, c in zip(x, rng.integers(4, 24, n), rng.integers(4, 24, n)):
        img[r - 1:r + 2, 4:24] = 1
        img[4:24, c - 1:c + 2] = 1
    return x


class BatchStream:
    """Global batches drawn identically on every rank; each rank keeps its rows ``rank::world``.

    Epochs are seeded permutations of the training set (the tail that does not fill a
    batch is dropped); dynamic binarization uses uniform noise from the same shared
    generator, so a 2-process run sees exactly the binary images a 1-process run sees.
    """

    def __init__(self, data: Data, global_batch: int, gen: torch.Generator, ctx: RunContext):
        self.data, self.batch, self.gen = data, global_batch, gen
        self.rows = torch.tensor(list(ctx.shard(global_batch)), dtype=torch.long)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def indices(self) -> torch.Tensor:
        """The global batch's training-set indices (B,), advancing the shared stream."""
        if self.pos + self.batch > len(self.perm):
            self.perm = torch.randperm(len(self.data.train), generator=self.gen)
            self.pos = 0
            if len(self.perm) < self.batch:
                raise ConfigError(f"nvae: batch_size {self.batch} exceeds the {len(self.perm)} training images")
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(this rank's images (b, 1, 28, 28) float {0,1}, their training-set indices (b,))."""
        idx = self.indices()
        pixels = self.data.train[idx]
        if self.data.dynamic:
            noise = torch.rand(pixels.shape, generator=self.gen)  # drawn for the whole global batch
            x = (noise * 255.0 < pixels.float()).float()  # P(pixel = 1) = grey / 255
        else:
            x = pixels.float()
        return x[self.rows].reshape(-1, 1, 28, 28), idx[self.rows]

    def state(self) -> dict:
        return {"perm": self.perm.clone(), "pos": self.pos}

    def load(self, state: dict) -> None:
        self.perm, self.pos = state["perm"], state["pos"]


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

def _arm_seed(ctx: RunContext, arm: str) -> int:
    return ctx.seed * 1000 + ARMS.index(arm)


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


def train_arm(arm: str, cfg: ExperimentConfig, mcfg: NVAEConfig, data: Data, ctx: RunContext,
              saved: dict | None, done: dict) -> tuple[NVAE | None, dict]:
    """Train one arm; returns the model (None when halted early) and its training stats."""
    dev = ctx.device
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    steps, limit = cfg.budget(arm)
    torch.manual_seed(_arm_seed(ctx, arm))  # same init on every rank, whatever arm ran before
    model = NVAE(mcfg).to(memory_format=fmt)
    forward = ctx.wrap_model(model)  # on the device; compiled with --set compile=true; DDP with N processes
    if cfg.compile and not ctx.compile:
        forward = torch.compile(forward)
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr)
    coeff = arm_spectral_coeff(arm, cfg)
    spectral = SpectralRegularizer(model, include_linear=cfg.spectral_on_linear) if coeff > 0 else None
    gen = torch.Generator().manual_seed(_arm_seed(ctx, arm))  # shared: batches and binarization noise
    stream = BatchStream(data, cfg.batch_size, gen, ctx)
    group_sizes = model.group_sizes().to(dev)
    local = ctx.local_batch(cfg.batch_size)
    probe = (torch.rand(local, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.15).float()
    compile_s = _warm_up(forward, probe.to(dev).contiguous(memory_format=fmt), group_sizes, spectral, coeff, model,
                         cfg, ctx, passes=2 if (cfg.compile or ctx.compile) else 1)
    if ctx.world_size > 1:  # different posterior noise per rank (the init above was shared)
        torch.manual_seed(_arm_seed(ctx, arm) * 7919 + ctx.rank)
    step, elapsed = 0, 0.0
    if saved and saved.get("arm") == arm:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        if spectral is not None:
            spectral.load_state_dict(saved["spectral"])
        gen.set_state(saved["gen"])
        stream.load(saved["stream"])
        step, elapsed = saved["step"], saved["elapsed"]
        if ctx.world_size > 1:
            torch.manual_seed(_arm_seed(ctx, arm) * 7919 + ctx.rank + 104729 * step)
        else:
            torch.set_rng_state(saved["rng"])
        ctx.note(f"resumed_{arm}", f"from step {step}")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def checkpoint():
        ctx.save_checkpoint({"arm": arm, "step": step, "elapsed": elapsed, "model": model.state_dict(),
                             "opt": opt.state_dict(), "spectral": spectral.state_dict() if spectral else None,
                             "gen": gen.get_state(), "stream": stream.state(), "rng": torch.get_rng_state(),
                             "done": done})

    model.train()
    last_loss, last_elbo, start_step = float("nan"), float("nan"), step
    with ctx.progress(steps - step, f"train {arm}") as advance:
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
                ctx.log(step, arm=arm, loss=round(last_loss, 4), elbo_nats=round(last_elbo, 4),
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


# ---------------------------------------------------------------------- evaluation

def readjust_on_train_images(model: NVAE, data: Data, cfg: ExperimentConfig, ctx: RunContext) -> None:
    """Re-estimate BN statistics from ``bn_readjust_images`` training images (the same on every rank)."""
    if not cfg.bn_readjust_images:
        model.eval()
        return
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(ctx.seed + 17)
    n = min(cfg.bn_readjust_images, len(data.train))
    idx = torch.randperm(len(data.train), generator=gen)[:n]
    pixels = data.train[idx].float()
    x = (torch.rand(pixels.shape, generator=gen) * 255.0 < pixels).float() if data.dynamic else pixels
    batches = x.reshape(-1, 1, 28, 28).split(min(cfg.batch_size * 4, cfg.eval_batch_size))

    def passes():
        for xb in batches:
            yield lambda xb=xb: model(xb.to(ctx.device).contiguous(memory_format=fmt))

    readjust_batchnorm(model, passes())


@torch.no_grad()
def evaluate(model: NVAE, data: Data, cfg: ExperimentConfig, ctx: RunContext, k: int, iw_images: int) -> dict:
    """ELBO, KL per group and active units on the first ``test_images``; the IW NLL with k samples on
    the first ``iw_images``. Each rank takes its shard of the images; sums are reduced over ranks.
    Everything here runs in fp32 (no autocast): the IW bound is a log-mean-exp of large numbers."""
    readjust_on_train_images(model, data, cfg, ctx)
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
    iw_batch = max(1, min(len(x_iw), cfg.eval_batch_size // 4))
    for xb in x_iw.split(iw_batch):
        xb = xb.to(dev).contiguous(memory_format=fmt)
        feats = model.encode(xb)  # deterministic: computed once per image, not once per sample

        def log_weight(xs, feats=feats, b=len(xb)):  # xs: copy j of image i at row j*b + i
            copies = len(xs) // b
            return model.top_down([f.repeat(copies, 1, 1, 1) for f in feats], len(xs)).log_weight(xs)

        ll = importance_weighted_log_likelihood(log_weight, xb, k, cfg.eval_batch_size)
        ll_sum += ll.double().sum().cpu()
    ll_sum = ctx.sum_over_ranks(ll_sum)
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
    readjust_on_train_images(model, data, cfg, ctx)
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


# ---------------------------------------------------------------------- entry point

def _examples_per_rank(ctx: RunContext) -> list[int]:
    if ctx.world_size == 1:
        return [ctx.examples_seen]
    counts = torch.zeros(ctx.world_size, dtype=torch.float64)
    counts[ctx.rank] = ctx.examples_seen
    return [int(v) for v in ctx.sum_over_ranks(counts).tolist()]


def run(config: dict, ctx: RunContext) -> dict:
    """Train and evaluate every arm of the preset; return the main arm's metrics plus ``ablations``."""
    cfg = ExperimentConfig.from_dict(config)
    data = load_data(cfg, ctx)
    ctx.note("data", data.description)
    ctx.note("data_source", data.source)
    ctx.note("train_images", len(data.train))
    if data.dynamic:
        ctx.note("test_binarization", f"numpy default_rng({cfg.test_binarization_seed}): pixel = u < grey/255, once")
    ctx.note("nll_estimator", (
        f"importance-weighted bound in fp32: main arm k={cfg.iw_samples} on the first {cfg.iw_images} test images; "
        f"control and ablations k={cfg.ablation_iw_samples} on the first {cfg.ablation_iw_images}; "
        "paper: k=1000 on all 10k"))
    ctx.note("budgets", {arm: dict(zip(("steps", "train_seconds"), cfg.budget(arm))) for arm in cfg.arms()})
    ctx.note("world_size", ctx.world_size)
    ctx.note("batch", {"global": cfg.batch_size, "per_rank": ctx.local_batch(cfg.batch_size)})
    ctx.note("peak_mem", "CUDA max allocated" if ctx.device.type == "cuda" else "process peak RSS (CPU)")
    ctx.begin_final_evaluation(fixed="every arm's model, steps and IW budget fixed by the preset; nothing selected")
    data = replace(data, test=data.test.open())
    base = NVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()})
    saved = ctx.load_checkpoint()
    done: dict[str, dict] = dict(saved["done"]) if saved else {}
    for arm in cfg.arms():
        if arm in done:
            continue
        mcfg = arm_model_config(arm, base)
        model, stats = train_arm(arm, cfg, mcfg, data, ctx, saved, done)
        if model is None:
            return {"halted": True, **stats}
        k, n_iw = ((cfg.iw_samples, cfg.iw_images) if arm == "nvae"
                   else (cfg.ablation_iw_samples, cfg.ablation_iw_images))
        metrics = {**stats, **evaluate(model, data, cfg, ctx, k, n_iw), "model": mcfg.to_dict()}
        if arm == "nvae" and cfg.control_arm() == "nvae" and cfg.ablations:  # the control's view of itself
            metrics["control_nll_nats"] = evaluate(model, data, cfg, ctx, cfg.ablation_iw_samples,
                                                   cfg.ablation_iw_images)["nll_nats"]
        if arm == "nvae" and ctx.is_main:
            metrics["figures"] = save_figures(model, data, ctx, cfg)
        done[arm] = metrics
        ctx.log(metrics["train_steps"], arm=arm, **{k: metrics[k] for k in ("nll_nats", "elbo_nats", "kl_nats")})
        ctx.save_checkpoint({"arm": None, "done": done})
    result: dict[str, Any] = dict(done["nvae"])
    control = cfg.control_arm()
    if cfg.ablations:
        control_nll = done[control]["nll_nats"] if control != "nvae" else done["nvae"]["control_nll_nats"]
        result["control"] = {"arm": control, "nll_nats": control_nll, **(
            {k: done[control][k] for k in ("train_steps", "train_seconds", "elbo_nats")})}
        result["ablations"] = {arm: done[arm] for arm in cfg.ablations}
        for arm in cfg.ablations:
            result[f"nll_nats_{arm}"] = done[arm]["nll_nats"]
            result[f"delta_nats_{arm}"] = round(done[arm]["nll_nats"] - control_nll, 3)
    result["paper_nll_nats"] = 78.01
    result["gap_nats"] = round(result["nll_nats"] - 78.01, 3)
    result["examples_per_rank"] = _examples_per_rank(ctx)
    return result
