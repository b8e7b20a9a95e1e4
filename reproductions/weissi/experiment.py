"""The experiment: a ReLU classifier on MNIST, regularisation arms, N paired seeds each.

Arms: ``none`` (plain cross-entropy), ``l2`` (cross-entropy + ``lam * sum ||W||^2 / 2``,
i.e. weight decay ``lam`` under SGD), ``weissi_e`` (the WEISSI log-norm term alone) and
``weissi`` (both WEISSI terms: log-norm and normalised L1, ``lambda_n > 0``). All arms
penalise exactly the same tensors (the Linear/Conv weights, never biases) and share the
optimizer, schedule, data order and initialisation per seed, so the only difference
between arms is the penalty.

Protocol (`run`): the lambdas are chosen on the held-out images (`selection`, the first
``tune_seeds`` seeds), the test split is then opened, each arm is trained on every seed
(a model the search already trained at a tuning seed is reused, not retrained) and
scored on the test images: clean and FGSM accuracy on all of them, PGD on the first
``pgd_images``. Every grid model is scored the same way for the frontier plot.

``run(config, ctx)`` returns ``{arm: {metric: {"mean", "std", "per_seed"}}}`` plus the
chosen lambdas, the regime check and the frontier points, and writes ``weight_norms.png``,
``table.png`` and ``frontier.png`` into ``ctx.out_dir``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from reproductions.api import ConfigError, RunContext, config_from_dict
from reproductions.weissi.data import holdout_split, load_data, synthetic_digits  # noqa: F401 (the experiment's API)
from reproductions.weissi.figures import ARM_METRICS, plot_frontier, plot_norms, plot_table
from reproductions.weissi.model import ModelConfig, build_model, shift_scale_
from reproductions.weissi.regularizers import Regularizer, l2_penalty, weight_matrices, weissi_penalty
from reproductions.weissi.selection import ModelBank, choose_lambdas
from reproductions.weissi.training import epoch_batches, test_scores  # noqa: F401 (epoch_batches: tests)

ARMS = ("none", "l2", "weissi_e", "weissi")
SUMMARY_KEYS = (*ARM_METRICS, "train_accuracy", "generalisation_gap", "log_norm_product")


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
    tune_seeds: int = 1  # the lambda search trains each grid value on the first this many seeds
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
    threads: int = 0  # torch CPU threads (0: torch's default)

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


def summarise(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "per_seed": [float(v) for v in arr]}


def _lambda_text(reg: Regularizer) -> dict[str, float]:
    return {"l2": {"lam": reg.lam}, "none": {}}.get(reg.kind, {"lambda_e": reg.lambda_e, "lambda_n": reg.lambda_n})


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    cfg = ExperimentConfig.from_dict(config)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(ctx.seed)
    data = load_data(cfg, ctx)
    ctx.note("data_source", data.source)
    ctx.note("split_sizes", {"train": len(data.train.y), "holdout": len(data.holdout.y), "test": data.n_test})
    ctx.note("world_size", ctx.world_size)
    ctx.note("torch_threads", torch.get_num_threads())
    ctx.note("batch", {"global": cfg.batch_size, "per_rank": ctx.local_batch(cfg.batch_size)})
    ctx.note("attacks", {"fgsm_eps": cfg.fgsm_eps, "pgd_eps": cfg.pgd_eps, "pgd_steps": cfg.pgd_steps,
                         "pgd_alpha": 2.5 * cfg.pgd_eps / cfg.pgd_steps, "pgd_random_start": True,
                         "pgd_images": min(cfg.pgd_images or data.n_test, data.n_test),
                         "pixel_range": [0, 1]})
    ctx.note("invariance_check", invariance_check(cfg, ctx.seed))
    seeds = cfg.seed_list(ctx.seed)
    ctx.note("seeds", seeds)

    t0 = time.time()
    bank = ModelBank()
    tune_seeds = seeds[:max(1, cfg.tune_seeds)]
    cfg, lambda_search, grid = choose_lambdas(cfg, data, tune_seeds, ctx, bank)
    ctx.note("lambda_search", lambda_search)
    for name, found in lambda_search.items():
        if isinstance(found, dict) and "chosen" in found:
            ctx.select(name, split=f"held-out {len(data.holdout.y)} training images", chosen=found["chosen"],
                       grid=found["grid"], scores=found["holdout_accuracy"],
                       rule=f"best mean held-out clean accuracy, seeds {tune_seeds}")
    ctx.begin_final_evaluation(fixed="architecture, epochs, seeds and grids fixed by the preset")
    ctx.note("tune_seconds", round(time.time() - t0, 1))
    ctx.note("regularizers", {
        "l2": f"loss += {cfg.l2_lambda:g} * sum_l ||W_l||_F^2 / 2",
        "weissi_e": f"loss += {cfg.weissi_lambda_e:g} * sum_l log ||W_l||_F",
        "weissi": (f"loss += {cfg.weissi_lambda_e:g} * sum_l log ||W_l||_F + {cfg.weissi_lambda_n:g} * "
                   f"sum_l ||W_l / ||W_l||_F||_1" + (" (log part as decoupled step)" if cfg.weissi_decoupled else "")),
        "layers": "every Linear/Conv weight, biases excluded",
    })

    t0 = time.time()
    runs: dict[str, list[Any]] = {arm: [] for arm in cfg.arms}
    reused = []
    with ctx.progress(len(cfg.arms) * len(seeds), "weissi runs") as advance:
        for seed in seeds:
            for arm in cfg.arms:
                n_before = len(bank.models)
                t = bank.get(cfg, cfg.regularizer(arm), seed, data, ctx, arm)
                if len(bank.models) == n_before:
                    reused.append(f"{arm}@seed{seed}")
                test_scores(cfg, t, data, ctx)
                runs[arm].append(t)
                advance(1)
    ctx.note("reused_from_selection", reused)
    frontier = []
    for p in grid:  # every grid model on the test images: descriptive only, nothing is chosen from it
        scores = [test_scores(cfg, t, data, ctx) for t in p.models]
        frontier.append({"arm": p.arm, "lambda": p.value, "holdout_accuracy": p.holdout_accuracy,
                         **{k: float(np.mean([s[k] for s in scores])) for k in (*ARM_METRICS, "train_accuracy")},
                         "penalty": _lambda_text(p.models[0].reg)})
    ctx.note("train_seconds", round(time.time() - t0, 1))

    metrics: dict[str, Any] = {arm: {k: summarise([t.scores[k] for t in ts]) for k in SUMMARY_KEYS}
                               for arm, ts in runs.items()}
    ctx.note("final_layer_norms", {arm: [t.trajectory[-1]["norms"] for t in ts] for arm, ts in runs.items()})
    if ctx.is_main:
        plot_norms({arm: [t.trajectory for t in ts] for arm, ts in runs.items()}, ctx.out_dir / "weight_norms.png")
        columns = ["clean acc", f"FGSM eps={cfg.fgsm_eps:g}", f"PGD-{cfg.pgd_steps} eps={cfg.pgd_eps:g}",
                   "train - test", "sum log||W||"]
        plot_table(metrics, columns, f"MNIST {cfg.arch.upper()} {cfg.n_layer}x{cfg.d_hidden}, test accuracy % "
                                     f"(mean ± std over {len(seeds)} seeds)", ctx.out_dir / "table.png")
        if frontier:
            plot_frontier(frontier, metrics, ctx.out_dir / "frontier.png")
    metrics["lambdas"] = {"l2": cfg.l2_lambda, "weissi_lambda_e": cfg.weissi_lambda_e,
                          "weissi_lambda_n": cfg.weissi_lambda_n}
    metrics["frontier"] = frontier
    metrics["examples_per_rank"] = ctx.examples_per_rank()
    return metrics
