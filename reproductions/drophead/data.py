"""SST-2 for the DropHead experiment: a fixed validation split carved out of train, GLUE dev sealed.

GLUE's SST-2 test labels are not public, so GLUE dev is our test set and stays sealed until
the final evaluation (`reproductions.splits`). Anything chosen for the preset is chosen on a
validation split carved out of GLUE train by a fixed seed, the same for every run and seed.
Caveat, recorded in the notes: GLUE SST-2 train holds phrases of the treebank's sentences, so
validation phrases overlap in wording with training phrases; validation accuracy is therefore
optimistic and only good for comparing settings, never as an estimate of test accuracy.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import torch

from reproductions.api import RunContext
from reproductions.data import DatasetMissing, load_sst2, resolve_data_dir
from reproductions.drophead.config import DropHeadConfig

PAD, UNK = 0, 1
VAL_SEED = 4321  # the validation carve-out (never changed between runs)
SUBSET_SEED = 1234  # the optional training subset

Rows = list[tuple[str, int]]
Encoded = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Splits:
    train: Encoded
    val: Encoded | None  # None when val_size is 0
    test: object  # a `Sealed` (opens in the final evaluation)
    vocab_size: int


def synthetic_sst2(n_train: int, n_dev: int, seed: int) -> dict[str, Rows]:
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


def carve_validation(rows: Rows, val_size: int, seed: int = VAL_SEED) -> tuple[Rows, Rows]:
    """(train, validation): ``val_size`` rows drawn by a fixed seed, the rest in their original order."""
    if val_size >= len(rows):
        raise ValueError(f"validation split of {val_size} leaves no training rows (of {len(rows)})")
    chosen = set(random.Random(seed).sample(range(len(rows)), val_size))
    return ([r for i, r in enumerate(rows) if i not in chosen], [r for i, r in enumerate(rows) if i in chosen])


def build_vocab(sentences: list[str], max_size: int, min_freq: int) -> dict[str, int]:
    counts = Counter(w for s in sentences for w in s.split())
    words = [w for w, c in counts.most_common(max_size - 2) if c >= min_freq]
    return {w: i + 2 for i, w in enumerate(words)}  # 0 = pad, 1 = unknown


def encode(rows: Rows, vocab: dict[str, int], max_len: int) -> Encoded:
    """(tokens (N, max_len) padded with PAD, labels (N,)); longer sentences are cut."""
    tokens = torch.full((len(rows), max_len), PAD, dtype=torch.long)
    for i, (sentence, _) in enumerate(rows):
        ids = [vocab.get(w, UNK) for w in sentence.split()][:max_len] or [UNK]
        tokens[i, :len(ids)] = torch.tensor(ids)
    return tokens, torch.tensor([label for _, label in rows])


def load_data(cfg: DropHeadConfig, ctx: RunContext) -> Splits:
    """Real SST-2 (validation carved out of train, optionally a subset of the rest); synthetic
    only in the smoke preset, noted."""
    try:
        data = load_sst2(resolve_data_dir(ctx.data_dir))
        source = "GLUE SST-2: train.tsv for training, dev.tsv as the test set"
    except DatasetMissing:
        if ctx.preset != "smoke":
            raise
        data = synthetic_sst2((cfg.train_subset or 2000) + cfg.val_size, 400, seed=1234)
        source = "synthetic (SST-2 not found; smoke preset only): marker words in random filler"
    train, val = data["train"], []
    if cfg.val_size:
        train, val = carve_validation(train, cfg.val_size)
        source += f"; validation: {len(val)} train sentences carved out (fixed seed {VAL_SEED})"
    if cfg.train_subset and cfg.train_subset < len(train):
        train = random.Random(SUBSET_SEED).sample(train, cfg.train_subset)  # the same subset for every seed
        source += f"; train subset of {len(train)} sentences (fixed)"
    dev = data["dev"][: cfg.dev_subset] if cfg.dev_subset else data["dev"]
    vocab = build_vocab([s for s, _ in train], cfg.vocab_size, cfg.min_freq)
    ctx.note("data", f"{source}; {len(train)} train / {len(val)} validation / {len(dev)} test; vocab {len(vocab) + 2}")
    # the test set stays sealed until the final evaluation (splits.py): nothing is chosen on it
    return Splits(train=encode(train, vocab, cfg.max_len),
                  val=encode(val, vocab, cfg.max_len) if val else None,
                  test=ctx.seal(encode(dev, vocab, cfg.max_len), "SST-2 dev (the test set)"),
                  vocab_size=len(vocab) + 2)
