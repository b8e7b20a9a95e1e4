"""Optimus (Li et al. 2020): a VAE language model whose decoder reads z as memory and embedding.

See `model` for the architecture, `objectives` for the KL threshold and cyclical β
schedule, `metrics` for PPL / MI / AU, and `experiment` for the three arms.
"""

from reproductions.api import Card, Claim

_COMMON = {
    "n_head": 4, "dropout": 0.1, "inject_memory": True, "inject_embedding": True, "memory_kv": "raw",
    "kl_threshold": 0.5, "kl_threshold_mode": "example", "n_cycles": 1, "ratio_zero": 0.5, "ratio_increase": 0.25,
    "beta_max": 1.0, "weight_decay": 0.01, "grad_clip": 1.0, "arms": ["lm", "vae", "optimus"],
    "demo_sentences": 5, "demo_max_tokens": 30, "lambda_grid": [], "select_steps": 0, "selection_only": False,
    "pretrain_steps": 0, "pretrain_lr": 0.0, "length_weighted_loss": False, "select_iw_samples": 0,
    "iw_plain_vae": True,
}

PRESETS = {
    # seconds on CPU; synthetic sentences only when PTB is missing (the run notes data_source)
    "smoke": {**_COMMON, "allow_synthetic": True, "max_train_sentences": 400, "max_valid_sentences": 64,
              "max_test_sentences": 64, "max_len": 64, "max_train_len": 40, "d_model": 32, "n_layer": 1,
              "n_enc_layer": 1, "d_ff": 64, "d_latent": 8, "batch_size": 32, "eval_batch_size": 64, "steps": 12,
              "ae_pretrain_steps": 2, "warmup_steps": 2, "lr": 3e-3, "log_every": 4, "eval_every": 12,
              "iw_samples": 3, "demo_max_tokens": 8, "threads": 1},
    # cpu: pre-train then fine-tune, see CPU_REGIME below; ~20 min on 2 idle cores
    "cpu": {**_COMMON, "max_words": 20, "max_vocab": 2000, "max_len": 24, "max_train_len": 21,
            "max_valid_sentences": 400, "max_test_sentences": 1000, "d_model": 64, "n_layer": 2, "n_enc_layer": 1,
            "d_ff": 256, "d_latent": 32, "kl_threshold": 0.5, "batch_size": 32, "pretrain_steps": 1500,
            "pretrain_lr": 2e-3, "steps": 1000, "ae_pretrain_steps": 0, "warmup_steps": 50, "lr": 1e-3,
            "length_weighted_loss": True, "lambda_grid": [0.05, 0.15, 0.5], "seeds": 3, "log_every": 50,
            "eval_every": 500, "iw_samples": 100, "select_iw_samples": 25, "iw_plain_vae": False, "threads": 1},
    # gpu: full PTB (10k vocabulary, all lengths); planned ~3 min on one H100/H200, see GPU_ESTIMATE
    "gpu": {**_COMMON, "max_len": 96, "max_train_len": 90, "d_model": 256, "n_head": 4, "n_layer": 4,
            "n_enc_layer": 2, "d_ff": 1024, "d_latent": 32, "dropout": 0.2, "batch_size": 128,
            "eval_batch_size": 128, "pretrain_steps": 1000, "pretrain_lr": 1e-3, "steps": 500,
            "ae_pretrain_steps": 0, "warmup_steps": 50, "lr": 5e-4, "length_weighted_loss": True,
            "lambda_grid": [0.05, 0.15, 0.5], "seeds": 3, "log_every": 100, "eval_every": 500, "iw_samples": 100,
            "select_iw_samples": 100, "iw_plain_vae": False},
}

