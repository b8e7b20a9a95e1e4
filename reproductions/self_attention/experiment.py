"""Two checks of our attention: exactness against SDPA, and learning a task that needs it.

1. ``max_abs_err_vs_sdpa``: our `MultiHeadSelfAttention` vs
   `torch.nn.functional.scaled_dot_product_attention` on the same projections, in true
   fp32 (TF32 matmuls off: with TF32 on, an H100 would report ~1e-3 and hide a real
   error of that size), on the run's device, with a causal + key-padding mask (outputs
   and input gradients).
2. Sequence reversal: output position ``i`` must emit input token ``T-1-i``. Which
   token lands where depends only on positions, never on content, so no per-position
   MLP can solve it; attention with positional embeddings can (a query at ``i`` learns
   to match the key at ``T-1-i``). Fresh random sequences every step; ``accuracy`` is
   token accuracy on fresh sequences the model has never seen.

Data-parallel: every rank draws the same global batch from the same generator and
trains on its own rows of it (`ctx.shard`), so N processes see the preset's batch split
N ways and DDP's averaged gradient equals the one-process gradient. Evaluation is
sharded the same way and the accuracies averaged over ranks.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from reproductions.api import RunContext, config_from_dict
from reproductions.self_attention.model import MultiHeadSelfAttention, TinyTransformer, causal_mask, padding_mask


@dataclass(frozen=True)
class ReversalConfig:
    seq_len: int = 8
    vocab: int = 10
    d_model: int = 32
    n_head: int = 2
    n_layer: int = 1
    d_ff: int = 64
    dropout: float = 0.0
    steps: int = 150
    batch_size: int = 64  # global: split over the processes
    lr: float = 3e-3
    eval_batches: int = 4
    target_accuracy: float = 0.9


@contextlib.contextmanager
def true_fp32() -> Iterator[None]:
    """TF32 matmuls and convolutions off inside (restored after), so fp32 means fp32 on CUDA too.

    Only the ``allow_tf32`` flags, the API the runner uses to turn TF32 on: torch refuses to
    read the precision through the newer ``float32_matmul_precision`` API once both are mixed.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def max_abs_err_vs_sdpa(device: torch.device, *, b: int = 3, t: int = 37, d: int = 64, n_head: int = 4,
                        seed: int = 0) -> float:
    """Largest |ours - SDPA| over the output and d(output)/d(input), true fp32, causal + padding mask."""
    with true_fp32():
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32, \
            "the exactness check must run with TF32 off"
        g = torch.Generator().manual_seed(seed)
        attn = MultiHeadSelfAttention(d, n_head).to(device)
        x = torch.randn(b, t, d, generator=g).to(device).requires_grad_()
        upstream = torch.randn(b, t, d, generator=g).to(device)
        lengths = torch.tensor([t - 5 * i for i in range(b)], device=device)
        mask = causal_mask(t, device)[None] & padding_mask(lengths, t)  # (B, T, T)

        ours = attn(x, mask)
        (grad_ours,) = torch.autograd.grad((ours * upstream).sum(), x)

        q, k, v = attn.split_heads(x)
        ref = attn.merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1)))
        (grad_ref,) = torch.autograd.grad((ref * upstream).sum(), x)
        return max((ours - ref).abs().max().item(), (grad_ours - grad_ref).abs().max().item())


def reversal_batch(batch: int, seq_len: int, vocab: int, generator: torch.Generator, device):
    """(tokens, targets), both (B, T): targets are the tokens in reverse order."""
    tokens = torch.randint(0, vocab, (batch, seq_len), generator=generator)
    return tokens.to(device), tokens.flip(1).to(device)


