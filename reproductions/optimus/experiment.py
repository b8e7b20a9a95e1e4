"""Three arms on PTB and their PPL / KL / MI / AU on the test split, paired by seed.

* ``lm``      — the decoder alone (no encoder, no z): the plain LM the VAE must beat or match;
* ``vae``     — the same encoder/decoder with β = 1 from the first step and no threshold:
                the textbook VAE whose strong autoregressive decoder ignores z (KL -> 0);
* ``optimus`` — optional auto-encoder warm-up (β = 0), then the cyclical β schedule with
                the KL threshold λ (per example and dimension, as the official code).

With ``pretrain_steps`` (the cpu and gpu presets) the run emulates the paper's pre-train then
fine-tune: per seed, the LM is trained first and every arm starts from its decoder for the
same `steps` (see `training`); λ is chosen on PTB valid with the first seed (`selection`).
Every arm is evaluated the same way (`evaluation`): exact NLL for the LM, and for the VAEs the
ELBO with β = 1 and the true KL (an upper bound on NLL) and the K-sample importance-weighted
bound ``ppl_iw`` (the headline, as in the paper).

With ``seeds`` in the config the experiment runs them itself and returns, per metric,
``{"mean", "std", "per_seed"}`` (the claims are judged per seed); without, the runner's one
seed and flat numbers. Only rank 0 writes files.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from reproductions.api import RunContext
from reproductions.optimus.config import ARMS, ExperimentConfig
from reproductions.optimus.corpus import (collate, encode_splits, load_corpus, make_batches, rank_share,
                                          synthetic_corpus)
from reproductions.optimus.demos import write_demos
from reproductions.optimus.evaluation import evaluate, iw_bound
from reproductions.optimus.selection import SELECT_RULE, choose_lambda, select_lambda
from reproductions.optimus.tokenizer import Vocab
from reproductions.optimus.training import beta_at, lr_at, pretrain_lm, step_noise, train_arm

__all__ = ["ARMS", "ExperimentConfig", "SELECT_RULE", "beta_at", "choose_lambda", "collate", "encode_splits",
           "evaluate", "iw_bound", "lr_at", "make_batches", "rank_share", "run", "step_noise", "synthetic_corpus"]


def comparisons(metrics: dict[str, Any]) -> dict[str, float]:
    """The from-scratch claims as numbers: Optimus against the LM, and the plain VAE's collapse."""
    out: dict[str, float] = {}
    lm, opt = metrics.get("lm"), metrics.get("optimus")
    if lm and opt and "ppl_iw" in opt:
        out["optimus_ppl_iw_over_lm_ppl"] = opt["ppl_iw"] / lm["ppl"]
    return out


def over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """{arm: {metric: number}} per seed -> {arm: {metric: {"mean", "std", "per_seed"}}} (same seed order)."""
    out: dict[str, Any] = {}
    for group in per_seed[0]:
        out[group] = {}
        for key, value in per_seed[0][group].items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            values = [float(m[group][key]) for m in per_seed]
            out[group][key] = {"mean": statistics.fmean(values),
                               "std": statistics.stdev(values) if len(values) > 1 else 0.0, "per_seed": values}
    return out