# Why the cpu preset looks like this (issue 29: pre-train then fine-tune, in <= 20 min on 2 idle cores).
# Data as issue 15 chose it: the 10k-word softmax dominates a small model's cost, so PTB is kept but
# only sentences of <= 20 words in every split (21.5k of 42k train sentences, 1,929 of 3,761 test; the
# first 400 valid and 1,000 test sentences are scored) and the 2,000 most frequent words.
# The paper fine-tunes a pre-trained GPT-2 decoder (and BERT encoder); the official PTB script
# (code/scripts/scripts_local/run_ft_lm_vae_optimus.sh) runs one epoch with --beta 1.0 --ratio_zero 0.5
# --ratio_increase 0.25 --fb_mode 1 --dim_target_kl 0.5 and the default --latent_size 32
# (run_lm_vae_training.py), one beta cycle over the whole fine-tuning (frange_cycle_zero_linear,
# n_cycle=1), the threshold per sentence and dimension (modules/vae.py, fb_mode 1), and the test bound
# with 100 importance samples (utils.calc_iwnll: loss_iw(nsamples=100)). Emulated here, per seed: the
# LM trains 1,500 steps (the stand-in for GPT-2's pre-training, ~2.2 epochs); then every arm starts from
# its decoder and trains 1,000 more steps with the same data order: the LM (the control), the plain VAE,
# and Optimus (fresh encoder and latent projections; 500 steps at beta 0, 250 ramp, 250 at 1).
# --length_weighted_loss is a flag of the official code (modules/vae.py: loss_rec / sent_length +
# beta * loss_kl, sent_length = the non-padding labels): the reconstruction per token, the KL not
# divided. The PTB scripts shown do not pass it; issue 29 asks for it, so the cpu and gpu presets turn
# it on, for every arm and the pre-training alike (a GPT-2 LM is itself trained per token).
# lambda in {0.05, 0.15, 0.5} is chosen on PTB valid with seed 0 only (rule in selection.py: MI >= 0.5
# and AU >= 4, then the lowest valid ppl_iw, K=25 there); the seed-0 trial models of the LM and of
# the chosen lambda are seed 0's final models (same training, so not trained twice); seeds 1 and 2
# then pre-train and fine-tune with the chosen lambda. The test split opens after the choice.
# Plan, measured (CPU seconds of one thread, process_time, on the shared machine at load ~12, which is
# about the idle wall): LM 0.030-0.034 s/step, VAE arms 0.044-0.053 s/step, IW K=100 13.6 s per 200
# sentences. 3 x 1,500 pre-training + 3 x 1,000 LM control steps ~240 s; 5 x 1,000 Optimus steps (3
# trials, 2 more seeds) ~240 s; 3 x 1,000 plain-VAE steps ~145 s; IW K=100 on 1,000 test sentences for 3
# Optimus models ~205 s, K=25 on 400 valid for 3 trials ~20 s; data and demos ~15 s: ~865 s (~14.5 min),
# budgeted 20 min. The plain VAE gets no IW bound (iw_plain_vae=false): its KL ~ 0, so it equals its ELBO.
# One thread: on a machine shared by several jobs two OpenMP threads per process made steps ~5x slower.
#
# GPU_ESTIMATE (gpu preset, not run: no GPU was lent): full PTB, the same regime at batch 128: 1,000
# pre-training steps (~3 epochs) and 500 fine-tuning steps (~1.5 epochs) per seed. ~3.3k tokens/step,
# ~0.15 TFLOP/step, so a step is bound by kernel launches and collation, ~15 ms: 3 x 1,000 + 3 x 500
# (LM) + 8 x 500 (VAE arms and trials) = 8.5k steps ~ 130 s; IW K=100 on 3,761 test (3 models) and
# 400 valid sentences (3 trials) ~95 TFLOP each, ~10 s; data ~10 s. Planned ~150 s (the campaign's 12 min).

