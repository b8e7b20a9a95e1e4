"""SST-2 from scratch: no dropout vs dropout vs DropHead vs Scheduled DropHead, paired over seeds.

Every arm trains the same small transformer classifier (`TextClassifier`) on (a fixed
subset of) GLUE SST-2 train and is scored once, after the last step, on GLUE dev (our
test set: there is no model selection on it). Seed ``s`` gives every arm the same
initial weights and the same batch order, so arms differ only in their regulariser and
the per-seed differences are paired; the confidence interval of the mean difference is a
t-interval over seeds.

Arms (rates from the config):

* ``none``               no regularisation at all;
* ``dropout``            standard dropout (embeddings, attention weights, residual, FFN);
* ``drophead``           DropHead at a fixed rate, on top of the same dropout;
* ``scheduled_drophead`` V-scheduled DropHead, on top of the same dropout: ``drophead_start``
  → 0 at the end of the learning-rate warm-up → ``drophead_end`` at the last step (§3.2).

The DropHead arms keep the standard dropout because the paper's claim is an improvement
over a regular (dropout-trained) transformer; set ``drophead_with_dropout=false`` to test
DropHead alone.

Data-parallel: every rank draws the same global batch (same seeded permutation) and
trains on its rows of it (`ctx.shard`), the model is in DDP (`ctx.wrap_model`), so N
processes train with the preset's global batch; evaluation is sharded and the counts
summed over ranks.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from reproductions.api import ConfigError, RunContext, config_from_dict
from reproductions.data import DatasetMissing, load_sst2, resolve_data_dir
from reproductions.drophead.model import DropHeadSchedule, TextClassifier, set_drophead_rate

ARMS = ("none", "dropout", "drophead", "scheduled_drophead")
PAD, UNK = 0, 1


@dataclass(frozen=True)
class DropHeadConfig:
    """The experiment's settings; presets and ``--set`` may name only these keys."""

    # model
    d_model: int = 32
    n_head: int = 4
    n_layer: int = 1
    d_ff: int = 64
    max_len: int = 64  # tokens per sentence kept (longer ones are cut)
    # regularisers
    dropout: float = 0.1  # standard dropout of every arm but "none"
    drophead: float = 0.2  # the fixed rate of the "drophead" arm
    drophead_start: float = 0.2  # V schedule: rate at step 0 ...
    drophead_end: float = 0.2  # ... and at the last step
    schedule: str = "v"  # "v" (the paper's) or "inverse_v" (ablation)
    turn: float | None = None  # turning point as a fraction of training; None: end of the lr warm-up (paper)
    drophead_with_dropout: bool = True
    # optimisation
    batch_size: int = 32  # global: split over the processes
    lr: float = 2e-3
    warmup: float = 0.1  # fraction of steps with a linear lr ramp (then cosine decay)
    weight_decay: float = 0.01
    steps: int = 60
    seeds: int | list[int] = 2  # a count, or the runner's list of seeds
    arms: tuple[str, ...] = ARMS
    # data
    train_subset: int | None = None  # a fixed random subset of SST-2 train; None = all 67k
    dev_subset: int | None = None
    vocab_size: int = 16000
    min_freq: int = 1
    train_eval_max: int = 5000  # train accuracy (the fit gauge) on up to this many training sentences

    def __post_init__(self):
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ConfigError(f"drophead: unknown arms {bad}; known: {list(ARMS)}")
        if self.schedule not in ("v", "inverse_v"):
            raise ConfigError(f"drophead: schedule must be 'v' or 'inverse_v', got {self.schedule!r}")
        if self.turn is not None and not 0.0 < self.turn < 1.0:
            raise ConfigError(f"drophead: turn must be in (0, 1) or null, got {self.turn}")

    @property
    def warmup_steps(self) -> int:
        return max(1, int(self.warmup * self.steps))

    @property
    def turn_step(self) -> int:
        """The V's turning point: the end of the lr warm-up unless ``turn`` says otherwise."""
        step = self.warmup_steps if self.turn is None else round(self.turn * self.steps)
        return min(max(step, 1), self.steps - 1)


def load_config(config: dict[str, Any]) -> DropHeadConfig:
    return config_from_dict(DropHeadConfig, config, name="drophead")


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


