"""The experiment: one ReLU classifier on MNIST, three regularisation arms, N seeds each.

Arms: ``none`` (plain cross-entropy), ``l2`` (cross-entropy + ``lam * sum ||W||^2 / 2``,
i.e. weight decay ``lam`` under SGD), ``weissi`` (cross-entropy + the WEISSI term).
All three penalise exactly the same tensors (the Linear/Conv weights, never biases) and
share the optimizer, schedule, data order and initialisation per seed, so the only
difference between arms is the penalty.

For each run we record test accuracy, accuracy under FGSM and PGD at the configured
L-inf radius, and per-epoch the Frobenius norm of every weight layer together with
``sum_l log ||W_l||`` (the log of the product of layer norms, the "intrinsic" scale that
WEISSI penalises and L2 leaves free to be shuffled between layers).

``run(config, ctx)`` returns ``{arm: {metric: {"mean", "std", "per_seed"}}}`` and writes
``weight_norms.png`` and ``table.png`` into ``ctx.out_dir``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reproductions.api import RunContext, config_from_dict
from reproductions.data import DatasetMissing, load_mnist, resolve_data_dir
from reproductions.weissi.attacks import accuracy_under_attack
from reproductions.weissi.model import ModelConfig, build_model, shift_scale_
from reproductions.weissi.regularizers import (Regularizer, l2_penalty, weight_matrices, weissi_penalty)

ARM_METRICS = ("accuracy", "fgsm_accuracy", "pgd_accuracy")


@dataclass
class ExperimentConfig:
    # model
    arch: str = "mlp"
    hidden: int = 256
    depth: int = 2
    channels: int = 32
    norm: str = "none"
    # data
    train_limit: int = 0  # 0 = every training image available
    test_limit: int = 0
    allow_synthetic: bool = False  # only the smoke preset may fall back to synthetic images
    # optimisation (identical for every arm)
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.05
    momentum: float = 0.9
    epochs: int = 20
    batch_size: int = 128
    cosine: bool = True  # cosine-decay the learning rate to 0 over the run
    # arms
    arms: tuple[str, ...] = ("none", "l2", "weissi")
    seeds: int | list[int] = 3  # a count (seeds ctx.seed..ctx.seed+n-1) or the runner's explicit list
    l2_lambda: float = 5e-4
    weissi_lambda_e: float = 0.05
    weissi_lambda_n: float = 0.0
    weissi_decoupled: bool = False  # apply the log-norm part as a decoupled step instead
    # robustness
    fgsm_eps: float = 0.1
    pgd_eps: float = 0.1
    pgd_steps: int = 20
    eval_batch: int = 500

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        return config_from_dict(cls, d, name="weissi")

    def seed_list(self, first: int) -> list[int]:
        if isinstance(self.seeds, int):
            return list(range(first, first + self.seeds))
        return [int(s) for s in self.seeds]

    def model_config(self) -> ModelConfig:
        return ModelConfig(arch=self.arch, hidden=self.hidden, depth=self.depth, channels=self.channels,
                           norm=self.norm)

    def regularizer(self, arm: str) -> Regularizer:
        if arm == "none":
            return Regularizer("none")
        if arm == "l2":
            return Regularizer("l2", lam=self.l2_lambda)
        if arm == "weissi":
            kind = "weissi_decoupled" if self.weissi_decoupled else "weissi"
            return Regularizer(kind, lambda_e=self.weissi_lambda_e, lambda_n=self.weissi_lambda_n)
        raise ValueError(f"unknown arm {arm!r} (choose none, l2, weissi)")


# ---------------------------------------------------------------- data

def _to_tensors(images: np.ndarray, labels: np.ndarray, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    return x, torch.from_numpy(labels.astype(np.int64))


def synthetic_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten fixed random blob prototypes plus pixel noise (``seed`` draws the samples): learnable, not MNIST."""
    g = torch.Generator().manual_seed(0)  # the same ten classes for train and test
    blur = F.avg_pool2d(torch.rand(10, 1, 28, 28, generator=g), 5, stride=1, padding=2)
    protos = (blur > blur.flatten(1).median(1).values.view(10, 1, 1, 1)).float()  # (10, 1, 28, 28) binary blobs
    g.manual_seed(1000 + seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (protos[y] + 0.5 * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return x, y


def load_data(cfg: ExperimentConfig, ctx: RunContext):
    try:
        train, test = load_mnist(resolve_data_dir(ctx.data_dir))
    except DatasetMissing as e:
        if not cfg.allow_synthetic:
            raise
        ctx.note("data", f"synthetic 10-class images (MNIST missing: {e})")
        xtr, ytr = synthetic_digits(cfg.train_limit or 2000, ctx.seed)
        xte, yte = synthetic_digits(cfg.test_limit or 500, ctx.seed + 1)
        return xtr, ytr, xte, yte
    xtr, ytr = _to_tensors(train.images, train.labels, cfg.train_limit)
    xte, yte = _to_tensors(test.images, test.labels, cfg.test_limit)
    ctx.note("data", f"train: {train.description} (used {len(xtr)}); test: {test.description} (used {len(xte)})")
    return xtr, ytr, xte, yte


# ---------------------------------------------------------------- one training run

def layer_norms(model: torch.nn.Module) -> list[float]:
    return [float(w.detach().norm()) for w in weight_matrices(model)]


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)


def train_one(cfg: ExperimentConfig, arm: str, seed: int, data, ctx: RunContext, step0: int) -> dict[str, Any]:
    """Train one model with one arm's penalty; returns its final metrics and norm trajectory."""
    xtr, ytr, xte, yte = (t.to(ctx.device) for t in data)
    torch.manual_seed(seed)  # same init and batch order for every arm at this seed
    model = build_model(cfg.model_config()).to(ctx.device)
    reg = cfg.regularizer(arm)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (choose sgd or adam)")
    steps_per_epoch = math.ceil(len(xtr) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if cfg.cosine else 1.0)
    order_gen = torch.Generator().manual_seed(seed)

    trajectory = [{"epoch": 0, "norms": layer_norms(model)}]
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(xtr), generator=order_gen).to(ctx.device)
        loss_sum = pen_sum = 0.0
        for i in range(0, len(xtr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            with ctx.autocast():
                ce = F.cross_entropy(model(xtr[idx]), ytr[idx])
            pen = reg.penalty(model)
            opt.zero_grad(set_to_none=True)
            (ce + pen).backward()
            opt.step()
            reg.after_step(model, sched.get_last_lr()[0])
            sched.step()
            loss_sum += ce.item()
            pen_sum += pen.item()
            step += 1
        norms = layer_norms(model)
        row = {"epoch": epoch, "norms": norms, "train_ce": loss_sum / steps_per_epoch,
               "penalty": pen_sum / steps_per_epoch, "test_acc": accuracy(model, xte, yte)}
        trajectory.append(row)
        ctx.log(step0 + step, arm=arm, seed=seed, epoch=epoch, train_ce=row["train_ce"], penalty=row["penalty"],
                test_acc=row["test_acc"], log_norm_product=sum(math.log(n) for n in norms),
                **{f"norm_{k}": n for k, n in enumerate(norms)})

    result = {
        "accuracy": accuracy(model, xte, yte),
        "train_accuracy": accuracy(model, xtr, ytr),
        "fgsm_accuracy": accuracy_under_attack(model, xte, yte, "fgsm", cfg.fgsm_eps, batch_size=cfg.eval_batch),
        "pgd_accuracy": accuracy_under_attack(model, xte, yte, "pgd", cfg.pgd_eps, batch_size=cfg.eval_batch,
                                              pgd_steps=cfg.pgd_steps, seed=seed),
        "log_norm_product": sum(math.log(n) for n in trajectory[-1]["norms"]),
        "trajectory": trajectory,
        "steps": step,
    }
    return result


# ---------------------------------------------------------------- summary, plots

def summarise(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "per_seed": [float(v) for v in arr]}


def invariance_check(cfg: ExperimentConfig, seed: int, c: float = 4.0) -> dict[str, float]:
    """Shift scale between the first two layers of a fresh model: how much each penalty moves."""
    torch.manual_seed(seed)
    model = build_model(cfg.model_config()).eval()
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        out0, l2_0 = model(x), float(l2_penalty(weight_matrices(model)))
        w0 = float(weissi_penalty(weight_matrices(model), 1.0, 1.0))
        shift_scale_(model, 0, c)
        out1, l2_1 = model(x), float(l2_penalty(weight_matrices(model)))
        w1 = float(weissi_penalty(weight_matrices(model), 1.0, 1.0))
    return {"c": c, "max_output_change": float((out1 - out0).abs().max()),
            "l2_before": l2_0, "l2_after": l2_1, "weissi_before": w0, "weissi_after": w1}


def plot_norms(runs: dict[str, list[dict[str, Any]]], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(runs)
    n_layers = len(runs[arms[0]][0]["trajectory"][0]["norms"])
    fig, axes = plt.subplots(1, n_layers + 1, figsize=(4 * (n_layers + 1), 3.4))
    colors = {"none": "tab:gray", "l2": "tab:blue", "weissi": "tab:red"}
    for arm in arms:
        for r in runs[arm]:
            ep = [t["epoch"] for t in r["trajectory"]]
            norms = np.array([t["norms"] for t in r["trajectory"]])  # (epochs+1, layers)
            for k in range(n_layers):
                axes[k].plot(ep, norms[:, k], color=colors.get(arm), alpha=0.7,
                             label=arm if r is runs[arm][0] else None)
            axes[-1].plot(ep, np.log(norms).sum(1), color=colors.get(arm), alpha=0.7,
                          label=arm if r is runs[arm][0] else None)
    for k in range(n_layers):
        axes[k].set_title(f"||W_{k + 1}||_F")
        axes[k].set_xlabel("epoch")
    axes[-1].set_title("sum_l log ||W_l||_F")
    axes[-1].set_xlabel("epoch")
    axes[0].legend()
    fig.suptitle("Weight-norm trajectories (one line per seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_table(metrics: dict[str, dict[str, Any]], cfg: ExperimentConfig, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["clean acc", f"FGSM eps={cfg.fgsm_eps:g}", f"PGD-{cfg.pgd_steps} eps={cfg.pgd_eps:g}",
            "sum log||W||"]
    keys = [*ARM_METRICS, "log_norm_product"]
    cells = []
    for arm, m in metrics.items():
        row = []
        for k in keys:
            s = m[k]
            row.append(f"{s['mean']:.2f} ± {s['std']:.2f}" if k == "log_norm_product"
                       else f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}")
        cells.append(row)
    fig, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * (len(cells) + 1)))
    ax.axis("off")
    table = ax.table(cellText=cells, rowLabels=list(metrics), colLabels=cols, loc="center")
    table.scale(1, 1.5)
    n = len(next(iter(metrics.values()))["accuracy"]["per_seed"])
    ax.set_title(f"MNIST {cfg.arch.upper()}, test accuracy % (mean ± std over {n} seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- entry point

def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    cfg = ExperimentConfig.from_dict(config)
    torch.manual_seed(ctx.seed)
    data = load_data(cfg, ctx)
    ctx.note("regularizers", {
        "l2": f"loss += {cfg.l2_lambda:g} * sum_l ||W_l||_F^2 / 2",
        "weissi": (f"loss += {cfg.weissi_lambda_e:g} * sum_l log ||W_l||_F + {cfg.weissi_lambda_n:g} * "
                   f"sum_l ||W_l / ||W_l||_F||_1" + (" (log part as decoupled step)" if cfg.weissi_decoupled else "")),
        "layers": "every Linear/Conv weight, biases excluded",
    })
    ctx.note("attacks", {"fgsm_eps": cfg.fgsm_eps, "pgd_eps": cfg.pgd_eps, "pgd_steps": cfg.pgd_steps,
                         "pgd_alpha": 2.5 * cfg.pgd_eps / cfg.pgd_steps, "pgd_random_start": True,
                         "pixel_range": [0, 1]})
    ctx.note("invariance_check", invariance_check(cfg, ctx.seed))

    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in cfg.arms}
    t0 = time.time()
    step0 = 0
    seeds = cfg.seed_list(ctx.seed)
    ctx.note("seeds", seeds)
    with ctx.progress(len(cfg.arms) * len(seeds), "weissi runs") as advance:
        for seed in seeds:
            for arm in cfg.arms:
                r = train_one(cfg, arm, seed, data, ctx, step0)
                step0 += r["steps"]
                runs[arm].append(r)
                advance(1)
    ctx.note("train_seconds", round(time.time() - t0, 1))

    metrics: dict[str, Any] = {}
    for arm, rs in runs.items():
        metrics[arm] = {k: summarise([r[k] for r in rs])
                        for k in (*ARM_METRICS, "train_accuracy", "log_norm_product")}
    ctx.note("final_layer_norms", {arm: [r["trajectory"][-1]["norms"] for r in rs] for arm, rs in runs.items()})
    if ctx.is_main:
        plot_norms(runs, ctx.out_dir / "weight_norms.png")
        plot_table(metrics, cfg, ctx.out_dir / "table.png")
    return metrics
