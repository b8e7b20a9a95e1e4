"""WEISSI: weight-scale-shift-invariant regularisation (Liu, Cui & Chan, arXiv 2008.02965).

Networks built from ReLU, max-pooling and linear maps are positively homogeneous, so
moving a factor ``c`` from one layer to the next as ``1/c`` leaves the function intact
while changing its L2 penalty: weight decay can be reduced without simplifying the
model. WEISSI replaces ``||W||^2`` by ``log ||W||`` (plus an L1 penalty on each layer's
direction ``W / ||W||``), which only sees the product of layer norms — the scale that
bounds the input gradient — and so constrains what L2 was meant to constrain.
"""

from reproductions.api import Card, Claim

SOURCE = "abstract (better generalisation and robustness than weight decay; the body and tables could not be read here)"

_COMMON = {  # every config key, so each can be changed with `--set KEY=VALUE`
    "arch": "mlp", "d_hidden": 256, "n_layer": 2, "channels": 32, "norm": "none",
    "train_images": 0, "test_images": 0, "holdout_images": 5000, "holdout_seed": 1234, "allow_synthetic": False,
    "tune_seeds": 1, "threads": 0,
    "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "epochs": 20, "batch_size": 128, "cosine": True,
    "arms": ["none", "l2", "weissi_e", "weissi"], "seeds": 5,
    "l2_lambda": 2e-3, "weissi_lambda_e": 0.1, "weissi_lambda_n": 1e-3, "weissi_decoupled": False,
    "l2_grid": [], "lambda_e_grid": [], "lambda_n_grid": [],
    "fgsm_eps": 0.1, "pgd_eps": 0.1, "pgd_steps": 20, "pgd_images": 0, "eval_batch_size": 500,
}

