"""Train three arms on PTB and measure PPL / KL / MI / AU on the test split.

* ``lm``      — the decoder alone (no encoder, no z): the plain LM the VAE must beat or match;
* ``vae``     — the same encoder/decoder with β = 1 from the first step and no threshold:
                the textbook VAE whose strong autoregressive decoder ignores z (KL -> 0);
* ``optimus`` — optional auto-encoder warm-up (β = 0), then the cyclical β schedule with
                the KL threshold λ (per example and dimension by default, as the official code).

Every arm is evaluated the same way: exact NLL for the LM, and for the VAEs the ELBO with
β = 1 and the true KL (an upper bound on NLL) and the K-sample importance-weighted bound
``ppl_iw`` (the headline, as in the paper).

Data parallel: every rank builds the same global batches (same seed), trains on its share of
each (``ctx.shard`` over the batch's positions; per-rank batch = ``ctx.local_batch``), and DDP
averages the gradients, so N processes take the same steps as one. The reparameterisation
noise is drawn per global position, so a sentence gets the same z whichever rank holds it.
Evaluation is sharded by batch and the sums reduced with ``ctx.mean_over_ranks``; only rank 0
writes files.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reproductions.api import ConfigError, RunContext, config_from_dict
from reproductions.data import DatasetMissing, load_ptb, resolve_data_dir
from reproductions.optimus.demos import write_demos
from reproductions.optimus.metrics import iw_log_likelihood, mutual_information, perplexity
from reproductions.optimus.model import LanguageModel, OptimusConfig, OptimusVAE, sentence_nll
from reproductions.optimus.objectives import THRESHOLD_MODES, cyclical_beta, vae_loss
from reproductions.optimus.tokenizer import Vocab

ARMS = ("lm", "vae", "optimus")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a preset may set; `from_dict` refuses unknown keys."""

    # data (0 = no limit)
    allow_synthetic: bool = False  # smoke only: template sentences when PTB is missing
    max_words: int = 0  # keep only sentences of at most this many words, in every split
    max_vocab: int = 0  # keep the most frequent words of train, the rest become <unk>
    max_train_sentences: int = 0
    max_valid_sentences: int = 0
    max_test_sentences: int = 0
    max_len: int = 96  # positions, <bos> included; longer eval sentences are cut
    max_train_len: int = 50  # training sentences longer than this (tokens incl. <eos>) are skipped
    # model (names shared with the other reproductions)
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2  # decoder layers
    n_enc_layer: int = 1
    d_ff: int = 256
    d_latent: int = 16
    dropout: float = 0.1
    inject_memory: bool = True
    inject_embedding: bool = True
    memory_kv: str = "raw"  # "raw" (paper) | "projected" (through each layer's K/V)
    # objective
    kl_threshold: float = 0.5  # λ, Optimus arm only
    kl_threshold_mode: str = "example"  # "example" (official code) | "batch" (batch-mean KL per dim)
    ae_pretrain_steps: int = 0  # β = 0 steps before the cyclical schedule (Optimus arm)
    n_cycles: int = 1
    ratio_zero: float = 0.5
    ratio_increase: float = 0.25
    beta_max: float = 1.0
    # optimisation; batch_size is the global batch (split over ranks)
    batch_size: int = 32
    steps: int = 100
    warmup_steps: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # evaluation and output
    eval_batch_size: int = 100
    log_every: int = 20
    eval_every: int = 100
    iw_samples: int = 20  # K of the importance-weighted bound on the test split (0: skip)
    arms: tuple[str, ...] = ARMS
    demo_sentences: int = 5
    demo_max_tokens: int = 30
    threads: int = 0  # torch.set_num_threads when > 0
    # selection on PTB valid (test sealed): train the Optimus arm for select_steps per lambda of
    # lambda_grid (and the LM for the same steps), keep the rule's choice; selection_only stops there
    lambda_grid: tuple[float, ...] = ()
    select_steps: int = 0
    selection_only: bool = False

    def __post_init__(self):
        bad = [a for a in self.arms if a not in ARMS]
        if bad or not self.arms:
            raise ConfigError(f"optimus: arms must be a non-empty subset of {ARMS}, got {list(self.arms)}")
        if self.kl_threshold_mode not in THRESHOLD_MODES:
            raise ConfigError(f"optimus: kl_threshold_mode must be one of {THRESHOLD_MODES}")
        if self.steps <= self.ae_pretrain_steps:
            raise ConfigError("optimus: steps must exceed ae_pretrain_steps")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        return config_from_dict(cls, d, name="optimus")

    def model_config(self, vocab: Vocab) -> OptimusConfig:
        return OptimusConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, max_len=self.max_len,
                             d_model=self.d_model, n_head=self.n_head, n_layer=self.n_layer,
                             n_enc_layer=self.n_enc_layer, d_ff=self.d_ff, d_latent=self.d_latent,
                             dropout=self.dropout, inject_memory=self.inject_memory,
                             inject_embedding=self.inject_embedding, memory_kv=self.memory_kv)


