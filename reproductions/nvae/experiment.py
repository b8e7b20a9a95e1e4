"""Train NVAE on dynamically binarized MNIST, measure test NLL (nats) and run the ablations.

One call of `run` trains the main arm ("nvae"), then, when the ablations get a
different budget than the main arm, an NVAE control arm ("nvae_control") with exactly
the ablations' budget, then each ablation arm; every arm is evaluated on the same
test images and each ablation is reported as a delta against the control. With
``seeds`` (a preset's pre-registered list) the control and every ablation are trained
once per seed, paired by seed (see `config`); a separate main arm runs on the first seed.
It writes:

* ``metrics.jsonl``: training curves (loss, ELBO, KL weight beta, lr) per arm and seed;
* ``samples.png``: ancestral samples at temperature 1.0 (left) and 0.7 (right);
* ``reconstructions.png``: test images (top row) and their reconstructions (bottom);
* metrics returned to the runner (``nll_nats`` is the headline number); with several
  seeds each compared number is ``{"mean", "std", "per_seed"}``, which the claims read.

Modules: `config` (the config and the arms), `batches` (data), `training` (one arm's
training), `evaluation` (NLL, ELBO, figures). Data parallelism: every rank draws the same
global batch and trains on its rows ``rank::world_size``; evaluation is sharded over ranks
and the sums are reduced. Only rank 0 writes.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from reproductions.api import RunContext
from reproductions.nvae.batches import BatchStream, Data, load_data
from reproductions.nvae.config import (ABLATIONS, ARMS, ConfigError, ExperimentConfig, arm_model_config,
                                       arm_spectral_coeff)
from reproductions.nvae.evaluation import evaluate, readjust_on_train_images, save_figures
from reproductions.nvae.model import NVAEConfig
from reproductions.nvae.training import arm_key, arm_seed, loss_fn, schedule, train_arm

__all__ = ["ABLATIONS", "ARMS", "BatchStream", "ConfigError", "Data", "ExperimentConfig", "arm_model_config",
           "arm_seed", "arm_spectral_coeff", "evaluate", "load_data", "loss_fn", "readjust_on_train_images",
           "run", "schedule"]

PAPER_NLL = 78.01
COMPARED = ("nll_nats", "elbo_nats", "kl_nats", "active_units", "train_steps", "train_seconds", "images_per_s",
            "iw_seconds", "eval_seconds")


def over_seeds(values: list[float], several: bool) -> Any:
    """One seed's number as it is; over several seeds ``{"mean", "std", "per_seed"}`` (the claims read
    ``per_seed``, in the order of the run's seeds)."""
    if not several:
        return values[0]
    return {"mean": round(statistics.fmean(values), 3),
            "std": round(statistics.stdev(values), 3) if len(values) > 1 else None,
            "per_seed": [round(float(v), 3) for v in values]}


def _combine(per_seed: list[dict], several: bool) -> dict:
    """An arm's metrics over its seeds: the compared numbers over seeds, the rest from the first seed."""
    out = dict(per_seed[0])
    for key in COMPARED:
        if all(isinstance(m.get(key), (int, float)) for m in per_seed):
            out[key] = over_seeds([m[key] for m in per_seed], several)
    if several:
        out["seeds_trained"] = len(per_seed)
    return out



def _note_plan(cfg: ExperimentConfig, data: Data, ctx: RunContext) -> None:
    ctx.note("data", data.description)
    ctx.note("data_source", data.source)
    ctx.note("train_images", len(data.train))
    if data.dynamic:
        ctx.note("test_binarization", f"numpy default_rng({cfg.test_binarization_seed}): pixel = u < grey/255, once")
    ctx.note("nll_estimator", (
        f"importance-weighted bound ({'bf16 autocast passes, fp32 densities' if cfg.iw_bf16 else 'fp32'}): "
        f"main arm k={cfg.iw_samples} on the first {cfg.iw_images} test images; control and ablations "
        f"k={cfg.ablation_iw_samples} on the first {cfg.ablation_iw_images}; paper: k=1000 on all 10k"))
    ctx.note("budgets", {arm: dict(zip(("steps", "train_seconds"), cfg.budget(arm))) for arm in cfg.arms()})
    ctx.note("paired_seeds", {arm: cfg.arm_seeds(arm, ctx.seed) for arm in cfg.arms()})
    ctx.note("optimizer", f"Adamax, eps={cfg.adam_eps}, weight_decay={cfg.weight_decay} (official: 1e-3, 3e-4)")
    ctx.note("world_size", ctx.world_size)
    ctx.note("batch", {"global": cfg.batch_size, "per_rank": ctx.local_batch(cfg.batch_size)})
    ctx.note("peak_mem", "CUDA max allocated" if ctx.device.type == "cuda" else "process peak RSS (CPU)")


