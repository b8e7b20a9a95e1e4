"""SST-2 from scratch: dropout vs DropHead (fixed at the peak, fixed at the mean) vs Scheduled DropHead.

Every arm trains the same small transformer classifier (`TextClassifier`) on GLUE SST-2 train
minus a fixed validation split and is scored once, after the last step, on GLUE dev (our test
set: sealed until then, no model selection on it). Seed ``s`` gives every arm the same initial
weights and the same batch order, so the per-seed differences are paired.

Arms (rates from the config):

* ``none``               no regularisation at all (the regime check: dropout must help here);
* ``dropout``            standard dropout (embeddings, attention weights, residual, FFN);
* ``drophead``           DropHead at a fixed rate (the presets: the V schedule's peak), + dropout;
* ``drophead_mean``      DropHead at a fixed rate equal to the V schedule's mean rate over
  training, + dropout: the rate-matched control, so the schedule's *shape* is what is compared;
* ``scheduled_drophead`` V-scheduled DropHead, + dropout: ``drophead_start`` → 0 at the end of
  the learning-rate warm-up → ``drophead_end`` at the last step (§3.2).

The DropHead arms keep the standard dropout because the paper's claim is an improvement
over a regular (dropout-trained) transformer; ``drophead_with_dropout=false`` tests DropHead alone.
Data, training and the summaries live in `data`, `training` and `summary`.
"""

from __future__ import annotations

import time

from reproductions.api import RunContext
from reproductions.drophead.config import ARMS, DropHeadConfig, load_config
from reproductions.drophead.data import load_data, synthetic_sst2
from reproductions.drophead.summary import (arm_summary, mean_std, paired_difference, plot_arms,
                                            t_quantile_975)
from reproductions.drophead.training import (accuracy, arm_settings, build_model, global_batches, local_rows,
                                             train_one, v_schedule)

# the paired differences run.json carries (unadjusted); the regime check first
DIFFERENCES = (("dropout", "none"), ("scheduled_drophead", "dropout"), ("scheduled_drophead", "none"),
               ("drophead", "dropout"), ("drophead_mean", "dropout"), ("scheduled_drophead", "drophead"),
               ("scheduled_drophead", "drophead_mean"))


def run(config: dict, ctx: RunContext) -> dict:
    cfg = load_config(config)
    splits = load_data(cfg, ctx)
    ctx.begin_final_evaluation(fixed="arms, seeds, steps and drop rates fixed by the preset (its settings were "
                                     "tried on the validation split before the run, see the card); accuracy "
                                     "after the last step (no early stopping)")
    test = splits.test.open()
    arms = list(cfg.arms)
    given = cfg.seeds
    seeds = [int(s) for s in given] if isinstance(given, (list, tuple)) else [ctx.seed + i for i in range(given)]
    v = v_schedule(cfg)
    ctx.note("design", f"{len(arms)} arms x {len(seeds)} paired seeds {seeds}; accuracy after the last step "
                       "on the test set (no early stopping, no selection on it)")
    ctx.note("schedule", f"scheduled_drophead: {cfg.schedule} {cfg.drophead_start} -> 0 at step {cfg.turn_step} "
                         f"({'end of the lr warm-up' if cfg.turn is None else f'turn={cfg.turn}'}) -> "
                         f"{cfg.drophead_end} at step {cfg.steps}; mean rate {v.mean_rate():.4f} "
                         f"(the drophead_mean arm), peak {v.peak_rate():.4f}; drophead arm fixed at {cfg.drophead}")
    ctx.note("data_parallel", {"world_size": ctx.world_size, "global_batch": cfg.batch_size,
                               "local_batch": ctx.local_batch(cfg.batch_size),
                               "rows_of_each_batch": "rank::world_size"})
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    t0 = time.time()
    with ctx.progress(len(arms) * len(seeds), "arms x seeds") as advance:
        for seed in seeds:
            for arm in arms:
                r = train_one(arm, seed, cfg, splits.train, test, splits.vocab_size, ctx, val=splits.val)
                results[arm].append(r)
                ctx.log(cfg.steps, arm=arm, seed=seed, test_accuracy=r["accuracy"],
                        train_accuracy=r["train_accuracy"], val_accuracy=r.get("val_accuracy"))
                advance(1)

    metrics: dict = {"arms": {arm: arm_summary(results[arm]) for arm in arms}, "seeds": seeds,
                     "wall_s": round(time.time() - t0, 1), "world_size": ctx.world_size,
                     "schedule_mean_rate": v.mean_rate(), "schedule_peak_rate": v.peak_rate(),
                     "examples_seen_rank0": ctx.examples_seen,
                     "examples_seen_all_ranks": round(ctx.sum_over_ranks([ctx.examples_seen])[0])}
    for a, b in DIFFERENCES:
        if a in arms and b in arms:
            metrics[f"diff_{a}_minus_{b}"] = paired_difference([r["accuracy"] for r in results[a]],
                                                               [r["accuracy"] for r in results[b]])
    # headline number in accuracy points, comparable to the paper's "+1.0 accuracy"
    d = metrics.get("diff_scheduled_drophead_minus_dropout")
    if d:
        metrics["gain_points_vs_dropout"] = 100 * d["mean"]
    if ctx.is_main:
        plot_arms(metrics, ctx.out_dir / "accuracy_by_arm.png", title="SST-2 dev accuracy")
    ctx.barrier()  # no rank leaves before rank 0 has written its artefacts
    return metrics


__all__ = ["ARMS", "DIFFERENCES", "DropHeadConfig", "accuracy", "arm_settings", "build_model", "global_batches",
           "load_config", "load_data", "local_rows", "mean_std", "paired_difference", "run", "synthetic_sst2",
           "t_quantile_975", "train_one"]
