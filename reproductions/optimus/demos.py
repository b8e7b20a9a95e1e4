"""Latent-space demos written to the run folder: reconstruction, interpolation, sampling.

All decoding is greedy, so any difference between outputs comes from z alone: a
collapsed VAE (decoder ignores z) prints the same sentence for every input and every
point of an interpolation, which is the point of showing both VAE arms side by side.
Greedy decoding never emits ``<unk>`` (with a capped vocabulary it is the most likely
token almost everywhere, and a line of ``<unk>`` shows nothing). Beside the texts, a
number: 200 test sentences' per-token NLL given their own posterior mean against
given another sentence's, which is equal when the decoder ignores z.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from reproductions.optimus.tokenizer import Vocab


@torch.no_grad()
def greedy_decode(decoder, z: torch.Tensor, vocab: Vocab, max_tokens: int) -> list[str]:
    """Decode one sentence per row of z (N, D), stopping at <eos> or max_tokens."""
    N = z.shape[0]
    max_tokens = min(max_tokens, decoder.cfg.max_len - 1)  # positions the decoder has
    ids = torch.full((N, 1), vocab.bos_id, dtype=torch.long, device=z.device)
    done = torch.zeros(N, dtype=torch.bool, device=z.device)
    banned = [vocab.unk_id, vocab.pad_id, vocab.bos_id]
    for _ in range(max_tokens):
        logits = decoder(ids, z)[:, -1]  # (N, V)
        logits[:, banned] = float("-inf")
        nxt = logits.argmax(-1)  # (N,)
        nxt = torch.where(done, torch.full_like(nxt, vocab.pad_id), nxt)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done |= nxt.eq(vocab.eos_id)
        if bool(done.all()):
            break
    return [vocab.to_text(row[1:]) for row in ids.tolist()]


@torch.no_grad()
def posterior_mean(encoder, sentences: list[list[str]], vocab: Vocab, device) -> torch.Tensor:
    rows = [[vocab.bos_id] + vocab.encode(s) for s in sentences]
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), vocab.pad_id, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row)
    mu, _ = encoder(ids.to(device))
    return mu


@torch.no_grad()
def own_vs_swapped_nll(decoder, sentences: list[list[str]], mu: torch.Tensor, vocab: Vocab, device) -> dict:
    """Per-token NLL of the sentences decoded with their own z = mu(x) and with the next one's."""
    from reproductions.optimus.model import sentence_nll

    rows = [vocab.encode(s) for s in sentences]  # words + <eos>
    T = max(map(len, rows))
    dec = torch.full((len(rows), T), vocab.pad_id, dtype=torch.long)
    tgt = torch.full((len(rows), T), vocab.pad_id, dtype=torch.long)
    for r, row in enumerate(rows):
        dec[r, 0], dec[r, 1:len(row)] = vocab.bos_id, torch.tensor(row[:-1])
        tgt[r, :len(row)] = torch.tensor(row)
    dec, tgt = dec.to(device), tgt.to(device)
    tokens = float(tgt.ne(vocab.pad_id).sum())
    own = float(sentence_nll(decoder(dec, mu), tgt, vocab.pad_id).sum()) / tokens
    swapped = float(sentence_nll(decoder(dec, mu.roll(1, dims=0)), tgt, vocab.pad_id).sum()) / tokens
    return {"own_z": own, "swapped_z": swapped, "tokens": int(tokens)}


def write_demos(out_dir: Path, models: dict, vocab: Vocab, test: list[list[str]], n: int, max_tokens: int,
                device, seed: int) -> dict:
    """demos.json and demos.txt with, per VAE arm: reconstructions of `n` test sentences (greedy from
    the posterior mean), a 5-point interpolation between two of them, and `n` prior samples."""
    n = max(2, n)  # the interpolation needs two sentences
    short = [s for s in test if 6 <= len(s) <= 20] or test
    picks = [short[i * len(short) // n] for i in range(n)]
    check = short[:200]  # the z-swap NLL needs more sentences than the texts show
    result: dict = {}
    for arm, model in models.items():
        model.eval()
        mu = posterior_mean(model.encoder, picks, vocab, device)
        recon = greedy_decode(model.decoder, mu, vocab, max_tokens)
        ts = [i / 4 for i in range(5)]
        path = torch.stack([(1 - t) * mu[0] + t * mu[1] for t in ts])
        interp = greedy_decode(model.decoder, path, vocab, max_tokens)
        g = torch.Generator(device="cpu").manual_seed(seed + 7)
        prior = torch.randn((n, mu.shape[1]), generator=g).to(device)
        samples = greedy_decode(model.decoder, prior, vocab, max_tokens)
        result[arm] = {
            "reconstructions": [{"input": " ".join(s), "output": o} for s, o in zip(picks, recon)],
            "interpolation": {"from": " ".join(picks[0]), "to": " ".join(picks[1]),
                              "steps": [{"t": t, "output": o} for t, o in zip(ts, interp)]},
            "prior_samples": samples,
            "nll_per_token": own_vs_swapped_nll(model.decoder, check, posterior_mean(model.encoder, check, vocab, device),
                                                vocab, device),
        }
    (Path(out_dir) / "demos.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = []
    for arm, d in result.items():
        lines.append(f"== {arm} ==")
        lines.append("-- reconstructions (greedy from the posterior mean)")
        for r in d["reconstructions"]:
            lines += [f"  in : {r['input']}", f"  out: {r['output']}"]
        lines.append("-- interpolation z = (1-t) mu(a) + t mu(b)")
        lines += [f"  t={s['t']:.2f}: {s['output']}" for s in d["interpolation"]["steps"]]
        lines.append("-- samples, z ~ N(0, I), greedy")
        lines += [f"  {s}" for s in d["prior_samples"]]
        nll = d["nll_per_token"]
        lines.append(f"-- NLL per token of {len(check)} test sentences, decoder given its own z = mu(x): "
                     f"{nll['own_z']:.3f}; given the next sentence's: {nll['swapped_z']:.3f}")
        lines.append("")
    (Path(out_dir) / "demos.txt").write_text("\n".join(lines), encoding="utf-8")
    return result