def _train_all(cfg: ExperimentConfig, data: Data, ctx: RunContext) -> tuple[dict[str, dict] | None, dict]:
    """Train and evaluate every (arm, seed); ``(done, {})``, or ``(None, stats)`` when halted."""
    base = NVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()})
    saved = ctx.load_checkpoint()
    done: dict[str, dict] = dict(saved["done"]) if saved else {}
    main_is_control = cfg.control_arm() == "nvae" and bool(cfg.ablations)
    # seed-major order: an interrupted run has whole seeds of every arm, not one arm of every seed
    for seed in cfg.seed_list(ctx.seed):
        for arm in cfg.arms():
            key = arm_key(arm, seed)
            if key in done or seed not in cfg.arm_seeds(arm, ctx.seed):
                continue
            mcfg = arm_model_config(arm, base)
            model, stats = train_arm(arm, seed, cfg, mcfg, data, ctx, saved, done)
            if model is None:
                return None, stats
            k, n_iw = cfg.iw_budget(arm)
            metrics = {**stats, **evaluate(model, data, cfg, ctx, k, n_iw, seed), "model": mcfg.to_dict()}
            if main_is_control and arm == "nvae":  # the control's view of itself, at the ablations' k and images
                same = cfg.iw_budget("nvae") == cfg.iw_budget("nvae_control")
                metrics["control_nll_nats"] = metrics["nll_nats"] if same else evaluate(
                    model, data, cfg, ctx, *cfg.iw_budget("nvae_control"), seed)["nll_nats"]
            if arm == "nvae" and seed == cfg.seed_list(ctx.seed)[0] and ctx.is_main:
                metrics["figures"] = save_figures(model, data, ctx, cfg)
            done[key] = metrics
            ctx.log(metrics["train_steps"], arm=arm, seed=seed,
                    **{m: metrics[m] for m in ("nll_nats", "elbo_nats", "kl_nats")})
            ctx.save_checkpoint({"arm": None, "done": done})
    return done, {}


def _result(cfg: ExperimentConfig, done: dict[str, dict], ctx: RunContext) -> dict[str, Any]:
    seeds = cfg.seed_list(ctx.seed)
    several = len(seeds) > 1

    def runs(arm: str) -> list[dict]:
        return [done[arm_key(arm, s)] for s in cfg.arm_seeds(arm, ctx.seed)]

    result: dict[str, Any] = _combine(runs("nvae"), several)
    control = cfg.control_arm()
    if cfg.ablations:
        control_nll = ([m["control_nll_nats"] for m in runs("nvae")] if control == "nvae"
                       else [m["nll_nats"] for m in runs(control)])
        combined = _combine(runs(control), several)
        result["control"] = {"arm": control, "nll_nats": over_seeds(control_nll, several),
                             **{k: combined[k] for k in ("elbo_nats", "train_steps", "train_seconds")}}
        result["ablations"] = {arm: _combine(runs(arm), several) for arm in cfg.ablations}
        for arm in cfg.ablations:
            nll = [m["nll_nats"] for m in runs(arm)]
            result[f"nll_nats_{arm}"] = over_seeds(nll, several)
            result[f"delta_nats_{arm}"] = over_seeds([a - c for a, c in zip(nll, control_nll)], several)
    main_nll = [m["nll_nats"] for m in runs("nvae")]
    result["paper_nll_nats"] = PAPER_NLL
    result["gap_nats"] = round(statistics.fmean(main_nll) - PAPER_NLL, 3)
    if several:
        result["seeds"] = seeds
    result["examples_per_rank"] = ctx.examples_per_rank()
    return result


def run(config: dict, ctx: RunContext) -> dict:
    """Train and evaluate every arm of the preset; return the main arm's metrics plus ``control`` and
    ``ablations``."""
    cfg = ExperimentConfig.from_dict(config)
    data = load_data(cfg, ctx)
    _note_plan(cfg, data, ctx)
    ctx.begin_final_evaluation(fixed="every arm's model, steps, seeds and IW budget fixed by the preset; "
                                     "nothing selected")
    data = replace(data, test=data.test.open())
    done, halted = _train_all(cfg, data, ctx)
    if done is None:
        return {"halted": True, **halted}
    return _result(cfg, done, ctx)