# ---------------------------------------------------------------- data

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


# ---------------------------------------------------------------- training

def beta_at(arm: str, step: int, cfg: ExperimentConfig) -> float:
    if arm == "vae":
        return 1.0
    if step < cfg.ae_pretrain_steps:
        return 0.0
    return cyclical_beta(step - cfg.ae_pretrain_steps, cfg.steps - cfg.ae_pretrain_steps, cfg.n_cycles,
                         cfg.ratio_zero, cfg.ratio_increase, cfg.beta_max)


def lr_at(step: int, cfg: ExperimentConfig) -> float:
    """Linear warm-up then cosine decay to 10% of the peak."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def step_noise(seed: int, step: int, batch: int, d_latent: int) -> torch.Tensor:
    """N(0, I) noise (batch, D) for one global batch, the same on every rank and world size."""
    g = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + step)
    return torch.randn((batch, d_latent), generator=g)


def train_arm(arm: str, cfg: ExperimentConfig, ctx: RunContext, vocab: Vocab, train: list[list[int]],
              valid: list[list[int]]):
    torch.manual_seed(ctx.seed)
    mcfg = cfg.model_config(vocab)
    model = ctx.wrap_model(LanguageModel(mcfg) if arm == "lm" else OptimusVAE(mcfg))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lam = cfg.kl_threshold if arm == "optimus" else 0.0
    local = ctx.local_batch(cfg.batch_size)  # raises unless the global batch splits evenly
    rng = random.Random(ctx.seed)
    batches: list[list[int]] = []
    step, epochs, t0 = 0, 0, time.time()
    with ctx.progress(cfg.steps, f"train {arm}") as advance:
        while step < cfg.steps:
            if not batches:
                batches = make_batches(train, cfg.batch_size, rng, drop_last=True)
                if not batches:
                    raise ConfigError(f"optimus: fewer training sentences ({len(train)}) than one batch")
                epochs += 1
            positions, idx = rank_share(batches.pop(), ctx)
            assert len(idx) == local
            ctx.count_examples(len(idx))
            b = collate(train, idx, vocab, ctx.device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            beta = beta_at(arm, step, cfg)
            model.train()
            with ctx.autocast():
                if arm == "lm":
                    out = model(b["dec"], b["tgt"])
                    loss = out["rec"].mean()
                else:
                    eps = step_noise(ctx.seed, step, cfg.batch_size, cfg.d_latent)[positions].to(ctx.device)
                    out = model(b["enc"], b["dec"], b["tgt"], eps=eps)
                    loss = vae_loss(out["rec"], out["kl"], beta, lam, cfg.kl_threshold_mode)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP: gradients averaged over ranks = the global batch's mean
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            advance(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                ntok, rec = ctx.sum_over_ranks([float(b["tgt"].ne(vocab.pad_id).sum()),
                                            float(out["rec"].detach().float().sum())])
                row: dict[str, Any] = {"arm": arm, "split": "train", "rec_per_token": rec / ntok}
                if arm != "lm":
                    kl = ctx.mean_over_ranks(float(out["kl"].detach().sum(1).mean()))
                    row.update(kl=kl, beta=beta)
                ctx.log(step, **row)
            if step % cfg.eval_every == 0 or step == cfg.steps:
                ev = evaluate(arm, unwrap(model), vocab, valid, cfg, ctx, iw_samples=0)
                ctx.log(step, arm=arm, split="valid", ppl=ev["ppl"], kl=ev["kl"], mi=ev["mi"], au=ev["au"])
    ctx.note(f"{arm}_train_seconds", round(time.time() - t0, 1))
    ctx.note(f"{arm}_parameters", sum(p.numel() for p in unwrap(model).parameters()))
    ctx.note(f"{arm}_epochs", round(cfg.steps * cfg.batch_size / max(1, len(train)), 2))
    return unwrap(model)


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(arm: str, model, vocab: Vocab, data: list[list[int]], cfg: ExperimentConfig, ctx: RunContext,
             iw_samples: int = 0) -> dict[str, float]:
    """Exact NLL (LM) or β = 1 ELBO with true KL (VAEs); MI per batch, AU over the whole split.

    Batches are fixed (no shuffling) and dealt to ranks round-robin; each batch's noise comes
    from its own generator, so the reduced sums equal a single process's.
    """
    model.eval()
    D = cfg.d_latent
    batches = make_batches(data, cfg.eval_batch_size, None)
    tokens, nll, rec_sum, kl_sum, iw_sum, mi_weighted = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    mu_sum, mu_sq = torch.zeros(D, dtype=torch.float64), torch.zeros(D, dtype=torch.float64)
    for bi in ctx.shard(len(batches)):
        idx = batches[bi]
        gen = torch.Generator(device="cpu").manual_seed(ctx.seed * 7919 + 1 + bi)
        b = collate(data, idx, vocab, ctx.device)
        tokens += int(b["tgt"].ne(vocab.pad_id).sum())
        with ctx.autocast():
            if arm == "lm":
                nll += float(model(b["dec"], b["tgt"])["rec"].float().sum())
                continue
            mu, logvar = model.encoder(b["enc"])
        mu, logvar = mu.float(), logvar.float()
        eps = torch.randn(mu.shape, generator=gen).to(mu.device)
        z = mu + eps * (0.5 * logvar).exp()
        with ctx.autocast():
            rec = sentence_nll(model.decoder(b["dec"], z).float(), b["tgt"], vocab.pad_id)
        kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)).sum(1)
        rec_sum += float(rec.sum())
        kl_sum += float(kl.sum())
        mi_weighted += mutual_information(mu.cpu(), logvar.cpu(), gen) * len(idx)
        mu_sum += mu.double().sum(0).cpu()
        mu_sq += mu.double().pow(2).sum(0).cpu()
        if iw_samples > 0:
            iw_sum += float(iw_bound(model, b, mu, logvar, iw_samples, vocab, ctx, gen).sum())
    n = len(data)
    if arm == "lm":
        tokens, nll = ctx.sum_over_ranks([tokens, nll])
        return {"ppl": perplexity(nll, tokens), "nll": nll / n, "tokens": int(tokens), "kl": 0.0, "mi": 0.0,
                "au": 0}
    totals = ctx.sum_over_ranks([tokens, rec_sum, kl_sum, iw_sum, mi_weighted, *mu_sum.tolist(), *mu_sq.tolist()])
    tokens, rec_sum, kl_sum, iw_sum, mi_weighted = totals[:5]
    s1, s2 = torch.tensor(totals[5:5 + D]), torch.tensor(totals[5 + D:])
    var = (s2 - s1 ** 2 / n) / max(1, n - 1)  # Cov_x E_q[z|x] per dimension (unbiased)
    au = int((var > 0.01).sum())  # active units (Burda et al. 2016)
    out = {"ppl": perplexity(rec_sum + kl_sum, tokens), "neg_elbo": (rec_sum + kl_sum) / n, "rec": rec_sum / n,
           "kl": kl_sum / n, "mi": mi_weighted / n, "au": au, "tokens": int(tokens)}
    if iw_samples > 0:
        out.update(ppl_iw=perplexity(-iw_sum, tokens), nll_iw=-iw_sum / n, iw_samples=iw_samples)
    return out


def iw_bound(model, b, mu, logvar, K: int, vocab: Vocab, ctx: RunContext, gen) -> torch.Tensor:
    """log p(x) lower bound with K posterior samples, decoded in chunks to bound memory: (B,)."""
    B, D = mu.shape
    chunk = max(1, min(K, 2048 // B))  # at most ~2048 decoded rows at once
    log_px, zs = [], []
    for start in range(0, K, chunk):
        k = min(chunk, K - start)
        eps = torch.randn((B, k, D), generator=gen).to(mu.device)
        z = mu[:, None] + eps * (0.5 * logvar[:, None]).exp()  # (B, k, D)
        rep = lambda t: t.repeat_interleave(k, dim=0)  # noqa: E731  (B*k, T) rows grouped by sentence
        with ctx.autocast():
            logits = model.decoder(rep(b["dec"]), z.reshape(B * k, D)).float()
        log_px.append(-sentence_nll(logits, rep(b["tgt"]), vocab.pad_id).view(B, k))
        zs.append(z)
    return iw_log_likelihood(torch.cat(log_px, 1), torch.cat(zs, 1), mu, logvar)


# ---------------------------------------------------------------- the experiment

def encode_splits(data: dict[str, list[list[str]]], vocab: Vocab, cfg: ExperimentConfig):
    max_tok = cfg.max_len - 1  # room for <bos>
    train = [ids for ids in (vocab.encode(s) for s in data["train"]) if len(ids) <= min(max_tok, cfg.max_train_len)]
    valid = [vocab.encode(s)[:max_tok] for s in data["valid"]]
    test = [vocab.encode(s)[:max_tok] for s in data["test"]]
    return train, valid, test


def comparisons(metrics: dict[str, Any]) -> dict[str, float]:
    """The from-scratch claims as numbers: Optimus against the LM, and the plain VAE's collapse."""
    out: dict[str, float] = {}
    lm, opt = metrics.get("lm"), metrics.get("optimus")
    if lm and opt and "ppl_iw" in opt:
        out["optimus_ppl_iw_over_lm_ppl"] = opt["ppl_iw"] / lm["ppl"]
    return out


