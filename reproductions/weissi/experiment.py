"""The experiment: one ReLU classifier on MNIST, four regularisation arms, N seeds each.

Arms: ``none`` (plain cross-entropy), ``l2`` (cross-entropy + ``lam * sum ||W||^2 / 2``,
i.e. weight decay ``lam`` under SGD), ``weissi_e`` (the WEISSI log-norm term alone) and
``weissi`` (both WEISSI terms: log-norm and normalised L1, ``lambda_n > 0``). All arms
penalise exactly the same tensors (the Linear/Conv weights, never biases) and share the
optimizer, schedule, data order and initialisation per seed, so the only difference
between arms is the penalty.

Data: the 60k MNIST training images minus a fixed held-out 5k (``holdout_images``,
chosen by ``holdout_seed``) train every model; the held-out 5k only choose the
lambdas (grid search on the first seed, best held-out clean accuracy); the 10k test
images only score the final models.

For each run we record test accuracy, accuracy under FGSM and PGD at the configured
L-inf radius, and per-epoch the Frobenius norm of every weight layer together with
``sum_l log ||W_l||`` (the log of the product of layer norms, the "intrinsic" scale that
WEISSI penalises and L2 leaves free to be shuffled between layers).

Data parallelism: every rank draws the same shuffled global batch and trains on its rows
``rank::world_size`` of it (DDP averages the gradients); evaluation is sharded and the
counts are summed over ranks. Only rank 0 writes.

``run(config, ctx)`` returns ``{arm: {metric: {"mean", "std", "per_seed"}}}`` plus the
chosen lambdas and the WEISSI-minus-L2 differences, and writes ``weight_norms.png`` and
``table.png`` into ``ctx.out_dir``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reproductions.api import ConfigError, RunContext, config_from_dict
from reproductions.data import DatasetMissing, load_mnist, resolve_data_dir
from reproductions.weissi.attacks import accuracy_under_attack
from reproductions.weissi.model import ModelConfig, build_model, shift_scale_
from reproductions.weissi.regularizers import Regularizer, l2_penalty, weight_matrices, weissi_penalty

ARM_METRICS = ("accuracy", "fgsm_accuracy", "pgd_accuracy")
ARMS = ("none", "l2", "weissi_e", "weissi")


@dataclass
class ExperimentConfig:
    # model
    arch: str = "mlp"
    d_hidden: int = 256
    n_layer: int = 2
    channels: int = 32
    norm: str = "none"
    # data
    train_images: int = 0  # 0 = every training image left after the held-out split
    test_images: int = 0  # 0 = all 10k test images
    holdout_images: int = 5000  # fixed part of the training images used only to choose lambdas
    holdout_seed: int = 1234
    allow_synthetic: bool = False  # only the smoke preset may fall back to synthetic images
    # optimisation (identical for every arm)
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.05
    momentum: float = 0.9
    epochs: int = 20
    batch_size: int = 128  # global batch; each of N processes trains on batch_size / N
    cosine: bool = True  # cosine-decay the learning rate to 0 over the run
    # arms and their lambdas (the grids, when given, replace the single values: chosen on the held-out images)
    arms: tuple[str, ...] = ARMS
    seeds: int | list[int] = 3  # a count (seeds ctx.seed..ctx.seed+n-1) or the runner's explicit list
    l2_lambda: float = 5e-4
    weissi_lambda_e: float = 0.05
    weissi_lambda_n: float = 1e-3
    weissi_decoupled: bool = False  # apply the log-norm part as a decoupled step instead
    l2_grid: tuple[float, ...] = ()
    lambda_e_grid: tuple[float, ...] = ()  # weissi_e's lambda_e; the weissi arm reuses the winner
    lambda_n_grid: tuple[float, ...] = ()  # weissi's lambda_n (> 0), with the chosen lambda_e
    # robustness
    fgsm_eps: float = 0.1
    pgd_eps: float = 0.1
    pgd_steps: int = 20
    pgd_images: int = 0  # PGD on the first this many test images (0 = all); clean and FGSM always use all
    eval_batch_size: int = 500

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        cfg = config_from_dict(cls, d, name="weissi")
        bad = [a for a in cfg.arms if a not in ARMS]
        if bad:
            raise ConfigError(f"weissi: unknown arms {bad}; choose from {list(ARMS)}")
        if "weissi" in cfg.arms and (cfg.weissi_lambda_n <= 0 or any(v <= 0 for v in cfg.lambda_n_grid)):
            raise ConfigError("weissi: the 'weissi' arm exercises the normalised-L1 term: lambda_n must be > 0 "
                              "(the log-norm term alone is the 'weissi_e' arm)")
        return cfg

    def seed_list(self, first: int) -> list[int]:
        if isinstance(self.seeds, int):
            return list(range(first, first + self.seeds))
        return [int(s) for s in self.seeds]

    def model_config(self) -> ModelConfig:
        return ModelConfig(arch=self.arch, d_hidden=self.d_hidden, n_layer=self.n_layer, channels=self.channels,
                           norm=self.norm)

    def regularizer(self, arm: str) -> Regularizer:
        if arm == "none":
            return Regularizer("none")
        if arm == "l2":
            return Regularizer("l2", lam=self.l2_lambda)
        kind = "weissi_decoupled" if self.weissi_decoupled else "weissi"
        if arm == "weissi_e":
            return Regularizer(kind, lambda_e=self.weissi_lambda_e, lambda_n=0.0)
        if arm == "weissi":
            return Regularizer(kind, lambda_e=self.weissi_lambda_e, lambda_n=self.weissi_lambda_n)
        raise ValueError(f"unknown arm {arm!r} (choose from {', '.join(ARMS)})")


# ---------------------------------------------------------------- data

@dataclass
class Split:
    x: torch.Tensor  # (N, 1, 28, 28) in [0, 1]
    y: torch.Tensor  # (N,) int64


@dataclass
class Data:
    train: Split  # trains every model
    holdout: Split  # chooses the lambdas, nothing else
    test: Any  # Sealed[Split]: scores the final models, readable only after ctx.begin_final_evaluation()
    source: str  # "mnist" | "synthetic": which files were read
    n_test: int = 0


def _to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def synthetic_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten fixed random blob prototypes plus pixel noise (``seed`` draws the samples): learnable, not MNIST."""
    g = torch.Generator().manual_seed(0)  # the same ten classes for train and test
    blur = F.avg_pool2d(torch.rand(10, 1, 28, 28, generator=g), 5, stride=1, padding=2)
    protos = (blur > blur.flatten(1).median(1).values.view(10, 1, 1, 1)).float()  # (10, 1, 28, 28) binary blobs
    g.manual_seed(1000 + seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (protos[y] + 0.5 * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return x, y


def holdout_split(n: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) of ``range(n)`` by a fixed permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[holdout:]), np.sort(perm[:holdout])


def load_data(cfg: ExperimentConfig, ctx: RunContext) -> Data:
    try:
        train, test = load_mnist(resolve_data_dir(ctx.data_dir))
    except DatasetMissing as e:
        if not cfg.allow_synthetic:
            raise
        ctx.note("data", f"synthetic 10-class images (MNIST missing: {e})")
        n_hold = min(cfg.holdout_images, 500)
        xtr, ytr = synthetic_digits((cfg.train_images or 2000) + n_hold, ctx.seed)
        xte, yte = synthetic_digits(cfg.test_images or 500, ctx.seed + 1)
        return Data(Split(xtr[n_hold:], ytr[n_hold:]), Split(xtr[:n_hold], ytr[:n_hold]),
                    ctx.seal(Split(xte, yte), "synthetic test images"), "synthetic", len(yte))
    tr_idx, ho_idx = holdout_split(len(train.images), cfg.holdout_images, cfg.holdout_seed)
    if cfg.train_images:
        tr_idx = tr_idx[: cfg.train_images]
    te = slice(0, cfg.test_images or None)
    data = Data(_to_split(train.images[tr_idx], train.labels[tr_idx]),
                _to_split(train.images[ho_idx], train.labels[ho_idx]),
                ctx.seal(_to_split(test.images[te], test.labels[te]), "MNIST test"), "mnist",
                len(test.labels[te]))
    ctx.note("data", f"train: {train.description} minus a fixed held-out {len(ho_idx)} (numpy default_rng("
                     f"{cfg.holdout_seed}) permutation), used {len(data.train.y)}; held-out {len(ho_idx)} choose "
                     f"the lambdas only; test: {test.description} (used {data.n_test})")
    return data


# ---------------------------------------------------------------- one training run

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


def train_one(cfg: ExperimentConfig, reg: Regularizer, seed: int, data: Data, ctx: RunContext, step0: int,
              *, tag: str, evaluate_on: str = "test") -> dict[str, Any]:
    """Train one model with one penalty; returns its final metrics and norm trajectory.

    ``evaluate_on="holdout"`` (lambda search) scores clean accuracy on the held-out images only.
    """
    dev = ctx.device
    xtr, ytr = data.train.x.to(dev), data.train.y.to(dev)
    torch.manual_seed(seed)  # same init and batch order for every arm at this seed
    model = build_model(cfg.model_config())
    forward = ctx.wrap_model(model)  # on the device; DDP with several processes
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (choose sgd or adam)")
    steps_per_epoch = len(xtr) // cfg.batch_size  # full global batches only: every rank gets its share
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if cfg.cosine else 1.0)
    order_gen = torch.Generator().manual_seed(seed)
    ctx.local_batch(cfg.batch_size)  # refuses a batch that does not split evenly

    trajectory = [{"epoch": 0, "norms": layer_norms(model)}]
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

    def score(split: Split, attack: str = "none", eps: float = 0.0) -> float:
        return sharded_accuracy(model, Split(split.x.to(dev), split.y.to(dev)), ctx, attack, eps,
                                batch_size=cfg.eval_batch_size, pgd_steps=cfg.pgd_steps, seed=seed)

    if evaluate_on == "holdout":
        return {"holdout_accuracy": score(data.holdout), "steps": step}
    return {
        "accuracy": score(test := data.test.open()),
        "train_accuracy": score(data.train),
        "fgsm_accuracy": score(test, "fgsm", cfg.fgsm_eps),
        "pgd_accuracy": score(Split(test.x[:cfg.pgd_images or None], test.y[:cfg.pgd_images or None]),
                              "pgd", cfg.pgd_eps),
        "log_norm_product": sum(math.log(n) for n in trajectory[-1]["norms"]),
        "trajectory": trajectory,
        "steps": step,
    }


