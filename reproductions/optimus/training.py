"""Training the arms: the LM pre-training, the warm start of every arm from it, the step loop.

Pre-train then fine-tune (the paper's recipe, emulated): Optimus starts from a pre-trained GPT-2
(and BERT); offline we have none, so the plain LM is trained first (`pretrain_steps`) and its
decoder weights become the starting point of every arm. The LM arm then simply trains the same
extra steps (the control), while the VAE arms add a fresh encoder and fresh latent projections
(``z_to_memory``, ``z_to_embedding``) around the same decoder.

Data parallel: every rank builds the same global batches (same seed), trains on its share of
each (``ctx.shard`` over the batch's positions; per-rank batch = ``ctx.local_batch``), and DDP
averages the gradients, so N processes take the same steps as one. The reparameterisation
noise is drawn per global position, so a sentence gets the same z whichever rank holds it.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import replace
from typing import Any

import torch

from reproductions.api import ConfigError, RunContext
from reproductions.optimus.config import ExperimentConfig
from reproductions.optimus.corpus import collate, make_batches, rank_share, unwrap
from reproductions.optimus.evaluation import evaluate
from reproductions.optimus.model import LanguageModel, OptimusVAE
from reproductions.optimus.objectives import cyclical_beta, reconstruction_term, vae_loss
from reproductions.optimus.tokenizer import Vocab


def beta_at(arm: str, step: int, cfg: ExperimentConfig) -> float:
    if arm == "vae":
        return 1.0
    if step < cfg.ae_pretrain_steps:
        return 0.0
    return cyclical_beta(step - cfg.ae_pretrain_steps, cfg.steps - cfg.ae_pretrain_steps, cfg.n_cycles,
                         cfg.ratio_zero, cfg.ratio_increase, cfg.beta_max)


def lr_at(step: int, steps: int, warmup: int, peak: float) -> float:
    """Linear warm-up then cosine decay to 10% of the peak over `steps`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def step_noise(seed: int, step: int, batch: int, d_latent: int) -> torch.Tensor:
    """N(0, I) noise (batch, D) for one global batch, the same on every rank and world size."""
    g = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + step)
    return torch.randn((batch, d_latent), generator=g)


def warm_start(model: torch.nn.Module, lm_state: dict[str, torch.Tensor]) -> list[str]:
    """Copy the pre-trained LM decoder into `model.decoder`; the keys left at their init (z projections)."""
    try:
        missing, unexpected = model.decoder.load_state_dict(lm_state, strict=False)
    except RuntimeError as exc:  # shapes differ
        raise ConfigError(f"optimus: the LM decoder does not fit this arm ({str(exc).splitlines()[0]})") from None
    stray = [k for k in missing if not k.startswith("z_to_")]
    if unexpected or stray:  # a different architecture: the warm start would be partial
        raise ConfigError(f"optimus: the LM decoder does not fit this arm (unexpected {unexpected}, missing {stray})")
    return list(missing)


def train_arm(arm: str, cfg: ExperimentConfig, ctx: RunContext, vocab: Vocab, train: list[list[int]],
              valid: list[list[int]], *, seed: int, lm_state: dict[str, torch.Tensor] | None = None,
              phase: str = "train"):
    """Train one arm `cfg.steps` steps (from `lm_state`'s decoder when given); the unwrapped model.

    `phase` "pretrain" is the LM pre-training: its own data order and LR peak (`pretrain_lr`).
    """
    torch.manual_seed(seed)
    mcfg = cfg.model_config(vocab)
    model = LanguageModel(mcfg) if arm == "lm" else OptimusVAE(mcfg)
    if lm_state is not None:
        warm_start(model, lm_state)
    model = ctx.wrap_model(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lam = cfg.kl_threshold if arm == "optimus" else 0.0
    peak = (cfg.pretrain_lr or cfg.lr) if phase == "pretrain" else cfg.lr
    local = ctx.local_batch(cfg.batch_size)  # raises unless the global batch splits evenly
    rng = random.Random(seed + (7_777 if phase == "pretrain" else 0))
    batches: list[list[int]] = []
    step, t0 = 0, time.time()
    with ctx.progress(cfg.steps, f"{phase} {arm} (seed {seed})") as advance:
        while step < cfg.steps:
            if not batches:
                batches = make_batches(train, cfg.batch_size, rng, drop_last=True)
                if not batches:
                    raise ConfigError(f"optimus: fewer training sentences ({len(train)}) than one batch")
            positions, idx = rank_share(batches.pop(), ctx)
            assert len(idx) == local
            ctx.count_examples(len(idx))
            b = collate(train, idx, vocab, ctx.device)
            lengths = b["tgt"].ne(vocab.pad_id).sum(1) if cfg.length_weighted_loss else None
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg.steps, cfg.warmup_steps, peak)
            beta = beta_at(arm, step, cfg)
            model.train()
            with ctx.autocast():
                if arm == "lm":
                    out = model(b["dec"], b["tgt"])
                    loss = reconstruction_term(out["rec"], lengths)
                else:
                    eps = step_noise(seed, step, cfg.batch_size, cfg.d_latent)[positions].to(ctx.device)
                    out = model(b["enc"], b["dec"], b["tgt"], eps=eps)
                    loss = vae_loss(out["rec"], out["kl"], beta, lam, cfg.kl_threshold_mode, lengths)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP: gradients averaged over ranks = the global batch's mean
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            advance(1)
            tags = {"arm": arm, "phase": phase, "seed": seed}
            if step % cfg.log_every == 0 or step == cfg.steps:
                ntok, rec = ctx.sum_over_ranks([float(b["tgt"].ne(vocab.pad_id).sum()),
                                                float(out["rec"].detach().float().sum())])
                row: dict[str, Any] = {**tags, "split": "train", "rec_per_token": rec / ntok}
                if arm != "lm":
                    kl = ctx.mean_over_ranks(float(out["kl"].detach().sum(1).mean()))
                    row.update(kl=kl, beta=beta)
                ctx.log(step, **row)
            if step % cfg.eval_every == 0 or step == cfg.steps:
                ev = evaluate(arm, unwrap(model), vocab, valid, cfg, ctx, iw_samples=0, seed=seed)
                ctx.log(step, **tags, split="valid", ppl=ev["ppl"], kl=ev["kl"], mi=ev["mi"], au=ev["au"])
    seconds = time.time() - t0
    ctx.notes.setdefault("train_seconds", {})[f"{phase}/{arm}/seed{seed}"] = round(seconds, 1)
    ctx.notes.setdefault("seconds_per_step", {})[f"{phase}/{arm}"] = round(seconds / cfg.steps, 4)
    ctx.note(f"{arm}_parameters", sum(p.numel() for p in unwrap(model).parameters()))
    ctx.note(f"{phase}_epochs", round(cfg.steps * cfg.batch_size / max(1, len(train)), 2))
    return unwrap(model)


def pretrain_lm(cfg: ExperimentConfig, ctx: RunContext, vocab: Vocab, train, valid, *,
                seed: int) -> dict[str, torch.Tensor] | None:
    """The pre-trained decoder's weights for `seed` (None when the preset trains from scratch)."""
    if not cfg.pretrain_steps:
        return None
    pre = replace(cfg, steps=cfg.pretrain_steps, ae_pretrain_steps=0)
    lm = train_arm("lm", pre, ctx, vocab, train, valid, seed=seed, phase="pretrain")
    return {k: v.detach().clone() for k, v in lm.decoder.state_dict().items()}
