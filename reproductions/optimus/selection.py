"""Choosing the KL threshold λ on PTB valid, with one seed, before the test split opens.

The trials use the first seed of the run. When a trial trains exactly what the final run
would (same steps, same seed), its LM control and the chosen λ's Optimus model ARE that
seed's final models: training never reads the test split, so retraining them would give the
same weights. The run reuses them instead of training them twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from reproductions.api import RunContext
from reproductions.optimus.config import ExperimentConfig
from reproductions.optimus.evaluation import evaluate
from reproductions.optimus.tokenizer import Vocab
from reproductions.optimus.training import train_arm

# The targets of the from-scratch bar (card claims): the choice must keep z informative.
SELECT_MI, SELECT_AU = 0.5, 4
SELECT_RULE = (f"among lambdas whose valid MI >= {SELECT_MI} nats and AU >= {SELECT_AU}, the lowest valid ppl_iw; "
               "if none qualifies, the highest valid MI")


def choose_lambda(trials: dict[float, dict[str, float]]) -> float:
    """The `SELECT_RULE` choice among {lambda: valid metrics}."""
    ok = [lam for lam, m in trials.items() if m["mi"] >= SELECT_MI and m["au"] >= SELECT_AU]
    if ok:
        return min(ok, key=lambda lam: trials[lam]["ppl_iw"])
    return max(trials, key=lambda lam: trials[lam]["mi"])


def trial_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config of one trial: the run's own, or shortened to `select_steps` with its schedule scaled."""
    if cfg.trial_steps == cfg.steps:
        return cfg
    n = cfg.trial_steps
    return replace(cfg, steps=n, eval_every=n, ae_pretrain_steps=round(cfg.ae_pretrain_steps * n / cfg.steps),
                   warmup_steps=min(cfg.warmup_steps, n // 10 or 1))


def select_lambda(cfg: ExperimentConfig, ctx: RunContext, vocab: Vocab, train, valid, *, seed: int,
                  lm_state: dict[str, torch.Tensor] | None,
                  ) -> tuple[ExperimentConfig, dict[str, Any], dict[str, torch.nn.Module]]:
    """(the config with the chosen lambda, the trials' summary, the models the final run may reuse)."""
    short = trial_config(cfg)
    phase = "select"
    lm = train_arm("lm", short, ctx, vocab, train, valid, seed=seed, lm_state=lm_state, phase=phase)
    lm_ppl = evaluate("lm", lm, vocab, valid, short, ctx, seed=seed)["ppl"]
    K = cfg.select_iw_samples or cfg.iw_samples
    trials: dict[float, dict[str, float]] = {}
    models: dict[float, torch.nn.Module] = {}
    for lam in cfg.lambda_grid:
        trial = replace(short, kl_threshold=lam)
        models[lam] = train_arm("optimus", trial, ctx, vocab, train, valid, seed=seed, lm_state=lm_state, phase=phase)
        m = evaluate("optimus", models[lam], vocab, valid, trial, ctx, iw_samples=K, seed=seed)
        trials[lam] = {"ppl_iw": m["ppl_iw"], "mi": m["mi"], "au": m["au"], "kl": m["kl"],
                       "ppl_iw_over_lm": m["ppl_iw"] / lm_ppl}
        ctx.log(short.steps, arm="optimus", seed=seed, split="selection", kl_threshold=lam, **trials[lam])
    chosen = choose_lambda(trials)
    start = f"from the LM pre-trained {cfg.pretrain_steps} steps, " if lm_state is not None else ""
    ctx.select("kl_threshold", split=f"PTB valid ({len(valid)} sentences)", chosen=chosen,
               grid=list(cfg.lambda_grid), scores=[trials[lam] for lam in cfg.lambda_grid],
               rule=f"{SELECT_RULE}; seed {seed} only; {start}{short.steps}-step trials of the Optimus arm, "
                    f"IW K={K}; the LM control at the same steps: valid ppl {lm_ppl:.4g}")
    reuse = {"lm": lm, "optimus": models[chosen]} if short is cfg else {}
    return replace(cfg, kl_threshold=chosen), {"lm_valid_ppl": lm_ppl, "trials": trials, "chosen": chosen}, reuse
