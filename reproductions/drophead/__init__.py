"""Scheduled DropHead (Zhou et al. 2020): dropping whole attention heads, with a V-shaped rate."""

from reproductions.api import Card, Claim

_MODEL = dict(max_len=64, vocab_size=16000, min_freq=1, weight_decay=0.01,
              dropout=0.1, drophead=0.2, drophead_start=0.2, drophead_end=0.2, turn=0.5, schedule="v",
              drophead_with_dropout=True)

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
        "SST-2 sentiment accuracy (GLUE dev used as the test set) of a small transformer classifier "
        "trained from scratch, in four arms over paired seeds: no dropout, standard dropout, DropHead "
        "at a fixed rate, and V-scheduled DropHead (both on top of the standard dropout); mean ± std "
        "per arm and the paired difference with a 95% t-interval."
    ),
    claims=(
        Claim(metric="gain_points_vs_dropout", value=1.0, unit="accuracy points", source="abstract",
              note="about +1.0 accuracy on text classification tasks (fine-tuned models, not SST-2 from "
                   "scratch); ours is scheduled_drophead - dropout on SST-2 dev"),
        Claim(metric="bleu_gain_wmt14_en_de", value=0.9, unit="BLEU", source="abstract",
              note="+0.9 BLEU on WMT14 En-De; translation is not run here"),
    ),
    presets={
        # smoke: seconds; real SST-2 subset when present, synthetic fallback otherwise (noted in run.json)
        "smoke": dict(_MODEL, d_model=32, heads=4, layers=1, d_ff=64, batch_size=32, lr=2e-3, steps=60,
                      seeds=2, train_subset=2000, dev_subset=300, vocab_size=4000),
        # cpu: <= 15 min on 2 cores — 4 arms x 3 seeds, a 32-wide 1-layer model, 20k-sentence train subset
        # (run it with OMP_NUM_THREADS=1 on a busy machine: 2 threads fighting for shared cores are 5x slower)
        "cpu": dict(_MODEL, d_model=32, heads=4, layers=1, d_ff=64, batch_size=32, lr=2e-3, steps=1500,
                    seeds=3, train_subset=20000, dev_subset=None, vocab_size=8000, max_len=48),
        # gpu: one H100, ~10 min — full train set, 5 seeds, a bigger model with 8 heads
        "gpu": dict(_MODEL, d_model=256, heads=8, layers=4, d_ff=1024, batch_size=128, lr=5e-4, steps=6000,
                    seeds=5, train_subset=None, dev_subset=None),
    },
    datasets=("sst2",),
    notes=(
        "The paper fine-tunes/trains much larger models; here a small transformer is trained from "
        "scratch, so absolute accuracy is far below BERT-level and the regularisers act in a different "
        "regime. The V schedule's shape follows the paper; its endpoints (0.2 -> 0 at mid-training -> 0.2) "
        "are our choice. Accuracy is taken after the last step, never selected on the test set."
    ),
)
