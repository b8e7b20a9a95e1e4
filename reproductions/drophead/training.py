"""One arm, one seed: build the classifier, train it with the arm's regulariser, score it.

Seed ``s`` gives every arm the same initial weights and the same batch order, so arms differ
only in their regulariser and the per-seed differences are paired. Data-parallel: every rank
draws the same global batch (same seeded permutation) and trains on its rows of it
(`ctx.shard`) with the model in DDP (`ctx.wrap_model`); evaluation is sharded and the counts
summed over ranks.
"""

from __future__ import annotations

import gc
import math
import time
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from reproductions.api import ConfigError, RunContext
from reproductions.drophead.config import ARMS, DropHeadConfig
from reproductions.drophead.data import PAD
from reproductions.drophead.model import DropHeadSchedule, TextClassifier, set_drophead_rate


def v_schedule(cfg: DropHeadConfig) -> DropHeadSchedule:
    """The scheduled arm's rate: ``drophead_start`` → 0 at the turn → ``drophead_end`` (§3.2)."""
    return DropHeadSchedule(cfg.schedule, cfg.steps, cfg.drophead_start, cfg.drophead_end, turn_step=cfg.turn_step)


def arm_settings(arm: str, cfg: DropHeadConfig) -> tuple[float, DropHeadSchedule | None]:
    """(standard dropout rate, DropHead schedule or None) for an arm."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r} (known: {', '.join(ARMS)})")
    dropout = 0.0 if arm == "none" else cfg.dropout
    if arm.startswith("drophead") or arm == "scheduled_drophead":
        dropout = dropout if cfg.drophead_with_dropout else 0.0
    if arm == "drophead":
        return dropout, DropHeadSchedule("constant", cfg.steps, cfg.drophead)
    if arm == "drophead_mean":  # rate-matched to the schedule: the same mean rate, held constant
        return dropout, DropHeadSchedule("constant", cfg.steps, v_schedule(cfg).mean_rate())
    if arm == "scheduled_drophead":
        return dropout, v_schedule(cfg)
    return dropout, None


def build_model(arm: str, seed: int, cfg: DropHeadConfig, vocab_size: int) -> TextClassifier:
    """The arm's classifier with seed ``seed``'s initial weights (the same for every arm: same shapes,
    same draw order; the regularisers have no parameters)."""
    dropout, _ = arm_settings(arm, cfg)
    torch.manual_seed(seed)
    return TextClassifier(vocab_size, cfg.max_len, 2, cfg.d_model, cfg.n_head, cfg.n_layer, cfg.d_ff,
                          dropout=dropout, emb_dropout=dropout)


def global_batches(n: int, batch_size: int, seed: int, lengths: torch.Tensor | None = None,
                   pool_batches: int = 0) -> Iterator[torch.Tensor]:
    """Indices of the global batches, forever: a fresh seeded permutation of range(n) per epoch,
    the last partial batch of an epoch dropped. Every arm and every rank of seed ``seed`` gets
    the same sequence.

    With ``lengths`` and ``pool_batches > 0`` the batches are length-bucketed: the permutation is
    cut into pools of ``pool_batches`` batches, each pool sorted by sentence length, cut into
    batches, and the epoch's batches shuffled. Each batch then holds sentences of similar length,
    so trimming it to its longest sentence drops most of the padding (SST-2 train phrases run
    from 1 to 50+ words: a random batch of 32 pads to its longest, ~4x the mean).
    """
    if batch_size > n:
        raise ConfigError(f"drophead: batch {batch_size} is larger than the {n} training sentences")
    order_gen = torch.Generator().manual_seed(seed)
    bucketed = lengths is not None and pool_batches > 0
    while True:
        perm = torch.randperm(n, generator=order_gen)
        if bucketed:
            perm = torch.cat([pool[torch.argsort(lengths[pool], stable=True)]
                              for pool in perm.split(batch_size * pool_batches)])
        batches = [perm[pos:pos + batch_size] for pos in range(0, n - batch_size + 1, batch_size)]
        if bucketed:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=order_gen).tolist()]
        yield from batches


def local_rows(batch: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    """This rank's rows of a global batch (``rank::world_size``); all of it with one process."""
    return batch[list(ctx.shard(len(batch)))]


