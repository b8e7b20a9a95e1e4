"""Scheduled DropHead (Zhou et al. 2020): dropping whole attention heads, with a V-shaped rate."""

from reproductions.api import Card, Claim

# Every key of DropHeadConfig, so `--set` can change any of them in any preset.
_COMMON = dict(max_len=64, vocab_size=16000, min_freq=1, weight_decay=0.01, warmup=0.1,
               dropout=0.1, drophead=0.2, drophead_start=0.2, drophead_end=0.2, schedule="v", turn=None,
               drophead_with_dropout=True, arms=["none", "dropout", "drophead", "drophead_mean", "scheduled_drophead"],
               train_eval_max=5000, val_size=0, length_buckets=0)

CARD = Card(
    name="drophead",
    paper_id="2004.13342",
    title="Scheduled DropHead: A Regularization Method for Transformer Models",
    authors="Wangchunshu Zhou, Tao Ge, Ke Xu, Furu Wei, Ming Zhou",
    summary=(
        "DropHead drops entire attention heads (per example, during training) instead of single "
        "units, so that no small set of heads can dominate multi-head attention; a V-shaped "
        "schedule starts with a high drop rate, lowers it to 0, then raises it again."
    ),
    measures=(
        "SST-2 sentiment accuracy (GLUE dev used as the sealed test set) of a small transformer classifier "
        "trained from scratch on GLUE train minus a validation split, over paired seeds: standard dropout, "
        "DropHead fixed at the V schedule's peak rate, DropHead fixed at its mean rate (the rate-matched "
        "control), and V-scheduled DropHead (all DropHead arms on top of the same dropout; no regularisation "
        "as the regime check where the budget allows); mean ± std per arm, the paired differences with "
        "Holm-adjusted verdicts."
    ),
    claims=(
        Claim(id="scheduled_vs_dropout", label="Scheduled DropHead vs dropout", kind="difference",
              arms=("arms.scheduled_drophead", "arms.dropout"), metric="accuracy", scale=100.0, unit="points",
              value=1.0, source="abstract (text classification with fine-tuned pre-trained transformers)",
              statement="V-scheduled DropHead on top of dropout raises test accuracy over dropout alone.",
              note="the paper's +1.0 is for fine-tuned BERT-scale models; ours trains a small transformer "
                   "from scratch on SST-2 (the run's config gives its size and data)"),
        Claim(id="drophead_vs_dropout", label="Fixed-rate DropHead (peak rate) vs dropout", kind="difference",
              arms=("arms.drophead", "arms.dropout"), metric="accuracy", scale=100.0, unit="points", value=None,
              source="§4 (DropHead without the schedule also improves over dropout; no single figure quoted here)",
              statement="DropHead at a fixed rate on top of dropout raises test accuracy over dropout alone.",
              note="the fixed rate is the V schedule's peak"),
        Claim(id="scheduled_vs_fixed", label="Scheduled vs fixed-rate DropHead (peak rate)", kind="difference",
              arms=("arms.scheduled_drophead", "arms.drophead"), metric="accuracy", scale=100.0, unit="points",
              value=None, source="§3.2 and the ablation of the schedule (figure not quoted here)",
              statement="The V-shaped rate schedule beats DropHead fixed at the schedule's peak rate.",
              note="not rate-matched: the fixed arm drops at the V's peak throughout, twice the V's mean rate"),
        Claim(id="scheduled_vs_rate_matched", label="Scheduled vs rate-matched DropHead (mean rate)",
              kind="difference", arms=("arms.scheduled_drophead", "arms.drophead_mean"), metric="accuracy",
              scale=100.0, unit="points", value=None,
              source="§3.2 (the schedule's rationale: its shape, not only its amount, is what helps)",
              statement="The V schedule beats DropHead held constant at the schedule's mean rate (same average "
                        "amount of head dropping, different timing).",
              note="the control the paper does not report; it separates the schedule's shape from its mean rate"),
    ),
    headline="gain_points_vs_dropout",
    labels={"arms.none": "no regularisation", "arms.dropout": "dropout", "arms.drophead": "DropHead (fixed at the peak rate)",
            "arms.drophead_mean": "DropHead (fixed at the mean rate)",
            "arms.scheduled_drophead": "V-scheduled DropHead", "accuracy": "test accuracy"},
    differences=(
        ("Model", "pre-trained BERT-scale transformers, fine-tuned", "a 2-layer, 8-head, d_model 64 transformer "
         "trained from scratch (cpu preset)", "no pre-trained weights offline; a CPU budget"),
        ("Data", "the tasks' full training sets; WMT14 En-De for translation", "GLUE SST-2 train minus a fixed "
         "2,000-phrase validation split (65,349 phrases), GLUE dev (872) as the sealed test set; no translation",
         "GLUE's test labels are not public"),
        ("Training", "to convergence (fine-tuning)", "2,000 steps of 32 length-bucketed phrases (~1 epoch); "
         "issue 29 asked for ~3k", "the measured 28 s per run x 32 runs had to fit 20 minutes"),
        ("Schedule", "V-shaped rate (§3.2; the full text could not be read here)", "0.2 → 0 at the end of the "
         "lr warm-up (step 200) → 0.2 at step 2,000; mean 0.10, peak 0.20", "the endpoints and the turn are our "
         "choice (see the notes)"),
        ("Controls", "dropout; DropHead without the schedule", "dropout; DropHead fixed at the V's peak (0.2) and "
         "fixed at its mean (0.1, rate-matched)", "the rate-matched arm separates the schedule's shape from its "
         "amount"),
        ("Seeds", "not stated here", "8 paired seeds fixed by the preset (cpu), 16 (gpu)",
         "paired differences, Holm over 4 claims"),
    ),
    paper_config={"n_layer": 12, "n_head": 12, "d_model": 768},
    presets={
        # smoke: seconds; real SST-2 subset when present, synthetic fallback otherwise (noted in run.json)
        "smoke": dict(_COMMON, d_model=32, n_head=4, n_layer=1, d_ff=64, batch_size=32, lr=2e-3, steps=60,
                      seeds=2, train_subset=2000, dev_subset=300, vocab_size=4000),
        # cpu: GLUE SST-2 train minus a fixed 2,000-sentence validation split (65,349 phrases), a 2-layer,
        # 8-head transformer, 2,000 steps of 32 length-bucketed phrases (~1 epoch); the four arms of
        # issue 29 x 8 paired seeds. Sized on the measured step time (the notes): ~17 min on one idle core.
        "cpu": dict(_COMMON, d_model=64, n_head=8, n_layer=2, d_ff=128, batch_size=32, lr=2e-3, steps=2000,
                    seeds=8, arms=["dropout", "drophead", "drophead_mean", "scheduled_drophead"],
                    train_subset=None, val_size=2000, dev_subset=None, vocab_size=16000, max_len=64,
                    dropout=0.1, drophead=0.2, drophead_start=0.2, drophead_end=0.2, length_buckets=50,
                    train_eval_max=2000),
        # gpu: the same model, data and arms (+ the `none` regime check) with 16 paired seeds; the same
        # number of examples (~1 epoch) in 8x larger batches, so that 80 runs fit ~2.5 GPU-minutes
        "gpu": dict(_COMMON, d_model=64, n_head=8, n_layer=2, d_ff=128, batch_size=256, lr=4e-3, steps=250,
                    seeds=16, train_subset=None, val_size=2000, dev_subset=None, vocab_size=16000, max_len=64,
                    dropout=0.1, drophead=0.2, drophead_start=0.2, drophead_end=0.2, length_buckets=50,
                    train_eval_max=2000),
    },
    budget_s={"gpu": 150.0},  # the estimate: 80 runs x 250 steps x ~6 ms = 120 s, plus evaluation (notes)
    datasets=("sst2",),
    notes=(
        "No pretrained-encoder arm: the paper's text-classification gains are for fine-tuned pretrained "
        "transformers, and no pretrained weights are available offline here, so a small transformer is "
        "trained from scratch; absolute accuracy is far below BERT-level and the comparison is not the "
        "paper's. "
        "V schedule: the rate falls linearly from drophead_start to 0 at the turning point, then rises "
        "linearly to drophead_end at the last step. The turning point could NOT be checked against §3.2: "
        "the paper's full text (arXiv 2004.13342; Findings of EMNLP 2020, pp. 1971-1980) was not readable "
        "from this machine, and searches of stored pages (arXiv/abstract mirrors), documentation, code and "
        "issue threads found the abstract only; the one third-party DropHead module read (ESPnet-derived) "
        "has a settable rate but no schedule. Earlier "
        "versions of this card cited the turn 'at the end of warm-up' from memory. We keep the turn at the "
        "end of the learning-rate warm-up (10 % of training) because the abstract motivates the schedule by "
        "the interaction of multi-headedness with training dynamics: the few dominant heads form early, "
        "which is when a high rate acts, and the rise afterwards regularises against over-fitting; `turn` "
        "(a fraction of training) moves it for ablations. For a V with equal endpoints the mean rate is "
        "half the peak whatever the turn, so the rate-matched arm (0.1) does not depend on that choice. "
        "Rate-matched control (issue 29): `drophead_mean` holds DropHead at the V's mean rate over the "
        "training steps (computed from the schedule, recorded as schedule_mean_rate), `drophead` at its "
        "peak; scheduled vs drophead_mean is the comparison of shape at equal amount. "
        "Selection: the test split (GLUE dev) is sealed until the final evaluation; a 2,000-phrase "
        "validation split is carved out of train by a fixed seed (4321) and scored for every run "
        "(val_accuracy). Its phrases share wording with training phrases (SST-2 train holds sub-phrases of "
        "the same sentences), so it is optimistic. The preset's settings were fixed before the run from "
        "short pilots scored on validation only (seed 100, outside the preset's seeds); lr 2e-3 and the "
        "rates 0.2/0.1 were not tuned (no CPU time was left for a search on the shared machine). "
        "Plan, measured: one process, one torch thread, 28 s per run (2,000 steps + scoring 4,872 "
        "sentences) in the locked cpu run, so 4 arms x 8 seeds ~ 15 min; the `none` arm did not fit the "
        "20-minute budget and is left to the gpu preset. Length-bucketed batches (pools of 50 batches "
        "sorted by length, batch order shuffled) cut the padded tokens of SST-2's short phrases ~2x. "
        "Threads: with unbucketed batches, 2 torch threads did not finish 300 steps in 160 s (> 500 ms per "
        "step) on the machine at load ~19, where one thread used 43 ms of CPU per step (OpenMP threads "
        "stall when the scheduler parks one of them); the locked run's one thread took ~13 ms per bucketed "
        "step. An idle-machine comparison of 1 process x 2 threads against --nproc 2 was not possible "
        "this session (the machine was never idle). "
        "Result of the issue-29 cpu run (20261206T062605Z, 894 s, 8 seeds): test accuracy 75.9-76.0 % in "
        "every arm (dropout 75.95 ± 2.78); all four claims inconclusive after Holm; the tightest, scheduled "
        "vs rate-matched, is -0.06 points [-0.67, +0.55]. The model under-fits after one epoch (train 83.6 %, "
        "validation 81.8 %, test 76.0 %), so there is little for a regulariser to remove. "
        "Accuracy is taken after the last step, never selected on the test set. The committed cpu runs of "
        "2026-12-02 (1-layer, 4 heads, 2,000-phrase subset) are the earlier regime; the second of them "
        "(20261202T181418Z) is exploratory. "
        "gpu budget (150 s on one H100/H200, an estimate: no GPU was lent): 5 arms x 16 seeds = 80 runs x "
        "250 steps of 256 phrases at ~6 ms per eager step of a 2-layer model = 120 s, plus ~0.2 s of "
        "scoring per run; the same number of examples as the cpu preset in 8x larger batches (lr 4e-3), "
        "so fewer, larger updates than the cpu run."
    ),
)
