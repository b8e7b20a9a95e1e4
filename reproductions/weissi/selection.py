"""Choosing the lambdas on the held-out images, and the models that choice trained.

One grid at a time, each value trained on the first ``tune_seeds`` seeds and scored by its mean
held-out clean accuracy (the first, i.e. smallest, value wins a tie): L2's lambda, then
lambda_e for the log-norm term alone (``weissi_e``), then lambda_n with that lambda_e
(``weissi``). A ``none`` model per tuning seed checks the regime: its train minus held-out
accuracy says whether the models over-fit at all, without which no penalty can help.

Every model trained here is kept (`ModelBank`): a final arm at a tuning seed with the chosen
lambda is the very model trained here (same seed, init, batch order and penalty), so it is
reused instead of trained twice, and every grid model becomes a point of the frontier plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from reproductions.api import RunContext
from reproductions.weissi.data import Data
from reproductions.weissi.regularizers import Regularizer
from reproductions.weissi.training import Trained, holdout_scores, train_model


@dataclass
class GridPoint:
    arm: str  # the arm this penalty belongs to: none | l2 | weissi_e | weissi
    value: float | None  # the lambda searched (None for the no-penalty reference)
    models: list[Trained]
    holdout_accuracy: float  # mean over the tuning seeds


@dataclass
class ModelBank:
    """Trained models by (penalty, seed): a model is trained once however often it is asked for."""

    models: dict[tuple, Trained] = field(default_factory=dict)
    step: int = 0  # the next metrics.jsonl step, so runs follow each other on one axis

    def get(self, cfg: Any, reg: Regularizer, seed: int, data: Data, ctx: RunContext, tag: str) -> Trained:
        key = (reg.kind, reg.lam, reg.lambda_e, reg.lambda_n, seed)
        if key not in self.models:
            t = train_model(cfg, reg, seed, data, ctx, self.step, tag=tag)
            self.step += t.steps
            self.models[key] = t
        return self.models[key]


def choose_lambdas(cfg: Any, data: Data, seeds: Sequence[int], ctx: RunContext, bank: ModelBank
                   ) -> tuple[Any, dict[str, Any], list[GridPoint]]:
    """(cfg with the chosen lambdas, the search report, every grid point) — held-out images only."""
    report: dict[str, Any] = {}
    points: list[GridPoint] = []

    def point(arm: str, value: float | None, reg: Regularizer, tag: str) -> GridPoint:
        models = [bank.get(cfg, reg, s, data, ctx, tag) for s in seeds]
        acc = float(np.mean([holdout_scores(cfg, t, data, ctx)["holdout_accuracy"] for t in models]))
        p = GridPoint(arm, value, models, acc)
        points.append(p)
        return p

    def search(name: str, arm: str, grid: Sequence[float], make: Callable[[float], Regularizer]) -> float | None:
        if not grid:
            return None
        scores = [point(arm, v, make(v), f"tune_{name}={v:g}").holdout_accuracy for v in grid]
        best = grid[int(np.argmax(scores))]  # argmax takes the first of equal scores: the smaller lambda
        report[name] = {"grid": list(grid), "holdout_accuracy": scores, "chosen": best}
        return best

    if "none" in cfg.arms:
        ref = point("none", None, Regularizer("none"), "tune_none")
        train = float(np.mean([t.scores["train_accuracy"] for t in ref.models]))
        report["regime_check"] = {"arm": "none", "train_accuracy": train, "holdout_accuracy": ref.holdout_accuracy,
                                  "gap_points": round(100 * (train - ref.holdout_accuracy), 2)}
    kind = "weissi_decoupled" if cfg.weissi_decoupled else "weissi"
    l2 = search("l2_lambda", "l2", cfg.l2_grid, lambda v: Regularizer("l2", lam=v)) if "l2" in cfg.arms else None
    lam_e = (search("weissi_lambda_e", "weissi_e", cfg.lambda_e_grid, lambda v: Regularizer(kind, lambda_e=v))
             if {"weissi_e", "weissi"} & set(cfg.arms) else None)
    lam_e = cfg.weissi_lambda_e if lam_e is None else lam_e
    lam_n = (search("weissi_lambda_n", "weissi", cfg.lambda_n_grid,
                    lambda v: Regularizer(kind, lambda_e=lam_e, lambda_n=v)) if "weissi" in cfg.arms else None)
    chosen = replace(cfg, l2_lambda=cfg.l2_lambda if l2 is None else l2, weissi_lambda_e=lam_e,
                     weissi_lambda_n=cfg.weissi_lambda_n if lam_n is None else lam_n)
    report["selection"] = (f"best mean held-out clean accuracy over seeds {list(seeds)}, "
                           f"{len(data.holdout.y)} held-out images")
    return chosen, report, points