def _trim(x: torch.Tensor) -> torch.Tensor:
    """Cut the batch to its longest real sentence: padding past it costs time and changes nothing."""
    longest = int((x != PAD).sum(1).max().item())
    return x[:, :max(longest, 1)]


@torch.no_grad()
def accuracy(model, tokens, labels, ctx: RunContext, batch_size: int = 512) -> float:
    """Accuracy over all of (tokens, labels), each rank scoring its shard and the counts summed."""
    model.eval()
    rows = torch.tensor(list(ctx.shard(len(labels))), dtype=torch.long)
    # sorted by length, so each chunk is trimmed to its own longest sentence
    rows = rows[torch.argsort((tokens[rows] != PAD).sum(1), stable=True)]
    right = 0
    for i in range(0, len(rows), batch_size):
        idx = rows[i:i + batch_size]
        x = _trim(tokens[idx]).to(ctx.device)
        right += (model(x).argmax(-1).cpu() == labels[idx]).sum().item()
    model.train()
    right_all, n_all = ctx.sum_over_ranks([float(right), float(len(rows))])
    return right_all / n_all


OnBatch = Callable[[int, torch.Tensor, torch.nn.Module], None]


def train_one(arm: str, seed: int, cfg: DropHeadConfig, train, test, vocab_size: int, ctx: RunContext,
              on_batch: OnBatch | None = None, val=None) -> dict:
    """Train one arm with one seed and score it on ``test`` (and ``val`` when given);
    ``on_batch(step, local_indices, model)`` is called before each step's forward pass (tests
    look at the data order and the initial weights there)."""
    _, schedule = arm_settings(arm, cfg)
    net = build_model(arm, seed, cfg, vocab_size)
    model = ctx.wrap_model(net)
    # dropout masks: a stream per rank (the same stream on two ranks would mask their halves alike)
    torch.manual_seed(seed * 1_000 + 7 + ctx.rank)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps, warmup = cfg.steps, cfg.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    tokens, labels = train
    batches = global_batches(len(labels), cfg.batch_size, seed, lengths=(tokens != PAD).sum(1),
                             pool_batches=cfg.length_buckets)
    ctx.local_batch(cfg.batch_size)  # refuses a global batch that does not split evenly
    log_every = max(1, steps // 10)
    rate_sum = 0.0
    t0 = time.time()
    for step in range(steps):
        idx = local_rows(next(batches), ctx)
        ctx.count_examples(len(idx))
        rate = schedule.rate(step) if schedule else 0.0
        rate_sum += rate
        set_drophead_rate(net, rate)
        if on_batch is not None:
            on_batch(step, idx, net)
        x, y = _trim(tokens[idx]).to(ctx.device), labels[idx].to(ctx.device)
        with ctx.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP averages the gradients over ranks here
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0:
            ctx.log(step + 1, arm=arm, seed=seed, loss=round(ctx.mean_over_ranks(loss.item()), 5),
                    drophead_rate=round(rate, 4))
    final_loss = ctx.mean_over_ranks(loss.item())
    train_s = time.time() - t0
    del model, opt, sched  # release the DDP wrapper (and its reducer) while the process group is alive
    gc.collect()
    n_fit = min(cfg.train_eval_max, len(labels))
    out = {"accuracy": accuracy(net, *test, ctx),
           "train_accuracy": accuracy(net, tokens[:n_fit], labels[:n_fit], ctx),  # the fit gauge
           "final_loss": final_loss, "mean_drophead_rate": rate_sum / steps,
           "train_seconds": train_s, "seconds": time.time() - t0}
    if val is not None:
        out["val_accuracy"] = accuracy(net, *val, ctx)
    return out