def examples_per_rank(ctx: RunContext) -> list[int]:
    """Training examples each rank processed (a one-hot vector per rank, summed)."""
    mine = [float(ctx.examples_seen) if r == ctx.rank else 0.0 for r in range(ctx.world_size)]
    return [int(round(v)) for v in ctx.sum_over_ranks(mine)]


# The targets of the from-scratch bar (card claims): the choice must keep z informative.
SELECT_MI, SELECT_AU = 0.5, 4
SELECT_RULE = (f"among lambdas whose valid MI >= {SELECT_MI} nats and AU >= {SELECT_AU}, the lowest valid ppl_iw; "
               "if none qualifies, the highest valid MI")


def choose_lambda(trials: dict[float, dict[str, float]]) -> float:
    """The `SELECT_RULE` choice among {lambda: valid metrics}."""
    ok = [lam for lam, m in trials.items() if m["mi"] >= SELECT_MI and m["au"] >= SELECT_AU]
    if ok:
        return min(ok, key=lambda lam: trials[lam]["ppl_iw"])
    return max(trials, key=lambda lam: trials[lam]["mi"])


def select_lambda(cfg: ExperimentConfig, ctx: RunContext, vocab: Vocab, train, valid) -> tuple[ExperimentConfig, dict]:
    """Short trials scored on PTB valid only; returns the config with the chosen lambda."""
    from dataclasses import replace

    short = replace(cfg, steps=cfg.select_steps, eval_every=cfg.select_steps,
                    ae_pretrain_steps=round(cfg.ae_pretrain_steps * cfg.select_steps / cfg.steps),
                    warmup_steps=min(cfg.warmup_steps, cfg.select_steps // 10 or 1))
    lm = evaluate("lm", train_arm("lm", short, ctx, vocab, train, valid), vocab, valid, short, ctx)
    trials: dict[float, dict[str, float]] = {}
    for lam in cfg.lambda_grid:
        model = train_arm("optimus", replace(short, kl_threshold=lam), ctx, vocab, train, valid)
        m = evaluate("optimus", model, vocab, valid, short, ctx, iw_samples=cfg.iw_samples)
        trials[lam] = {"ppl_iw": m["ppl_iw"], "mi": m["mi"], "au": m["au"], "ppl_iw_over_lm": m["ppl_iw"] / lm["ppl"]}
        ctx.log(short.steps, arm="optimus", split="selection", kl_threshold=lam, **trials[lam])
    chosen = choose_lambda(trials)
    ctx.select("kl_threshold", split=f"PTB valid ({len(valid)} sentences)", chosen=chosen,
               grid=list(cfg.lambda_grid), scores=[trials[lam] for lam in cfg.lambda_grid],
               rule=f"{SELECT_RULE}; {short.steps}-step trials of the Optimus arm (AE warm-up "
                    f"{short.ae_pretrain_steps}), IW K={cfg.iw_samples}; LM at {short.steps} steps: valid ppl "
                    f"{lm['ppl']:.4g}")
    return replace(cfg, kl_threshold=chosen), {"lm_valid_ppl": lm["ppl"], "trials": trials, "chosen": chosen}


def run(config: dict, ctx: RunContext) -> dict[str, Any]:
    cfg = ExperimentConfig.from_dict(config)
    torch.manual_seed(ctx.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_corpus(cfg, ctx)
    vocab = Vocab.build(data["train"], max_words=cfg.max_vocab or None)
    train, valid, test = encode_splits(data, vocab, cfg)
    sealed = ctx.seal((test, data.pop("test")), "PTB test")  # (ids, words): opened for the final evaluation
    del test
    ctx.note("vocab_size", len(vocab))
    ctx.note("ppl_definition", "lm: exact PPL; vae/optimus: ppl = exp(sum -ELBO (beta=1, true KL) / tokens incl. "
                               "<eos>), an upper bound; ppl_iw = the K-sample importance-weighted bound (headline)")
    ctx.note("world_size", ctx.world_size)
    ctx.note("global_batch", {"batch_size": cfg.batch_size, "per_rank": ctx.local_batch(cfg.batch_size)})

    if cfg.lambda_grid and cfg.select_steps:
        cfg, selection = select_lambda(cfg, ctx, vocab, train, valid)
        if cfg.selection_only:
            return {"selection": {str(k): v for k, v in selection["trials"].items()},
                    "lm_valid_ppl": selection["lm_valid_ppl"], "chosen_kl_threshold": selection["chosen"]}
    ctx.begin_final_evaluation(fixed=f"steps {cfg.steps} fixed by the time budget; kl_threshold {cfg.kl_threshold}")
    test, test_words = sealed.open()
    unk = sum(i == vocab.unk_id for s in test for i in s) / max(1, sum(map(len, test)))
    ctx.note("sentences", {"train_used": len(train), "valid": len(valid), "test": len(test),
                           "test_truncated": sum(len(s) + 1 > cfg.max_len - 1 for s in test_words),
                           "test_unk_rate": round(unk, 4)})
    metrics: dict[str, Any] = {}
    models = {}
    for arm in cfg.arms:
        t0 = time.time()
        models[arm] = train_arm(arm, cfg, ctx, vocab, train, valid)
        m = evaluate(arm, models[arm], vocab, test, cfg, ctx, iw_samples=0 if arm == "lm" else cfg.iw_samples)
        m["seconds"] = round(time.time() - t0, 1)
        metrics[arm] = m
        ctx.log(cfg.steps, arm=arm, split="test", **{k: m[k] for k in ("ppl", "kl", "mi", "au")},
                **({"ppl_iw": m["ppl_iw"]} if "ppl_iw" in m else {}))
    metrics["compare"] = comparisons(metrics)
    ctx.note("examples_per_rank", examples_per_rank(ctx))
    if ctx.is_main:
        demo_arms = {a: models[a] for a in ("vae", "optimus") if a in models}
        write_demos(ctx.out_dir, demo_arms, vocab, test_words, cfg.demo_sentences, cfg.demo_max_tokens,
                    ctx.device, ctx.seed)
        plot_curves(ctx.out_dir / "metrics.jsonl", ctx.out_dir / "optimus_curves.png")
        (ctx.out_dir / "summary.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def plot_curves(metrics_path: Path, png_path: Path) -> None:
    """Valid PPL and KL per arm, and the β each arm trained with."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(l) for l in metrics_path.read_text(encoding="utf-8").splitlines() if l.strip()]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    colour = {"lm": "C0", "vae": "C1", "optimus": "C2"}  # one colour per arm across panels
    for arm in ARMS:
        val = [r for r in rows if r.get("arm") == arm and r.get("split") == "valid"]
        tr = [r for r in rows if r.get("arm") == arm and r.get("split") == "train" and "beta" in r]
        if val:
            axes[0].plot([r["step"] for r in val], [r["ppl"] for r in val], marker="o", ms=3, label=arm,
                         color=colour[arm])
            axes[1].plot([r["step"] for r in val], [r["kl"] for r in val], marker="o", ms=3, label=arm,
                         color=colour[arm])
        if tr:
            axes[2].plot([r["step"] for r in tr], [r["beta"] for r in tr], label=arm, color=colour[arm])
    for ax, title in zip(axes, ("valid PPL (ELBO bound for VAEs)", "valid KL (nats / sentence)", "β (train)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