def load_data(cfg: DropHeadConfig, ctx: RunContext):
    """Real SST-2 (optionally a subset of train); synthetic only in the smoke preset, noted."""
    try:
        data = load_sst2(resolve_data_dir(ctx.data_dir))
        source = "GLUE SST-2: train.tsv for training, dev.tsv as the test set"
    except DatasetMissing:
        if ctx.preset != "smoke":
            raise
        data = synthetic_sst2(cfg.train_subset or 2000, 400, seed=1234)
        source = "synthetic (SST-2 not found; smoke preset only): marker words in random filler"
    train = data["train"]
    if cfg.train_subset and cfg.train_subset < len(train):
        train = random.Random(1234).sample(train, cfg.train_subset)  # the same subset for every seed
        source += f"; train subset of {len(train)} sentences (fixed)"
    dev = data["dev"][: cfg.dev_subset] if cfg.dev_subset else data["dev"]
    vocab = build_vocab([s for s, _ in train], cfg.vocab_size, cfg.min_freq)
    ctx.note("data", f"{source}; {len(train)} train / {len(dev)} test; vocab {len(vocab) + 2}")
    # the test set stays sealed until the final evaluation (splits.py): nothing is chosen on it
    return encode(train, vocab, cfg.max_len), ctx.seal(encode(dev, vocab, cfg.max_len), "SST-2 dev (the test set)"), \
        len(vocab) + 2


# ---------------------------------------------------------------- one arm, one seed

def arm_settings(arm: str, cfg: DropHeadConfig) -> tuple[float, DropHeadSchedule | None]:
    """(standard dropout rate, DropHead schedule or None) for an arm."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r} (known: {', '.join(ARMS)})")
    dropout = 0.0 if arm == "none" else cfg.dropout
    if arm in ("drophead", "scheduled_drophead") and not cfg.drophead_with_dropout:
        dropout = 0.0
    if arm == "drophead":
        return dropout, DropHeadSchedule("constant", cfg.steps, cfg.drophead)
    if arm == "scheduled_drophead":
        return dropout, DropHeadSchedule(cfg.schedule, cfg.steps, cfg.drophead_start, cfg.drophead_end,
                                         turn_step=cfg.turn_step)
    return dropout, None


def build_model(arm: str, seed: int, cfg: DropHeadConfig, vocab_size: int) -> TextClassifier:
    """The arm's classifier with seed ``seed``'s initial weights (the same for every arm: same shapes,
    same draw order; the regularisers have no parameters)."""
    dropout, _ = arm_settings(arm, cfg)
    torch.manual_seed(seed)
    return TextClassifier(vocab_size, cfg.max_len, 2, cfg.d_model, cfg.n_head, cfg.n_layer, cfg.d_ff,
                          dropout=dropout, emb_dropout=dropout)


def global_batches(n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Indices of the global batches, forever: a fresh seeded permutation of range(n) per epoch,
    the last partial batch of an epoch dropped. Every arm and every rank of seed ``seed`` gets
    the same sequence."""
    if batch_size > n:
        raise ConfigError(f"drophead: batch {batch_size} is larger than the {n} training sentences")
    order_gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=order_gen)
        for pos in range(0, n - batch_size + 1, batch_size):
            yield perm[pos:pos + batch_size]


