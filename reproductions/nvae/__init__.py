"""NVAE (Vahdat & Kautz, 2020): a deep hierarchical VAE, reproduced small on dynamically binarized MNIST.

Modules: `distributions` (Gaussians, residual posterior, analytic KLs, Bernoulli
likelihood), `cells` (encoder and generative residual cells with SE), `regularizers`
(spectral regularisation by power iteration, BN-scale penalty, KL warm-up and
balancing), `model` (the bidirectional hierarchical VAE with weight-normalised convs,
BN statistics re-estimation), `likelihood` (importance-weighted NLL), `experiment`
(data-parallel training, evaluation, equal-budget ablations, figures).
"""

from reproductions.api import Card, Claim

_SMALL_MODEL = {"channels": 8, "latent_channels": 4, "groups_per_scale": [2, 2], "pre_downs": 2,
                "cells_per_group": 1, "expand": 2}

# CPU, 2 cores, the whole run <= 22 min on the idle machine (issue 29; four reproductions share it). Budgets
# in steps, so a loaded machine changes the wall time, not the recipe. The main arm is the control: NVAE and
# the three ablations, each on the same 3 pre-registered seeds at the same 200 steps, paired by seed (same
# init where the architecture is the same, same batches and binarization noise), IW k=100 on the first
# 1,000 test images for every arm and seed. Measured (CPU time on one thread, niced, on the shared machine,
# scaled by the 1.85x of two idle threads): a training step of 64 images 0.42 CPU-s -> ~0.23 s (281 images/s
# measured on two idle threads); an IW top-down pass 2.0 ms fp32 / 0.89 ms under bf16 autocast (avx512_bf16)
# -> the k=100 x 1,000 bound ~108 s in fp32, ~48 s in bf16. 12 arm-seeds x (200 x 0.23 s + 48 s + ~3 s) ~
# 19.5 min. fp32 evaluation alone would take 12 x 108 s = 22 min, hence iw_bf16 (checked against fp32, see
# README). The main arm's own budget (3,000 steps, k=100 on 2,000) is the `cpu-main` preset: 3,000 x 0.23 s
# = 11.5 min of training + ~1.6 min of bf16 IW, ~14 min; it does not fit beside the paired ablations.
_CPU = {"data": "dynamic", "test_images": 1000, "iw_images": 1000, "iw_samples": 100,
        "ablation_iw_images": 1000, "ablation_iw_samples": 100, "iw_bf16": True, "batch_size": 64,
        "steps": 200, "ablation_steps": 200, "seeds": [0, 1, 2], "log_every": 25, "eval_batch_size": 1000,
        "bn_readjust_images": 1000, "channels_last": True, "model": _SMALL_MODEL}
# The main arm at its full budget, alone (no ablations): 3,000 steps of 64 (192k images, 3.2 epochs).
_CPU_MAIN = {**_CPU, "steps": 3000, "ablation_steps": 0, "ablations": [], "seeds": 1, "test_images": 2000,
             "iw_images": 2000, "train_seconds": 1800}

_GPU_MODEL = {"channels": 16, "latent_channels": 8, "groups_per_scale": [3, 3], "pre_downs": 2,
              "cells_per_group": 1, "expand": 3}
# One H100/H200, <= 2.5 min (its share of the 12-minute campaign; not yet run on a GPU): the cpu preset's
# regime on the 2.2M-parameter model, batch 256: NVAE (= control) and the three ablations on 3 paired seeds at
# 300 steps each, IW k=100 on 2,000 test images per arm and seed, fp32. Estimate: ~30 ms per eager step ->
# 12 x 300 x 30 ms = 108 s; 12 x 200k top-down passes x 75 MFLOP = 1.8e14 FLOP, ~18 s at 10 TFLOP/s;
# data, BN re-estimation and start-up ~15 s: ~140 s.
_GPU = {"data": "dynamic", "test_images": 2000, "iw_images": 2000, "iw_samples": 100,
        "ablation_iw_images": 2000, "ablation_iw_samples": 100, "batch_size": 256, "steps": 300,
        "ablation_steps": 300, "seeds": [0, 1, 2], "log_every": 50, "eval_batch_size": 20000,
        "bn_readjust_images": 5000, "channels_last": True, "model": _GPU_MODEL}
# Up to an hour on one GPU, resumable (--resume continues from the last checkpoint): a 13.7M-parameter
# model, compiled once, 50 min of training (~100 epochs), no ablations; IW k=1000 on all 10k (~5 min).
_GPU_LONG = {**_GPU, "steps": 200000, "train_seconds": 3000, "ablation_steps": 0, "ablations": [], "seeds": 1,
             "compile": True, "checkpoint_every": 1000, "test_images": 10000, "iw_images": 10000,
             "iw_samples": 1000,
             "model": {"channels": 32, "latent_channels": 20, "groups_per_scale": [5, 5], "pre_downs": 2,
                       "cells_per_group": 1, "expand": 3}}