CARD = Card(
    name="weissi",
    paper_id="2008.02965",
    title="Improve Generalization and Robustness of Neural Networks via Weight Scale Shifting "
          "Invariant Regularizations",
    authors="Ziquan Liu, Yufei Cui, Antoni B. Chan",
    summary=(
        "In networks with positively homogeneous activations (ReLU, max-pooling) the function is "
        "unchanged when one layer's weights are multiplied by c and the next layer's by 1/c, but the "
        "L2 penalty is not, so weight decay can be lowered by shuffling scale between layers instead "
        "of simplifying the model. The paper proposes a regulariser that is invariant to such shifts "
        "and upper-bounds the network's input gradient, improving generalisation and adversarial "
        "robustness over weight decay."
    ),
    measures=(
        "Issue 29's over-fitting regime: a ReLU MLP 784-256x4-10 without BatchNorm on 10k MNIST training "
        "images, 30 epochs (train 100 %, test 95.9 % without a penalty), trained with no penalty, L2 "
        "(weight decay) and WEISSI (both terms); each lambda chosen from a log-spaced grid on a fixed "
        "held-out 5k of the training images; same optimizer/init/data order per seed, 6 paired seeds; clean "
        "test accuracy, accuracy under FGSM (10k test images) and 20-step PGD (first 1,000; L-inf, eps=0.1, "
        "pixels in [0,1]), the train - test gap, weight-norm trajectories and a clean-vs-robust frontier."
    ),
    # the paper's tables could not be read (see notes): its claims are directions, with no figure
    claims=tuple(
        Claim(id=f"weissi_vs_l2_{metric}", label=f"WEISSI vs L2, {what}", kind="difference", arms=("weissi", "l2"),
              metric=metric, scale=100.0, unit="points", value=None, source=SOURCE,
              statement=f"WEISSI (both terms) gives higher {what} than L2 weight decay, lambdas chosen on held-out data.")
        for metric, what in (("accuracy", "clean test accuracy"), ("fgsm_accuracy", "accuracy under FGSM"),
                             ("pgd_accuracy", "accuracy under PGD-20"))),
    labels={"none": "no penalty", "l2": "L2 weight decay", "weissi_e": "WEISSI log-norm term only",
            "weissi": "WEISSI (both terms)", "accuracy": "clean accuracy", "fgsm_accuracy": "FGSM accuracy",
            "pgd_accuracy": "PGD-20 accuracy", "train_accuracy": "train accuracy",
            "log_norm_product": "log product of layer norms"},
    differences=(
        ("Regulariser", "a weight-scale-shift-invariant penalty that bounds the input gradient (its equation "
         "could not be read here)", "lambda_e * sum log ||W||_F + lambda_n * sum ||W / ||W||_F||_1 (log of the "
         "norm product, not the product itself)", "the paper's text was not reachable; the form is the one the "
         "secondary write-ups give (see notes)"),
        ("Model and data", "not checked (the paper's tables could not be read)",
         "MLP 784-256x4-10, no BatchNorm, 10k MNIST training images (cpu preset); 4x512, 50 epochs (gpu preset)",
         "issue 29's over-fitting regime, sized to the CPU budget"),
        ("Training", "not checked", "SGD momentum 0.9, lr 0.05 cosine, batch 128, 30 epochs",
         "sized to a 9-minute locked slot on 2 shared cores (31 trainings at ~0.45 s/epoch with scoring); "
         "the issue's 4x512 for 50 epochs would take ~3x longer per epoch"),
        ("Lambda selection", "not checked", "log grids on the held-out 5k, seed 0: L2 1e-7..1e-2, lambda_e "
         "1e-3..1, lambda_n 1e-5..1e-1; best held-out clean accuracy, ties to the smaller", "selection on "
         "validation only"),
    ),
    presets={
        "smoke": {**_COMMON, "d_hidden": 64, "epochs": 4, "seeds": 2, "train_images": 2000, "test_images": 500,
                  "holdout_images": 500, "pgd_steps": 5, "lr": 0.1, "allow_synthetic": True,
                  "l2_grid": [5e-4, 5e-3], "lambda_e_grid": [0.02, 0.1], "lambda_n_grid": [1e-3]},
        # CPU, 2 cores, one torch thread (two threads ran slower than one on the shared machine): the
        # over-fitting regime of issue 29, a ReLU MLP 784-256x4-10 without BatchNorm on 10k training images.
        # Second cpu run: 30 epochs (the first run, 20261206T055323Z, trained 15: its budget was sized on a
        # timing taken under contention, 2.2 s/epoch, where the locked run took 0.37 s/epoch) and grids that
        # each span >= 3 decades around the first run's choices, which sat on grid edges (L2 at its smallest
        # 1e-5, lambda_n at its largest 1e-3): L2 1e-7..1e-2, lambda_e 1e-3..1, lambda_n 1e-5..1e-1.
        # 16 tuning models on seed 0 (none + 6 L2 + 4 lambda_e + 5 lambda_n, the held-out 5k choose) and
        # 3 final arms x 6 seeds, of which the 3 seed-0 models are the tuning models: 31 trainings, sized at
        # 0.37 s per epoch (the first run, locked) to ~6.5 min wall; it took 473 s (0.45 s/epoch with the
        # scoring). A locked timing just before it gave 0.58 s/epoch at 4x256 and 1.1-1.35 s/epoch at 4x512:
        # 4x512 would not fit 30 epochs in the 9-minute slot. Regime: train 100 %, test 95.86 % without a
        # penalty (a 4.1-point gap). Chosen: L2 1e-5 and lambda_e 1e-2 interior, lambda_n 1e-5 on the grid's
        # lower edge (tied with 1e-3 on the held-out images, ties go to the smaller).
        "cpu": {**_COMMON, "n_layer": 4, "d_hidden": 256, "train_images": 10000, "epochs": 30, "seeds": 6,
                "tune_seeds": 1, "threads": 1, "arms": ["none", "l2", "weissi"], "lr": 0.05,
                "pgd_steps": 20, "pgd_images": 1000, "eval_batch_size": 1000,
                "l2_grid": [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2], "lambda_e_grid": [1e-3, 1e-2, 1e-1, 1.0],
                "lambda_n_grid": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]},
        # one H100/H200, the same regime at the full size (not run: no GPU lent): MLP 784-512x4-10,
        # 10k images, 50 epochs at batch 256 (1,950 steps, ~1.5 ms each, launch-bound: ~3 s a model),
        # 16 tuning models (the cpu preset's grids) + 4 arms x 8 seeds (28 new) = 44 models ~2.5 min, PGD-20 on
        # all 10k test images.
        "gpu": {**_COMMON, "n_layer": 4, "d_hidden": 512, "train_images": 10000, "epochs": 50, "seeds": 8,
                "tune_seeds": 1, "batch_size": 256, "lr": 0.1, "pgd_steps": 20, "eval_batch_size": 5000,
                "l2_grid": [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2], "lambda_e_grid": [1e-3, 1e-2, 1e-1, 1.0],
                "lambda_n_grid": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]},
    },
    budget_s={"smoke": 60, "cpu": 540, "gpu": 150},  # cpu: sized to ~390 s, slot 9 min
    headline="weissi.accuracy",
    datasets=("mnist",),
    notes=(
        "Regulariser used (per layer l over every Linear/Conv weight W_l, biases excluded): "
        "R = lambda_e * sum_l log ||W_l||_F + lambda_n * sum_l ||W_l / ||W_l||_F||_1. "
        "Its exact form is NOT verified against the paper: the stored copies of arXiv 2008.02965 reachable here "
        "(the arXiv listing, v2 of 8 Jun 2022; the OpenReview page of the ICML 2021 AML workshop version; "
        "aggregator pages) hold only the abstract, which says the regulariser is invariant to weight scale "
        "shifts and is an upper bound of the input gradient. The sum of logs is the form in the secondary "
        "write-ups (Su Jianlin, kexue.fm/archives/7681, Aug 2020; Zheng Zhijie's notes, 2020-09-22). It is "
        "log prod_l ||W_l||, the log of the product bound: both are invariant to the shift, and as lambda varies they trace the "
        "same solutions (a stationary point of the log form at lambda is one of the product form at lambda "
        "divided by the product there), but at a fixed lambda the product form pulls harder when the norms "
        "are large. We keep the log "
        "form (the one documented) and say so. Arms: none, l2, weissi (both terms, lambda_n > 0); the "
        "weissi_e arm (log-norm term alone) is only trained in the search, where it chooses lambda_e. "
        "Protocol of the cpu preset (fixed before the run): MNIST train-images (60k) minus a fixed held-out "
        "5k (numpy default_rng(1234) permutation); the first 10,000 of the rest train every model; the "
        "held-out 5,000 choose the lambdas on seed 0 alone (one grid at a time, best held-out clean "
        "accuracy, ties to the smaller lambda): L2, then lambda_e (log-norm term alone), then lambda_n with "
        "that lambda_e; then the 10k test images are opened and each arm is trained on seeds 0-5 (the three "
        "seed-0 models are the search's own models, reused: training is deterministic, a test checks it). "
        "Clean and FGSM accuracy on all 10k test images, PGD-20 (step 0.0125, random start) on the first "
        "1,000. Run results/weissi/20261206T070520Z (473 s wall for 31 trainings, one torch thread, load "
        "average 5.7 -> 3.1 on the shared 2-core machine). Regime check: without a penalty, train 100 % vs "
        "held-out 95.86 % (seed 0, a 4.1-point gap); on test over 6 seeds train 100 % vs test 95.86 % (gap "
        "4.14 +- 0.13 points). Chosen: L2 1e-5, interior (held-out 95.92 / 95.72 / 96.10 / 96.04 / 95.70 / "
        "94.78 % for 1e-7..1e-2); lambda_e 0.01, interior (95.84 / 95.94 / 95.20 / 24.42 % for 1e-3..1); "
        "lambda_n 1e-5, the grid's SMALLEST (95.74 / 95.72 / 95.74 / 93.98 / 87.30 % for 1e-5..1e-1: 1e-5 "
        "and 1e-3 tie, the tie goes to the smaller), so the direction-L1 term is chosen almost off; the "
        "held-out scores of 1e-5..1e-3 differ by one image, and the choice between them is noise. Claims, "
        "paired over 6 seeds, Holm over the three: WEISSI vs L2 clean +0.01 points [-0.12, +0.15], "
        "inconclusive; FGSM -4.45 [-6.3, -2.6], lower on 6 of 6 seeds, contradicted; PGD-20 -0.62 [-2.6, "
        "+1.4], inconclusive. With lambda_n at 1e-5 the weissi arm is in effect the log-norm term alone at "
        "0.01, which lowers FGSM accuracy (none 38.6 %, L2 38.6 %, WEISSI 34.2 %). Neither penalty closes the "
        "gap (train - test: none 4.14, L2 4.10, WEISSI 4.09 points). The frontier (frontier.png, seed 0, "
        "descriptive only) tells another story than the chosen points: WEISSI at lambda_n 1e-3 (held-out "
        "tied with the chosen 1e-5) reaches 95.5 % clean, FGSM 43.3 %, PGD 21.3 %, against L2 at 1e-2 with "
        "94.7 % clean, FGSM 41.1 %, PGD 23.3 %; WEISSI at 1e-1 reaches FGSM 49.8 % / PGD 38.1 % at 88.1 % "
        "clean. So the verdicts hinge on which point the clean-accuracy rule picks on a flat held-out curve, "
        "not on what either penalty can reach. The first run of this regime (results/weissi/20261206T055323Z: "
        "15 epochs, narrower grids) chose lambda_n 1e-3 (its grid's largest) and found FGSM +4.44 and PGD "
        "+3.07 points for WEISSI, reproduced, and clean -0.19, contradicted; it stays committed as an "
        "earlier run. The decoupled variant (weissi_decoupled) is our extension, not the paper's. The gpu "
        "preset (the same regime at 4x512, 50 epochs, 8 seeds, these grids) was not run: no GPU was lent to "
        "this task."
    ),
)