def local_rows(batch: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    """This rank's rows of a global batch (``rank::world_size``); all of it with one process."""
    return batch[list(ctx.shard(len(batch)))]


@torch.no_grad()
def accuracy(model, tokens, labels, ctx: RunContext, batch_size: int = 512) -> float:
    """Accuracy over all of (tokens, labels), each rank scoring its shard and the counts summed."""
    model.eval()
    rows = torch.tensor(list(ctx.shard(len(labels))), dtype=torch.long)
    right = 0
    for i in range(0, len(rows), batch_size):
        idx = rows[i:i + batch_size]
        x = _trim(tokens[idx]).to(ctx.device)
        right += (model(x).argmax(-1).cpu() == labels[idx]).sum().item()
    model.train()
    # mean over ranks of the counts, times world size = the sums; their ratio = the accuracy
    return ctx.mean_over_ranks(right) / ctx.mean_over_ranks(len(rows))


def _trim(x: torch.Tensor) -> torch.Tensor:
    """Cut the batch to its longest real sentence: padding past it costs time and changes nothing."""
    longest = int((x != PAD).sum(1).max().item())
    return x[:, :max(longest, 1)]


OnBatch = Callable[[int, torch.Tensor, torch.nn.Module], None]


def train_one(arm: str, seed: int, cfg: DropHeadConfig, train, test, vocab_size: int, ctx: RunContext,
              on_batch: OnBatch | None = None) -> dict:
    """Train one arm with one seed; ``on_batch(step, local_indices, model)`` is called before
    each step's forward pass (tests look at the data order and the initial weights there)."""
    _, schedule = arm_settings(arm, cfg)
    net = build_model(arm, seed, cfg, vocab_size)
    model = ctx.wrap_model(net)
    # dropout masks: a stream per rank (the same stream on two ranks would mask their halves alike)
    torch.manual_seed(seed * 1_000 + 7 + ctx.rank)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps, warmup = cfg.steps, cfg.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    tokens, labels = train
    batches = global_batches(len(labels), cfg.batch_size, seed)
    ctx.local_batch(cfg.batch_size)  # refuses a global batch that does not split evenly
    log_every = max(1, steps // 10)
    t0 = time.time()
    for step in range(steps):
        idx = local_rows(next(batches), ctx)
        ctx.count_examples(len(idx))
        rate = schedule.rate(step) if schedule else 0.0
        set_drophead_rate(net, rate)
        if on_batch is not None:
            on_batch(step, idx, net)
        x, y = _trim(tokens[idx]).to(ctx.device), labels[idx].to(ctx.device)
        with ctx.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP averages the gradients over ranks here
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0:
            ctx.log(step + 1, arm=arm, seed=seed, loss=round(ctx.mean_over_ranks(loss.item()), 5),
                    drophead_rate=round(rate, 4))
    final_loss = ctx.mean_over_ranks(loss.item())
    del model, opt, sched  # release the DDP wrapper (and its reducer) while the process group is alive
    gc.collect()
    acc = accuracy(net, *test, ctx)
    n_fit = min(cfg.train_eval_max, len(labels))
    train_acc = accuracy(net, tokens[:n_fit], labels[:n_fit], ctx)  # the fit gauge: over-fitting shows here
    return {"accuracy": acc, "train_accuracy": train_acc, "final_loss": final_loss, "seconds": time.time() - t0}


# ---------------------------------------------------------------- the experiment

def run(config: dict, ctx: RunContext) -> dict:
    cfg = load_config(config)
    train, sealed, vocab_size = load_data(cfg, ctx)
    ctx.begin_final_evaluation(fixed="arms, seeds, steps and drop rates fixed by the preset; accuracy after "
                                     "the last step (no early stopping)")
    test = sealed.open()
    arms = list(cfg.arms)
    given = cfg.seeds
    seeds = [int(s) for s in given] if isinstance(given, (list, tuple)) else [ctx.seed + i for i in range(given)]
    ctx.note("design", f"{len(arms)} arms x {len(seeds)} paired seeds {seeds}; accuracy after the last step "
                       "on the test set (no early stopping, no selection on it)")
    ctx.note("schedule", f"scheduled_drophead: {cfg.schedule} {cfg.drophead_start} -> 0 at step {cfg.turn_step} "
                         f"({'end of the lr warm-up' if cfg.turn is None else f'turn={cfg.turn}'}) -> "
                         f"{cfg.drophead_end} at step {cfg.steps}")
    ctx.note("data_parallel", {"world_size": ctx.world_size, "global_batch": cfg.batch_size,
                               "local_batch": ctx.local_batch(cfg.batch_size),
                               "rows_of_each_batch": "rank::world_size"})
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    t0 = time.time()
    with ctx.progress(len(arms) * len(seeds), "arms x seeds") as advance:
        for seed in seeds:
            for arm in arms:
                r = train_one(arm, seed, cfg, train, test, vocab_size, ctx)
                results[arm].append(r)
                ctx.log(cfg.steps, arm=arm, seed=seed, test_accuracy=r["accuracy"],
                        train_accuracy=r["train_accuracy"])
                advance(1)

    metrics: dict = {"arms": {}, "seeds": seeds, "wall_s": round(time.time() - t0, 1),
                     "world_size": ctx.world_size, "examples_seen_rank0": ctx.examples_seen,
                     "examples_seen_all_ranks": round(ctx.mean_over_ranks(ctx.examples_seen) * ctx.world_size)}
    for arm in arms:
        accs = [r["accuracy"] for r in results[arm]]
        m, s = mean_std(accs)
        train_m, _ = mean_std([r["train_accuracy"] for r in results[arm]])
        metrics["arms"][arm] = {"accuracy": {"mean": m, "std": s, "per_seed": accs},
                                "train_accuracy_mean": train_m,
                                "train_minus_test_points": 100 * (train_m - m),
                                "final_loss_mean": statistics.fmean(r["final_loss"] for r in results[arm]),
                                "seconds_per_run": statistics.fmean(r["seconds"] for r in results[arm])}

    def diff(a: str, b: str) -> None:
        if a in arms and b in arms:
            metrics[f"diff_{a}_minus_{b}"] = paired_difference([r["accuracy"] for r in results[a]],
                                                               [r["accuracy"] for r in results[b]])

    diff("dropout", "none")  # the regime check: regularisation must help here before DropHead is judged
    diff("scheduled_drophead", "dropout")
    diff("scheduled_drophead", "none")
    diff("drophead", "dropout")
    diff("scheduled_drophead", "drophead")
    # headline numbers in accuracy points, comparable to the paper's "+1.0 accuracy"
    d = metrics.get("diff_scheduled_drophead_minus_dropout")
    if d:
        metrics["gain_points_vs_dropout"] = 100 * d["mean"]
    if ctx.is_main:
        plot_arms(metrics, ctx.out_dir / "accuracy_by_arm.png", title="SST-2 dev accuracy")
    ctx.barrier()  # no rank leaves before rank 0 has written its artefacts
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
