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

# Why the cpu preset looks like this (issue 15: a regime where the effect can show in ~15 min on 2 cores).
# The 10k-word softmax dominates a small model's cost (~1k tokens/s on one busy core), so full PTB
# would not finish even one epoch per arm. We keep PTB but (1) only sentences of <= 20 words in
# every split (21.5k of 42k train sentences, 1,929 of 3,761 test), (2) the 2,000 most frequent
# words (13.7% of train tokens become <unk>, on top of PTB's own 5%). That is ~6x cheaper per
# token, so each arm gets 2,000 steps x 32 sentences = ~3 epochs (the LM is well past its first
# epoch), and the Optimus arm 400 AE steps, then one beta cycle (800 at beta=0, 400 ramp, 400 at 1).
# One thread: on a machine shared by several jobs two OpenMP threads per process made steps ~5x
# slower (threads spin while the other is descheduled). The committed run took 34 min on the shared
# machine (load ~15 on 2 cores: LM 0.21 s/step, VAE arms ~0.33 s/step, IW K=50 ~2 min per VAE arm);
# the same work needed ~0.1 s/step for the LM on a lightly loaded core, so ~12-15 min idle (estimate).
# lambda: first picked from 800-step trials scored on PTB *test* sentences (issue 28 found it); redone on PTB
# valid (results/optimus/20261206T024440Z, --set lambda_grid=[0.1,0.15,0.25,0.5] select_steps=800
# selection_only=true, ~8 min): valid ppl_iw / MI for 0.1: 115.3 / 0.39, 0.15: 116.5 / 0.52, 0.25: 121.0 / 0.76,
# 0.5: 139.5 / 1.27 (LM at 800 steps: 92.2). The rule (MI >= 0.5 and AU >= 4, then the lowest ppl_iw) chooses
# 0.15 again, so the preset keeps it. The 2,000 steps are the time budget, not a choice made on any split.
# Every arm sees exactly the same data, so the comparison between arms is fair; absolute PPLs are
# those of a 2k-word vocabulary and are not comparable to the paper's or to full-PTB numbers.
#
# GPU_ESTIMATE (gpu preset, not run: no GPU was lent): ~3.3k tokens/step; ~44 MFLOP/token for
# training (7.3M weights in use per token x 6) -> ~0.15 TFLOP/step, i.e. a few ms of H100/H200 bf16
# time; at this size a step is bound by ~500 kernel launches and Python collation, ~15 ms -> 2,000
# steps ~30 s per arm, ~80 s for three. IW evaluation, K=100 on the 3,761 test sentences: ~8.2M
# decoded tokens forward ~ 95 TFLOP per VAE arm, a few seconds. Data, vocabulary and demos ~10 s.
# Planned total ~2 min, budgeted 180 s (its share of the 12-minute campaign).

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
        "Test perplexity on PTB for three arms trained from scratch with the same decoder: a plain LM (no z, "
        "exact PPL), a VAE with beta=1 and no threshold (shows posterior collapse), and Optimus-style training "
        "(AE warm-up, cyclical beta, KL threshold lambda per example and dimension (0.15 cpu, 0.5 gpu), raw memory "
        "K/V). Headline: "
        "optimus.ppl_iw, the importance-weighted bound (K=50 cpu, 100 gpu), against lm.ppl; also the ELBO "
        "bound ppl, KL, mutual information (Hoffman & Johnson batch estimator) and active units per arm; "
        "compare.optimus_ppl_iw_over_lm_ppl. Demos (reconstruction, interpolation, prior samples) in demos.txt."
    ),
    claims=(
        Claim(id="latent_costs_little", label="Optimus PPL against the plain LM", kind="bound",
              metric="compare.optimus_ppl_iw_over_lm_ppl", value=1.10, unit="ratio", higher_is_better=False,
              source="from-scratch bar, not a paper number (the paper, Table 1, PTB: Optimus ppl 23.58 with "
                     "pre-trained BERT + GPT-2)",
              statement="Optimus's importance-weighted perplexity stays within 10% of the plain LM's: the "
                        "latent code costs little.",
              note="the paper's 23.58 is per GPT-2 BPE token with pre-trained models; ours is per word, from scratch"),
        Claim(id="active_units", label="Optimus active units", kind="bound", arms=("optimus",), metric="au",
              value=4, unit="active units of 16",
              source="from-scratch bar, not a paper number (§4: the threshold keeps latent units active)",
              statement="With the KL threshold and the cyclical schedule at least 4 latent units stay active."),
        Claim(id="mutual_information", label="Optimus mutual information", kind="bound", arms=("optimus",),
              metric="mi", value=0.5, unit="nats",
              source="from-scratch bar, not a paper number (§4: MI between x and z)",
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
         "decoder trained from scratch on PTB (cpu preset)", "no pre-trained weights offline"),
        ("Latent and threshold", "d = 32, lambda = 0.5 (official script)", "d = 16, lambda = 0.15 chosen on PTB valid",
         "a smaller model; lambda selected on validation"),
        ("Data", "all of PTB", "sentences of at most 20 words, a 2,000-word vocabulary", "a CPU budget"),
        ("Importance samples", "K = 100 (official code)", "K = 50 (cpu preset)", "a CPU budget"),
    ),
    paper_config={"d_latent": 32, "kl_threshold": 0.5, "iw_samples": 100},
    presets=PRESETS,
    datasets=("ptb",),
    budget_s={"smoke": 30, "cpu": 1200, "gpu": 150},
    notes=(
        "No pre-trained weights are available offline: the encoder (BERT-style, bidirectional) and the "
        "decoder (GPT-style, causal, tied embeddings) are small transformers written here and trained from "
        "scratch on PTB alone, so absolute perplexities are far from the paper's; the comparison that carries "
        "over is between arms (collapse of the plain VAE, KL/MI/AU kept by the tricks, the PPL cost or gain "
        "against the LM). The paper's Wikipedia pre-training is replaced by an auto-encoder warm-up on PTB "
        "(beta=0). The cpu preset's lambda (0.15) is the one 800-step trials choose on PTB valid "
        "(results/optimus/20261206T024440Z); the test split stays sealed until the final evaluation. "
        "The KL threshold follows the official code: per sentence and dimension, a KL_i(x) at or "
        "below lambda drops out of the loss (kl_threshold_mode=\"example\", default); the batch-mean form "
        "(\"batch\") is kept as an option. Memory: one projection z -> L x d_model whose vectors are the "
        "extra key and value of each decoder layer (memory_kv=\"raw\", default, as the paper); \"projected\" "
        "sends them through each layer's K/V projections instead. The cpu preset keeps PTB sentences of <= 20 "
        "words in every split and a 2,000-word vocabulary so that three arms get ~3 epochs each in ~15 min "
        "on 2 cores (absolute PPLs are therefore not comparable to full-PTB numbers). ppl for the VAE arms "
        "is the ELBO bound; ppl_iw the importance-weighted bound (the headline); the LM's ppl is exact. The MI "
        "estimate depends on the evaluation batch size (bounded by its log). The gpu preset has not been run "
        "(no GPU was lent); its ~3 min plan is an estimate."
    ),
)
