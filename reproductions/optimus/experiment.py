"""Train three arms on PTB and measure PPL / KL / MI / AU on the test split.

* ``lm``      — the decoder alone (no encoder, no z): the plain LM the VAE must beat or match;
* ``vae``     — the same encoder/decoder with β = 1 from the first step and no threshold:
                the textbook VAE whose strong autoregressive decoder ignores z (KL -> 0);
* ``optimus`` — optional auto-encoder warm-up (β = 0), then the cyclical β schedule with
                the per-dimension KL threshold λ.

Every arm is evaluated the same way: exact NLL for the LM, and for the VAEs the ELBO with
β = 1 and the true KL (an upper bound on NLL), optionally the importance-weighted bound.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from reproductions.api import RunContext
from reproductions.data import DatasetMissing, load_ptb, resolve_data_dir
from reproductions.optimus.demos import write_demos
from reproductions.optimus.metrics import active_units, iw_log_likelihood, mutual_information, perplexity
from reproductions.optimus.model import LanguageModel, OptimusConfig, OptimusVAE, sentence_nll
from reproductions.optimus.objectives import cyclical_beta, vae_loss
from reproductions.optimus.tokenizer import Vocab

ARMS = ("lm", "vae", "optimus")


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


def load_corpus(config: dict, ctx: RunContext) -> dict[str, list[list[str]]]:
    try:
        data = load_ptb(resolve_data_dir(ctx.data_dir))
        ctx.note("data", "PTB (Mikolov LM split): train/valid/test, <eos> added per sentence")
    except DatasetMissing:
        if not config.get("allow_synthetic", False):
            raise
        data = {"train": synthetic_corpus(2000, 1), "valid": synthetic_corpus(200, 2), "test": synthetic_corpus(200, 3)}
        ctx.note("data", "synthetic template sentences (PTB not found; smoke preset only)")
    for split, cap in (("train", "max_train_sentences"), ("valid", "max_valid_sentences"),
                       ("test", "max_test_sentences")):
        if config.get(cap):
            data[split] = data[split][: config[cap]]
    return data


def make_batches(encoded: list[list[int]], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Index batches of similar length (little padding); shuffled batch order when rng is given."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


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


# ---------------------------------------------------------------- training

def model_config(config: dict, vocab: Vocab) -> OptimusConfig:
    known = {f.name for f in fields(OptimusConfig)}
    kw = {k: v for k, v in config.items() if k in known}
    return OptimusConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, **kw)


def beta_at(arm: str, step: int, config: dict) -> float:
    if arm == "vae":
        return 1.0
    warm = config.get("ae_pretrain_steps", 0)
    if step < warm:
        return 0.0
    return cyclical_beta(step - warm, config["steps"] - warm, config["n_cycles"], config["ratio_zero"],
                         config["ratio_increase"], config.get("beta_max", 1.0))


def lr_at(step: int, config: dict) -> float:
    """Linear warm-up then cosine decay to 10% of the peak."""
    warm, total, peak = config["warmup_steps"], config["steps"], config["lr"]
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train_arm(arm: str, config: dict, ctx: RunContext, vocab: Vocab, train: list[list[int]],
              valid: list[list[int]]):
    torch.manual_seed(ctx.seed)
    cfg = model_config(config, vocab)
    model = (LanguageModel(cfg) if arm == "lm" else OptimusVAE(cfg)).to(ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config.get("weight_decay", 0.01))
    lam = config["kl_threshold"] if arm == "optimus" else 0.0
    rng = random.Random(ctx.seed)
    batches: list[list[int]] = []
    step, t0 = 0, time.time()
    with ctx.progress(config["steps"], f"train {arm}") as advance:
        while step < config["steps"]:
            if not batches:
                batches = make_batches(train, config["batch_size"], rng)
            b = collate(train, batches.pop(), vocab, ctx.device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, config)
            beta = beta_at(arm, step, config)
            model.train()
            with ctx.autocast():
                if arm == "lm":
                    out = model(b["dec"], b["tgt"])
                    loss = out["rec"].mean()
                else:
                    out = model(b["enc"], b["dec"], b["tgt"])
                    loss = vae_loss(out["rec"], out["kl"], beta, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.get("grad_clip", 1.0))
            opt.step()
            step += 1
            advance(1)
            if step % config["log_every"] == 0 or step == config["steps"]:
                ntok = int(b["tgt"].ne(vocab.pad_id).sum())
                row: dict[str, Any] = {"arm": arm, "split": "train", "rec_per_token": float(out["rec"].detach().sum()) / ntok}
                if arm != "lm":
                    row.update(kl=float(out["kl"].detach().sum(1).mean()), beta=beta)
                ctx.log(step, **row)
            if step % config["eval_every"] == 0 or step == config["steps"]:
                ev = evaluate(arm, model, vocab, valid, config, ctx, iw_samples=0)
                ctx.log(step, arm=arm, split="valid", ppl=ev["ppl"], kl=ev["kl"], mi=ev["mi"], au=ev["au"])
    ctx.note(f"{arm}_train_seconds", round(time.time() - t0, 1))
    ctx.note(f"{arm}_parameters", sum(p.numel() for p in model.parameters()))
    return model


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(arm: str, model, vocab: Vocab, data: list[list[int]], config: dict, ctx: RunContext,
             iw_samples: int = 0) -> dict[str, float]:
    """Exact NLL (LM) or β = 1 ELBO with true KL (VAEs); MI per batch, AU over the whole split."""
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(ctx.seed + 1)
    tokens, nll, rec_sum, kl_sum, iw_sum = 0, 0.0, 0.0, 0.0, 0.0
    mi_weighted, mus = 0.0, []
    for idx in make_batches(data, config["eval_batch_size"], None):
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
        mus.append(mu.cpu())
        if iw_samples > 0:
            iw_sum += float(iw_bound(model, b, mu, logvar, iw_samples, vocab, ctx, gen).sum())
    n = len(data)
    if arm == "lm":
        return {"ppl": perplexity(nll, tokens), "nll": nll / n, "tokens": tokens, "kl": 0.0, "mi": 0.0, "au": 0}
    au, _ = active_units(torch.cat(mus))
    out = {"ppl": perplexity(rec_sum + kl_sum, tokens), "neg_elbo": (rec_sum + kl_sum) / n, "rec": rec_sum / n,
           "kl": kl_sum / n, "mi": mi_weighted / n, "au": au, "tokens": tokens}
    if iw_samples > 0:
        out.update(ppl_iw=perplexity(-iw_sum, tokens), nll_iw=-iw_sum / n, iw_samples=iw_samples)
    return out


def iw_bound(model, b, mu, logvar, K: int, vocab: Vocab, ctx: RunContext, gen) -> torch.Tensor:
    """log p(x) lower bound with K posterior samples, decoded in chunks to bound memory: (B,)."""
    B, D = mu.shape
    chunk = max(1, min(K, 256 // B))  # at most 256 decoded rows at once
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

def run(config: dict, ctx: RunContext) -> dict[str, Any]:
    torch.manual_seed(ctx.seed)
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    data = load_corpus(config, ctx)
    vocab = Vocab.build(data["train"])
    max_tok = config["max_len"] - 1  # room for <bos>
    train = [ids for ids in (vocab.encode(s) for s in data["train"]) if len(ids) <= min(max_tok, config["max_train_len"])]
    valid = [vocab.encode(s)[:max_tok] for s in data["valid"]]
    test = [vocab.encode(s)[:max_tok] for s in data["test"]]
    truncated = sum(len(s) + 1 > max_tok for s in data["test"])
    ctx.note("vocab_size", len(vocab))
    ctx.note("sentences", {"train_used": len(train), "valid": len(valid), "test": len(test),
                           "test_truncated": truncated})
    ctx.note("ppl_definition", "exp(sum over sentences of -ELBO (beta=1, true KL) / tokens incl. <eos>): "
                               "an upper bound on the true PPL; ppl_iw is the K-sample importance-weighted bound")

    metrics: dict[str, Any] = {}
    models = {}
    for arm in config.get("arms", ARMS):
        t0 = time.time()
        models[arm] = train_arm(arm, config, ctx, vocab, train, valid)
        m = evaluate(arm, models[arm], vocab, test, config, ctx,
                     iw_samples=0 if arm == "lm" else config.get("iw_samples", 0))
        m["seconds"] = round(time.time() - t0, 1)
        metrics[arm] = m
        ctx.log(config["steps"], arm=arm, split="test", ppl=m["ppl"], kl=m["kl"], mi=m["mi"], au=m["au"])
    if ctx.is_main:
        demo_arms = {a: models[a] for a in ("vae", "optimus") if a in models}
        write_demos(ctx.out_dir, demo_arms, vocab, data["test"], config, ctx.device, ctx.seed)
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