CARD = Card(
    name="optimus",
    paper_id="2004.04092",
    title="Optimus: Organizing Sentences via Pre-trained Modeling of a Latent Space",
    authors="Chunyuan Li, Xiang Gao, Yuan Li, Baolin Peng, Xiujun Li, Yizhe Zhang, Jianfeng Gao",
    summary=(
        "A sentence VAE built from a BERT encoder (posterior q(z|x)) and a GPT-2 decoder (p(x|z)). "
        "The latent z reaches the decoder twice: one projection of z gives one memory vector per decoder "
        "layer, used directly as an extra key and value that every position attends to (memory), and a "
        "second projection is added to the token embeddings (embedding). Posterior collapse is avoided by "
        "pre-training as an auto-encoder, a cyclical beta schedule (beta=0, ramp, hold) and a KL threshold "
        "lambda per example and latent dimension; the result is a smooth latent space and state-of-the-art "
        "VAE language modelling (PTB, Yelp, Yahoo, SNLI)."
    ),
    measures=(
        "Test perplexity on PTB for three arms that fine-tune the same pre-trained decoder, paired by seed "
        "(3 seeds): per seed the plain LM is trained first (the stand-in for GPT-2's pre-training), then every "
        "arm starts from its decoder for the same extra steps: the LM itself (the control, exact PPL), a VAE "
        "with beta=1 and no threshold (shows posterior collapse), and Optimus (fresh encoder and latent "
        "projections, one cyclical beta cycle, the KL threshold lambda per sentence and dimension chosen on "
        "PTB valid from {0.05, 0.15, 0.5}, the official length-weighted loss, raw memory K/V). Headline: "
        "optimus.ppl_iw, the importance-weighted bound with K=100 (the official code's), against lm.ppl; "
        "also the ELBO bound ppl, KL, mutual information (Hoffman & Johnson batch estimator) and active "
        "units per arm; compare.optimus_ppl_iw_over_lm_ppl. Demos (reconstruction, interpolation, prior "
        "samples) in demos.txt."
    ),
    claims=(
        Claim(id="latent_costs_little", label="Optimus PPL against the plain LM", kind="bound",
              metric="compare.optimus_ppl_iw_over_lm_ppl", value=1.10, unit="ratio", higher_is_better=False,
              source="our bar, not a paper number (the paper, Table 1, PTB: Optimus ppl 23.58 with "
                     "pre-trained BERT + GPT-2)",
              statement="Optimus's importance-weighted perplexity stays within 10% of the plain LM's: the "
                        "latent code costs little.",
              note="the paper's 23.58 is per GPT-2 BPE token with pre-trained models; ours is per word, with small "
                   "models trained on PTB alone"),
        Claim(id="active_units", label="Optimus active units", kind="bound", arms=("optimus",), metric="au",
              value=4, unit="active units",
              source="our bar, not a paper number (§4: the threshold keeps latent units active)",
              statement="With the KL threshold and the cyclical schedule at least 4 latent units stay active."),
        Claim(id="mutual_information", label="Optimus mutual information", kind="bound", arms=("optimus",),
              metric="mi", value=0.5, unit="nats",
              source="our bar, not a paper number (§4: MI between x and z)",
              statement="The Optimus latent code carries at least 0.5 nats of information about the sentence."),
        Claim(id="vae_collapses", label="Plain VAE collapse", kind="bound", arms=("vae",), metric="au", value=0,
              unit="active units", higher_is_better=False,
              source="the posterior-collapse problem the paper addresses (§1, §4)",
              statement="A plain VAE (beta = 1 from the start, no threshold) collapses: no latent unit is active."),
    ),
    headline="optimus.ppl_iw",
    labels={"lm": "plain LM", "vae": "plain VAE", "optimus": "Optimus", "ppl": "perplexity",
            "ppl_iw": "perplexity (importance-weighted bound)", "kl": "KL (nats)", "mi": "mutual information (nats)",
            "au": "active units"},
    differences=(
        ("Model", "BERT-base encoder and GPT-2 decoder, pre-trained on Wikipedia", "a 1-layer encoder and 2-layer "
         "decoder (d_model 64); the decoder pre-trained as an LM on PTB itself, the encoder fresh (cpu preset)",
         "no pre-trained weights offline"),
        ("Fine-tuning", "one epoch of PTB, batch 10 (official script)", "1,000 steps of 32 sentences (~1.5 epochs "
         "of the short-sentence PTB), the same for the LM control", "a CPU budget"),
        ("Latent and threshold", "d = 32, lambda = 0.5 (official script)", "d = 32, lambda from {0.05, 0.15, 0.5} "
         "chosen on PTB valid with seed 0", "the issue's protocol: chosen on validation"),
        ("Length-weighted loss", "a flag of the official code, not passed by its PTB scripts", "on for every arm",
         "the issue asks for it"),
        ("Data", "all of PTB", "sentences of at most 20 words, a 2,000-word vocabulary", "a CPU budget"),
        ("Importance samples", "K = 100 (official code)", "K = 100 on test; K = 25 on valid for the choice of lambda",
         "a CPU budget"),
    ),
    paper_config={"d_latent": 32, "kl_threshold": 0.5, "iw_samples": 100, "ratio_zero": 0.5,
                  "ratio_increase": 0.25, "n_cycles": 1, "beta_max": 1.0},
    presets=PRESETS,
    datasets=("ptb",),
    budget_s={"smoke": 30, "cpu": 1200, "gpu": 150},
    notes=(
        "No pre-trained weights are available offline, so the paper's pre-train-then-fine-tune is emulated on "
        "PTB itself: per seed the plain LM (a small GPT-style decoder with tied embeddings) trains 1,500 steps, "
        "then every arm starts from that decoder and trains 1,000 more steps with the same data order: the LM "
        "(the control), the plain VAE (beta=1, no threshold) and Optimus (a fresh BERT-style encoder and fresh "
        "latent projections; one beta cycle, 500 steps at 0, 250 ramp, 250 at 1, as the official PTB script "
        "with ratio_zero 0.5 and ratio_increase 0.25). Absolute perplexities are those of a small model on "
        "sentences of <= 20 words with a 2,000-word vocabulary, far from the paper's; the comparison that "
        "carries over is between arms. The KL threshold follows the official code (fb_mode 1): per sentence "
        "and dimension, a KL_i(x) at or below lambda drops out of the loss (kl_threshold_mode=\"example\"); the "
        "batch-mean form (\"batch\") is kept as an option. The official --length_weighted_loss (reconstruction "
        "per token, KL not divided) is on for every arm; the official PTB scripts do not pass it. d = 32 as "
        "the official default. lambda: 0.15, chosen on PTB valid with seed 0 from {0.05, 0.15, 0.5} by the "
        "rule fixed before the run (MI >= 0.5 and AU >= 4, then the lowest valid ppl_iw, K=25): 0.05 kept "
        "MI 0.21 nats only, 0.5 (the official script's) cost 54% perplexity (valid ppl_iw 110.0 against the "
        "LM's 71.5: 11.6 nats of KL that this decoder cannot repay); seed 0's LM and Optimus models are the "
        "selection's own (not trained twice). Run results/optimus/20261206T053646Z (16.6 min wall on the "
        "shared 2-core machine, load ~12.7): Optimus ppl_iw (K=100) 75.64 against the LM's 73.52, ratio "
        "1.026 / 1.034 / 1.026 per seed; AU 32 of 32; MI 0.61 / 0.56 / 0.85 nats; the plain VAE collapses "
        "(KL ~2e-5 nats, AU 0). Memory: one projection z -> L x d_model whose vectors are the extra key and "
        "value of each decoder layer (memory_kv=\"raw\", default, as the paper). ppl for the VAE arms is the "
        "ELBO bound; ppl_iw the importance-weighted bound (the headline; not computed for the plain VAE, "
        "whose KL ~ 0 makes it equal to its ELBO); the LM's ppl is exact. The MI estimate depends on the "
        "evaluation batch size (bounded by its log). The gpu preset has not been run (no GPU was lent); its "
        "~150 s plan is an estimate."
    ),
)