def choose_lambdas(cfg: ExperimentConfig, data: Data, seed: int, ctx: RunContext) -> tuple[ExperimentConfig, dict]:
    """Grid search on the held-out images (one seed): L2's lambda, then WEISSI's lambda_e (log-norm term
    alone), then lambda_n with that lambda_e. Best held-out clean accuracy wins (first on ties)."""
    from dataclasses import replace

    report: dict[str, Any] = {}
    step0 = 0

    def search(name: str, grid, make_reg) -> float | None:
        nonlocal step0
        if not grid:
            return None
        scores = []
        for value in grid:
            r = train_one(cfg, make_reg(value), seed, data, ctx, step0, tag=f"tune_{name}={value:g}",
                          evaluate_on="holdout")
            step0 += r["steps"]
            scores.append(r["holdout_accuracy"])
        best = grid[int(np.argmax(scores))]
        report[name] = {"grid": list(grid), "holdout_accuracy": scores, "chosen": best}
        return best

    kind = "weissi_decoupled" if cfg.weissi_decoupled else "weissi"
    l2 = search("l2_lambda", cfg.l2_grid, lambda v: Regularizer("l2", lam=v)) if "l2" in cfg.arms else None
    lam_e = (search("weissi_lambda_e", cfg.lambda_e_grid, lambda v: Regularizer(kind, lambda_e=v))
             if {"weissi_e", "weissi"} & set(cfg.arms) else None)
    lam_e = cfg.weissi_lambda_e if lam_e is None else lam_e
    lam_n = (search("weissi_lambda_n", cfg.lambda_n_grid, lambda v: Regularizer(kind, lambda_e=lam_e, lambda_n=v))
             if "weissi" in cfg.arms else None)
    chosen = replace(cfg, l2_lambda=cfg.l2_lambda if l2 is None else l2, weissi_lambda_e=lam_e,
                     weissi_lambda_n=cfg.weissi_lambda_n if lam_n is None else lam_n)
    report["selection"] = f"best held-out clean accuracy on seed {seed}, {cfg.holdout_images} held-out images"
    return chosen, report


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
    colors = {"none": "tab:gray", "l2": "tab:blue", "weissi_e": "tab:orange", "weissi": "tab:red"}
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
    ctx.note("data_source", data.source)
    ctx.note("split_sizes", {"train": len(data.train.y), "holdout": len(data.holdout.y), "test": data.n_test})
    ctx.note("world_size", ctx.world_size)
    ctx.note("batch", {"global": cfg.batch_size, "per_rank": ctx.local_batch(cfg.batch_size)})
    ctx.note("attacks", {"fgsm_eps": cfg.fgsm_eps, "pgd_eps": cfg.pgd_eps, "pgd_steps": cfg.pgd_steps,
                         "pgd_alpha": 2.5 * cfg.pgd_eps / cfg.pgd_steps, "pgd_random_start": True,
                         "pgd_images": min(cfg.pgd_images or data.n_test, data.n_test),
                         "pixel_range": [0, 1]})
    ctx.note("invariance_check", invariance_check(cfg, ctx.seed))
    seeds = cfg.seed_list(ctx.seed)
    ctx.note("seeds", seeds)

    t0 = time.time()
    cfg, lambda_search = choose_lambdas(cfg, data, seeds[0], ctx)
    ctx.note("lambda_search", lambda_search)
    for name, found in lambda_search.items():
        if isinstance(found, dict):
            ctx.select(name, split=f"held-out {len(data.holdout.y)} training images", chosen=found["chosen"],
                       grid=found["grid"], scores=found["holdout_accuracy"],
                       rule=f"best held-out clean accuracy, seed {seeds[0]}")
    ctx.begin_final_evaluation(fixed="architecture, epochs and grids fixed by the preset")
    ctx.note("tune_seconds", round(time.time() - t0, 1))
    ctx.note("regularizers", {
        "l2": f"loss += {cfg.l2_lambda:g} * sum_l ||W_l||_F^2 / 2",
        "weissi_e": f"loss += {cfg.weissi_lambda_e:g} * sum_l log ||W_l||_F",
        "weissi": (f"loss += {cfg.weissi_lambda_e:g} * sum_l log ||W_l||_F + {cfg.weissi_lambda_n:g} * "
                   f"sum_l ||W_l / ||W_l||_F||_1" + (" (log part as decoupled step)" if cfg.weissi_decoupled else "")),
        "layers": "every Linear/Conv weight, biases excluded",
    })

    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in cfg.arms}
    t0 = time.time()
    step0 = 0
    with ctx.progress(len(cfg.arms) * len(seeds), "weissi runs") as advance:
        for seed in seeds:
            for arm in cfg.arms:
                r = train_one(cfg, cfg.regularizer(arm), seed, data, ctx, step0, tag=arm)
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
    metrics["lambdas"] = {"l2": cfg.l2_lambda, "weissi_lambda_e": cfg.weissi_lambda_e,
                          "weissi_lambda_n": cfg.weissi_lambda_n}
    metrics["examples_per_rank"] = [round(ctx.sum_over_ranks([ctx.examples_seen if r == ctx.rank else 0])[0])
                                    for r in range(ctx.world_size)]
    return metrics
