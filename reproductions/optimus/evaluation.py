"""Test and validation numbers of one trained arm: exact or ELBO perplexity, the IW bound, KL, MI, AU."""

from __future__ import annotations

import torch

from reproductions.api import RunContext
from reproductions.optimus.config import ExperimentConfig
from reproductions.optimus.corpus import collate, make_batches
from reproductions.optimus.metrics import iw_log_likelihood, mutual_information, perplexity
from reproductions.optimus.model import sentence_nll
from reproductions.optimus.tokenizer import Vocab


@torch.no_grad()
def evaluate(arm: str, model, vocab: Vocab, data: list[list[int]], cfg: ExperimentConfig, ctx: RunContext,
             iw_samples: int = 0, seed: int | None = None) -> dict[str, float]:
    """Exact NLL (LM) or β = 1 ELBO with true KL (VAEs); MI per batch, AU over the whole split.

    Batches are fixed (no shuffling) and dealt to ranks round-robin; each batch's noise comes
    from its own generator, so the reduced sums equal a single process's.
    """
    model.eval()
    seed = ctx.seed if seed is None else seed
    D = cfg.d_latent
    batches = make_batches(data, cfg.eval_batch_size, None)
    tokens, nll, rec_sum, kl_sum, iw_sum, mi_weighted = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    mu_sum, mu_sq = torch.zeros(D, dtype=torch.float64), torch.zeros(D, dtype=torch.float64)
    for bi in ctx.shard(len(batches)):
        idx = batches[bi]
        gen = torch.Generator(device="cpu").manual_seed(seed * 7919 + 1 + bi)
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
