"""Optimus (Li et al. 2020): a VAE language model whose decoder reads z as memory and embedding.

See `model` for the architecture, `objectives` for the KL threshold and cyclical β
schedule, `metrics` for PPL / MI / AU, and `experiment` for the three arms.
"""

from reproductions.api import Card, Claim

_COMMON = {
    "n_head": 4, "ff_mult": 4, "dropout": 0.1, "inject_memory": True, "inject_embedding": True,
    "kl_threshold": 0.5, "n_cycles": 1, "ratio_zero": 0.5, "ratio_increase": 0.25, "beta_max": 1.0,
    "weight_decay": 0.01, "grad_clip": 1.0, "arms": ["lm", "vae", "optimus"],
    "demo_sentences": 5, "demo_max_tokens": 30,
}

PRESETS = {
    # seconds on CPU; synthetic sentences only when PTB is missing
    "smoke": {**_COMMON, "allow_synthetic": True, "max_train_sentences": 400, "max_valid_sentences": 64,
              "max_test_sentences": 64, "max_len": 64, "max_train_len": 40, "d_model": 32, "n_enc_layer": 1,
              "n_dec_layer": 1, "d_latent": 8, "batch_size": 32, "eval_batch_size": 64, "steps": 12,
              "ae_pretrain_steps": 2, "warmup_steps": 2, "lr": 3e-3, "log_every": 4, "eval_every": 12,
              "iw_samples": 3, "demo_max_tokens": 8, "threads": 1},
    # about 15 minutes on 2 CPU cores (shared by several jobs when measured): 200 steps of 16
    # sentences per arm (~8% of an epoch), test on the first 1,000 PTB test sentences
    "cpu": {**_COMMON, "max_len": 96, "max_train_len": 50, "d_model": 64, "n_enc_layer": 1, "n_dec_layer": 2,
            "d_latent": 16, "batch_size": 16, "eval_batch_size": 250, "steps": 200, "ae_pretrain_steps": 40,
            "warmup_steps": 20, "lr": 3e-3, "log_every": 20, "eval_every": 100, "max_valid_sentences": 100,
            "max_test_sentences": 1000, "iw_samples": 0, "threads": 2},
    # designed for <= 10 minutes on one H100 (bf16 autocast); NOT run in this project yet
    "gpu": {**_COMMON, "max_len": 96, "max_train_len": 90, "d_model": 512, "n_head": 8, "n_enc_layer": 4,
            "n_dec_layer": 6, "d_latent": 32, "dropout": 0.3, "batch_size": 128, "eval_batch_size": 256,
            "steps": 6000, "ae_pretrain_steps": 1000, "n_cycles": 2, "warmup_steps": 300, "lr": 5e-4,
            "log_every": 100, "eval_every": 1000, "iw_samples": 20},
}

CARD = Card(
    name="optimus",
    paper_id="2004.04092",
    title="Optimus: Organizing Sentences via Pre-trained Modeling of a Latent Space",
    authors="Chunyuan Li, Xiang Gao, Yuan Li, Baolin Peng, Xiujun Li, Yizhe Zhang, Jianfeng Gao",
    summary=(
        "A sentence VAE built from a BERT encoder (posterior q(z|x)) and a GPT-2 decoder (p(x|z)). "
        "The latent z reaches the decoder twice: as one extra key/value slot attended by every decoder "
        "layer (memory) and added to the token embeddings (embedding). Posterior collapse is avoided by "
        "pre-training as an auto-encoder, a cyclical beta schedule (beta=0, ramp, hold) and a per-dimension "
        "KL threshold lambda; the result is a smooth latent space and state-of-the-art VAE language "
        "modelling (PTB, Yelp, Yahoo, SNLI)."
    ),
    measures=(
        "PTB test perplexity (ELBO upper bound; optional importance-weighted bound), KL, mutual information "
        "(Hoffman & Johnson batch estimator) and active units for three arms trained from scratch with the "
        "same decoder: a plain LM (no z), a VAE with beta=1 and no threshold (shows posterior collapse), and "
        "Optimus-style training (AE warm-up, cyclical beta, lambda=0.5). Metrics per arm: "
        "lm/vae/optimus -> ppl, kl, mi, au. Demos (reconstruction, interpolation, prior samples) in demos.txt."
    ),
    claims=(
        Claim(metric="optimus.ppl", value=23.58, source="Table 1 (language modelling), PTB row",
              note="issue 8 attributes this to lambda=0.5; BERT-base + GPT-2 pre-trained on Wikipedia, "
                   "GPT-2 subword tokens; our PPL is word-level over PTB's 10k vocabulary",
              higher_is_better=False),
    ),
    presets=PRESETS,
    datasets=("ptb",),
    notes=(
        "No pre-trained weights are available offline: the encoder (BERT-style, bidirectional) and the "
        "decoder (GPT-style, causal, tied embeddings) are small transformers written here and trained from "
        "scratch on PTB alone, so absolute perplexities are far from the paper's; the comparison that carries "
        "over is between arms (collapse of the plain VAE, KL/MI/AU kept by the tricks, the PPL cost or gain "
        "against the LM). The paper's Wikipedia pre-training is replaced by an optional auto-encoder "
        "warm-up on PTB (beta=0). Loading HuggingFace BERT/GPT-2 weights is left out. Only the PTB PPL is "
        "cited; the paper's KL/MI/AU for that row are not quoted here. Our ppl for VAE arms is the ELBO bound "
        "exp(sum -ELBO / tokens incl. <eos>) >= true PPL. The MI estimate depends on the evaluation batch size "
        "(bounded by its log). The gpu preset has not been run (no GPU was available). The committed cpu run "
        "(200 steps per arm) shows the plain VAE's collapse (KL ~0, AU 0) but not yet an informative z for "
        "the Optimus arm (KL held near the threshold, MI ~0, AU 0): far too little training for that."
    ),
)