def test_seed(arm: str, seed: int, cfg: ExperimentConfig, ctx: RunContext, vocab: Vocab, train, valid, test,
              lm_state, reuse: dict[str, torch.nn.Module]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train (or take the selection's model) and evaluate one arm of one seed on the test split."""
    t0 = time.time()
    phase = "finetune" if lm_state is not None else "train"
    model = reuse.pop(arm, None) or train_arm(arm, cfg, ctx, vocab, train, valid, seed=seed, lm_state=lm_state,
                                              phase=phase)
    K = 0 if arm == "lm" or (arm == "vae" and not cfg.iw_plain_vae) else cfg.iw_samples
    m = evaluate(arm, model, vocab, test, cfg, ctx, iw_samples=K, seed=seed)
    m["seconds"] = round(time.time() - t0, 1)
    ctx.log(cfg.steps, arm=arm, seed=seed, split="test", **{k: m[k] for k in ("ppl", "kl", "mi", "au")},
            **({"ppl_iw": m["ppl_iw"]} if "ppl_iw" in m else {}))
    return model, m


def run(config: dict, ctx: RunContext) -> dict[str, Any]:
    cfg = ExperimentConfig.from_dict(config)
    torch.manual_seed(ctx.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_corpus(cfg, ctx)
    vocab = Vocab.build(data["train"], max_words=cfg.max_vocab or None)
    train, valid, test = encode_splits(data, vocab, cfg)
    sealed = ctx.seal((test, data.pop("test")), "PTB test")  # (ids, words): opened for the final evaluation
    del test
    ctx.note("vocab_size", len(vocab))
    ctx.note("ppl_definition", "lm: exact PPL; vae/optimus: ppl = exp(sum -ELBO (beta=1, true KL) / tokens incl. "
                               "<eos>), an upper bound; ppl_iw = the K-sample importance-weighted bound (headline)")
    ctx.note("world_size", ctx.world_size)
    ctx.note("global_batch", {"batch_size": cfg.batch_size, "per_rank": ctx.local_batch(cfg.batch_size)})
    seeds = list(cfg.seeds) or [ctx.seed]
    ctx.note("seeds", seeds)
    lm_states: dict[int, Any] = {}
    reuse: dict[str, torch.nn.Module] = {}
    if cfg.lambda_grid:
        lm_states[seeds[0]] = pretrain_lm(cfg, ctx, vocab, train, valid, seed=seeds[0])
        cfg, selection, reuse = select_lambda(cfg, ctx, vocab, train, valid, seed=seeds[0],
                                              lm_state=lm_states[seeds[0]])
        ctx.note("reused_from_selection", {"seed": seeds[0], "arms": sorted(reuse)})
        if cfg.selection_only:
            return {"selection": {str(k): v for k, v in selection["trials"].items()},
                    "lm_valid_ppl": selection["lm_valid_ppl"], "chosen_kl_threshold": selection["chosen"]}
    ctx.begin_final_evaluation(fixed=f"seeds {seeds}, steps {cfg.steps} (after {cfg.pretrain_steps} LM "
                                     f"pre-training steps) fixed by the preset; kl_threshold {cfg.kl_threshold}")
    test, test_words = sealed.open()
    unk = sum(i == vocab.unk_id for s in test for i in s) / max(1, sum(map(len, test)))
    ctx.note("sentences", {"train_used": len(train), "valid": len(valid), "test": len(test),
                           "test_truncated": sum(len(s) + 1 > cfg.max_len - 1 for s in test_words),
                           "test_unk_rate": round(unk, 4)})
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        lm_state = lm_states.pop(seed) if seed in lm_states else pretrain_lm(cfg, ctx, vocab, train, valid,
                                                                             seed=seed)
        mine = reuse if seed == seeds[0] else {}
        models, metrics = {}, {}
        for arm in cfg.arms:
            models[arm], metrics[arm] = test_seed(arm, seed, cfg, ctx, vocab, train, valid, test, lm_state, mine)
        metrics["compare"] = comparisons(metrics)
        per_seed.append(metrics)
        if seed == seeds[0] and ctx.is_main:
            write_demos(ctx.out_dir, {a: models[a] for a in ("vae", "optimus") if a in models}, vocab, test_words,
                        cfg.demo_sentences, cfg.demo_max_tokens, ctx.device, seed)
    result = over_seeds(per_seed) if cfg.seeds else per_seed[0]
    ctx.note("examples_per_rank", ctx.examples_per_rank())
    if ctx.is_main:
        plot_curves(ctx.out_dir / "metrics.jsonl", ctx.out_dir / "optimus_curves.png", seeds[-1], cfg.pretrain_steps)
        (ctx.out_dir / "summary.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def plot_curves(metrics_path: Path, png_path: Path, seed: int, pretrain_steps: int = 0) -> None:
    """Valid PPL and KL per arm, and the β each arm trained with, for one seed (steps counted from
    the start of the LM pre-training, so the fine-tuning arms continue where it stopped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(l) for l in metrics_path.read_text(encoding="utf-8").splitlines() if l.strip()]
    rows = [r for r in rows if r.get("seed", seed) == seed and r.get("phase") != "select"]
    at = lambda r: r["step"] + (pretrain_steps if r.get("phase") == "finetune" else 0)  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    colour = {"lm": "C0", "vae": "C1", "optimus": "C2"}  # one colour per arm across panels
    for arm in ARMS:
        val = [r for r in rows if r.get("arm") == arm and r.get("split") == "valid"]
        tr = [r for r in rows if r.get("arm") == arm and r.get("split") == "train" and "beta" in r]
        if val:
            axes[0].plot([at(r) for r in val], [r["ppl"] for r in val], marker="o", ms=3, label=arm,
                         color=colour[arm])
            axes[1].plot([at(r) for r in val], [r["kl"] for r in val], marker="o", ms=3, label=arm,
                         color=colour[arm])
        if tr:
            axes[2].plot([at(r) for r in tr], [r["beta"] for r in tr], label=arm, color=colour[arm])
    for ax, title in zip(axes, ("valid PPL (ELBO bound for VAEs)", "valid KL (nats / sentence)", "β (train)")):
        ax.set_title(f"{title}, seed {seed}", fontsize=10)
        ax.set_xlabel("step (LM pre-training, then fine-tuning)" if pretrain_steps else "step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
