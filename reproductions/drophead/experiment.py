"""SST-2 from scratch: no dropout vs dropout vs DropHead vs Scheduled DropHead, paired over seeds.

Every arm trains the same small transformer classifier (`TextClassifier`) on GLUE SST-2
train and is scored once, after the last step, on GLUE dev (our test set: there is no
model selection on it). Seed ``s`` gives every arm the same initial weights and the same
batch order, so arms differ only in their regulariser and the per-seed differences are
paired; the confidence interval of the mean difference is a t-interval over seeds.

Arms (rates from the config):

* ``none``               no regularisation at all;
* ``dropout``            standard dropout (embeddings, attention weights, residual, FFN);
* ``drophead``           DropHead at a fixed rate, on top of the same dropout;
* ``scheduled_drophead`` V-scheduled DropHead, on top of the same dropout.

The DropHead arms keep the standard dropout because the paper's claim is an improvement
over a regular (dropout-trained) transformer; set ``drophead_with_dropout=false`` to test
DropHead alone.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections import Counter

import torch
import torch.nn.functional as F

from reproductions.api import RunContext
from reproductions.data import DatasetMissing, load_sst2, resolve_data_dir
from reproductions.drophead.model import DropHeadSchedule, TextClassifier, set_drophead_rate

ARMS = ("none", "dropout", "drophead", "scheduled_drophead")
PAD, UNK = 0, 1

# Two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30 (standard table values).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}; beyond the table, the normal quantile with a first-order correction."""
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= len(_T975) else 1.959964 * (1 + 1 / (4 * df))


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def paired_difference(a: list[float], b: list[float]) -> dict:
    """Mean of a - b over paired seeds with a 95% t-interval (NaN bounds with one seed)."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    m, s = mean_std(diffs)
    n = len(diffs)
    half = t_quantile_975(n - 1) * s / math.sqrt(n) if n > 1 else math.nan
    return {"mean": m, "ci95": [m - half, m + half], "per_seed": diffs, "n": n}


# ---------------------------------------------------------------- data

def synthetic_sst2(n_train: int, n_dev: int, seed: int) -> dict[str, list[tuple[str, int]]]:
    """Tiny stand-in for the smoke preset only: sentiment carried by a few marker words in noise."""
    rng = random.Random(seed)
    pos, neg = ["good", "great", "fun", "moving"], ["bad", "dull", "boring", "flat"]
    filler = [f"w{i}" for i in range(60)]

    def make(n):
        rows = []
        for _ in range(n):
            label = rng.randint(0, 1)
            words = rng.choices(filler, k=rng.randint(4, 12))
            words.insert(rng.randint(0, len(words)), rng.choice(pos if label else neg))
            rows.append((" ".join(words), label))
        return rows

    return {"train": make(n_train), "dev": make(n_dev)}


def build_vocab(sentences: list[str], max_size: int, min_freq: int) -> dict[str, int]:
    counts = Counter(w for s in sentences for w in s.split())
    words = [w for w, c in counts.most_common(max_size - 2) if c >= min_freq]
    return {w: i + 2 for i, w in enumerate(words)}  # 0 = pad, 1 = unknown


def encode(rows: list[tuple[str, int]], vocab: dict[str, int], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (N, max_len) padded with PAD, labels (N,)); longer sentences are cut."""
    tokens = torch.full((len(rows), max_len), PAD, dtype=torch.long)
    for i, (sentence, _) in enumerate(rows):
        ids = [vocab.get(w, UNK) for w in sentence.split()][:max_len] or [UNK]
        tokens[i, :len(ids)] = torch.tensor(ids)
    return tokens, torch.tensor([label for _, label in rows])