CARD = Card(
    name="nvae",
    paper_id="2007.03898",
    title="NVAE: A Deep Hierarchical Variational Autoencoder",
    authors="Arash Vahdat, Jan Kautz",
    summary=(
        "A VAE with many groups of latent variables over several spatial scales, a bottom-up encoder and a "
        "top-down path shared by prior and posterior, residual cells with depthwise convolutions and "
        "squeeze-and-excitation, posteriors written as corrections of their priors (residual normal), and "
        "spectral regularisation, KL warm-up and KL balancing to keep it stable."
    ),
    measures=(
        "Test NLL in nats on dynamically binarized MNIST by the importance-weighted bound (nll_nats), the "
        "ELBO, KL per latent group, active units, samples and reconstructions, training throughput and peak "
        "memory; ablations in the same run, each with the same training budget and the same seeds as an NVAE "
        "control arm and reported as a per-seed delta against it (paired over the preset's seeds): a plain single-group VAE of similar size, NVAE without the residual "
        "normal posterior, NVAE without spectral regularisation."
    ),
    claims=(
        Claim(id="nll", label="NVAE test NLL", kind="value", metric="nll_nats", value=78.01, tolerance=2.0,
              unit="nats", higher_is_better=False,
              source="main results table (MNIST 28x28, dynamically binarized), NLL by importance weighting",
              statement="NVAE reaches a test NLL of 78.01 nats on dynamically binarized MNIST.",
              note="paper: large model, ~400 epochs on 60k images, k=1000 on all 10k; ours: a 0.38M-parameter "
                   "model trained far shorter, k=100 (each run's budget in its notes)"),
        *(Claim(id=f"ablation_{name}", label=f"{short} vs NVAE control", kind="difference",
                arms=(f"ablations.{name}", "control"), metric="nll_nats", unit="nats", value=None,
                source="§5 ablations (CIFAR-10 in bits/dim; no MNIST figure)",
                statement=f"At the same training budget, {what} has a higher test NLL than NVAE (the ablated "
                          "part helps).")
          for name, short, what in (
              ("plain_vae", "Plain VAE", "a plain single-group VAE of similar size"),
              ("no_residual_normal", "No residual normal", "NVAE without the residual normal posterior"),
              ("no_spectral_reg", "No spectral regularisation", "NVAE without spectral regularisation"))),
    ),
    labels={"control": "NVAE control", "ablations.plain_vae": "plain VAE",
            "ablations.no_residual_normal": "no residual normal", "ablations.no_spectral_reg": "no spectral reg.",
            "nll_nats": "test NLL (nats)"},
    differences=(
        ("Model and training", "a large hierarchical model, about 400 epochs", "377k parameters; cpu preset: 200 "
         "steps of 64 per arm and seed (0.2 epoch); the main arm's 3,000 steps are the separate cpu-main preset",
         "a CPU budget: 12 paired arm-seeds and their IW bounds in <= 22 min on 2 cores"),
        ("NLL estimate", "importance weighting, k = 1000 on all 10k test images", "k = 100 on the first 1,000 "
         "test images for every arm and seed, passes in bf16 autocast (densities fp32)", "a CPU budget; bf16 "
         "agrees with fp32 to 0.01 nats on average (checked), fp32 alone would take the whole 22 min"),
        ("Ablations", "CIFAR-10, in bits per dimension", "MNIST, 3 paired seeds, 200 steps per arm, NVAE as its "
         "own control", "a CPU budget"),
        ("Optimizer", "Adamax, eps 1e-3, weight decay 3e-4 (official train.py)", "the same", "no difference"),
    ),
    paper_config={"iw_samples": 1000, "test_images": 10000, "iw_images": 10000},
    presets={
        # seconds, CPU: tiny model on 2k of the grey train images (synthetic bars only if MNIST is missing)
        "smoke": {"data": "dynamic", "allow_synthetic": True, "train_images": 2000, "test_images": 32,
                  "iw_images": 8, "iw_samples": 8, "ablation_iw_images": 8, "ablation_iw_samples": 4,
                  "batch_size": 16, "steps": 24, "ablation_steps": 12, "log_every": 1, "eval_batch_size": 128,
                  "bn_readjust_images": 64, "seeds": 2,
                  "ablations": ["plain_vae", "no_residual_normal", "no_spectral_reg"],
                  "model": {**_SMALL_MODEL, "channels": 4, "latent_channels": 2, "groups_per_scale": [1, 2]}},
        "cpu": _CPU,
        "cpu-main": _CPU_MAIN,
        "gpu": _GPU,
        "gpu-long": _GPU_LONG,
    },
    budget_s={"smoke": 90, "cpu": 1320, "cpu-main": 900, "gpu": 150, "gpu-long": 3600},
    datasets=("mnist", "binarized_mnist"),
    notes=(
        "Data: dynamically binarized MNIST as in the paper: the 60,000 grey train images, a fresh Bernoulli "
        "sample (p = grey/255) at every visit; the 10,000 test images binarized once with numpy "
        "default_rng(0). data='binarized' switches to the fixed (Larochelle & Murray) binarization. "
        "Committed cpu run (results/nvae/20261206T055635Z, issue 29): NVAE as its own control and the three "
        "ablations, 200 steps of 64 each on the same 3 pre-registered seeds (paired: same initial weights "
        "where the architecture is the same, same batches and binarization noise), IW bound k=100 on the first "
        "1,000 test images for every arm and seed (passes in bf16 autocast, densities in fp32; 0.01 nats from "
        "fp32 on average, checked); Adamax with the official eps 1e-3 and weight decay 3e-4. 29.4 min wall "
        "under the CPU lock on a loaded 2-core machine (load average 13.8 -> 11.2; ~20 min scaled to idle). "
        "Verdicts: NLL 120.7 nats (contradicted at 200 steps); plain VAE +46.6 nats (reproduced, Holm "
        "p = 0.035); no residual normal -1.6 and no spectral regularisation -0.03 nats (inconclusive): both "
        "parts stabilise deep hierarchies over long training, which 200 steps of a 4-group model do not reach. "
        "The main arm's own budget (3,000 steps, 86.1 nats in the earlier run 20261203T074257Z) is the "
        "cpu-main preset (~14 min idle), not rerun this round. "
        "Much smaller model and far shorter training than the paper (~400 epochs); weight normalisation "
        "without the paper's data-dependent initialisation; spectral regularisation on convolutions only, "
        "BN-scale penalty with the same lambda, BN statistics re-estimated before evaluation and sampling. "
        "The gpu and gpu-long presets were not run: no GPU was lent to this task."
    ),
)
