"""Two checks of our attention: exactness against SDPA, and learning a task that needs it.

1. ``max_abs_err_vs_sdpa``: our `MultiHeadSelfAttention` vs
   `torch.nn.functional.scaled_dot_product_attention` on the same projections, fp32, on
   the run's device, with a causal + key-padding mask (outputs and input gradients).
2. Sequence reversal: output position ``i`` must emit input token ``T-1-i``. Which
   token lands where depends only on positions, never on content, so no per-position
   MLP can solve it; attention with positional embeddings can (a query at ``i`` learns
   to match the key at ``T-1-i``). Fresh random sequences every step; ``accuracy`` is
   token accuracy on fresh sequences the model has never seen.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from reproductions.api import RunContext
from reproductions.self_attention.model import MultiHeadSelfAttention, TinyTransformer, causal_mask, padding_mask


def max_abs_err_vs_sdpa(device: torch.device, *, b: int = 3, t: int = 37, d: int = 64, heads: int = 4,
                        seed: int = 0) -> float:
    """Largest |ours - SDPA| over the output and d(output)/d(input), fp32, causal + padding mask."""
    g = torch.Generator().manual_seed(seed)
    attn = MultiHeadSelfAttention(d, heads).to(device)
    x = torch.randn(b, t, d, generator=g).to(device).requires_grad_()
    upstream = torch.randn(b, t, d, generator=g).to(device)
    lengths = torch.tensor([t - 5 * i for i in range(b)], device=device)
    mask = causal_mask(t, device)[None] & padding_mask(lengths, t)  # (B, T, T)

    ours = attn(x, mask)
    (grad_ours,) = torch.autograd.grad((ours * upstream).sum(), x)

    q, k, v = (z.view(b, t, heads, d // heads).transpose(1, 2) for z in attn.qkv(x).split(d, dim=-1))
    heads_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1))
    ref = attn.out(heads_out.transpose(1, 2).reshape(b, t, d))
    (grad_ref,) = torch.autograd.grad((ref * upstream).sum(), x)
    return max((ours - ref).abs().max().item(), (grad_ours - grad_ref).abs().max().item())


def reversal_batch(batch: int, seq_len: int, vocab: int, generator: torch.Generator, device):
    """(tokens, targets), both (B, T): targets are the tokens in reverse order."""
    tokens = torch.randint(0, vocab, (batch, seq_len), generator=generator)
    return tokens.to(device), tokens.flip(1).to(device)


@torch.no_grad()
def evaluate(model, cfg: dict, generator: torch.Generator, device) -> tuple[float, float]:
    """(token accuracy, whole-sequence accuracy) on ``eval_batches`` fresh batches."""
    model.eval()
    right = total = seq_right = seqs = 0
    for _ in range(cfg["eval_batches"]):
        x, y = reversal_batch(cfg["batch_size"], cfg["seq_len"], cfg["vocab"], generator, device)
        hit = model(x).argmax(-1) == y
        right += hit.sum().item()
        total += hit.numel()
        seq_right += hit.all(1).sum().item()
        seqs += hit.size(0)
    model.train()
    return right / total, seq_right / seqs


def run(config: dict, ctx: RunContext) -> dict:
    cfg = dict(config)
    device = ctx.device
    torch.manual_seed(ctx.seed)
    err = max_abs_err_vs_sdpa(device, seed=ctx.seed)
    ctx.note("exactness_check", "fp32, B=3, T=37, d=64, 4 heads, causal + key-padding mask; output and dx")

    model = TinyTransformer(cfg["vocab"], cfg["seq_len"], cfg["d_model"], cfg["heads"], cfg["layers"],
                            cfg["d_ff"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
    steps = cfg["steps"]
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warmup, cosine decay
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    train_gen = torch.Generator().manual_seed(ctx.seed)
    test_gen = torch.Generator().manual_seed(10_000 + ctx.seed)  # a separate stream: unseen sequences
    ctx.note("data", f"synthetic reversal: uniform random tokens, vocab {cfg['vocab']}, length {cfg['seq_len']}")

    t0 = time.time()
    log_every = max(1, steps // 20)
    with ctx.progress(steps, "reversal") as advance:
        for step in range(1, steps + 1):
            x, y = reversal_batch(cfg["batch_size"], cfg["seq_len"], cfg["vocab"], train_gen, device)
            with ctx.autocast():
                logits = model(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % log_every == 0 or step == steps:
                ctx.log(step, loss=round(loss.item(), 5), lr=sched.get_last_lr()[0])
            advance(1)
    train_s = time.time() - t0

    accuracy, seq_accuracy = evaluate(model, cfg, test_gen, device)
    ctx.log(steps, accuracy=accuracy, sequence_accuracy=seq_accuracy)
    return {
        "max_abs_err_vs_sdpa": err,
        "accuracy": accuracy,
        "sequence_accuracy": seq_accuracy,
        "target_accuracy": cfg["target_accuracy"],
        "reached_target": accuracy >= cfg["target_accuracy"],
        "final_loss": loss.item(),
        "train_s": round(train_s, 2),
        "params": sum(p.numel() for p in model.parameters()),
    }