def load_data(cfg: dict, ctx: RunContext):
    """Real SST-2 (optionally a subset of train); synthetic only in the smoke preset, noted."""
    try:
        data = load_sst2(resolve_data_dir(ctx.data_dir))
        source = "GLUE SST-2: train.tsv for training, dev.tsv as the test set"
    except DatasetMissing:
        if ctx.preset != "smoke":
            raise
        data = synthetic_sst2(cfg.get("train_subset") or 2000, 400, seed=1234)
        source = "synthetic (SST-2 not found; smoke preset only): marker words in random filler"
    train = data["train"]
    if cfg.get("train_subset") and cfg["train_subset"] < len(train):
        train = random.Random(1234).sample(train, cfg["train_subset"])  # the same subset for every seed
        source += f"; train subset of {len(train)} sentences (fixed)"
    dev = data["dev"][: cfg["dev_subset"]] if cfg.get("dev_subset") else data["dev"]
    vocab = build_vocab([s for s, _ in train], cfg["vocab_size"], cfg["min_freq"])
    ctx.note("data", f"{source}; {len(train)} train / {len(dev)} test; vocab {len(vocab) + 2}")
    return encode(train, vocab, cfg["max_len"]), encode(dev, vocab, cfg["max_len"]), len(vocab) + 2


# ---------------------------------------------------------------- one arm, one seed

def arm_settings(arm: str, cfg: dict) -> tuple[float, DropHeadSchedule | None]:
    """(standard dropout rate, DropHead schedule or None) for an arm."""
    steps = cfg["steps"]
    dropout = 0.0 if arm == "none" else cfg["dropout"]
    if arm in ("drophead", "scheduled_drophead") and not cfg.get("drophead_with_dropout", True):
        dropout = 0.0
    if arm == "drophead":
        return dropout, DropHeadSchedule("constant", steps, cfg["drophead"])
    if arm == "scheduled_drophead":
        return dropout, DropHeadSchedule(cfg.get("schedule", "v"), steps, cfg["drophead_start"],
                                         cfg["drophead_end"], cfg["turn"])
    if arm not in ("none", "dropout"):
        raise ValueError(f"unknown arm {arm!r} (known: {', '.join(ARMS)})")
    return dropout, None


@torch.no_grad()
def accuracy(model, tokens, labels, device, batch_size: int = 512) -> float:
    model.eval()
    right = 0
    for i in range(0, len(labels), batch_size):
        x = _trim(tokens[i:i + batch_size]).to(device)
        right += (model(x).argmax(-1).cpu() == labels[i:i + batch_size]).sum().item()
    model.train()
    return right / len(labels)


def _trim(x: torch.Tensor) -> torch.Tensor:
    """Cut the batch to its longest real sentence: padding past it costs time and changes nothing."""
    longest = int((x != PAD).sum(1).max().item())
    return x[:, :max(longest, 1)]


