"""NVAE (Vahdat & Kautz, 2020): a deep hierarchical VAE, reproduced small on binarized MNIST.

Modules: `distributions` (Gaussians, residual posterior, analytic KLs, Bernoulli
likelihood), `cells` (encoder and generative residual cells with SE), `regularizers`
(spectral regularisation by power iteration, KL warm-up and balancing), `model` (the
bidirectional hierarchical VAE), `likelihood` (importance-weighted NLL), `experiment`
(training, evaluation, ablations, figures).
"""

from reproductions.api import Card, Claim

_SMALL_MODEL = {"channels": 8, "latent_channels": 4, "groups_per_scale": [2, 2], "pre_downs": 2,
                "cells_per_group": 1, "expand": 2}

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
        "Test NLL in nats on binarized MNIST by the importance-weighted bound (nll_nats), the ELBO, KL per "
        "latent group, active units, samples and reconstructions, training throughput and peak memory; "
        "ablations in the same run: a plain single-group VAE of similar size, NVAE without the residual "
        "normal posterior, NVAE without spectral regularisation."
    ),
    claims=(
        Claim(metric="nll_nats", value=78.01, unit="nats",
              source="main results table (MNIST 28x28, dynamically binarized), NLL by importance weighting",
              note="paper: large model, ~400 epochs on 60k dynamically binarized images, k=1000",
              higher_is_better=False),
    ),
    presets={
        # seconds, CPU: tiny model on 2k fixed-binarized images (synthetic bars only if the data is missing)
        "smoke": {"data": "binarized", "train_images": 2000, "test_images": 32, "iw_images": 8, "iw_k": 8,
                  "ablation_iw_k": 4, "batch_size": 16, "steps": 24, "log_every": 1, "eval_batch": 128,
                  "ablations": ["plain_vae", "no_residual_normal", "no_spectral_reg"],
                  "model": {**_SMALL_MODEL, "channels": 4, "latent_channels": 2, "groups_per_scale": [1, 2]}},
        # minutes on 2 CPU cores: every arm gets the same wall-clock budget
        "cpu": {"data": "binarized", "test_images": 500, "iw_images": 200, "iw_k": 50, "ablation_iw_k": 20,
                "batch_size": 32, "steps": 3000, "train_seconds": 150, "log_every": 10, "eval_batch": 500,
                "channels_last": True, "model": _SMALL_MODEL},
        # one H100, <= 10 min in all: main arm 5 min, each ablation 75 s; k=1000 on 2000 test images
        "gpu": {"data": "binarized", "test_images": 10000, "iw_images": 2000, "iw_k": 1000,
                "ablation_iw_k": 100, "batch_size": 200, "steps": 100000, "train_seconds": 300,
                "ablation_train_seconds": 75, "log_every": 50, "eval_batch": 20000, "channels_last": True,
                "compile": True, "checkpoint_every": 2000,
                "model": {"channels": 32, "latent_channels": 20, "groups_per_scale": [5, 5], "pre_downs": 2,
                          "cells_per_group": 1, "expand": 3}},
    },
    datasets=("binarized_mnist", "mnist"),
    notes=(
        "Data: fixed-binarized MNIST (50k train / 10k test) in every preset, because the grey MNIST train "
        "images are missing from the shared data; the paper uses dynamic binarization (config data="
        "'dynamic_t10k' resamples the grey t10k images instead, 8k train / 2k test). Fixed binarization "
        "usually costs a few nats of NLL versus dynamic. Much smaller model and far shorter training than the "
        "paper (which trains ~400 epochs); no weight normalisation, no BN-scale penalty, no BN statistics "
        "readjustment before sampling; NLL with fewer importance samples / test images outside the gpu preset."
    ),
)
