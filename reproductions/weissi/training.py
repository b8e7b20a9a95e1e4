"""One training run (one penalty, one seed) and the scores of a trained model.

Every arm at a given seed shares the initialisation, the batch order, the optimizer and the
schedule: the penalty is the only difference. Data parallelism: every rank draws the same
shuffled global batch and trains on its rows ``rank::world_size`` (DDP averages the
gradients); evaluation is sharded and the counts summed over ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from reproductions.api import RunContext
from reproductions.weissi.attacks import accuracy_under_attack
from reproductions.weissi.data import Data, Split
from reproductions.weissi.model import build_model
from reproductions.weissi.regularizers import Regularizer, weight_matrices


@dataclass
class Trained:
    """A trained model with how it was made; `scores` caches what it has been scored on."""

    model: torch.nn.Module
    reg: Regularizer
    seed: int
    trajectory: list[dict[str, Any]]  # per epoch: {"epoch", "norms", "train_ce", "penalty"}
    steps: int
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def log_norm_product(self) -> float:
        return sum(math.log(n) for n in self.trajectory[-1]["norms"])


def layer_norms(model: torch.nn.Module) -> list[float]:
    return [float(w.detach().norm()) for w in weight_matrices(model)]


def sharded_accuracy(model: torch.nn.Module, split: Split, ctx: RunContext, attack: str = "none",
                     eps: float = 0.0, *, batch_size: int = 500, pgd_steps: int = 20, seed: int = 0) -> float:
    """Accuracy on `split` (under `attack`): each rank scores its shard, the counts are summed."""
    rows = torch.tensor(list(ctx.shard(len(split.y))), dtype=torch.long)
    correct = 0.0
    if len(rows):
        x, y = split.x[rows.to(split.x.device)], split.y[rows.to(split.y.device)]
        correct = accuracy_under_attack(model, x, y, attack, eps, batch_size=batch_size, pgd_steps=pgd_steps,
                                        seed=seed) * len(rows)
    return ctx.sum_over_ranks([correct])[0] / len(split.y)


def epoch_batches(n: int, batch_size: int, gen: torch.Generator, ctx: RunContext):
    """This rank's training indices for each step of one epoch.

    Every rank draws the same permutation of ``range(n)`` and cuts it into full global
    batches (the tail is dropped); a rank keeps rows ``rank::world_size`` of each, so the
    ranks' shards are disjoint and together form exactly the one-process batch.
    """
    perm = torch.randperm(n, generator=gen)
    rows = torch.tensor(list(ctx.shard(batch_size)), dtype=torch.long)
    for i in range(n // batch_size):
        yield perm[i * batch_size:(i + 1) * batch_size][rows]


def _optimizer(cfg: Any, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r} (choose sgd or adam)")


def train_model(cfg: Any, reg: Regularizer, seed: int, data: Data, ctx: RunContext, step0: int, *,
                tag: str) -> Trained:
    """Train one model with one penalty (`cfg`: the ExperimentConfig); logs one row per epoch."""
    dev = ctx.device
    xtr, ytr = data.train.x.to(dev), data.train.y.to(dev)
    torch.manual_seed(seed)  # same init and batch order for every arm at this seed
    model = build_model(cfg.model_config())
    forward = ctx.wrap_model(model)  # on the device; DDP with several processes
    opt = _optimizer(cfg, model)
    steps_per_epoch = len(xtr) // cfg.batch_size  # full global batches only: every rank gets its share
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if cfg.cosine else 1.0)
    order_gen = torch.Generator().manual_seed(seed)
    ctx.local_batch(cfg.batch_size)  # refuses a batch that does not split evenly

    trajectory: list[dict[str, Any]] = [{"epoch": 0, "norms": layer_norms(model)}]
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        loss_sum = pen_sum = 0.0
        for idx in epoch_batches(len(xtr), cfg.batch_size, order_gen, ctx):
            idx = idx.to(dev)
            with ctx.autocast():
                ce = F.cross_entropy(forward(xtr[idx]), ytr[idx])
            pen = reg.penalty(model)
            opt.zero_grad(set_to_none=True)
            (ce + pen).backward()
            opt.step()
            reg.after_step(model, sched.get_last_lr()[0])
            sched.step()
            ctx.count_examples(len(idx))
            loss_sum += ce.item()
            pen_sum += pen.item()
            step += 1
        norms = layer_norms(model)
        row = {"epoch": epoch, "norms": norms, "train_ce": ctx.mean_over_ranks(loss_sum / steps_per_epoch),
               "penalty": pen_sum / steps_per_epoch}
        trajectory.append(row)
        ctx.log(step0 + step, arm=tag, seed=seed, epoch=epoch, train_ce=row["train_ce"], penalty=row["penalty"],
                log_norm_product=sum(math.log(n) for n in norms), **{f"norm_{k}": n for k, n in enumerate(norms)})
    return Trained(model, reg, seed, trajectory, step)


def _score(cfg: Any, t: Trained, split: Split, ctx: RunContext, attack: str = "none", eps: float = 0.0) -> float:
    return sharded_accuracy(t.model, split.to(ctx.device), ctx, attack, eps, batch_size=cfg.eval_batch_size,
                            pgd_steps=cfg.pgd_steps, seed=t.seed)


def holdout_scores(cfg: Any, t: Trained, data: Data, ctx: RunContext) -> dict[str, float]:
    """Clean accuracy on the held-out images (what selection uses) and on the training images."""
    if "holdout_accuracy" not in t.scores:
        t.scores["holdout_accuracy"] = _score(cfg, t, data.holdout, ctx)
        t.scores["train_accuracy"] = _score(cfg, t, data.train, ctx)
    return {k: t.scores[k] for k in ("holdout_accuracy", "train_accuracy")}


def test_scores(cfg: Any, t: Trained, data: Data, ctx: RunContext) -> dict[str, float]:
    """Clean and FGSM accuracy on the test images, PGD on the first `pgd_images`; opens the sealed split."""
    if "accuracy" not in t.scores:
        test = data.test.open()
        if "train_accuracy" not in t.scores:
            t.scores["train_accuracy"] = _score(cfg, t, data.train, ctx)
        t.scores["accuracy"] = _score(cfg, t, test, ctx)
        t.scores["fgsm_accuracy"] = _score(cfg, t, test, ctx, "fgsm", cfg.fgsm_eps)
        t.scores["pgd_accuracy"] = _score(cfg, t, test.head(cfg.pgd_images), ctx, "pgd", cfg.pgd_eps)
        t.scores["generalisation_gap"] = t.scores["train_accuracy"] - t.scores["accuracy"]
        t.scores["log_norm_product"] = t.log_norm_product
    return {k: t.scores[k] for k in ("accuracy", "train_accuracy", "fgsm_accuracy", "pgd_accuracy",
                                     "generalisation_gap", "log_norm_product")}