def train_one(arm: str, seed: int, cfg: dict, train, test, vocab_size: int, ctx: RunContext) -> dict:
    dropout, schedule = arm_settings(arm, cfg)
    torch.manual_seed(seed)  # same init for every arm of this seed (same shapes, same draw order)
    model = TextClassifier(vocab_size, cfg["max_len"], 2, cfg["d_model"], cfg["heads"], cfg["layers"],
                           cfg["d_ff"], dropout=dropout, emb_dropout=dropout).to(ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    steps, bs = cfg["steps"], cfg["batch_size"]
    warmup = max(1, int(0.05 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    order_gen = torch.Generator().manual_seed(seed)  # the same batch order for every arm of this seed
    tokens, labels = train
    n = len(labels)
    perm, pos = torch.randperm(n, generator=order_gen), 0
    log_every = max(1, steps // 10)
    t0 = time.time()
    for step in range(steps):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=order_gen), 0
        idx = perm[pos:pos + bs]
        pos += bs
        rate = schedule.rate(step) if schedule else 0.0
        set_drophead_rate(model, rate)
        x, y = _trim(tokens[idx]).to(ctx.device), labels[idx].to(ctx.device)
        with ctx.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0:
            ctx.log(step + 1, arm=arm, seed=seed, loss=round(loss.item(), 5), drophead_rate=round(rate, 4))
    acc = accuracy(model, *test, ctx.device)
    train_acc = accuracy(model, tokens[:1000], labels[:1000], ctx.device)  # a fixed slice, as a fit gauge
    return {"accuracy": acc, "train_accuracy": train_acc, "seconds": time.time() - t0}


# ---------------------------------------------------------------- the experiment

def run(config: dict, ctx: RunContext) -> dict:
    cfg = dict(config)
    train, test, vocab_size = load_data(cfg, ctx)
    arms = list(cfg.get("arms") or ARMS)
    given = cfg["seeds"]  # a count, or the runner's list of seeds
    seeds = [int(s) for s in given] if isinstance(given, (list, tuple)) else [ctx.seed + i for i in range(given)]
    ctx.note("design", f"{len(arms)} arms x {len(seeds)} paired seeds {seeds}; accuracy after the last step "
                       "on the test set (no early stopping, no selection on it)")
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    t0 = time.time()
    with ctx.progress(len(arms) * len(seeds), "arms x seeds") as advance:
        for seed in seeds:
            for arm in arms:
                r = train_one(arm, seed, cfg, train, test, vocab_size, ctx)
                results[arm].append(r)
                ctx.log(cfg["steps"], arm=arm, seed=seed, test_accuracy=r["accuracy"],
                        train_accuracy=r["train_accuracy"])
                advance(1)

    metrics: dict = {"arms": {}, "seeds": seeds, "wall_s": round(time.time() - t0, 1)}
    for arm in arms:
        accs = [r["accuracy"] for r in results[arm]]
        m, s = mean_std(accs)
        train_m, _ = mean_std([r["train_accuracy"] for r in results[arm]])
        metrics["arms"][arm] = {"accuracy": {"mean": m, "std": s, "per_seed": accs},
                                "train_accuracy_mean": train_m,
                                "seconds_per_run": statistics.fmean(r["seconds"] for r in results[arm])}
    if "scheduled_drophead" in arms:
        sched_accs = [r["accuracy"] for r in results["scheduled_drophead"]]
        for base in ("dropout", "none"):
            if base in arms:
                metrics[f"diff_scheduled_drophead_minus_{base}"] = paired_difference(
                    sched_accs, [r["accuracy"] for r in results[base]])
    if "drophead" in arms and "dropout" in arms:
        metrics["diff_drophead_minus_dropout"] = paired_difference(
            [r["accuracy"] for r in results["drophead"]], [r["accuracy"] for r in results["dropout"]])
    # headline numbers in accuracy points, comparable to the paper's "+1.0 accuracy"
    d = metrics.get("diff_scheduled_drophead_minus_dropout")
    if d:
        metrics["gain_points_vs_dropout"] = 100 * d["mean"]
    plot_arms(metrics, ctx.out_dir / "accuracy_by_arm.png", title=cfg.get("plot_title", "SST-2 dev accuracy"))
    return metrics


def plot_arms(metrics: dict, path, title: str) -> None:
    """Bar per arm at the mean with a ±std error bar, and the per-seed accuracies as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(metrics["arms"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, arm in enumerate(arms):
        a = metrics["arms"][arm]["accuracy"]
        ax.bar(i, 100 * a["mean"], yerr=100 * a["std"], capsize=6, color="#8fb3d9", edgecolor="#2b4f7a")
        ax.scatter([i] * len(a["per_seed"]), [100 * v for v in a["per_seed"]], color="#2b4f7a", s=14, zorder=3)
    lows = [100 * min(metrics["arms"][a]["accuracy"]["per_seed"]) for a in arms]
    highs = [100 * max(metrics["arms"][a]["accuracy"]["per_seed"]) for a in arms]
    ax.set_ylim(max(0.0, min(lows) - 3), min(100.0, max(highs) + 2))
    ax.set_xticks(range(len(arms)), [a.replace("_", "\n") for a in arms])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{title} — mean ± std over {len(metrics['seeds'])} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