@torch.no_grad()
def evaluate(model, cfg: ReversalConfig, generator: torch.Generator, device,
             rows: range | None = None) -> tuple[float, float]:
    """(token accuracy, whole-sequence accuracy) on ``eval_batches`` fresh global batches,
    scored on ``rows`` of each (this rank's share; all rows by default)."""
    model.eval()
    right = total = seq_right = seqs = 0
    for _ in range(cfg.eval_batches):
        x, y = reversal_batch(cfg.batch_size, cfg.seq_len, cfg.vocab, generator, device)
        if rows is not None:
            x, y = x[list(rows)], y[list(rows)]
        hit = model(x).argmax(-1) == y
        right += hit.sum().item()
        total += hit.numel()
        seq_right += hit.all(1).sum().item()
        seqs += hit.size(0)
    model.train()
    return right / total, seq_right / seqs


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    cfg = config_from_dict(ReversalConfig, config, name="self-attention")
    device = ctx.device
    torch.manual_seed(ctx.seed)
    err = max_abs_err_vs_sdpa(device, seed=ctx.seed)
    ctx.note("exactness_check", "true fp32 (TF32 off), B=3, T=37, d=64, 4 heads, causal + key-padding mask; "
                                "output and dx")

    torch.manual_seed(ctx.seed)  # the same initial weights on every rank
    net = TinyTransformer(cfg.vocab, cfg.seq_len, cfg.d_model, cfg.n_head, cfg.n_layer, cfg.d_ff, cfg.dropout)
    model = ctx.wrap_model(net)
    local = ctx.local_batch(cfg.batch_size)
    rows = list(ctx.shard(cfg.batch_size))  # this rank's rows of every global batch
    assert len(rows) == local
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    steps = cfg.steps
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warmup, cosine decay
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    train_gen = torch.Generator().manual_seed(ctx.seed)  # same stream on every rank: same global batches
    # a separate stream of unseen sequences, sealed until the final evaluation (splits.py)
    sealed = ctx.seal(torch.Generator().manual_seed(10_000 + ctx.seed), "fresh test sequences")
    ctx.note("data", f"synthetic reversal: uniform random tokens, vocab {cfg.vocab}, length {cfg.seq_len}")
    ctx.note("data_parallel", {"world_size": ctx.world_size, "global_batch": cfg.batch_size,
                               "local_batch": local, "rows_of_each_batch": "rank::world_size"})

    t0 = time.time()
    log_every = max(1, steps // 20)
    with ctx.progress(steps, "reversal") as advance:
        for step in range(1, steps + 1):
            x, y = reversal_batch(cfg.batch_size, cfg.seq_len, cfg.vocab, train_gen, device)
            x, y = x[rows], y[rows]
            ctx.count_examples(len(rows))
            with ctx.autocast():
                logits = model(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages the gradients over ranks here
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % log_every == 0 or step == steps:
                ctx.log(step, loss=round(ctx.mean_over_ranks(loss.item()), 5), lr=sched.get_last_lr()[0])
            advance(1)
    train_s = time.time() - t0
    final_loss = ctx.mean_over_ranks(loss.item())
    del model, opt, sched  # release the DDP wrapper (and its reducer) while the process group is alive
    gc.collect()

    ctx.begin_final_evaluation(fixed="model, steps and learning rate fixed by the preset")
    accuracy, seq_accuracy = evaluate(net, cfg, sealed.open(), device, ctx.shard(cfg.batch_size))
    accuracy, seq_accuracy = ctx.mean_over_ranks(accuracy), ctx.mean_over_ranks(seq_accuracy)  # equal shards
    ctx.log(steps, accuracy=accuracy, sequence_accuracy=seq_accuracy)
    return {
        "max_abs_err_vs_sdpa": err,
        "accuracy": accuracy,
        "sequence_accuracy": seq_accuracy,
        "target_accuracy": cfg.target_accuracy,
        "reached_target": accuracy >= cfg.target_accuracy,
        "final_loss": final_loss,
        "train_s": round(train_s, 2),
        "params": sum(p.numel() for p in net.parameters()),
        "world_size": ctx.world_size,
    }
