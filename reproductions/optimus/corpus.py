"""PTB for the Optimus experiment: loading, the length buckets of each batch, collation."""

from __future__ import annotations

import random

import torch

from reproductions.api import RunContext
from reproductions.data import DatasetMissing, load_ptb, resolve_data_dir
from reproductions.optimus.config import ExperimentConfig
from reproductions.optimus.tokenizer import Vocab


def synthetic_corpus(n: int, seed: int) -> list[list[str]]:
    """Tiny template language (smoke runs without PTB only): subject, verb, object, optional tail."""
    rng = random.Random(seed)
    subj = ["the cat", "a dog", "the market", "investors", "the company", "a bank"]
    verb = ["sees", "buys", "sells", "likes", "reports", "expects"]
    obj = ["the stock", "a bond", "N shares", "the deal", "profits", "<unk>"]
    tail = ["", "today", "in the quarter", "for N years"]
    return [" ".join(p for p in (rng.choice(subj), rng.choice(verb), rng.choice(obj), rng.choice(tail)) if p).split()
            for _ in range(n)]


def load_corpus(cfg: ExperimentConfig, ctx: RunContext) -> dict[str, list[list[str]]]:
    try:
        data = load_ptb(resolve_data_dir(ctx.data_dir))
        ctx.note("data", "PTB (Mikolov LM split): train/valid/test, <eos> added per sentence")
        ctx.note("data_source", "ptb")
    except DatasetMissing:
        if not cfg.allow_synthetic:
            raise
        data = {"train": synthetic_corpus(2000, 1), "valid": synthetic_corpus(200, 2), "test": synthetic_corpus(200, 3)}
        ctx.note("data", "synthetic template sentences (PTB not found; smoke preset only)")
        ctx.note("data_source", "synthetic")
    if cfg.max_words:
        data = {k: [s for s in v if len(s) <= cfg.max_words] for k, v in data.items()}
    for split, cap in (("train", cfg.max_train_sentences), ("valid", cfg.max_valid_sentences),
                       ("test", cfg.max_test_sentences)):
        if cap:
            data[split] = data[split][:cap]
    return data


def make_batches(encoded: list[list[int]], batch_size: int, rng: random.Random | None,
                 drop_last: bool = False) -> list[list[int]]:
    """Index batches of similar length (little padding); shuffled batch order when rng is given.

    Within a length the order is shuffled too (with rng), so epochs differ in composition.
    ``drop_last`` drops the one short batch (training: every step then has the full global batch).
    """
    keys = list(range(len(encoded)))
    if rng is not None:
        rng.shuffle(keys)
    tie = {i: r for r, i in enumerate(keys)}
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), tie[i]))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if rng is not None:
        rng.shuffle(batches)
    return batches


def rank_share(batch: list[int], ctx: RunContext) -> tuple[list[int], list[int]]:
    """This rank's (positions in the global batch, sentence indices): disjoint across ranks."""
    positions = list(ctx.shard(len(batch)))
    return positions, [batch[p] for p in positions]


def collate(encoded: list[list[int]], idx: list[int], vocab: Vocab, device) -> dict[str, torch.Tensor]:
    """ids (ending in <eos>) -> encoder input <bos> x <eos>, decoder input <bos> x, targets x <eos>."""
    T = max(len(encoded[i]) for i in idx)
    enc = torch.full((len(idx), T + 1), vocab.pad_id, dtype=torch.long)
    dec = torch.full((len(idx), T), vocab.pad_id, dtype=torch.long)
    tgt = torch.full((len(idx), T), vocab.pad_id, dtype=torch.long)
    for r, i in enumerate(idx):
        ids = torch.tensor(encoded[i])
        n = len(ids)
        enc[r, 0], enc[r, 1:n + 1] = vocab.bos_id, ids
        dec[r, 0], dec[r, 1:n] = vocab.bos_id, ids[:-1]
        tgt[r, :n] = ids
    return {"enc": enc.to(device), "dec": dec.to(device), "tgt": tgt.to(device)}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def encode_splits(data: dict[str, list[list[str]]], vocab: Vocab, cfg: ExperimentConfig):
    max_tok = cfg.max_len - 1  # room for <bos>
    train = [ids for ids in (vocab.encode(s) for s in data["train"]) if len(ids) <= min(max_tok, cfg.max_train_len)]
    valid = [vocab.encode(s)[:max_tok] for s in data["valid"]]
    test = [vocab.encode(s)[:max_tok] for s in data["test"]]
    return train, valid, test
